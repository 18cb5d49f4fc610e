"""The engine <-> sandbox protocol as typed data: job, child result, zygote hello.

The byte layout lives in ``runtime/wire.py`` (shared with the zygote, standard library
only); this module is the host side's typed view of it. A job holds a program and an
argument list and nothing else: no gold output, no expected value, no hint of which
check it serves. A child result holds what happened: a status and, per call of ``f``,
the ``repr`` text of the returned value. Everything that decides a verdict happens in
the engine, on these texts.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass, field

from executor.limits import Limits
from executor.sandbox.runtime import wire

# Statuses a result can carry beyond the child's own (wire.STATUS_NAMES).
TIMEOUT = "timeout"
SANDBOX_ERROR = "sandbox_error"


_LIMITS = Limits()  # the settings tree's per-execution defaults


@dataclass(frozen=True)
class SandboxJob:
    """One execution: run ``program``, then call ``f(<input>)`` ``calls`` times."""

    program: str
    input: str
    calls: int = 2
    timeout_s: float = _LIMITS.timeout_s
    cpu_s: int = _LIMITS.cpu_seconds()
    memory_mb: int = _LIMITS.memory_mb
    # The program compiled by the trusted host and marshalled (compiling runs no program code),
    # so that no child compiles it again; empty: the child compiles the source.
    code: bytes = field(default=b"", repr=False, compare=False)

    def encode(self, job_id: int, with_code: bool = True) -> bytes:
        program = self.program.encode("utf-8", "surrogatepass")
        argument = self.input.encode("utf-8", "surrogatepass")
        code = self.code if with_code else b""
        header = wire.JOB.pack(
            job_id,
            float(self.timeout_s),
            int(self.cpu_s),
            int(self.memory_mb),
            int(self.calls),
            len(program),
            len(code),
        )
        return header + program + code + argument


@dataclass
class ChildResult:
    """What one execution reported. ``outputs`` holds one repr text per call of ``f``."""

    status: str
    outputs: tuple[str, ...] = ()
    detail: str = ""
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    maxrss_kb: int = 0
    lane: int = -1

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def error(cls, detail: str, lane: int = -1) -> ChildResult:
        return cls(SANDBOX_ERROR, (), detail, lane=lane)


@dataclass(frozen=True)
class ZygoteHello:
    """The first frame to a zygote: how it confines and runs its children."""

    max_output_chars: int = 200_000
    max_print_chars: int = 1_000_000
    sandbox_uid: int | None = None
    sandbox_gid: int | None = None
    spawn_helper: str | None = None
    # Live children that count as "fast" (have run less than demote_after_ms); a zygote
    # reads the next job only while one of these is free.
    fast_slots: int = 4
    # All live children, demoted ones included (each may use its whole memory limit).
    max_live: int = 32
    demote_after_ms: float = 100.0
    # Confinement layers this zygote may do without (an explicit downgrade, named in /readyz).
    allow_missing: tuple[str, ...] = ()
    # Modules the policy forbids: their functions raise inside the sandbox (runtime/guards.py).
    forbidden_modules: tuple[str, ...] = ()
    # Test only: skip the in-process Python layers (audit hook, module guards) to show that
    # the kernel layers hold on their own.
    python_layers: bool = True
    # Test only: confinement layers the zygote leaves out on purpose, so that a test can show
    # that the self-test notices (each must also be in allow_missing, or the zygote refuses).
    skip_layers: tuple[str, ...] = ()

    def encode(self) -> bytes:
        data = asdict(self)
        data["skip_layers"] = list(self.skip_layers)
        data["allow_missing"] = list(self.allow_missing)
        data["forbidden_modules"] = list(self.forbidden_modules)
        return json.dumps(data, separators=(",", ":")).encode()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def decode_child_payload(payload: bytes) -> tuple[str, tuple[str, ...], str]:
    """(status, outputs, detail) from a child's payload; ValueError if malformed."""
    if len(payload) < wire.CHILD.size:
        raise ValueError("truncated child payload")
    code, count = wire.CHILD.unpack_from(payload, 0)
    if code >= len(wire.STATUS_NAMES):
        raise ValueError(f"unknown child status {code}")
    offset = wire.CHILD.size
    texts: list[str] = []
    for _ in range(count + 1):
        if offset + wire.LENGTH.size > len(payload):
            raise ValueError("truncated child payload")
        (length,) = wire.LENGTH.unpack_from(payload, offset)
        offset += wire.LENGTH.size
        if offset + length > len(payload):
            raise ValueError("truncated child payload")
        texts.append(_text(payload[offset : offset + length]))
        offset += length
    if offset != len(payload):
        raise ValueError("trailing bytes in child payload")
    return wire.STATUS_NAMES[code], tuple(texts[:-1]), texts[-1]


def interpret_exit(kind: int, wait_status: int, timeout_s: float) -> tuple[str, str]:
    """(status, detail) of a child that gave no report."""
    if kind == wire.KIND_TIMEOUT:
        return TIMEOUT, f"no result within the wall-clock limit of {timeout_s:g} s"
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGXCPU:
            return TIMEOUT, "the CPU-time limit was reached"
        if sig == signal.SIGKILL:
            return "memory_limit", "the process was killed (out of memory)"
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return "runtime_error", f"the process crashed with signal {name}"
    code = os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else -1
    return (
        "runtime_error",
        f"the process exited (code {code}) without a result, e.g. via os._exit",
    )


@dataclass(frozen=True)
class Record:
    """One record from a zygote: a job's final result, or a DEMOTED notice."""

    job_id: int
    kind: int
    result: ChildResult | None  # None for DEMOTED


def decode_record(body: bytes, timeout_for: dict[int, float] | None = None) -> Record:
    """A record frame's body as typed data. A malformed child payload is a runtime_error
    (the child's memory was corrupted); a malformed record is a ValueError (our fault)."""
    if len(body) < wire.RECORD.size:
        raise ValueError("truncated record")
    job_id, kind, wait_status, wall_ms, cpu_ms, maxrss_kb = wire.RECORD.unpack_from(body, 0)
    payload = body[wire.RECORD.size :]
    if kind == wire.KIND_DEMOTED:
        return Record(job_id, kind, None)
    figures = {"wall_ms": round(wall_ms, 3), "cpu_ms": round(cpu_ms, 3), "maxrss_kb": int(maxrss_kb)}
    if kind == wire.KIND_RESULT:
        try:
            status, outputs, detail = decode_child_payload(payload)
        except ValueError as exc:
            status, outputs, detail = "runtime_error", (), f"the child's report is corrupt ({exc})"
        return Record(job_id, kind, ChildResult(status, outputs, detail, **figures))
    if kind == wire.KIND_NOT_STARTED:
        return Record(
            job_id,
            kind,
            ChildResult(SANDBOX_ERROR, (), f"the zygote could not start a child: {_text(payload)}"),
        )
    if kind not in (wire.KIND_TIMEOUT, wire.KIND_NO_RESULT):
        raise ValueError(f"unknown record kind {kind}")
    timeout_s = (timeout_for or {}).get(job_id, 0.0)
    status, detail = interpret_exit(kind, wait_status, timeout_s)
    return Record(job_id, kind, ChildResult(status, (), detail, **figures))
