"""Landlock planning for the sandbox: which rights to handle and which paths to allow.

Pure planning: no system call here (applying is ``_azr_spawn.landlock_restrict`` in
``spawn.c``). The zygote restricts itself once, before it forks any child, and every
child inherits the domain; a Landlock domain cannot be widened or left.

The plan:

* ``handled_access_fs``: EVERY file-system right the ABI knows, so whatever is not
  granted by a rule is refused: no write, truncate, remove, make (dir, regular file,
  fifo, socket, device, symlink), refer (rename/link across directories), device
  ioctl, or execute anywhere.
* ``rules``: read-only (``READ_FILE | READ_DIR``) beneath the given paths, which are
  the sandbox interpreter's standard library directories and nothing else (not /etc,
  /proc, /root, /tmp or the repository). No ``EXECUTE``: children never execve, and
  Landlock's EXECUTE right governs execve only (mmap with PROT_EXEC is refused by the
  child's seccomp filter instead).
* ``handled_access_net`` (ABI >= 4): bind and connect on TCP are handled and never
  granted.
* ``scoped`` (ABI >= 6): abstract unix sockets and signals are scoped: no connect to an
  abstract socket created outside the domain, no signal to a process outside it.

Landlock checks a file when it is opened, so the fds the zygote opened before it
restricted itself (``/dev/null`` on 0, 1, 2, its own channel) keep working. Note that
the zygote and all its children share one domain: scoping keeps them away from the
rest of the machine, not from each other (signals between them are the seccomp
allowlist's and the uids' business; ``child_plan`` gives each child a nested domain
of its own if wanted). Landlock does not restrict ``stat``, ``chmod``/``chown``,
``utime``, xattrs or ``fcntl`` on open fds: the zygote's seccomp stage refuses the
mutating ones.
"""

LANDLOCK_CREATE_RULESET_VERSION = 1 << 0  # landlock_create_ruleset(NULL, 0, this) -> ABI
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RULE_NET_PORT = 2

# ABI 1
LANDLOCK_ACCESS_FS_EXECUTE = 1 << 0
LANDLOCK_ACCESS_FS_WRITE_FILE = 1 << 1
LANDLOCK_ACCESS_FS_READ_FILE = 1 << 2
LANDLOCK_ACCESS_FS_READ_DIR = 1 << 3
LANDLOCK_ACCESS_FS_REMOVE_DIR = 1 << 4
LANDLOCK_ACCESS_FS_REMOVE_FILE = 1 << 5
LANDLOCK_ACCESS_FS_MAKE_CHAR = 1 << 6
LANDLOCK_ACCESS_FS_MAKE_DIR = 1 << 7
LANDLOCK_ACCESS_FS_MAKE_REG = 1 << 8
LANDLOCK_ACCESS_FS_MAKE_SOCK = 1 << 9
LANDLOCK_ACCESS_FS_MAKE_FIFO = 1 << 10
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11
LANDLOCK_ACCESS_FS_MAKE_SYM = 1 << 12
# ABI 2
LANDLOCK_ACCESS_FS_REFER = 1 << 13
# ABI 3
LANDLOCK_ACCESS_FS_TRUNCATE = 1 << 14
# ABI 4
LANDLOCK_ACCESS_NET_BIND_TCP = 1 << 0
LANDLOCK_ACCESS_NET_CONNECT_TCP = 1 << 1
# ABI 5
LANDLOCK_ACCESS_FS_IOCTL_DEV = 1 << 15
# ABI 6
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
LANDLOCK_SCOPE_SIGNAL = 1 << 1
# ABI 7: landlock_restrict_self flags (audit logging); no new access right.
LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF = 1 << 0
LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON = 1 << 1
LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF = 1 << 2

_ACCESS_FS_ABI_1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
# Every file-system right each ABI knows.
ACCESS_FS_BY_ABI: dict[int, int] = {
    1: _ACCESS_FS_ABI_1,
    2: _ACCESS_FS_ABI_1 | LANDLOCK_ACCESS_FS_REFER,
    3: _ACCESS_FS_ABI_1 | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE,
    4: _ACCESS_FS_ABI_1 | LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE,
    5: _ACCESS_FS_ABI_1
    | LANDLOCK_ACCESS_FS_REFER
    | LANDLOCK_ACCESS_FS_TRUNCATE
    | LANDLOCK_ACCESS_FS_IOCTL_DEV,
}
MAX_KNOWN_ABI = 7

# What a rule grants beneath a standard library directory.
READ_ACCESS = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR

# sizeof(struct landlock_ruleset_attr) as each ABI first defined it.
RULESET_ATTR_SIZE_BY_ABI: dict[int, int] = {1: 8, 2: 8, 3: 8, 4: 16, 5: 16, 6: 24, 7: 24}


def access_fs(abi: int) -> int:
    """Every file-system right known to ``abi`` (ABIs above 7 know at least ABI 7's)."""
    _check_abi(abi)
    return ACCESS_FS_BY_ABI[min(abi, 5)]


def access_net(abi: int) -> int:
    _check_abi(abi)
    return LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP if abi >= 4 else 0


def scopes(abi: int) -> int:
    _check_abi(abi)
    return LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL if abi >= 6 else 0


def _check_abi(abi: int) -> None:
    if type(abi) is not int or abi < 1:
        raise ValueError(f"Landlock ABI {abi!r} is not available")


class LandlockPlan:
    """What ``_azr_spawn.landlock_restrict(*plan.arguments())`` applies; ``abi`` is the
    ABI it was planned for."""

    __slots__ = ("handled_access_fs", "handled_access_net", "scoped", "rules", "abi")

    def __init__(
        self,
        handled_access_fs: int,
        handled_access_net: int,
        scoped: int,
        rules: list[tuple[str, int]],
        abi: int,
    ) -> None:
        self.handled_access_fs = handled_access_fs
        self.handled_access_net = handled_access_net
        self.scoped = scoped
        self.rules = rules
        self.abi = abi

    def arguments(self) -> tuple[int, int, int, list[tuple[str, int]]]:
        return self.handled_access_fs, self.handled_access_net, self.scoped, list(self.rules)

    def __repr__(self) -> str:
        return (
            f"LandlockPlan(handled_access_fs={self.handled_access_fs:#x}, "
            f"handled_access_net={self.handled_access_net:#x}, scoped={self.scoped:#x}, "
            f"rules={self.rules!r}, abi={self.abi})"
        )

    @property
    def attr_size(self) -> int:
        """sizeof(struct landlock_ruleset_attr) for this ABI."""
        return RULESET_ATTR_SIZE_BY_ABI[min(self.abi, MAX_KNOWN_ABI)]

    def ruleset_attr(self) -> bytes:
        """``struct landlock_ruleset_attr`` (u64 handled_access_fs, handled_access_net,
        scoped; little-endian), cut to the size the ABI knows."""
        fields = (self.handled_access_fs, self.handled_access_net, self.scoped)
        return b"".join(value.to_bytes(8, "little") for value in fields)[: self.attr_size]


def _normalized(path: str) -> str:
    if type(path) is not str or not path.startswith("/"):
        raise ValueError(f"Landlock rule path {path!r} is not absolute")
    parts = [part for part in path.split("/") if part and part != "."]
    if ".." in parts:
        raise ValueError(f"Landlock rule path {path!r} has a '..' component")
    if "\x00" in path:
        raise ValueError("Landlock rule path has a NUL byte")
    return "/" + "/".join(parts)


def plan(read_paths: list[str], abi: int) -> LandlockPlan:
    """The zygote's ruleset for kernel Landlock ``abi``: everything handled, read-only
    rules beneath ``read_paths`` (directories; absolute; resolve symlinks first, since
    Landlock follows them to the real hierarchy). A path beneath another listed path
    adds nothing and is dropped; duplicates are dropped; the order is kept."""
    rules: list[tuple[str, int]] = []
    paths = [_normalized(path) for path in read_paths]
    for path in paths:
        covered = any(
            path == other or path.startswith(other.rstrip("/") + "/") for other in paths if other != path
        )
        if covered or any(path == kept for kept, _ in rules):
            continue
        rules.append((path, READ_ACCESS))
    return LandlockPlan(access_fs(abi), access_net(abi), scopes(abi), rules, abi)


def child_plan(abi: int) -> LandlockPlan | None:
    """An optional nested domain for one child (ABI >= 6): scoping only, no rule, so that
    a child cannot signal the zygote or a sibling, nor reach their abstract sockets (the
    zygote's own domain puts them all in one). None when the ABI has no scopes."""
    scoped = scopes(abi)
    if not scoped:
        return None
    return LandlockPlan(0, 0, scoped, [], abi)


def stdlib_paths() -> list[str]:
    """The sandbox interpreter's standard library directories (``lib/python3.X`` and its
    ``lib-dynload``), symlinks resolved; the only paths a child may read. Reads the file
    system (realpath, isdir), unlike ``plan``."""
    import os
    import sys

    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.dirname(os.__file__)]
    for prefix in dict.fromkeys((sys.base_prefix, sys.base_exec_prefix)):
        library = os.path.join(prefix, sys.platlibdir, version)
        candidates += [library, os.path.join(library, "lib-dynload")]
    found: list[str] = []
    for path in candidates:
        real = os.path.realpath(path)
        if os.path.isdir(real) and real not in found:
            found.append(real)
    return found
