"""Seccomp BPF programs for the sandbox (x86-64 only), as raw ``struct sock_filter`` bytes.

Two stacked stages, both built here without any system call (no ctypes, no imports):

``zygote_filter()``
    A DENYLIST the zygote loads once for itself; every child inherits it. It refuses
    what neither the zygote nor a child ever needs (new sockets, exec, mounts and the
    new mount API, namespaces, ptrace and cross-process memory access, kernel keyrings,
    bpf, SysV/POSIX IPC, every file-system mutation including the xattr family and
    timestamps, writable opens), and keeps what the zygote needs to run its children:
    fork, wait4, kill/tgkill/pidfd_*, setpgid, setuid/setgid/setgroups, rlimits, prctl,
    seccomp(), priorities, close_range, landlock_*, and I/O on the fds it already has
    (an already-listening unix socket included: accept4/recvmsg/sendmsg/read/write).

``child_filter()``
    An ALLOWLIST each child loads after fork (``CHILD_ALLOWED``, found empirically with
    strace on CPython 3.11 running pure functions, imports from disk, threads, sleep,
    MemoryError and deep recursion). Everything else returns EPERM; ``clone3`` returns
    ENOSYS (glibc then falls back to ``clone``) and ``ioctl`` ENOTTY (``isatty`` is
    False). Argument checks (``CHILD_ARGUMENT_CHECKS``): ``clone`` only for threads,
    no ``PROT_EXEC`` in ``mmap``/``mprotect`` (no new native code: ctypes, mmap-module,
    any extension module not already loaded in the zygote), ``open``/``openat``
    read-only, ``prlimit64`` only to read its own limits, clocks only by their fixed ids
    (a negative id names another process's CPU-time clock: a side channel).

Both check ``seccomp_data.arch == AUDIT_ARCH_X86_64`` (anything else is killed) and
refuse the x32 ABI (syscall numbers with bit 30 set). Argument checks read the low
32 bits of an argument; every flag tested lives there.
"""

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

EPERM = 1
EACCES = 13
ENOTTY = 25
ENOSYS = 38

O_WRONLY = 0o1
O_RDWR = 0o2
O_CREAT = 0o100
O_TRUNC = 0o1000
O_APPEND = 0o2000
OPEN_WRITE_FLAGS = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND
PROT_EXEC = 0x4
MAX_CLOCK_ID = 15  # CLOCK_REALTIME (0) .. CLOCK_TAI (11); negative ids are CPU-time clocks of a pid
CLONE_THREAD = 0x00010000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian).
_NR, _ARCH = 0, 4


def _arg(index: int) -> int:
    """Offset of the low 32 bits of argument ``index``."""
    return 16 + 8 * index


def _arg_high(index: int) -> int:
    return 20 + 8 * index


# x86-64 system call numbers of every call named in this module.
SYSCALLS: dict[str, int] = {
    "read": 0,
    "write": 1,
    "open": 2,
    "close": 3,
    "lseek": 8,
    "mmap": 9,
    "mprotect": 10,
    "munmap": 11,
    "brk": 12,
    "rt_sigaction": 13,
    "rt_sigprocmask": 14,
    "rt_sigreturn": 15,
    "ioctl": 16,
    "mremap": 25,
    "shmget": 29,
    "shmat": 30,
    "shmctl": 31,
    "madvise": 28,
    "socket": 41,
    "connect": 42,
    "bind": 49,
    "socketpair": 53,
    "clone": 56,
    "fork": 57,
    "vfork": 58,
    "execve": 59,
    "exit": 60,
    "kill": 62,
    "semget": 64,
    "semop": 65,
    "semctl": 66,
    "shmdt": 67,
    "msgget": 68,
    "msgsnd": 69,
    "msgrcv": 70,
    "msgctl": 71,
    "truncate": 76,
    "ftruncate": 77,
    "rename": 82,
    "mkdir": 83,
    "rmdir": 84,
    "creat": 85,
    "link": 86,
    "unlink": 87,
    "symlink": 88,
    "chmod": 90,
    "fchmod": 91,
    "chown": 92,
    "fchown": 93,
    "lchown": 94,
    "ptrace": 101,
    "syslog": 103,
    "utime": 132,
    "mknod": 133,
    "uselib": 134,
    "personality": 135,
    "ustat": 136,
    "sysfs": 139,
    "vhangup": 153,
    "modify_ldt": 154,
    "pivot_root": 155,
    "_sysctl": 156,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "create_module": 174,
    "init_module": 175,
    "delete_module": 176,
    "get_kernel_syms": 177,
    "query_module": 178,
    "quotactl": 179,
    "nfsservctl": 180,
    "setxattr": 188,
    "lsetxattr": 189,
    "fsetxattr": 190,
    "getxattr": 191,
    "lgetxattr": 192,
    "fgetxattr": 193,
    "listxattr": 194,
    "llistxattr": 195,
    "flistxattr": 196,
    "removexattr": 197,
    "lremovexattr": 198,
    "fremovexattr": 199,
    "tkill": 200,
    "futex": 202,
    "io_setup": 206,
    "lookup_dcookie": 212,
    "getdents64": 217,
    "semtimedop": 220,
    "clock_settime": 227,
    "clock_gettime": 228,
    "clock_nanosleep": 230,
    "exit_group": 231,
    "tgkill": 234,
    "utimes": 235,
    "mq_open": 240,
    "mq_unlink": 241,
    "mq_timedsend": 242,
    "mq_timedreceive": 243,
    "mq_notify": 244,
    "mq_getsetattr": 245,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "ioprio_set": 251,
    "inotify_init": 253,
    "inotify_add_watch": 254,
    "migrate_pages": 256,
    "openat": 257,
    "mkdirat": 258,
    "mknodat": 259,
    "fchownat": 260,
    "futimesat": 261,
    "newfstatat": 262,
    "unlinkat": 263,
    "renameat": 264,
    "linkat": 265,
    "symlinkat": 266,
    "fchmodat": 268,
    "get_robust_list": 274,
    "move_pages": 279,
    "utimensat": 280,
    "fallocate": 285,
    "inotify_init1": 294,
    "rt_tgsigqueueinfo": 297,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "fanotify_mark": 301,
    "prlimit64": 302,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "renameat2": 316,
    "memfd_create": 319,
    "kexec_file_load": 320,
    "bpf": 321,
    "execveat": 322,
    "userfaultfd": 323,
    "rt_sigqueueinfo": 129,
    "unshare": 272,
    "set_robust_list": 273,
    "rseq": 334,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "openat2": 437,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "memfd_secret": 447,
    "process_mrelease": 448,
    "cachestat": 451,
    "fchmodat2": 452,
    "statmount": 457,
    "listmount": 458,
    "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460,
    "lsm_list_modules": 461,
    "setxattrat": 463,
    "getxattrat": 464,
    "listxattrat": 465,
    "removexattrat": 466,
    "open_tree_attr": 467,
    "file_getattr": 468,
    "file_setattr": 469,
    "listns": 470,
}

# ------------------------------------------------------------------ the child allowlist

# name -> why a CPython 3.11 child running a pure function needs it. Measured with
# strace on Debian's /usr/bin/python3 (glibc 2.36): exec of a program, imports of
# pure-Python modules from disk (json, fractions, decimal, statistics, dataclasses, enum,
# textwrap, pprint, difflib, random, datetime, threading, traceback), tracebacks,
# RecursionError, MemoryError under RLIMIT_AS, threads, print to /dev/null, time.sleep.
_CHILD_REASONS: dict[str, str] = {
    "read": "read module sources and .pyc files (and the fds the child already has)",
    "write": "print to the already-open /dev/null on fds 1 and 2",
    "open": "import: open module files (read-only, argument-checked; glibc uses openat)",
    "openat": "import: open module files and list directories (read-only, argument-checked)",
    "close": "import: close module files",
    "lseek": "import: FileIO.readall asks for its position",
    "newfstatat": "import: stat of sys.path entries, module files and open fds (glibc's fstat)",
    "getdents64": "import: FileFinder lists a package directory once",
    "mmap": "memory: obmalloc arenas, big objects, thread stacks (argument-checked: no PROT_EXEC)",
    "mprotect": "memory: thread stacks and malloc heaps made read-write (no PROT_EXEC)",
    "munmap": "memory: give arenas and big objects back",
    "mremap": "memory: realloc of big blocks (lists, strings, bytes)",
    "brk": "memory: the main malloc heap",
    "madvise": "memory: glibc releases freed thread stacks and heap tails (MADV_DONTNEED)",
    "futex": "threads: the GIL, locks, thread join",
    "clone": "threads: pthread_create, only with CLONE_THREAD and no namespace flag (argument-checked)",
    "set_robust_list": "threads: glibc registers a new thread's robust mutex list",
    "rseq": "threads: glibc registers a new thread's restartable sequence area",
    "rt_sigprocmask": "threads: pthread_create blocks signals around clone",
    "rt_sigaction": "threads: glibc installs its SIGCANCEL handler at the first pthread_create",
    "rt_sigreturn": "return from any signal handler (without it, a handled signal crashes)",
    "exit": "threads: a finished thread ends",
    "exit_group": "the child ends",
    "clock_nanosleep": "time.sleep (argument-checked: fixed clock ids only)",
    "clock_gettime": "clocks, served by the vDSO without a system call but for CPU-time clocks "
    "and a fallback (argument-checked: fixed clock ids only)",
    "prlimit64": "getrlimit only: pid 0 and new_limit NULL (argument-checked)",
}

CHILD_ARGUMENT_CHECKS: dict[str, str] = {
    "clone": "allowed only with CLONE_THREAD and without any CLONE_NEW* flag, else EPERM",
    "mmap": "EPERM when prot has PROT_EXEC",
    "mprotect": "EPERM when prot has PROT_EXEC",
    "open": "EACCES when flags have O_WRONLY, O_RDWR, O_CREAT, O_TRUNC or O_APPEND",
    "openat": "EACCES when flags have O_WRONLY, O_RDWR, O_CREAT, O_TRUNC or O_APPEND",
    "prlimit64": "EPERM unless pid is 0 and new_limit is NULL",
    "clock_gettime": "EPERM unless clockid is 0..15 (no other process's CPU-time clock)",
    "clock_nanosleep": "EPERM unless clockid is 0..15",
}

# Refused with another errno than EPERM, so that the C library or CPython takes its
# fallback path instead of failing.
CHILD_SPECIAL_ERRNO: dict[str, int] = {
    "clone3": ENOSYS,  # glibc's pthread_create falls back to clone
    "ioctl": ENOTTY,  # isatty() is False for every fd
}

CHILD_ALLOWED: dict[str, int] = {name: SYSCALLS[name] for name in _CHILD_REASONS}

# ------------------------------------------------------------------ the zygote denylist

_ZYGOTE_DENIED_NAMES = (
    # sockets: the zygote only serves fds it already has
    "socket",
    "socketpair",
    "bind",
    "connect",
    # programs and code
    "execve",
    "execveat",
    "uselib",
    "personality",
    "modify_ldt",
    # other processes: tracing, their memory, their fds
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "process_mrelease",
    "kcmp",
    "pidfd_getfd",
    "get_robust_list",
    "move_pages",
    "migrate_pages",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "ioprio_set",
    # namespaces and mounts, old and new mount API
    "unshare",
    "setns",
    "listns",
    "chroot",
    "pivot_root",
    "mount",
    "umount2",
    "open_tree",
    "open_tree_attr",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "statmount",
    "listmount",
    # the kernel itself
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "io_setup",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "syslog",
    "sysfs",
    "ustat",
    "_sysctl",
    "lookup_dcookie",
    "nfsservctl",
    "quotactl",
    "quotactl_fd",
    "vhangup",
    "acct",
    "swapon",
    "swapoff",
    "iopl",
    "ioperm",
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "cachestat",
    "memfd_create",
    "memfd_secret",
    "name_to_handle_at",
    "open_by_handle_at",
    "fanotify_init",
    "fanotify_mark",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    # SysV and POSIX IPC (ids are global: a guessed id needs no *get call)
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "semget",
    "semop",
    "semctl",
    "semtimedop",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    # file-system changes Landlock does not cover or that need no open fd
    "creat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "mknod",
    "mknodat",
    "truncate",
    "ftruncate",
    "fallocate",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "file_getattr",
    "file_setattr",
    # the xattr family, the *xattrat calls of kernels >= 6.13 included
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
)

ZYGOTE_DENIED: dict[str, int] = {name: SYSCALLS[name] for name in _ZYGOTE_DENIED_NAMES}
# Refused with ENOSYS in the zygote stage: callers fall back to the older call.
ZYGOTE_ENOSYS: dict[str, int] = {"clone3": SYSCALLS["clone3"], "openat2": SYSCALLS["openat2"]}

# ------------------------------------------------------------------ a small assembler

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JA = 0x05  # BPF_JMP | BPF_JA
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06


class _Program:
    """BPF instructions whose jump targets are labels, resolved by ``assemble``."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int | str, int | str, int | str]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        if name in self.labels:
            raise ValueError(f"label {name!r} defined twice")
        self.labels[name] = len(self.code)

    def load(self, offset: int) -> None:
        self.code.append((_LD_W_ABS, 0, 0, offset))

    def ret(self, value: int) -> None:
        self.code.append((_RET_K, 0, 0, value))

    def jump(self, op: int, k: int, jt: int | str, jf: int | str) -> None:
        self.code.append((op, jt, jf, k))

    def goto(self, target: str) -> None:
        self.code.append((_JA, 0, 0, target))

    def assemble(self) -> bytes:
        out = bytearray()
        for index, (op, true, false, value) in enumerate(self.code):
            jt, jf, k = 0, 0, self._offset(index, value) if op == _JA else value
            if op != _JA:
                jt, jf = self._offset(index, true), self._offset(index, false)
                if not (0 <= jt <= 255 and 0 <= jf <= 255):
                    raise ValueError(f"conditional jump out of range at instruction {index}")
            if not isinstance(k, int):
                raise TypeError(k)
            out += op.to_bytes(2, "little") + bytes((jt, jf)) + k.to_bytes(4, "little")
        if len(self.code) > 4096:  # BPF_MAXINSNS
            raise ValueError("filter too long")
        return bytes(out)

    def _offset(self, index: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        offset = self.labels[target] - index - 1
        if offset < 0:
            raise ValueError("backward jump")
        return offset


def _prologue(program: _Program) -> None:
    """Kill any other architecture; refuse the x32 ABI; leave the syscall number loaded."""
    program.load(_ARCH)
    program.jump(_JEQ_K, AUDIT_ARCH_X86_64, 1, 0)
    program.ret(SECCOMP_RET_KILL_PROCESS)
    program.load(_NR)
    program.jump(_JSET_K, X32_SYSCALL_BIT, 0, 1)
    program.goto("eperm")


def _dispatch(program: _Program, table: list[tuple[int, str]], default: str, prefix: str = "n") -> None:
    """Jump to the label paired with the loaded syscall number (a binary search over the
    sorted numbers, then at most three comparisons), else to ``default``."""
    table = sorted(table)

    def emit(part: list[tuple[int, str]], name: str) -> None:
        if len(part) <= 3:
            for nr, target in part:
                program.jump(_JEQ_K, nr, 0, 1)
                program.goto(target)
            program.goto(default)
            return
        middle = len(part) // 2
        upper = f"{name}u"
        program.jump(_JGE_K, part[middle][0], upper, 0)
        emit(part[:middle], name + "l")
        program.label(upper)
        emit(part[middle:], upper)

    emit(table, prefix)


def _errno(value: int) -> int:
    return SECCOMP_RET_ERRNO | value


def _open_checks(program: _Program) -> None:
    """``check_open`` / ``check_openat``: refuse any write access with EACCES."""
    for label, index in (("check_open", 1), ("check_openat", 2)):
        program.label(label)
        program.load(_arg(index))
        program.jump(_JSET_K, OPEN_WRITE_FLAGS, "eacces", "allow")


def zygote_filter() -> bytes:
    """The zygote's denylist stage (see the module docstring)."""
    program = _Program()
    _prologue(program)
    table = [(nr, "eperm") for nr in ZYGOTE_DENIED.values()]
    table += [(nr, "enosys") for nr in ZYGOTE_ENOSYS.values()]
    table += [(SYSCALLS["open"], "check_open"), (SYSCALLS["openat"], "check_openat")]
    table += [(SYSCALLS["clone"], "check_clone")]
    _dispatch(program, table, "allow")
    _open_checks(program)
    program.label("check_clone")  # fork yes, a new namespace no
    program.load(_arg(0))
    program.jump(_JSET_K, CLONE_NAMESPACES, "eperm", "allow")
    _returns(program, ("allow", "eperm", "eacces", "enosys"))
    return program.assemble()


def child_filter() -> bytes:
    """The child's allowlist stage (see the module docstring)."""
    program = _Program()
    _prologue(program)
    checked = {
        "open": "check_open",
        "openat": "check_openat",
        "mmap": "check_prot",
        "mprotect": "check_prot",
        "clone": "check_clone",
        "prlimit64": "check_prlimit",
        "clock_gettime": "check_clock",
        "clock_nanosleep": "check_clock",
    }
    table = [(nr, checked.get(name, "allow")) for name, nr in CHILD_ALLOWED.items()]
    table += [(SYSCALLS["clone3"], "enosys"), (SYSCALLS["ioctl"], "enotty")]
    _dispatch(program, table, "eperm")
    _open_checks(program)
    program.label("check_prot")  # mmap(addr, len, prot, ...), mprotect(addr, len, prot)
    program.load(_arg(2))
    program.jump(_JSET_K, PROT_EXEC, "eperm", "allow")
    program.label("check_clone")  # clone(flags, ...): a thread, in no new namespace
    program.load(_arg(0))
    program.jump(_JSET_K, CLONE_NAMESPACES, "eperm", 0)
    program.jump(_JSET_K, CLONE_THREAD, "allow", "eperm")
    program.label("check_clock")  # clock_gettime(clockid, ...), clock_nanosleep(clockid, ...)
    program.load(_arg(0))
    program.jump(_JGE_K, MAX_CLOCK_ID + 1, "eperm", "allow")  # a negative id is >= as unsigned
    program.label("check_prlimit")  # prlimit64(pid, resource, new_limit, old_limit)
    program.load(_arg(0))
    program.jump(_JEQ_K, 0, 0, "eperm")
    program.load(_arg_high(0))
    program.jump(_JEQ_K, 0, 0, "eperm")
    program.load(_arg(2))
    program.jump(_JEQ_K, 0, 0, "eperm")
    program.load(_arg_high(2))
    program.jump(_JEQ_K, 0, "allow", "eperm")
    _returns(program, ("allow", "eperm", "eacces", "enosys", "enotty"))
    return program.assemble()


def _returns(program: _Program, names: tuple[str, ...]) -> None:
    values = {
        "allow": SECCOMP_RET_ALLOW,
        "eperm": _errno(EPERM),
        "eacces": _errno(EACCES),
        "enosys": _errno(ENOSYS),
        "enotty": _errno(ENOTTY),
    }
    for name in names:
        program.label(name)
        program.ret(values[name])
