"""The Python audit hook of the sandbox: an early filter, not a wall.

The walls are the kernel's (Landlock, the seccomp allowlist, uids, rlimits). This hook
only turns what a program attempts into a ``forbidden`` verdict and a readable
message, even when the program catches the error: it refuses sockets, subprocesses,
file-system changes, ctypes, frame access, and file opens outside the allowed
directories, and it records the modules' run-time guards (``guards.py``), which raise
``MODULE_EVENT``.

The hook is inert until the runtime raises ``ARM_EVENT`` (the zygote installs it before
it forks, imports and all keep working); once armed there is no way back, the state
lives in the hook's closure. ``COLLECT_EVENT`` copies the recorded violations into a
list passed as its argument.

Nothing a program can rebind is called once the hook is made: the hook and its helper
use only names bound in their closure (builtins and unbound methods of immutable
types, such as ``str.startswith``), never module globals or Python helpers such as
``os.path.realpath`` (the old hook called it, and a program could rebind the globals it
relies on). Its path check is a pure string check: a str or bytes path, absolute, with
no ``..`` component, equal to or beneath an allowed directory.

Also here: ``CappedWriter`` (sys.stdout/stderr of a child: counts, discards, flags a
print flood) and ``cap_recursion_limit``.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable, Iterable

ARM_EVENT = "azr.sandbox.arm"
COLLECT_EVENT = "azr.sandbox.violations"
# Raised by the run-time guards of forbidden modules: args (module name, attribute).
MODULE_EVENT = "azr.sandbox.module"

MAX_VIOLATIONS = 20
MAX_RECURSION_LIMIT = 20_000

# Attribute reads (audited as "object.__getattr__") that hand out frames, and so every
# local variable of the runtime.
FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})

# Events refused by prefix once armed.
REFUSED_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.putenv",
    "os.unsetenv",
    "os.chdir",
    "os.chmod",
    "os.chown",
    "os.chflags",
    "os.lchflags",
    "os.mkdir",
    "os.mkfifo",
    "os.mknod",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "os.getxattr",
    "os.listxattr",
    "os.removexattr",
    "os.setxattr",
    "os.startfile",
    "ctypes.",
    "signal.",
    "sys.setrecursionlimit",
    "sys._current_frames",
    "sys._current_exceptions",
    "sys.settrace",
    "sys.setprofile",
    "sys.addaudithook",
    "builtins.breakpoint",
    "gc.get_referrers",
    "gc.get_referents",
    "gc.get_objects",
    "code.__new__",
    "function.__new__",
    "pickle.",
    "shutil.",
    "tempfile.",
    "glob.",
    "mmap.",
    "resource.setrlimit",
    "resource.prlimit",
    "webbrowser.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
    "winreg.",
    "msvcrt.",
    "syslog.",
    "sqlite3.",
    "fcntl.",
    "_posixsubprocess.",
)
# Events that name a path (args[0]); checked against the allowed directories.
PATH_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})

_O_WRITE = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND


class Violation(Exception):
    """Raised by the audit hook; an Exception, so a program sees an ordinary error."""


class FrameRefused(ValueError):
    """sys._getframe() refused. A ValueError ("call stack is not deep enough"), which the
    standard library already expects and handles (namedtuple, enum, typing, warnings),
    so it is not recorded as a violation; the frames themselves stay out of reach."""


def make_hook(allowed_dirs: "Iterable[str]") -> "Callable[[str, tuple], None]":
    """The audit hook, to install with ``sys.addaudithook`` in the zygote before it forks.

    ``allowed_dirs`` are the directories a program may open files in (read-only) and
    list: the standard library, the same as the Landlock rules. Each must be absolute
    and normalized (no trailing slash, no ``.`` or ``..``)."""
    exact = tuple(str(path) for path in allowed_dirs)
    for path in exact:
        if not path.startswith("/") or path.endswith("/") or "/./" in path + "/" or "/../" in path + "/":
            raise ValueError(f"allowed directory {path!r} is not absolute and normalized")
    beneath = tuple(path + "/" for path in exact)
    violations: list[str] = []
    armed = False

    # Everything the hook uses, bound now: builtins and unbound methods of built-in
    # types cannot be rebound by a program, module globals and Python helpers can.
    violation, frame_refused = Violation, FrameRefused
    record, extend = violations.append, list.extend
    length, type_of = len, type
    str_type, bytes_type, int_type, list_type = str, bytes, int, list
    startswith, split = str.startswith, str.split
    decode = bytes.decode
    frame_attributes, refused_prefixes, path_events = FRAME_ATTRIBUTES, REFUSED_PREFIXES, PATH_EVENTS
    arm_event, collect_event, module_event = ARM_EVENT, COLLECT_EVENT, MODULE_EVENT
    write_flags, max_violations = _O_WRITE, MAX_VIOLATIONS
    quiet = ("/dev/urandom", "/dev/random")

    def refuse(message: str) -> None:
        if length(violations) < max_violations:
            record(message)
        raise violation(message)

    def hook(event: str, args: tuple) -> None:
        nonlocal armed
        if not armed:
            if event == arm_event:
                armed = True
            return
        if event == collect_event:
            if args and type_of(args[0]) is list_type:
                extend(args[0], violations)
            return
        if event == module_event:
            if length(args) == 2 and type_of(args[0]) is str_type and type_of(args[1]) is str_type:
                refuse(f"use of {args[0]}.{args[1]} is forbidden in the sandbox")
            refuse("use of a forbidden module is not allowed in the sandbox")
        if event == "sys._getframe":
            raise frame_refused("call stack is not deep enough (frames are not available in the sandbox)")
        if event == "object.__getattr__":
            if length(args) > 1 and args[1] in frame_attributes:
                refuse(f"reading the attribute {args[1]!r} (a frame) is not allowed in the sandbox")
            return
        if event in path_events:
            path: object = args[0] if args else None
            if path is None:
                path = "."
            kind = type_of(path)
            text = ""
            if kind is bytes_type:
                text = decode(path, "utf-8", "surrogateescape")  # type: ignore[arg-type]
            elif kind is str_type:
                text = path  # type: ignore[assignment]
            elif kind is int_type:
                refuse(f"{event} of file descriptor {path} is not allowed in the sandbox")
            else:
                refuse(f"{event} of a path that is not str or bytes is not allowed in the sandbox")
            if event == "open":
                mode: object = args[1] if length(args) > 1 else None
                flags: object = args[2] if length(args) > 2 else 0
                if type_of(mode) is str_type:
                    for letter in "wax+":
                        if letter in mode:  # type: ignore[operator]
                            refuse(f"open({text!r}, {mode!r}) for writing is not allowed in the sandbox")
                if type_of(flags) is int_type and flags & write_flags:  # type: ignore[operator]
                    refuse(f"open({text!r}) for writing is not allowed in the sandbox")
            if text in quiet:
                # The interpreter's own entropy fallback (random seeds itself at import when
                # getrandom is refused): refused, by the kernel too, but not the program's doing.
                raise violation(f"{event}({text!r}) is not allowed in the sandbox")
            if (
                not startswith(text, "/")
                or ".." in split(text, "/")
                or not (text in exact or startswith(text, beneath))
            ):
                refuse(f"{event}({text!r}) is not allowed in the sandbox")
            return
        if startswith(event, refused_prefixes):
            refuse(f"{event} is not allowed in the sandbox")

    return hook


def arm() -> None:
    """Arm every hook made by ``make_hook`` (in the child, before the program runs)."""
    sys.audit(ARM_EVENT)


def collect() -> list[str]:
    """The violations recorded since arming (in the child, after the program ran).
    A program can rebind this module's globals: the runtime should bind ``sys.audit``
    before any untrusted code runs, or raise the event from C (``PySys_Audit``)."""
    violations: list[str] = []
    sys.audit(COLLECT_EVENT, violations)
    return violations


class CappedWriter:
    """Stands in for sys.stdout/sys.stderr in a child: discards text, counts it, and
    flags a flood (then raises ``Violation``, which is not recorded as one: the runtime
    reports ``output_limit`` from ``flooded``). Reset ``written`` before each call of f
    for a per-call limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.written = 0
        self.flooded = False

    def write(self, text: str) -> int:
        self.written += len(text)
        if self.written > self.limit:
            self.flooded = True
            raise Violation(f"printed more than {self.limit} characters")
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


def cap_recursion_limit(cap: int = MAX_RECURSION_LIMIT) -> None:
    """Replace sys.setrecursionlimit (it raises no audit event) with a capped version.

    The original is kept only in this closure, so a program cannot raise the limit far
    enough to exhaust the C stack; deep recursion stays a RecursionError."""
    original = sys.setrecursionlimit
    int_type, min_of = int, min

    def setrecursionlimit(limit: int) -> None:
        return original(min_of(int_type(limit), cap))

    setrecursionlimit.__doc__ = original.__doc__
    sys.setrecursionlimit = setrecursionlimit
