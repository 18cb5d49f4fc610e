"""The zygote's start-up: read the hello, apply every layer once, hand over to the C loop.

Everything here runs once per zygote, before any untrusted code exists in the process.
The order matters:

1. load the C loop (``spawn.c``), preload the modules children use most;
2. put stdin/stdout/stderr on ``/dev/null`` (the host's streams move to private fds);
3. drop supplementary groups, make the zygote (and so its children) the OOM killer's
   first choice, lower its priority below the service's;
4. Python layers, early filters only: module guards and the audit hook;
5. kernel layers, inherited by every child: Landlock (read-only standard library,
   nothing writable, no signals or abstract sockets outside the domain) and the
   zygote's seccomp stage; the child's seccomp allowlist, uid, gid and rlimits are
   applied by the C loop in each child;
6. ``gc.freeze()``, tell the host what holds (``ready``), and serve.

A layer that cannot be applied makes the zygote refuse to serve, unless the hello's
``allow_missing`` names it (an explicit downgrade, reported in ``ready`` and so in
``/readyz``).
"""

import gc
import json
import os
import signal
import sys

from . import RUNTIME_VERSION, wire

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: the zygote imports as little as it can
    from typing import Any

# Modules imported once here so that children get them for the price of a fork: what AZR
# and CRUXEval programs import most. Each one makes the zygote bigger, and so every fork.
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
# Native extension modules loaded here so that children can use them: a child cannot map
# new executable memory (seccomp), so it can load no shared object of its own. Only the
# C halves of pure modules (decimal, contextvars, json, ...); never ctypes, mmap & co.
NATIVE_MODULES = (
    "_contextvars",
    "_decimal",
    "_json",
    "_typing",
    "_queue",
    "_multibytecodec",
    "_codecs_cn",
    "_codecs_hk",
    "_codecs_iso2022",
    "_codecs_jp",
    "_codecs_kr",
    "_codecs_tw",
)
_DIAGNOSTICS: list[int] = []  # the zygote's own stderr, as a private descriptor
DEMOTED_NICE = 15
ZYGOTE_NICE = 5


class _ExtensionSpec:
    """The two attributes ``_imp.create_dynamic`` reads: no importlib machinery needed."""

    def __init__(self, name: str, origin: str) -> None:
        self.name = name
        self.origin = origin


def load_spawn(path: "str | None") -> "Any":
    """The compiled ``_azr_spawn`` module at ``path``, or None."""
    if not path or not os.path.isfile(path):
        return None
    import _imp

    try:
        return _imp.create_dynamic(_ExtensionSpec("_azr_spawn", path))  # type: ignore[arg-type]
    except (ImportError, OSError):
        return None


def stdlib_paths() -> "list[str]":
    """The directories a child may read: the interpreter's standard library (with
    lib-dynload inside it), and nothing else."""
    from . import landlock

    return landlock.stdlib_paths()


def _private_sys_path(readable: "list[str]") -> None:
    """Only readable directories stay on sys.path (the import system stats every entry on
    each import, and the launcher's own directory is no child's business)."""
    sys.path[:] = [
        entry
        for entry in sys.path
        if entry
        and any(
            os.path.realpath(entry) == d or os.path.realpath(entry).startswith(d + os.sep) for d in readable
        )
    ]


class Setup:
    """What start-up did: the layers that hold, those missing, and the child's settings."""

    def __init__(self, hello: "dict[str, Any]") -> None:
        self.hello = hello
        self.layers: dict[str, str] = {}
        self.missing: list[str] = []
        self.spawn: Any = None
        self.writer: Any = None
        self.child_filter: bytes | None = None
        self.drop_to: tuple[int, int] | None = None
        self.readable: list[str] = []

    def miss(self, layer: str, reason: str) -> None:
        self.layers[layer] = "missing: " + reason
        self.missing.append(layer)


def _private_streams() -> "tuple[int, int]":
    """The host's stdin/stdout (and stderr, for the zygote's own diagnostics) move to
    private descriptors, which no child keeps; 0, 1, 2 become /dev/null."""
    reader_fd, writer_fd = os.dup(0), os.dup(1)
    _DIAGNOSTICS.append(os.dup(2))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return reader_fd, writer_fd


def _process_settings() -> None:
    os.environ.clear()  # nothing of the host's environment for the children (unsetenv too)
    if os.getuid() == 0:
        try:
            os.setgroups([])
        except OSError:
            pass
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:  # children inherit it
            handle.write("1000")
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, ZYGOTE_NICE)
    except OSError:
        pass
    try:
        os.chdir("/")
    except OSError:
        pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is an error, not a kill
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _python_layers(setup: Setup) -> None:
    from . import audit, guards

    hello = setup.hello
    audit.cap_recursion_limit()
    setup.writer = audit.CappedWriter(int(hello.get("max_print_chars", 1_000_000)))
    sys.stdout = sys.stderr = setup.writer
    sys.stdin = None
    readable = setup.readable
    _private_sys_path(readable)
    if hello.get("python_layers", True):
        guards.install(list(hello.get("forbidden_modules", ())), readable)
        sys.addaudithook(audit.make_hook((*readable, "/dev/null")))
        setup.layers["python"] = "audit hook, module guards"
    else:
        setup.layers["python"] = "off (test only)"


def _landlock(setup: Setup) -> None:
    from . import landlock

    spawn = setup.spawn
    abi = spawn.landlock_abi()
    if abi <= 0:
        setup.miss("landlock", f"the kernel has no Landlock (errno {-abi})")
        return
    plan = landlock.plan(setup.readable, abi)
    try:
        spawn.landlock_restrict(*plan.arguments())
    except OSError as exc:
        setup.miss("landlock", f"landlock_restrict failed: {exc}")
        return
    setup.layers["landlock"] = f"ABI {abi}: read-only {', '.join(p for p, _ in plan.rules)}"


def _seccomp(setup: Setup) -> None:
    from . import seccomp

    if os.uname().machine != "x86_64":
        setup.miss("seccomp", f"no syscall table for {os.uname().machine}")
        return
    try:
        setup.spawn.seccomp_attach(seccomp.zygote_filter())
    except OSError as exc:
        setup.miss("seccomp", f"the zygote stage did not load: {exc}")
        return
    setup.child_filter = seccomp.child_filter()
    setup.layers["seccomp"] = f"zygote denylist + child allowlist of {len(seccomp.CHILD_ALLOWED)} calls"


def _uid(setup: Setup) -> None:
    uid = setup.hello.get("sandbox_uid")
    if uid is None:
        setup.miss("uid", "no sandbox uid configured")
    elif os.getuid() != 0:
        setup.miss("uid", "the zygote is not root, so children keep its uid")
    else:
        gid = setup.hello.get("sandbox_gid")
        setup.drop_to = (int(gid if gid is not None else uid), int(uid))
        setup.layers["uid"] = f"children run as uid {setup.drop_to[1]}, gid {setup.drop_to[0]}"


def prepare(hello: "dict[str, Any]") -> Setup:
    """Apply every layer; the Setup says what holds."""
    setup = Setup(hello)
    setup.spawn = load_spawn(hello.get("spawn_helper"))
    for name in (*hello.get("preload", PRELOADED_MODULES), *NATIVE_MODULES):
        try:
            __import__(name)
        except ImportError:
            pass
    sys.modules.pop("_azr_spawn", None)  # the zygote keeps its own reference
    _process_settings()
    setup.readable = stdlib_paths()
    _python_layers(setup)
    if setup.spawn is None:
        setup.miss("c_runner", "the C loop (spawn.c) is not built for this interpreter")
        return setup
    setup.layers["c_runner"] = "report made in C, result page per child"
    skipped = hello.get("skip_layers", ())  # test only: show that the self-test notices
    for layer, apply in (("uid", _uid), ("landlock", _landlock), ("seccomp", _seccomp)):
        if layer in skipped:
            setup.miss(layer, "skipped on request (test only)")
        else:
            apply(setup)
    return setup


def info(setup: Setup) -> "dict[str, Any]":
    hello = setup.hello
    return {
        "runtime_version": RUNTIME_VERSION,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "hash_seed_probe": hash("azr-hash-seed-probe"),
        "uid": os.getuid(),
        "sandbox_uid": hello.get("sandbox_uid"),
        "layers": setup.layers,
        "missing": setup.missing,
        "downgraded": [layer for layer in setup.missing if layer in hello.get("allow_missing", ())],
        "magic": _bytecode_magic(),
        "fast_slots": int(hello.get("fast_slots", 1)),
        "max_live": int(hello.get("max_live", 16)),
    }


def _bytecode_magic() -> str:
    """This interpreter's bytecode magic: the host sends compiled programs only when it matches."""
    import _frozen_importlib_external

    return str(_frozen_importlib_external.MAGIC_NUMBER.hex())


def serve_stream(reader_fd: int, writer_fd: int) -> None:
    """One host connection: hello, ready, then jobs until the host closes its end."""
    with os.fdopen(reader_fd, "rb", buffering=0, closefd=False) as reader:
        body = wire.read_frame(reader)
    if body is None:
        return
    hello = json.loads(body)
    setup = prepare(hello)
    refused = [layer for layer in setup.missing if layer not in hello.get("allow_missing", ())]
    with os.fdopen(writer_fd, "wb", buffering=0, closefd=False) as writer:
        if refused:
            details = "; ".join(f"{layer}: {setup.layers[layer]}" for layer in refused)
            wire.write_frame(writer, json.dumps({"error": f"confinement incomplete ({details})"}).encode())
            return
        wire.write_frame(writer, json.dumps({"ready": info(setup)}).encode())
    max_output = int(hello.get("max_output_chars", 200_000))
    calls = 2
    page_bytes = calls * (6 * max_output + 8) + 64 * 1024
    settings = (
        int(hello.get("fast_slots", 1)),
        int(hello.get("max_live", 16)),
        float(hello.get("demote_after_ms", 50.0)),
        DEMOTED_NICE,
        page_bytes,
        max_output,
        setup.drop_to[0] if setup.drop_to else -1,
        setup.drop_to[1] if setup.drop_to else -1,
        setup.child_filter,
        1 if setup.drop_to else 0,
    )
    del hello, body
    gc.collect()
    gc.freeze()
    setup.spawn.serve(reader_fd, writer_fd, settings, setup.writer)


def main(argv: "list[str]") -> int:
    try:
        if len(argv) >= 2 and argv[0] == "--socket":
            return serve_socket(argv[1])
        reader_fd, writer_fd = _private_streams()
        serve_stream(reader_fd, writer_fd)
        return 0
    except BaseException as exc:
        if _DIAGNOSTICS:
            import traceback

            text = "".join(traceback.format_exception(exc))
            os.write(_DIAGNOSTICS[0], f"azr zygote: {text}".encode("utf-8", "backslashreplace"))
        return 70


def serve_socket(path: str) -> int:
    """Container mode: one host connection at a time on a unix socket. Only the first
    connection's hello confines this process (layers cannot be applied twice), so the
    zygote exits after one connection and its container is restarted for the next."""
    import socket

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(1)
    connection, _ = server.accept()
    server.close()
    _DIAGNOSTICS.append(os.dup(2))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    fd = connection.detach()
    serve_stream(fd, fd)
    return 0
