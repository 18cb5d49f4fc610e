"""The seccomp stages (runtime/seccomp.py): decisions checked with a BPF interpreter here,
then enforced by the kernel in children of the sandbox interpreter, with no audit hook.

Every refusal below is shown next to a control run without the filter in which the same
operation succeeds, so the tests fail if a filter stops refusing (or never did)."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

from executor.sandbox.runtime import seccomp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from confine_helper import run_confined, sandbox_python_available  # noqa: E402

# ------------------------------------------------------------------ a BPF interpreter

ALLOW = seccomp.SECCOMP_RET_ALLOW
KILL = seccomp.SECCOMP_RET_KILL_PROCESS


def errno(value: int) -> int:
    return seccomp.SECCOMP_RET_ERRNO | value


def run_bpf(
    program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = seccomp.AUDIT_ARCH_X86_64
) -> int:
    """Evaluate a classic BPF seccomp program on one struct seccomp_data."""
    assert len(program) % 8 == 0 and program
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    insns = [struct.unpack("<HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    for _ in range(len(insns) + 1):
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == 0x05:  # ja
            pc += 1 + k
        elif code in (0x15, 0x35, 0x45):
            taken = acc == k if code == 0x15 else acc >= k if code == 0x35 else bool(acc & k)
            pc += 1 + (jt if taken else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not return")


CHILD = seccomp.child_filter()
ZYGOTE = seccomp.zygote_filter()
NR = seccomp.SYSCALLS

# Calls the zygote itself makes (x86-64 numbers), which its own stage must let through.
ZYGOTE_NEEDS = {
    "read": 0,
    "write": 1,
    "close": 3,
    "mmap": 9,
    "munmap": 11,
    "rt_sigaction": 13,
    "pipe2": 293,
    "ppoll": 271,
    "wait4": 61,
    "kill": 62,
    "tgkill": 234,
    "setpgid": 109,
    "setuid": 105,
    "setgid": 106,
    "setgroups": 116,
    "setrlimit": 160,
    "prlimit64": 302,
    "prctl": 157,
    "seccomp": 317,
    "sched_setscheduler": 144,
    "setpriority": 141,
    "close_range": 436,
    "pidfd_open": 434,
    "pidfd_send_signal": 424,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
    "accept4": 288,
    "recvfrom": 45,
    "sendto": 44,
    "recvmsg": 47,
    "sendmsg": 46,
    "exit_group": 231,
    "getpid": 39,
    "dup2": 33,
}
PTHREAD_CLONE_FLAGS = 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
FORK_CLONE_FLAGS = 0x01200011  # CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD (glibc fork)


def test_bpf_interpreter_sees_a_trivial_program() -> None:
    allow_all = struct.pack("<HBBI", 0x06, 0, 0, ALLOW)
    assert run_bpf(allow_all, 0) == ALLOW


def test_both_stages_check_the_architecture_and_refuse_x32() -> None:
    for program in (CHILD, ZYGOTE):
        assert run_bpf(program, NR["read"], arch=0x40000003) == KILL  # i386
        assert run_bpf(program, NR["read"] | seccomp.X32_SYSCALL_BIT) == errno(seccomp.EPERM)


def test_child_allowlist_allows_exactly_its_calls() -> None:
    assert seccomp.CHILD_ALLOWED, "the allowlist is empty"
    benign = {"mmap": (0, 4096, 3), "mprotect": (0, 4096, 3), "clone": (PTHREAD_CLONE_FLAGS,)}
    for name, nr in seccomp.CHILD_ALLOWED.items():
        assert run_bpf(CHILD, nr, benign.get(name, ())) == ALLOW, name
    allowed = set(seccomp.CHILD_ALLOWED.values())
    special = {NR["clone3"]: seccomp.ENOSYS, NR["ioctl"]: seccomp.ENOTTY}
    for nr in range(0, 480):
        if nr not in allowed:
            assert run_bpf(CHILD, nr) == errno(special.get(nr, seccomp.EPERM)), nr


def test_child_allowlist_is_small_and_explained() -> None:
    assert len(seccomp.CHILD_ALLOWED) <= 30
    for name in ("getrandom", "times", "getpid", "socket", "execve", "kill", "tgkill", "fork", "ptrace"):
        assert name not in seccomp.CHILD_ALLOWED
    assert set(seccomp.CHILD_ARGUMENT_CHECKS) <= set(seccomp.CHILD_ALLOWED)
    assert all(len(reason) > 10 for reason in seccomp._CHILD_REASONS.values())
    assert len(set(seccomp.SYSCALLS.values())) == len(seccomp.SYSCALLS)


def test_child_refuses_executable_mappings() -> None:
    for name in ("mmap", "mprotect"):
        assert run_bpf(CHILD, NR[name], (0, 4096, 1 | 4)) == errno(seccomp.EPERM)
        assert run_bpf(CHILD, NR[name], (0, 4096, 4)) == errno(seccomp.EPERM)
        assert run_bpf(CHILD, NR[name], (0, 4096, 0)) == ALLOW
    assert run_bpf(CHILD, 329, (0, 4096, 1)) == errno(seccomp.EPERM)  # pkey_mprotect: never


def test_child_opens_read_only() -> None:
    for name, index in (("open", 1), ("openat", 2)):
        for flags in (0o1, 0o2, 0o100, 0o1000, 0o2000, 0o2000000 | 0o1):
            args = [0, 0, 0]
            args[index] = flags
            assert run_bpf(CHILD, NR[name], tuple(args)) == errno(seccomp.EACCES), (name, flags)
        args = [0, 0, 0]
        args[index] = 0o2000000 | 0o200000 | 0o4000  # O_CLOEXEC | O_DIRECTORY | O_NONBLOCK
        assert run_bpf(CHILD, NR[name], tuple(args)) == ALLOW


def test_child_clones_threads_only() -> None:
    assert run_bpf(CHILD, NR["clone"], (PTHREAD_CLONE_FLAGS,)) == ALLOW
    assert run_bpf(CHILD, NR["clone"], (FORK_CLONE_FLAGS,)) == errno(seccomp.EPERM)
    for namespace in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        assert run_bpf(CHILD, NR["clone"], (PTHREAD_CLONE_FLAGS | namespace,)) == errno(seccomp.EPERM)
    assert run_bpf(CHILD, NR["clone3"]) == errno(seccomp.ENOSYS)


def test_child_reads_its_own_rlimits_but_cannot_set_them() -> None:
    assert run_bpf(CHILD, NR["prlimit64"], (0, 9, 0, 0x7FFF0000)) == ALLOW
    assert run_bpf(CHILD, NR["prlimit64"], (0, 9, 0x7FFF0000, 0)) == errno(seccomp.EPERM)
    assert run_bpf(CHILD, NR["prlimit64"], (0, 9, 0x7FFF_0000_0000, 0)) == errno(seccomp.EPERM)
    assert run_bpf(CHILD, NR["prlimit64"], (1234, 9, 0, 0x7FFF0000)) == errno(seccomp.EPERM)  # another pid
    assert run_bpf(CHILD, NR["prlimit64"], (1 << 32, 9, 0, 0x7FFF0000)) == errno(seccomp.EPERM)


def test_child_clocks_by_fixed_id_only() -> None:
    for name in ("clock_gettime", "clock_nanosleep"):
        for clock in (0, 1, 2, 3, 7, 11):  # REALTIME, MONOTONIC, own CPU time, BOOTTIME, TAI
            assert run_bpf(CHILD, NR[name], (clock, 0)) == ALLOW, (name, clock)
        other_process_cpu_clock = (~1234 << 3) & 0xFFFFFFFF  # MAKE_PROCESS_CPUCLOCK(1234, CPUCLOCK_PROF)
        assert run_bpf(CHILD, NR[name], (other_process_cpu_clock, 0)) == errno(seccomp.EPERM), name


def test_zygote_stage_denies_its_list_and_keeps_what_the_zygote_needs() -> None:
    for name, nr in seccomp.ZYGOTE_DENIED.items():
        assert run_bpf(ZYGOTE, nr) == errno(seccomp.EPERM), name
    for name, nr in seccomp.ZYGOTE_ENOSYS.items():
        assert run_bpf(ZYGOTE, nr) == errno(seccomp.ENOSYS), name
    for name, nr in ZYGOTE_NEEDS.items():
        assert nr not in seccomp.ZYGOTE_DENIED.values(), name
        assert run_bpf(ZYGOTE, nr, (0, 0, 0, 0)) == ALLOW, name
    assert run_bpf(ZYGOTE, NR["clone"], (FORK_CLONE_FLAGS,)) == ALLOW
    assert run_bpf(ZYGOTE, NR["clone"], (FORK_CLONE_FLAGS | 0x40000000,)) == errno(seccomp.EPERM)
    assert run_bpf(ZYGOTE, NR["openat"], (0, 0, 0o2000000)) == ALLOW
    assert run_bpf(ZYGOTE, NR["openat"], (0, 0, 0o1 | 0o100)) == errno(seccomp.EACCES)
    assert run_bpf(ZYGOTE, NR["open"], (0, 0o2)) == errno(seccomp.EACCES)


def test_zygote_stage_covers_the_xattr_family_and_the_new_mount_api() -> None:
    names = {
        "setxattr": 188,
        "lsetxattr": 189,
        "fsetxattr": 190,
        "removexattr": 197,
        "lremovexattr": 198,
        "fremovexattr": 199,
        "setxattrat": 463,
        "getxattrat": 464,
        "listxattrat": 465,
        "removexattrat": 466,
        "open_tree": 428,
        "move_mount": 429,
        "fsopen": 430,
        "fsmount": 432,
        "fspick": 433,
        "mount_setattr": 442,
        "process_madvise": 440,
        "fchmodat2": 452,
        "utimensat": 280,
        "socket": 41,
    }
    for name, nr in names.items():
        assert seccomp.ZYGOTE_DENIED.get(name) == nr, name
        assert run_bpf(ZYGOTE, nr) == errno(seccomp.EPERM), name


# ------------------------------------------------------------------ in the kernel

needs_sandbox_python = pytest.mark.skipif(not sandbox_python_available(), reason="no /usr/bin/python3")

# What the zygote loads before its first fork: the usual preloads, and the extension
# modules a child cannot map itself once PROT_EXEC is refused (_decimal: decimal,
# fractions and statistics; _json: speed only).
PRELOAD = (
    "import collections, itertools, functools, math, re, string, heapq, bisect, operator, typing, copy\n"
    "import _decimal, _json, resource, os\n"
    "ZYGOTE_PID = os.getpid()\n"
)

WORKLOADS = {
    "function": "ns = {}\nexec('def f(x):\\n    return sorted(x)[::-1]', ns)\nresult = ns['f']([3, 1, 2])",
    "json": "import json\nresult = json.loads('{\"a\": [1, 2.5]}')",
    "fractions": "import fractions\nresult = str(fractions.Fraction(3, 4) + 1)",
    "decimal": "import decimal\nresult = str(decimal.Decimal('1.1') * 3)",
    "statistics": "import statistics\nresult = statistics.mean([1, 2, 4])",
    "dataclasses": "import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\nresult = repr(P(1))",
    "enum": "import enum\nclass C(enum.Enum):\n    A = 1\nresult = C(1).name",
    "collections": "import collections\nresult = collections.Counter('abca').most_common(1)",
    "random": "import random\nresult = 0 <= random.random() < 1",
    "threads": (
        "import threading\nout = []\n"
        "ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(4)]\n"
        "[t.start() for t in ts]\n[t.join() for t in ts]\nresult = sorted(out)"
    ),
    "print": "import sys\nprint('x' * 100000)\nprint('y', file=sys.stderr)\nsys.stdout.flush()\nresult = 'printed'",
    "sleep": "import time\ntime.sleep(0.01)\nresult = 'slept'",
    "traceback": (
        "import traceback, json\ntry:\n    json.loads('{bad')\nexcept ValueError:\n"
        "    result = traceback.format_exc().splitlines()[-1]"
    ),
    "getrlimit": "import resource\nresult = resource.getrlimit(resource.RLIMIT_AS)[0] > 0",
    "clocks": "import time\nresult = time.monotonic() > 0 and time.process_time() >= 0 and time.thread_time() >= 0",
}
EXPECTED = {
    "function": "[3, 2, 1]",
    "json": "{'a': [1, 2.5]}",
    "fractions": "'7/4'",
    "decimal": "'3.3'",
    "statistics": "2.3333333333333335",
    "dataclasses": "'P(x=1)'",
    "enum": "'A'",
    "collections": "[('a', 2)]",
    "random": "True",
    "threads": "[0, 1, 4, 9]",
    "print": "'printed'",
    "sleep": "'slept'",
    "getrlimit": "True",
    "clocks": "True",
}
FAILURES = {
    "recursion": ("def r(n):\n    return r(n + 1)\nr(0)", "RecursionError"),
    "memory (one block)": ("x = bytearray(1 << 32)", "MemoryError"),
    "memory (many objects)": ("x = [[0] * 1000 for _ in range(10 ** 7)]", "MemoryError"),
}


def _kernel_config(child: bool, zygote: bool, **extra: object) -> dict:
    return {
        "zygote_setup": PRELOAD,
        "rlimit_as": 1 << 31,
        "zygote_seccomp": zygote,
        "child_seccomp": child,
        **extra,
    }


@needs_sandbox_python
def test_a_child_runs_ordinary_programs_under_both_stages() -> None:
    scenarios = dict(WORKLOADS) | {label: source for label, (source, _) in FAILURES.items()}
    results = run_confined(_kernel_config(child=True, zygote=True), scenarios)
    for label, expected in EXPECTED.items():
        assert results[label] == {"status": "ok", "value": expected}, label
    assert results["traceback"]["status"] == "ok" and "JSONDecodeError" in results["traceback"]["value"]
    for label, (_, error) in FAILURES.items():
        assert results[label]["status"] == "error" and results[label]["type"] == error, results[label]


# label -> (program, expected error type, expected errno or a message fragment)
REFUSED = {
    "setxattr": ("import os\nos.setxattr(TARGET, 'user.azr', b'1')", "PermissionError", 1),
    "removexattr": ("import os\nos.removexattr(TARGET, 'user.kept')", "PermissionError", 1),
    "socket": ("import socket\nsocket.socket(socket.AF_UNIX, socket.SOCK_STREAM)", "PermissionError", 1),
    "socketpair": ("import socket\nsocket.socketpair()", "PermissionError", 1),
    "open for writing": ("open(TARGET, 'a')", "PermissionError", 13),
    "create a file": ("open(TARGET + '.new', 'w')", "PermissionError", 13),
    "mkdir": ("import os\nos.mkdir(TARGET + '.dir')", "PermissionError", 1),
    "unlink": ("import os\nos.unlink(TARGET)", "PermissionError", 1),
    "rename": ("import os\nos.rename(TARGET, TARGET + '.moved')", "PermissionError", 1),
    "symlink": ("import os\nos.symlink(TARGET, TARGET + '.link')", "PermissionError", 1),
    "chmod": ("import os\nos.chmod(TARGET, 0o600)", "PermissionError", 1),
    "utime": ("import os\nos.utime(TARGET, (1, 1))", "PermissionError", 1),
    "fork": ("import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)", "PermissionError", 1),
    "execv": ("import os\nos.execv('/nonexistent/azr', ['azr'])", "PermissionError", 1),
    "kill the parent": ("import os\nos.kill(ZYGOTE_PID, 0)", "PermissionError", 1),
    "getrandom": ("import os\nos.getrandom(8)", "PermissionError", 1),
    "the parent's CPU clock": (
        "import time\nresult = time.clock_gettime(~ZYGOTE_PID << 3)",  # MAKE_PROCESS_CPUCLOCK(pid, PROF)
        "PermissionError",
        1,
    ),
    "the parent's rlimits": (
        "import resource\nresource.prlimit(ZYGOTE_PID, resource.RLIMIT_AS)",
        "PermissionError",
        1,
    ),
    # prlimit64 with a new limit: EPERM, which CPython words as a ValueError
    "setrlimit": (
        "import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))",
        "ValueError",
        "not allowed",
    ),
    "import ctypes": ("import ctypes", "ImportError", "failed to map segment"),
    "import mmap": ("import mmap", "ImportError", "failed to map segment"),
}
CONTROL_ERRORS = {"execv": "FileNotFoundError"}  # without the filter: ENOENT, not EPERM


def _targets(directory: Path, labels: list[str]) -> dict[str, str]:
    """One file per scenario (with an xattr), so that control runs cannot disturb each other."""
    directory.mkdir()
    targets = {}
    for label in labels:
        path = directory / (label.replace(" ", "-") + ".txt")
        path.write_text("data")
        os.setxattr(path, "user.kept", b"1")
        targets[label] = str(path)
    return targets


def _scenarios(sources: dict[str, str], targets: dict[str, str]) -> dict[str, str]:
    return {label: f"TARGET = {targets[label]!r}\n" + source for label, source in sources.items()}


@needs_sandbox_python
def test_the_kernel_refuses_what_the_child_allowlist_leaves_out(tmp_path: Path) -> None:
    sources = {label: source for label, (source, _, _) in REFUSED.items()}
    confined = run_confined(
        _kernel_config(child=True, zygote=True), _scenarios(sources, _targets(tmp_path / "a", list(sources)))
    )
    control = run_confined(
        _kernel_config(child=False, zygote=False),
        _scenarios(sources, _targets(tmp_path / "b", list(sources))),
    )
    for label, (_, error, detail) in REFUSED.items():
        result = confined[label]
        assert result["status"] == "error" and result["type"] == error, (label, result)
        if isinstance(detail, int):
            assert result["errno"] == detail, (label, result)
        else:
            assert detail in result["message"], (label, result)
        # Without the filters the same operation goes through (as root, here).
        expected = CONTROL_ERRORS.get(label)
        if expected is None:
            assert control[label]["status"] == "ok", (label, control[label])
        else:
            assert control[label]["type"] == expected, (label, control[label])


@needs_sandbox_python
def test_child_allowlist_alone_refuses_without_the_zygote_stage(tmp_path: Path) -> None:
    sources = {label: REFUSED[label][0] for label in ("setxattr", "socket", "open for writing", "fork")}
    results = run_confined(
        _kernel_config(child=True, zygote=False), _scenarios(sources, _targets(tmp_path / "a", list(sources)))
    )
    for label, result in results.items():
        assert result["status"] == "error" and result["errno"] == REFUSED[label][2], (label, result)


@needs_sandbox_python
def test_zygote_stage_alone_refuses_its_list_but_lets_the_zygote_work(tmp_path: Path) -> None:
    sources = {
        "fork and reap": "import os\npid = os.fork()\nif pid == 0:\n    os._exit(7)\n"
        "result = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])",
        "signal the parent": "import os\nos.kill(os.getppid(), 0)\nresult = 'signalled'",
        "pipe": "import os\nr, w = os.pipe()\nos.write(w, b'x')\nresult = os.read(r, 1)",
        "setpgid": "import os\nos.setpgid(0, 0)\nresult = 'own group'",
        "setxattr": REFUSED["setxattr"][0],
        "socket": REFUSED["socket"][0],
        "open for writing": REFUSED["open for writing"][0],
        "mkdir": REFUSED["mkdir"][0],
    }
    results = run_confined(
        _kernel_config(child=False, zygote=True), _scenarios(sources, _targets(tmp_path / "a", list(sources)))
    )
    assert results["fork and reap"] == {"status": "ok", "value": "7"}
    assert results["signal the parent"]["status"] == "ok"
    assert results["pipe"] == {"status": "ok", "value": "b'x'"}
    assert results["setpgid"]["status"] == "ok"
    for label in ("setxattr", "socket", "open for writing", "mkdir"):
        assert results[label]["status"] == "error" and results[label]["errno"] == REFUSED[label][2], label


@needs_sandbox_python
def test_extension_modules_must_be_loaded_by_the_zygote() -> None:
    """No PROT_EXEC: a child cannot load an extension module itself. decimal falls back to
    _pydecimal, which needs contextvars, itself an extension module (lib-dynload) on
    Debian: without a preload, decimal, fractions and statistics cannot be imported."""
    sources = {
        "decimal": "import decimal\nresult = str(decimal.Decimal('1.1') * 3)",
        "statistics": "import statistics\nresult = statistics.mean([1, 2])",
    }
    bare = run_confined({"child_seccomp": True}, sources)
    for label in sources:
        assert bare[label]["type"] == "ImportError" and "_contextvars" in bare[label]["message"], bare[label]
    for preload in ("import _decimal", "import _contextvars"):  # the C module, or _pydecimal's need
        loaded = run_confined({"child_seccomp": True, "zygote_setup": preload}, sources)
        assert loaded["decimal"] == {"status": "ok", "value": "'3.3'"}, (preload, loaded)
        assert loaded["statistics"] == {"status": "ok", "value": "1.5"}, (preload, loaded)


@needs_sandbox_python
def test_no_entropy_but_random_still_seeds() -> None:
    """getrandom is refused and Landlock refuses /dev/urandom: os.urandom fails, while
    random seeds itself from the time and pid (nondeterministic: the guards refuse it)."""
    sources = {
        "os.urandom": "import os\nresult = os.urandom(8)",
        # a new generator seeds itself in the confined child
        "random": "import random\nresult = 0 <= random.Random().random() < 1",
    }
    results = run_confined({"child_seccomp": True, "zygote_seccomp": True, "landlock": {}}, sources)
    assert results["os.urandom"]["type"] == "NotImplementedError", results["os.urandom"]
    assert results["random"] == {"status": "ok", "value": "True"}
