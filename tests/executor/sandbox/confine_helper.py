"""Test helper: run code in children of the SANDBOX interpreter under kernel confinement.

Trusted test code. On the pytest side, ``run_confined(config, scenarios)`` starts
``/usr/bin/python3 -s -S -B`` on this very file; that process plays the zygote: it runs
``config["zygote_setup"]``, applies the layers the config asks for (rlimits, Landlock,
seccomp stages) with ctypes, forks one child per scenario, and the child applies the
child layers, runs ``config["child_setup"]`` and the scenario, and reports over a pipe.

The layers are applied here with ctypes (the same three Landlock calls and the same
prctl as ``spawn.c``), not by the runtime: the runtime modules under test only BUILD
what the kernel enforces. ctypes is loaded from a private copy of ``_ctypes`` and then
dropped from ``sys.modules``, so a confined child that runs ``import ctypes`` has to map
the real ``_ctypes`` extension anew, as a program in the real sandbox would.

A scenario is Python source run in a fresh child; it sets ``result`` (default None).
The report per scenario: ``{"status": "ok", "value": repr}`` or ``{"status": "error",
"type": name, "errno": errno or None, "message": text}``, plus ``"violations"`` when
``config["collect"]`` is set, and ``"signal"``/``"exit"`` when the child died without
reporting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

SANDBOX_PYTHON = "/usr/bin/python3"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

SYS_landlock_create_ruleset = 444
SYS_landlock_add_rule = 445
SYS_landlock_restrict_self = 446
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def sandbox_python_available() -> bool:
    return os.path.exists(SANDBOX_PYTHON)


def run_confined(config: dict, scenarios: dict[str, str], timeout: float = 120.0) -> dict[str, dict]:
    """Pytest side: run ``scenarios`` under ``config`` in the sandbox interpreter."""
    message = json.dumps({"config": config, "scenarios": scenarios})
    completed = subprocess.run(
        [SANDBOX_PYTHON, "-s", "-S", "-B", os.path.abspath(__file__)],
        input=message.encode(),
        capture_output=True,
        timeout=timeout,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"confined run failed ({completed.returncode}): {completed.stderr.decode()[-4000:]}"
        )
    return json.loads(completed.stdout.decode().splitlines()[-1])


# --------------------------------------------------------------------- in the sandbox python


def _private_ctypes():
    """ctypes built on a private copy of the _ctypes extension, then hidden again."""
    import importlib.machinery
    import importlib.util
    import shutil
    import tempfile

    spec = importlib.machinery.PathFinder.find_spec("_ctypes")
    assert spec is not None and spec.origin is not None
    directory = tempfile.mkdtemp(prefix="azr-ctypes-")
    copy = os.path.join(directory, os.path.basename(spec.origin))
    shutil.copyfile(spec.origin, copy)
    private_spec = importlib.util.spec_from_file_location("_ctypes", copy)
    assert private_spec is not None and private_spec.loader is not None
    module = importlib.util.module_from_spec(private_spec)
    private_spec.loader.exec_module(module)
    sys.modules["_ctypes"] = module
    import ctypes

    for name in [n for n in sys.modules if n in ("ctypes", "_ctypes") or n.startswith("ctypes.")]:
        del sys.modules[name]
    os.unlink(copy)
    os.rmdir(directory)
    return ctypes


class Kernel:
    """The system calls spawn.c makes, through ctypes."""

    def __init__(self, visible_ctypes: bool = False) -> None:
        if visible_ctypes:
            import ctypes
        else:
            ctypes = _private_ctypes()
        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.syscall = self.libc.syscall
        self.syscall.restype = ctypes.c_long
        self.prctl = self.libc.prctl
        self.prctl.restype = ctypes.c_int
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        self.buffers: list = []  # filters stay alive

    def _fail(self, what: str) -> None:
        errno = self.ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def no_new_privs(self) -> None:
        if self.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            self._fail("PR_SET_NO_NEW_PRIVS")

    def seccomp(self, program: bytes) -> None:
        ctypes = self.ctypes

        class SockFprog(ctypes.Structure):  # type: ignore[name-defined]
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        buffer = ctypes.create_string_buffer(program, len(program))
        fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
        self.buffers += [buffer, fprog]
        if self.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
            self._fail("PR_SET_SECCOMP")

    def landlock_abi(self) -> int:
        ctypes = self.ctypes
        abi = self.syscall(
            ctypes.c_long(SYS_landlock_create_ruleset), None, ctypes.c_size_t(0), ctypes.c_uint32(1)
        )
        return abi if abi >= 0 else -ctypes.get_errno()

    def landlock_restrict(
        self, handled_access_fs: int, handled_access_net: int, scoped: int, rules: list[tuple[str, int]]
    ) -> None:
        """What ``_azr_spawn.landlock_restrict`` does: ruleset, rules, no_new_privs, restrict."""
        ctypes = self.ctypes
        abi = self.landlock_abi()
        if abi < 1:
            raise OSError(-abi, "Landlock is not available")
        size = 8 if abi < 4 else 16 if abi < 6 else 24
        attr = (ctypes.c_uint64 * 3)(handled_access_fs, handled_access_net, scoped)
        ruleset = self.syscall(
            ctypes.c_long(SYS_landlock_create_ruleset),
            ctypes.byref(attr),
            ctypes.c_size_t(size),
            ctypes.c_uint32(0),
        )
        if ruleset < 0:
            self._fail("landlock_create_ruleset")

        class PathBeneath(ctypes.Structure):  # type: ignore[name-defined]
            _pack_ = 1
            _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

        try:
            for path, access in rules:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    rule = PathBeneath(access, fd)
                    if (
                        self.syscall(
                            ctypes.c_long(SYS_landlock_add_rule),
                            ctypes.c_int(ruleset),
                            ctypes.c_int(1),
                            ctypes.byref(rule),
                            ctypes.c_uint32(0),
                        )
                        != 0
                    ):
                        self._fail(f"landlock_add_rule({path})")
                finally:
                    os.close(fd)
            self.no_new_privs()
            if (
                self.syscall(
                    ctypes.c_long(SYS_landlock_restrict_self), ctypes.c_int(ruleset), ctypes.c_uint32(0)
                )
                != 0
            ):
                self._fail("landlock_restrict_self")
        finally:
            os.close(ruleset)


def _report(exc: BaseException | None, value: object) -> dict:
    if exc is None:
        return {"status": "ok", "value": repr(value)[:2000]}
    return {
        "status": "error",
        "type": type(exc).__name__,
        "errno": getattr(exc, "errno", None),
        "message": str(exc)[:2000],
    }


# Bound before any guard is installed: the runner itself must not go through them.
_write, _exit, _fork, _pipe, _read, _close, _waitpid = (
    os.write,
    os._exit,
    os.fork,
    os.pipe,
    os.read,
    os.close,
    os.waitpid,
)
_audit = sys.audit


def _child(kernel: Any, config: dict, plans: dict, namespace: dict, source: str, write_fd: int) -> None:
    if plans.get("child_landlock") is not None:
        kernel.landlock_restrict(*plans["child_landlock"])
    if config.get("child_seccomp"):
        kernel.no_new_privs()
        kernel.seccomp(plans["child_seccomp"])
    exc: BaseException | None = None
    scope = dict(namespace)
    scope["result"] = None
    try:
        exec(config.get("child_setup", ""), scope)
        exec(compile(source, "<scenario>", "exec"), scope)
    except BaseException as caught:  # noqa: BLE001 - the report
        exc = caught
    report = _report(exc, scope.get("result"))
    if config.get("collect"):
        violations: list[str] = []
        _audit("azr.sandbox.violations", violations)
        report["violations"] = violations
    data = json.dumps(report).encode()
    while data:
        data = data[_write(write_fd, data) :]


def main() -> None:
    message = json.loads(sys.stdin.read())
    config, scenarios = message["config"], message["scenarios"]
    sys.path[:0] = [REPO_ROOT]
    import resource

    from executor.sandbox.runtime import landlock, seccomp

    layered = any(config.get(key) for key in ("zygote_seccomp", "child_seccomp", "landlock", "kernel"))
    # ctypes (and what loading it privately imports: tempfile, random, ...) only when needed
    kernel: Any = Kernel(visible_ctypes=bool(config.get("visible_ctypes"))) if layered else None
    # Like the zygote: the script's own directory is no import path of the children.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [path for path in sys.path if path != here]
    plans: dict = {"child_seccomp": seccomp.child_filter()}
    namespace: dict = {"__name__": "__main__", "kernel": kernel, "REPO_ROOT": REPO_ROOT}
    for name, value in (config.get("variables") or {}).items():
        namespace[name] = value
    exec(config.get("zygote_setup", ""), namespace)
    if config.get("devnull", True):
        devnull = os.open("/dev/null", os.O_RDWR)
        out = os.dup(1)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
    else:
        out = os.dup(1)
    if config.get("rlimit_as"):
        limit = int(config["rlimit_as"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    layer = config.get("landlock")
    if layer is not None:
        read_paths = layer.get("read_paths") or landlock.stdlib_paths()
        abi = kernel.landlock_abi()
        zygote_plan = landlock.plan(read_paths, abi)
        kernel.landlock_restrict(*zygote_plan.arguments())
        if layer.get("child_scope"):
            child = landlock.child_plan(abi)
            plans["child_landlock"] = child.arguments() if child is not None else None
    if config.get("zygote_seccomp"):
        kernel.no_new_privs()
        kernel.seccomp(seccomp.zygote_filter())
    results: dict[str, dict] = {}
    for label, source in scenarios.items():
        read_fd, write_fd = _pipe()
        pid = _fork()
        if pid == 0:
            try:
                _close(read_fd)
                _child(kernel, config, plans, namespace, source, write_fd)
            finally:
                _exit(0)
        _close(write_fd)
        chunks = []
        while True:
            chunk = _read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        _close(read_fd)
        _, status = _waitpid(pid, 0)
        if chunks:
            results[label] = json.loads(b"".join(chunks))
        elif os.WIFSIGNALED(status):
            results[label] = {"status": "died", "signal": os.WTERMSIG(status)}
        else:
            results[label] = {"status": "died", "exit": os.WEXITSTATUS(status)}
    _write(out, (json.dumps(results) + "\n").encode())


if __name__ == "__main__":
    main()
