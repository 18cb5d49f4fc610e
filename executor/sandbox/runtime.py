"""The sandbox runtime: a warm fork server ("zygote") that runs untrusted programs.

This file is self-contained and imports only the standard library, so the very same
code runs in a local process tree (the embedded default) and inside a sandbox
container (the Docker backend).  It is started through ``launch.py``::

    python3 -s -S -B launch.py runtime.py [--socket PATH]

and then serves length-prefixed frames on stdin/stdout (or on one connection of a
unix socket).  A request frame is JSON, ``{"jobs": [...]}``; the reply is a results
frame with one record per job, in order (``write_results`` / ``read_results``).

Every job runs in a **fresh child process** forked from the zygote.  The zygote
compiles a batch's programs and expressions before its first fork, has already put
stdin/stdout/stderr on ``/dev/null``, and moves each child into its own process group.
Before any untrusted code runs, the child:

* closes every inherited file descriptor except a dedicated result pipe;
* drops to an unprivileged uid/gid when the zygote runs as root;
* sets rlimits on CPU time, address space, processes (no fork), open files,
  file size and core dumps;
* loads a seccomp filter (x86-64) that denies sockets, fork/exec, signals to
  other processes, namespaces, mounts, ptrace, SysV/POSIX IPC and every file
  write;
* arms a Python audit hook that refuses file access outside the standard
  library, sockets, subprocesses, ``ctypes`` and signals, and records each
  attempt so the verdict becomes ``forbidden`` even if the program catches the
  error.

The zygote enforces the wall-clock deadline itself and SIGKILLs the child's whole
process group before reaping it, so nothing is ever left behind. It does this per
child in a small C loop (``spawn.c``, see ``Zygote.run_batch``) when that module was
built for this interpreter, else in Python (``Zygote.run``); the verdicts are the same.

Speed: every memory page a process writes after a fork costs a copy-on-write fault
(several microseconds in a VM), and every page the zygote holds is copied into each
child's page table and torn down at its exit. So the zygote stays small and does once
what every child would otherwise repeat, and a child's own path is short.
"""

from __future__ import annotations

import builtins
import ctypes
import gc
import json
import os
import resource
import signal
import struct
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the runtime imports as little as it can
    from typing import BinaryIO

RUNTIME_VERSION = "4"
FRAME_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 256 * 1024 * 1024
RESULT_MARKER = b"AZR-RESULT\n"

# Modules imported once in the zygote so that children get them for the price of a fork.
# Only what AZR/CRUXEval programs import often (typing, collections, math, re, functools,
# itertools, heapq, string, ...): every preloaded module makes the zygote bigger and so
# every fork and every exit slower (~0.2 ms per execution for decimal, fractions,
# statistics, dataclasses & co.). Anything else is imported by the child on demand.
PRELOADED_MODULES = (
    "collections",
    "collections.abc",
    "itertools",
    "functools",
    "math",
    "re",
    "string",
    "heapq",
    "bisect",
    "operator",
    "typing",
    "copy",
)


# --------------------------------------------------------------------------- framing


def read_exact(stream, size: int) -> bytes | None:
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame_body(stream) -> bytes | None:
    """One length-prefixed frame's bytes; None at end of stream."""
    header = read_exact(stream, FRAME_HEADER.size)
    if header is None:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
    return read_exact(stream, size)


def read_frame(stream) -> dict | None:
    body = read_frame_body(stream)
    return None if body is None else json.loads(body)


def write_frame(stream, message: dict) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    stream.write(FRAME_HEADER.pack(len(body)) + body)
    stream.flush()


# A reply to a batch of jobs is one frame of records, one per job and in order: a
# RESULT_HEADER (payload length, wall ms, max RSS kB, CPU ms) and the payload, the result
# dict in the field encoding below. The zygote passes the child's payload through
# untouched (parsing and re-encoding it there would cost copy-on-write faults on every
# fork); the caller decodes it.
RESULT_HEADER = struct.Struct(">IdId")


def encode_fields(result: dict) -> bytes:
    """A result dict whose values are str or lists of str, as length-prefixed text:
    ``<len>:<key><len>:<value>`` per field, a list's key marked with a leading ``[``
    and its items length-prefixed inside the value. Cheaper for a child than json (a
    few str operations, no encoder objects) and exact for any text, lone surrogates
    included."""
    parts = []
    for key, value in result.items():
        if type(value) is list:
            key = "[" + key
            value = "".join([f"{len(item)}:{item}" for item in value])
        parts.append(f"{len(key)}:{key}{len(value)}:{value}")
    return "".join(parts).encode("utf-8", "surrogatepass")


def _split_prefixed(text: str) -> list[str]:
    items, index, end = [], 0, len(text)
    while index < end:
        colon = text.index(":", index)
        length = int(text[index:colon])
        if length < 0 or colon + 1 + length > end:
            raise ValueError("bad field length")
        items.append(text[colon + 1 : colon + 1 + length])
        index = colon + 1 + length
    return items


def decode_fields(payload: bytes) -> dict:
    """The inverse of ``encode_fields``; ValueError on anything malformed."""
    items = _split_prefixed(payload.decode("utf-8", "surrogatepass"))
    if len(items) % 2:
        raise ValueError("odd number of fields")
    result: dict = {}
    for key, value in zip(items[::2], items[1::2], strict=True):
        if key.startswith("["):
            result[key[1:]] = _split_prefixed(value)
        else:
            result[key] = value
    return result


def encode_result(payload: bytes, wall_ms: float = 0.0, maxrss_kb: int = 0, cpu_ms: float = 0.0) -> bytes:
    return RESULT_HEADER.pack(len(payload), wall_ms, maxrss_kb, cpu_ms) + payload


def write_results(stream, records: list[bytes]) -> None:
    body = b"".join(records)
    stream.write(FRAME_HEADER.pack(len(body)) + body)
    stream.flush()


def read_results(stream) -> list[dict] | None:
    """Decode one results frame (the caller's side). None at end of stream."""
    body = read_frame_body(stream)
    return None if body is None else decode_results(body)


def decode_results(body: bytes) -> list[dict]:
    results = []
    offset, end = 0, len(body)
    while offset < end:
        if end - offset < RESULT_HEADER.size:
            raise ValueError("truncated result record")
        length, wall_ms, maxrss_kb, cpu_ms = RESULT_HEADER.unpack_from(body, offset)
        offset += RESULT_HEADER.size
        if offset + length > end:
            raise ValueError("truncated result payload")
        payload = body[offset : offset + length]
        offset += length
        try:
            result = decode_fields(payload)
        except ValueError:
            result = {}
        if not isinstance(result.get("status"), str):
            result = {"status": "runtime_error", "detail": "the program corrupted its result channel"}
        result["wall_ms"] = round(wall_ms, 3)
        result["maxrss_kb"] = maxrss_kb
        result["cpu_ms"] = round(cpu_ms, 3)
        results.append(result)
    return results


# --------------------------------------------------------------------------- seccomp

# x86-64 system call numbers.
_DENY_EPERM = {
    "socket": 41,
    "socketpair": 53,
    "fork": 57,
    "vfork": 58,
    "execve": 59,
    "kill": 62,
    "tkill": 200,
    "tgkill": 234,
    "ptrace": 101,
    "setpgid": 109,
    "setsid": 112,
    "chroot": 161,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "unshare": 272,
    "setns": 308,
    "mq_open": 240,
    "shmget": 29,
    "shmat": 30,
    "semget": 64,
    "msgget": 68,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "bpf": 321,
    "perf_event_open": 298,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "userfaultfd": 323,
    "personality": 135,
    "reboot": 169,
    "kexec_load": 246,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "iopl": 172,
    "ioperm": 173,
    "acct": 163,
    "swapon": 167,
    "swapoff": 168,
    "sethostname": 170,
    "setdomainname": 171,
    "settimeofday": 164,
    "clock_settime": 227,
    "execveat": 322,
    "creat": 85,
    "rename": 82,
    "renameat": 264,
    "renameat2": 316,
    "mkdir": 83,
    "mkdirat": 258,
    "rmdir": 84,
    "unlink": 87,
    "unlinkat": 263,
    "link": 86,
    "linkat": 265,
    "symlink": 88,
    "symlinkat": 266,
    "chmod": 90,
    "fchmod": 91,
    "fchmodat": 268,
    "chown": 92,
    "fchown": 93,
    "lchown": 94,
    "fchownat": 260,
    "truncate": 76,
    "ftruncate": 77,
    "mknod": 133,
    "mknodat": 259,
    "memfd_create": 319,
    "pidfd_open": 434,
    "pidfd_send_signal": 424,
    "pidfd_getfd": 438,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "rt_sigqueueinfo": 129,
    "rt_tgsigqueueinfo": 297,
}
_DENY_ENOSYS = {"clone3": 435, "openat2": 437}
_NR_OPEN, _NR_OPENAT, _NR_CLONE = 2, 257, 56
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CLONE_THREAD = 0x00010000
_AUDIT_ARCH_X86_64 = 0xC000003E


def _bpf_stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k)


def _bpf_jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


# Denied only in the child: the zygote itself needs them (it forks, signals and reaps its
# children and moves them into their own process group).
_CHILD_ONLY = frozenset(
    {
        "fork",
        "vfork",
        "kill",
        "tkill",
        "tgkill",
        "setpgid",
        "setsid",
        "pidfd_open",
        "pidfd_send_signal",
        "pidfd_getfd",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
    }
)


def build_seccomp_program(stage: str = "full") -> bytes:
    """Return the BPF program (x86-64) as raw ``struct sock_filter`` bytes.

    ``full`` is the whole policy in one filter. To keep the per-child cost low it is
    split in two stacked filters with the same combined effect: ``zygote`` (loaded once
    in the zygote, so every child inherits it: everything except what the zygote
    itself needs) and ``child`` (loaded in each child: the few calls only the zygote
    may make, plus clone without CLONE_THREAD). Attaching a filter costs a BPF JIT
    compilation per process, roughly proportional to its length.
    """
    if stage not in ("full", "zygote", "child"):
        raise ValueError(stage)
    ld_abs, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, errno_base, kill = 0x7FFF0000, 0x00050000, 0x80000000
    eperm, eacces, enosys = 1, 13, 38
    prog = [
        _bpf_stmt(ld_abs, 4),  # seccomp_data.arch
        _bpf_jump(jeq, _AUDIT_ARCH_X86_64, 1, 0),
        _bpf_stmt(ret, kill),
        _bpf_stmt(ld_abs, 0),  # seccomp_data.nr
        _bpf_jump(jset, 0x40000000, 0, 1),  # the x32 ABI
        _bpf_stmt(ret, errno_base | eperm),
    ]
    if stage == "full":
        eperm_set = set(_DENY_EPERM.values())
    elif stage == "zygote":
        eperm_set = {nr for name, nr in _DENY_EPERM.items() if name not in _CHILD_ONLY}
    else:
        eperm_set = {nr for name, nr in _DENY_EPERM.items() if name in _CHILD_ONLY}
    for nr in sorted(eperm_set):
        prog += [_bpf_jump(jeq, nr, 0, 1), _bpf_stmt(ret, errno_base | eperm)]
    if stage != "child":
        for nr in sorted(_DENY_ENOSYS.values()):
            prog += [_bpf_jump(jeq, nr, 0, 1), _bpf_stmt(ret, errno_base | enosys)]
        # open(path, flags) and openat(dirfd, path, flags): refuse any write access.
        for nr, arg in ((_NR_OPEN, 1), (_NR_OPENAT, 2)):
            prog += [
                _bpf_jump(jeq, nr, 0, 4),
                _bpf_stmt(ld_abs, 16 + 8 * arg),
                _bpf_jump(jset, _WRITE_FLAGS, 0, 1),
                _bpf_stmt(ret, errno_base | eacces),
                _bpf_stmt(ret, allow),
            ]
    if stage != "zygote":
        # clone: threads only, never a new process.
        prog += [
            _bpf_jump(jeq, _NR_CLONE, 0, 4),
            _bpf_stmt(ld_abs, 16),
            _bpf_jump(jset, _CLONE_THREAD, 0, 1),
            _bpf_stmt(ret, allow),
            _bpf_stmt(ret, errno_base | eperm),
        ]
    prog.append(_bpf_stmt(ret, allow))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Seccomp:
    """The seccomp policy: a zygote stage loaded once (inherited by every child) and a
    short child stage loaded in each child; together they equal ``build_seccomp_program()``.
    If the zygote stage cannot be loaded, each child loads the full filter instead."""

    _zygote_stage_loaded = False  # per process: filters stack, so load the zygote stage once

    def __init__(self) -> None:
        self.available = False
        self.reason = ""
        self.mode = "none"
        if os.uname().machine != "x86_64":
            self.reason = f"no syscall table for {os.uname().machine}"
            return
        try:
            self._libc = ctypes.CDLL(None, use_errno=True)
            self._programs = {}
            for stage in ("full", "zygote", "child"):
                program = build_seccomp_program(stage)
                buffer = ctypes.create_string_buffer(program, len(program))
                self._programs[stage] = (buffer, _SockFprog(len(program) // 8, ctypes.addressof(buffer)))
            self._prctl = self._libc.prctl
            self._prctl.argtypes = [
                ctypes.c_int,
                ctypes.c_ulong,
                ctypes.c_void_p,
                ctypes.c_ulong,
                ctypes.c_ulong,
            ]
            self.available = True
            self.mode = "full-per-child"
        except OSError as exc:  # pragma: no cover - libc always loads on Linux
            self.reason = str(exc)

    def child_filter(self) -> tuple[bytes | None, bool]:
        """What a child attaches when the C loop confines it: (raw filter or None,
        whether to set no_new_privs first), the same choice as `load`."""
        if not self.available:
            return None, False
        if Seccomp._zygote_stage_loaded:
            return self._programs["child"][0].raw, False
        return self._programs["full"][0].raw, True

    def _attach(self, stage: str) -> None:
        if self._prctl(22, 2, ctypes.addressof(self._programs[stage][1]), 0, 0) != 0:  # PR_SET_SECCOMP
            raise OSError(ctypes.get_errno(), f"PR_SET_SECCOMP ({stage}) failed")

    def load_zygote_stage(self) -> None:
        """In the zygote, once: no_new_privs and the zygote stage, inherited by every child."""
        if not self.available:
            return
        if not Seccomp._zygote_stage_loaded:
            try:
                if self._prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
                    raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
                self._attach("zygote")
            except OSError as exc:
                self.reason = f"zygote stage not loaded ({exc}); each child loads the full filter"
                return
            Seccomp._zygote_stage_loaded = True
        self.mode = "zygote+child"
        # The child's call, prepared here: a foreign function without argument converters
        # and its arguments as ready ctypes values, so a child spends one plain call on it.
        attach = ctypes.CFUNCTYPE(ctypes.c_int, use_errno=True)(("prctl", self._libc))
        address = ctypes.addressof(self._programs["child"][1])
        zero = ctypes.c_ulong(0)
        self._child_attach = (
            attach,
            (ctypes.c_int(22), ctypes.c_ulong(2), ctypes.c_void_p(address), zero, zero),
        )

    def load(self) -> None:
        """In each child, before any untrusted code runs."""
        if not self.available:
            return
        if Seccomp._zygote_stage_loaded:
            attach, arguments = self._child_attach
            if attach(*arguments) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
                raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP (child) failed")
            return
        if self._prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        self._attach("full")


# --------------------------------------------------------------------------- value helpers


class _Violation(Exception):
    """Raised by the audit hook; a subclass of Exception so a program sees an error."""


class _FrameRefused(ValueError):
    """sys._getframe() refused. A ValueError ("call stack is not deep enough"), which the
    standard library already expects and handles (namedtuple, enum, typing, warnings),
    so it is not recorded as a violation; the frames themselves stay out of reach."""


def canonical(value, depth: int = 0) -> str:
    """A representation that is the same for ``==``-equal builtin containers.

    Sets and dicts are ordered by their elements' canonical text, so a set of
    strings does not look different under another hash seed, while ``id()``,
    ``hash()`` and default object reprs still do.
    """
    if depth > 200:
        return repr(value)
    kind = type(value)
    if kind in (set, frozenset):
        members = sorted(canonical(item, depth + 1) for item in value)
        return f"{kind.__name__}{{{', '.join(members)}}}"
    if kind is dict:
        items = sorted(f"{canonical(k, depth + 1)}: {canonical(v, depth + 1)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if kind in (list, tuple):
        inner = ", ".join(canonical(item, depth + 1) for item in value)
        return f"[{inner}]" if kind is list else f"({inner})"
    return repr(value)


def _program_types(value, found: set, depth: int = 0) -> set:
    """Classes defined by the program (module ``__main__``) reachable in ``value``."""
    if depth > 50 or len(found) > 100:
        return found
    kind = type(value)
    if getattr(kind, "__module__", "builtins") == "__main__":
        found.add(kind)
    if kind in (list, tuple, set, frozenset):
        for item in value:
            _program_types(item, found, depth + 1)
    elif kind is dict:
        for key, item in value.items():
            _program_types(key, found, depth + 1)
            _program_types(item, found, depth + 1)
    return found


def values_equal(gold, prediction) -> bool:
    """Python ``==`` (the CRUXEval rule), guarded against objects that equal everything.

    A value built from a class the program defined only counts when the gold value
    contains the same class; otherwise a class whose ``__eq__`` always answers True
    would match any gold output.
    """
    if not _program_types(prediction, set()) <= _program_types(gold, set()):
        return False
    verdict = gold == prediction
    if type(verdict) is not bool:
        verdict = bool(verdict)
    return verdict


# --------------------------------------------------------------------------- the child


class _CappedWriter:
    """Stands in for sys.stdout/sys.stderr: discards text, counts it and flags a flood.

    Nothing a program prints leaves the child; the count is reset before each call
    of ``f`` so the limit applies per execution of ``f``.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.written = 0
        self.flooded = False

    def write(self, text) -> int:
        self.written += len(text)
        if self.written > self.limit:
            self.flooded = True
            raise _Violation(f"printed more than {self.limit} characters")
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


_CHILD_WRITER: list = []

# Events only the runtime raises: the first arms the audit hook for good (there is
# no way back: the state lives in the hook's closure, which no Python code can
# reach), the second copies the refused operations into a list.
_ARM_EVENT = "azr.sandbox.arm"
_COLLECT_EVENT = "azr.sandbox.violations"
# Attribute reads that hand out frames (and so every local variable of the runtime).
_FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})


def _audit_hook_factory(allowed_prefixes: tuple[str, ...]):
    refused_prefixes = (
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
        "os.mkdir",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.link",
        "os.symlink",
        "os.truncate",
        "os.utime",
        "ctypes.",
        "signal.",
        "sys.setrecursionlimit",
        "sys._current_frames",
        "sys.settrace",
        "sys.setprofile",
        "sys.addaudithook",
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
        "webbrowser.",
        "urllib.",
        "http.",
        "ftplib.",
        "smtplib.",
        "winreg.",
        "msvcrt.",
        "syslog.",
        "sqlite3.",
        "fcntl.",
        "_posixsubprocess.",
    )
    refused_exact = {"open", "os.open", "os.listdir", "os.scandir"}
    allowed_dirs = tuple(p.rstrip(os.sep) + os.sep for p in allowed_prefixes)
    violations: list[str] = []
    armed = False
    # Bound now, so that a program that rebinds module globals cannot change them.
    violation, realpath, fsdecode, frame_attributes = (
        _Violation,
        os.path.realpath,
        os.fsdecode,
        _FRAME_ATTRIBUTES,
    )
    frame_refused = _FrameRefused
    arm_event, collect_event, write_flags = _ARM_EVENT, _COLLECT_EVENT, _WRITE_FLAGS
    is_instance, text_type, bytes_type, int_type, list_type = isinstance, str, bytes, int, list

    def refuse(message: str) -> None:
        if len(violations) < 20:
            violations.append(message)
        raise violation(message)

    def hook(event: str, args: tuple) -> None:
        nonlocal armed
        if not armed:
            if event == arm_event:
                armed = True
            return
        if event == collect_event:
            if args and type(args[0]) is list_type:
                args[0].extend(violations)
            return
        if event == "sys._getframe":
            raise frame_refused("call stack is not deep enough (frames are not available in the sandbox)")
        if event == "object.__getattr__":
            if len(args) > 1 and args[1] in frame_attributes:
                refuse(f"reading the attribute {args[1]!r} (a frame) is not allowed in the sandbox")
            return
        if event in refused_exact:
            path = args[0] if args else None
            mode = args[1] if len(args) > 1 and event == "open" else "r"
            flags = args[2] if len(args) > 2 and event in ("open", "os.open") else 0
            if path is None:
                path = "."
            if is_instance(path, int_type):
                refuse(f"{event} of file descriptor {path} is not allowed")
            text = fsdecode(path) if is_instance(path, (text_type, bytes_type)) else str(path)
            writing = (is_instance(mode, text_type) and any(c in mode for c in "wax+")) or (
                is_instance(flags, int_type) and flags & write_flags
            )
            real = realpath(text) if is_instance(path, (text_type, bytes_type)) else text
            if writing or not (real in allowed_prefixes or real.startswith(allowed_dirs)):
                refuse(f"{event}({text!r}) is not allowed in the sandbox")
            return
        if event.startswith(refused_prefixes):
            refuse(f"{event} is not allowed in the sandbox")

    return hook


class _FallbackNames(dict):
    """Names that appear in the repr() of common values but are not builtins.

    ``repr(float('inf'))`` is ``inf`` and ``repr(Counter('ab'))`` is
    ``Counter({'a': 1, 'b': 1})``: an output text must evaluate back to its value
    even when the program did not import those names itself (a program's own
    definitions win, they are looked up first). Used as the *locals* of ``eval``;
    modules that are not preloaded (decimal, fractions) are imported on first use.
    """

    LAZY = {"Decimal": ("decimal", "Decimal"), "Fraction": ("fractions", "Fraction")}

    def __missing__(self, name: str):
        where = self.LAZY.get(name)
        if where is None:
            raise KeyError(name)
        module = __import__(where[0])
        value = getattr(module, where[1])
        self[name] = value
        return value


def _fallback_names() -> dict:
    import collections

    return {
        "inf": float("inf"),
        "nan": float("nan"),
        "Counter": collections.Counter,
        "OrderedDict": collections.OrderedDict,
        "defaultdict": collections.defaultdict,
        "deque": collections.deque,
    }


_FALLBACK_NAMES: dict = {}


# The request fields that hold Python expressions: (field, file name, is an argument list).
# The zygote compiles them (and the program) for a whole batch before the first fork, so a
# child only evaluates ready code objects.
EXPRESSION_FIELDS = (
    ("input", "<input>", True),
    ("gold_input", "<input>", True),
    ("expected", "<gold output>", False),
    ("answer", "<answer>", False),
)
_COMPILE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError)


def compile_expression(text: str, filename: str, arguments: bool):
    """A code object for ``eval``, or the exception that compiling raised (re-raised in the
    child, where it becomes the verdict). An argument list compiles as a call that hands
    back ``(args, kwargs)``, so ``1, [2], k=3`` cannot escape into a statement."""
    source = f"(lambda *args, **kwargs: (args, kwargs))({text})" if arguments else text
    try:
        return compile(source, filename, "eval")
    except _COMPILE_ERRORS as exc:
        return exc


def compile_expressions(job: dict) -> dict:
    codes = {}
    for name, filename, arguments in EXPRESSION_FIELDS:
        text = job.get(name)
        if isinstance(text, str):
            codes[name] = compile_expression(text, filename, arguments)
    return codes


def _eval_code(code, namespace: dict):
    """Evaluate compiled request text in the program's namespace, with the fallback names beneath it."""
    if isinstance(code, BaseException):
        raise code
    extra = _FallbackNames({k: v for k, v in _FALLBACK_NAMES.items() if k not in namespace})
    for name in _FallbackNames.LAZY:
        if name in namespace:
            extra[name] = namespace[name]
    return eval(code, namespace, extra)


def compile_program(program: str):
    """Compile in the zygote (compiling runs no program code); a result dict on failure."""
    try:
        return compile(program, "<program>", "exec")
    except _COMPILE_ERRORS as exc:
        return {"status": "syntax_error", "detail": f"{type(exc).__name__}: {exc}"}


def _run_in_child(prepared: Prepared, config: ZygoteConfig) -> dict:
    """Execute one job inside the already-confined child. Returns a result dict."""
    job, code, codes = prepared.job, prepared.code, prepared.codes
    mode = job.get("mode", "run")
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    writer = _CHILD_WRITER[0] if _CHILD_WRITER else None

    if code is not None:
        try:
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - the program's failure is the verdict
            return _exception_result(exc, "while running the program's top level")

    def evaluate(field: str, what: str):
        try:
            return True, _eval_code(codes[field], namespace)
        except BaseException as exc:  # noqa: BLE001
            return False, _exception_result(exc, f"while evaluating the {what}", invalid=True)

    if mode == "check_value" and job.get("gold_input") is not None:
        # The gold output is a repr that is no expression (``defaultdict(<class 'int'>, ...)``):
        # recompute the gold value with f(input) and accept it only if its repr is that text.
        function = namespace.get("f")
        if not callable(function):
            return {"status": "bad_form", "detail": "the program does not define a callable f"}
        try:
            args, kwargs = _eval_code(codes["gold_input"], namespace)
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "while evaluating the task's input", invalid=True)
        try:
            gold = function(*args, **kwargs)
            gold_text = repr(gold)
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "while recomputing the gold output with f(input)")
        if gold_text.strip() != job["expected"]:
            return {
                "status": "invalid_input",
                "detail": "the gold output is not a Python expression and f(input) does not reproduce it: "
                f"f(input) gives {_shorten(gold_text)}",
            }
        ok, answer = evaluate("answer", "answer")
        if not ok:
            return answer
        try:
            equal = values_equal(gold, answer)
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "while comparing values")
        return {"status": "ok" if equal else "wrong", "detail": "" if equal else _mismatch(gold, answer)}

    if mode == "check_value":
        ok, gold = evaluate("expected", "gold output")
        if not ok:
            return gold
        ok, answer = evaluate("answer", "answer")
        if not ok:
            return answer
        try:
            equal = values_equal(gold, answer)
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "while comparing values")
        return {"status": "ok" if equal else "wrong", "detail": "" if equal else _mismatch(gold, answer)}

    function = namespace.get("f")
    if not callable(function):
        return {"status": "bad_form", "detail": "the program does not define a callable f"}

    calls = max(1, int(job.get("calls", 1)))
    outputs = []
    snapshots: list[dict] = []
    for _ in range(calls):
        try:
            args, kwargs = _eval_code(codes["input"], namespace)
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "while evaluating the input", invalid=True)
        if writer is not None:
            writer.written = 0  # the print limit applies to each call of f
        try:
            value = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "in f")
        outputs.append(value)
        if mode == "run":
            # Snapshot now: f may hand back the same object again, mutated (a mutable default).
            snapshot = _snapshot(value, config)
            if "status" in snapshot:
                return snapshot
            snapshots.append(snapshot)

    if mode == "check_call" and job.get("expected_repr"):
        # The gold output is a repr that is no expression: the only possible comparison is textual.
        try:
            text = repr(outputs[0])
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "while taking repr() of the output")
        if text.strip() == job["expected"]:
            return {"status": "ok", "detail": ""}
        return {
            "status": "wrong",
            "detail": f"expected {_shorten(job['expected'])} (compared as text: it is no expression), "
            f"got {_shorten(text)}",
        }

    if mode == "check_call":
        ok, gold = evaluate("expected", "gold output")
        if not ok:
            return gold
        try:
            equal = values_equal(gold, outputs[0])
        except BaseException as exc:  # noqa: BLE001
            return _exception_result(exc, "while comparing values")
        if equal:
            return {"status": "ok", "detail": ""}
        return {"status": "wrong", "detail": _mismatch(gold, outputs[0])}

    texts = [snap["text"] for snap in snapshots]
    canon = [snap["canon"] for snap in snapshots]
    if len(set(canon)) > 1:
        shown = [_shorten(text) for text in texts]
        return {
            "status": "nondeterministic",
            "detail": "f returned different values for the same input within one process "
            f"(hidden state such as a mutable default or a global): {shown[0]} then {shown[1]}",
            "outputs": shown,
        }
    return {"status": "ok", "output": texts[0], "canon": canon[0], "detail": ""}


# The fewest characters repr() can produce per element of a builtin container: the ", "
# between elements (an element's own repr may be empty), and ": " too for a dict.
_REPR_FLOOR_PER_ITEM: dict[type, int] = {
    list: 2,
    tuple: 2,
    set: 2,
    frozenset: 2,
    dict: 4,
    str: 1,
    bytes: 1,
    bytearray: 1,
}


def _snapshot(value, config: ZygoteConfig) -> dict:
    """repr() and canonical form of one returned value, or a result dict if that fails.

    A builtin container or string whose repr() cannot fit in the output limit, whatever
    its elements, is refused before repr() spends time and memory building the text.
    """
    try:
        per_item = _REPR_FLOOR_PER_ITEM.get(type(value))
        floor = per_item * len(value) if per_item else 0
        if floor > config.max_output_chars:
            return {
                "status": "output_limit",
                "detail": f"the output's repr() has at least {floor} characters ({type(value).__name__} "
                f"of {len(value)}), over the limit of {config.max_output_chars}",
            }
        text = repr(value)
        if len(text) > config.max_output_chars:
            return {
                "status": "output_limit",
                "detail": f"the output's repr() has {len(text)} characters, over the limit of {config.max_output_chars}",
            }
        return {"text": text, "canon": canonical(value)}
    except MemoryError:
        return {
            "status": "output_limit",
            "detail": "the output is too large: its repr() does not fit in the memory limit",
        }
    except BaseException as exc:  # noqa: BLE001
        return _exception_result(exc, "while taking repr() of the output")


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _mismatch(gold, answer) -> str:
    try:
        return f"expected {_shorten(repr(gold))}, got {_shorten(repr(answer))}"
    except BaseException:  # noqa: BLE001
        return "values differ"


def _exception_result(exc: BaseException, where: str, invalid: bool = False) -> dict:
    if isinstance(exc, MemoryError):
        return {"status": "memory_limit", "detail": f"MemoryError {where}: the memory limit was reached"}
    if isinstance(exc, _Violation) and _CHILD_WRITER and _CHILD_WRITER[0].flooded:
        return {"status": "output_limit", "detail": str(exc)}
    try:
        message = _shorten(str(exc), 500)
    except BaseException:  # noqa: BLE001
        message = "<unprintable>"
    status = "invalid_input" if invalid else "runtime_error"
    return {"status": status, "detail": f"{type(exc).__name__} {where}: {message}"}


MAX_RECURSION_LIMIT = 20_000


def _cap_recursion_limit() -> None:
    """Replace sys.setrecursionlimit (it raises no audit event) with a capped version.

    The original is kept only in this closure, so a program cannot raise the limit
    far enough to exhaust the C stack; deep recursion stays a RecursionError.
    """
    original = sys.setrecursionlimit
    cap = MAX_RECURSION_LIMIT
    int_type, min_of = int, min

    def setrecursionlimit(limit):
        return original(min_of(int_type(limit), cap))

    setrecursionlimit.__doc__ = original.__doc__
    sys.setrecursionlimit = setrecursionlimit


class ZygoteConfig:
    def __init__(self, message: dict) -> None:
        self.max_output_chars = int(message.get("max_output_chars", 1_000_000))
        self.max_print_chars = int(message.get("max_print_chars", 1_000_000))
        self.sandbox_uid = message.get("sandbox_uid")
        self.sandbox_gid = message.get("sandbox_gid")
        self.spawn_helper: str | None = message.get("spawn_helper")
        # What a child drops to: (gid, uid), or None to keep the zygote's (not root, or no uid given).
        self.drop_to: tuple[int, int] | None = None
        if self.sandbox_uid is not None and os.getuid() == 0:
            uid = int(self.sandbox_uid)
            self.drop_to = (int(self.sandbox_gid) if self.sandbox_gid is not None else uid, uid)
        # More than this on a child's result channel is a flood: the child is stopped.
        self.result_limit = self.max_output_chars * 8 + 65536


class Prepared:
    """One job made ready in the zygote before its child is forked: the compiled program
    and expressions, the rlimits and the deadline. Everything here is computed once per
    batch, before the first fork, so the children (and the zygote between forks) touch as
    few memory pages as they can: each page written after a fork costs a copy-on-write fault."""

    __slots__ = ("job", "code", "codes", "rlimits", "timeout")

    def __init__(self, job: dict, code, codes: dict, rlimits: tuple, timeout: float) -> None:
        self.job = job
        self.code = code
        self.codes = codes
        self.rlimits = rlimits
        self.timeout = timeout


def job_rlimits(job_limits: dict, child_uid: int) -> tuple:
    """The (resource, (soft, hard)) pairs a child sets on itself, soft = hard."""
    values = (
        (resource.RLIMIT_CPU, max(1, int(job_limits.get("cpu_s", 6)))),
        (resource.RLIMIT_AS, int(job_limits.get("memory_mb", 512)) * 1024 * 1024),
        (resource.RLIMIT_NPROC, 1 if child_uid != 0 else 0),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MEMLOCK, 0),
        (resource.RLIMIT_MSGQUEUE, 0),
    )
    return tuple((which, (value, value)) for which, value in values)


def _child_payload(prepared: Prepared, config: ZygoteConfig) -> bytes:
    """In the confined child: run the job and return its encoded result.

    Shared by both ways of starting a child (``_child_main`` here, or the C loop of
    ``spawn.c``, which calls this after confining the child itself)."""
    writer = _CHILD_WRITER[0]  # made by the zygote; this child's copy starts at zero
    sys.stderr = writer  # (sys.stdout already is it; the zygote keeps its own stderr)
    sys.audit(_ARM_EVENT)
    result = _run_in_child(prepared, config)
    violations: list[str] = []
    sys.audit(_COLLECT_EVENT, violations)
    if violations:
        result = {
            "status": "forbidden",
            "detail": "the program attempted a forbidden operation at run time: " + "; ".join(violations[:5]),
        }
    elif writer.flooded and result.get("status") in ("ok", "runtime_error", "wrong"):
        result = {
            "status": "output_limit",
            "detail": f"the program printed more than {config.max_print_chars} characters",
        }
    return encode_fields(result)


def _child_main(
    prepared: Prepared, result_fd: int, marker: bytes, config: ZygoteConfig, seccomp: Seccomp
) -> None:
    """Runs in the forked child (the pure-Python path). Never returns.

    The zygote already made everything a child shares (stdin/stdout/stderr on
    ``/dev/null``, working directory ``/``, signal dispositions, niceness); what is left
    here is per child and kept short, because every memory page it writes is a
    copy-on-write fault.

    ``marker`` is a per-job random token the zygote expects at the start of the
    result; it lives only in this frame (and the zygote's), which the audit hook
    keeps the program from reading, so a program that writes a fake result on the
    pipe and exits cannot pass it off as the runtime's.
    """
    status = 70
    write, exit_now, setrlimit = os.write, os._exit, resource.setrlimit
    try:
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 65536)
        if config.drop_to is not None:
            os.setgid(config.drop_to[0])
            os.setuid(config.drop_to[1])
        for which, limit in prepared.rlimits:
            try:
                setrlimit(which, limit)
            except (ValueError, OSError):
                pass
        seccomp.load()
        payload = marker + _child_payload(prepared, config)
        view = memoryview(payload)
        while view:
            written = write(result_fd, view)
            view = view[written:]
        status = 0
    except BaseException:  # noqa: BLE001 - nothing may escape the child
        status = 71
    finally:
        exit_now(status)


# --------------------------------------------------------------------------- the zygote


class _Deadline(BaseException):
    """Raised in the zygote by SIGALRM when a child's wall-clock deadline passes."""


_ALARM_ARMED = [False]
_ZYGOTE_STREAMS: list = []


def _on_alarm(signum, frame) -> None:
    # A late alarm (the child finished just as the timer fired) must not hit unrelated code.
    if _ALARM_ARMED[0]:
        raise _Deadline


class _ExtensionSpec:
    """The two attributes ``_imp.create_dynamic`` reads: no importlib machinery needed."""

    def __init__(self, name: str, origin: str) -> None:
        self.name = name
        self.origin = origin


def load_spawn_helper(path: str | None):
    """The compiled ``_azr_spawn`` module (spawn.c) at ``path``, or None to fork in
    Python: no path given, no such file (a container without the helper), or a build
    this interpreter cannot load. Either way the verdicts are the same."""
    if not path or not os.path.isfile(path):
        return None
    import _imp

    try:
        return _imp.create_dynamic(_ExtensionSpec("_azr_spawn", path))  # type: ignore[arg-type]
    except (ImportError, OSError):
        return None


class Zygote:
    def __init__(self, config: ZygoteConfig) -> None:
        self.config = config
        self.spawn = load_spawn_helper(config.spawn_helper)
        self.seccomp = Seccomp()
        if os.getuid() == 0:
            os.setgroups([])
        self.child_uid = config.drop_to[1] if config.drop_to is not None else os.getuid()
        prefixes = {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
        prefixes |= {os.path.realpath(os.path.dirname(os.__file__))}
        script_dir = os.path.realpath(os.path.dirname(__file__))
        prefixes.discard(script_dir)
        prefixes.add("/dev/null")
        self.allowed_prefixes = tuple(sorted(prefixes))
        sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != script_dir]
        _FALLBACK_NAMES.update(_fallback_names())
        _cap_recursion_limit()
        self._share_with_children()
        _CHILD_WRITER[:] = [_CappedWriter(config.max_print_chars)]
        sys.stdout = _CHILD_WRITER[0]  # the zygote never prints; its frames use their own streams
        sys.stdin = None
        self.seccomp.load_zygote_stage()
        sys.addaudithook(_audit_hook_factory(self.allowed_prefixes))

    _shared = False  # per process: a socket-mode runtime serves one connection after another

    def _share_with_children(self) -> None:
        """Set up once what every child would otherwise set up for itself after each fork."""
        if Zygote._shared:
            return
        Zygote._shared = True
        devnull = os.open(os.devnull, os.O_RDWR)
        error_fd = os.dup(2)  # the zygote's own diagnostics keep going where stderr went
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        # Kept referenced here too: a child replaces sys.stderr, and freeing (closing,
        # flushing) the old stream there would be wasted copy-on-write work.
        _ZYGOTE_STREAMS.append(os.fdopen(error_fd, "w", buffering=1))
        sys.stderr = _ZYGOTE_STREAMS[-1]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is an error, not a kill
        signal.signal(signal.SIGALRM, _on_alarm)
        try:
            os.chdir("/")
        except OSError:
            pass
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 5)  # the service's own processes come first
        except OSError:
            pass

    def info(self) -> dict:
        return {
            "runtime_version": RUNTIME_VERSION,
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "hash_seed_probe": hash("azr-hash-seed-probe"),
            "seccomp": self.seccomp.available,
            "seccomp_reason": self.seccomp.reason,
            "seccomp_mode": self.seccomp.mode,
            "uid": os.getuid(),
            "sandbox_uid": self.config.sandbox_uid,
            "spawn": "c" if self.spawn is not None else "python",
        }

    def prepare(self, job: dict, programs: dict) -> Prepared | bytes:
        """Compile one job's program (once per batch: ``programs`` maps source to code)
        and expressions; a program that does not compile is its result record at once.
        Nothing compiled outlives its batch: a cache across batches
        would keep megabytes resident that every fork copies and every exit tears down."""
        limits = job.get("limits") or {}
        timeout = float(limits.get("timeout_s", 5.0))
        program = job.get("program")
        code = None
        if program is not None:
            code = programs.get(program)
            if code is None:
                code = programs[program] = compile_program(program)
        if isinstance(code, dict):
            return encode_result(encode_fields(code))  # the program does not compile: no child
        return Prepared(job, code, compile_expressions(job), job_rlimits(limits, self.child_uid), timeout)

    def run(self, prepared: Prepared) -> bytes:
        """Fork a child for one prepared job; the encoded result record."""
        marker = RESULT_MARKER + os.urandom(16).hex().encode() + b"\n"
        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_main(prepared, write_fd, marker, self.config, self.seccomp)
        os.close(write_fd)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        data, timed_out = self._collect(pid, read_fd, prepared.timeout)
        os.close(read_fd)
        # The child is a zombie now (or past its deadline): SIGKILL its whole group while
        # the group still exists, then reap it.
        self._kill(pid)
        _, wait_status, usage = os.wait4(pid, 0)
        wall_ms = (time.monotonic() - started) * 1000
        cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000
        if not timed_out and data.startswith(marker) and wait_status == 0:
            payload = data[len(marker) :]
        else:
            payload = encode_fields(self._interpret(wait_status, timed_out, prepared.timeout))
        return encode_result(payload, wall_ms, usage.ru_maxrss, cpu_ms)

    def run_batch(self, batch: list[Prepared]) -> list[bytes]:
        """Fork a child for each prepared job through the C loop (spawn.c); the encoded
        result records, in order. Same confinement, deadline and verdicts as ``run``."""
        config = self.config
        seccomp_filter, no_new_privs = self.seccomp.child_filter()
        jobs = [(p.timeout, tuple((which, limit[0]) for which, limit in p.rlimits)) for p in batch]

        def child(index: int) -> bytes:
            return _child_payload(batch[index], config)

        outcomes = self.spawn.run_batch(
            jobs,
            child,
            config.drop_to,
            seccomp_filter,
            no_new_privs,
            RESULT_MARKER,
            config.result_limit,
        )
        records = []
        for prepared, (kind, data, wait_status, wall_ms, maxrss_kb, cpu_ms) in zip(
            batch, outcomes, strict=True
        ):
            if kind == 0:
                payload = data
            elif kind == 3:
                detail = f"the zygote could not start a child: {data.decode(errors='replace')}"
                payload = encode_fields({"status": "sandbox_error", "detail": detail})
            else:
                payload = encode_fields(self._interpret(wait_status, kind == 1, prepared.timeout))
            records.append(encode_result(payload, wall_ms, int(maxrss_kb), cpu_ms))
        return records

    def _collect(self, pid: int, read_fd: int, timeout: float) -> tuple[bytes, bool]:
        """Read the child's result until EOF and wait for it to exit (without reaping it),
        or until the wall-clock deadline: (data, timed_out).

        The deadline is a SIGALRM timer, so the wait is plain blocking reads and one
        ``waitid``: no poll objects or pidfds to set up for each child."""
        chunks: list[bytes] = []
        received = 0
        limit = self.config.result_limit
        _ALARM_ARMED[0] = True
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.001))
        try:
            while True:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                received += len(chunk)
                if received > limit:  # a flood on the result channel: stop it now
                    return b"", True
                chunks.append(chunk)
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            return b"".join(chunks), False
        except _Deadline:
            return b"".join(chunks), True
        finally:
            _ALARM_ARMED[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    @staticmethod
    def _interpret(wait_status: int, timed_out: bool, timeout: float) -> dict:
        """The verdict of a child that gave no valid result."""
        if timed_out:
            return {"status": "timeout", "detail": f"no result within the wall-clock limit of {timeout:g} s"}
        if os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            if sig == signal.SIGXCPU:
                return {"status": "timeout", "detail": "the CPU-time limit was reached"}
            if sig == signal.SIGKILL:
                return {"status": "memory_limit", "detail": "the process was killed (out of memory)"}
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return {"status": "runtime_error", "detail": f"the process crashed with signal {name}"}
        code = os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else -1
        return {
            "status": "runtime_error",
            "detail": f"the process exited (code {code}) without producing a result, e.g. via os._exit or a closed result channel",
        }


def serve(reader, writer) -> None:
    hello = read_frame(reader)
    if hello is None:
        return
    for name in hello.get("preload", PRELOADED_MODULES):
        try:
            __import__(name)
        except ImportError:
            pass
    zygote = Zygote(ZygoteConfig(hello))
    gc.collect()
    gc.freeze()
    write_frame(writer, {"ready": zygote.info()})
    while True:
        request = read_frame(reader)
        if request is None:
            return
        records = []
        # Compile the whole batch first: the allocations that compiling makes then happen
        # once per batch instead of between every two forks.
        batch: list[Prepared | bytes] = []
        programs: dict = {}
        for job in request.get("jobs", []):
            try:
                batch.append(zygote.prepare(job, programs))
            except Exception as exc:  # noqa: BLE001 - a malformed job: report it, keep serving
                batch.append(_sandbox_error(exc))
        if zygote.spawn is not None:
            prepared = [item for item in batch if not isinstance(item, bytes)]
            try:
                spawned = iter(zygote.run_batch(prepared))
                records = [item if isinstance(item, bytes) else next(spawned) for item in batch]
                del spawned  # its list would keep every record alive into the next batch
            except Exception as exc:  # noqa: BLE001 - report, keep serving
                error = _sandbox_error(exc)
                records = [item if isinstance(item, bytes) else error for item in batch]
            del prepared
        else:
            for item in batch:
                if isinstance(item, bytes):
                    records.append(item)
                    continue
                try:
                    records.append(zygote.run(item))
                except Exception as exc:  # noqa: BLE001 - report, keep serving
                    records.append(_sandbox_error(exc))
        del batch, programs
        write_results(writer, records)
        written = sum(len(record) for record in records)
        del records
        if written > TRIM_AFTER_BYTES:
            _release_freed_memory()


# After a batch whose results were this big, hand the freed heap back to the kernel: the
# buffers of large outputs otherwise stay resident in the zygote, and every page it holds
# is copied into each child's page tables at fork and torn down at exit (a zygote left at
# 14 MB instead of 6 MB by a batch of 100 kB outputs forks measurably slower).
TRIM_AFTER_BYTES = 256 * 1024
_MALLOC_TRIM: list = []


def _release_freed_memory() -> None:
    if not _MALLOC_TRIM:
        try:
            _MALLOC_TRIM.append(ctypes.CDLL(None).malloc_trim)
        except (OSError, AttributeError):  # not glibc
            _MALLOC_TRIM.append(None)
    if _MALLOC_TRIM[0] is not None:
        _MALLOC_TRIM[0](0)


def _sandbox_error(exc: BaseException) -> bytes:
    detail = f"{type(exc).__name__}: {exc}"
    return encode_result(encode_fields({"status": "sandbox_error", "detail": detail}))


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(argv) >= 2 and argv[0] == "--socket":
        import socket

        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(argv[1])
        except FileNotFoundError:
            pass
        server.bind(argv[1])
        os.chmod(argv[1], 0o600)
        server.listen(1)
        while True:
            connection, _ = server.accept()
            with connection, connection.makefile("rb") as reader, connection.makefile("wb") as writer:
                serve(reader, writer)
    stdin_reader: BinaryIO = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    stdout_writer: BinaryIO = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    serve(stdin_reader, stdout_writer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
