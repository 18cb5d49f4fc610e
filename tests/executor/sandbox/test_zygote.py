"""The zygote and its C loop: the wire protocol, start-up refusals, and what a child reports."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from executor.engine import Engine
from executor.sandbox import native
from executor.sandbox.pool import LAUNCH_PATH, PoolConfig, SandboxPool, default_sandbox_python
from executor.sandbox.protocol import (
    ChildResult,
    SandboxJob,
    ZygoteHello,
    decode_child_payload,
    decode_record,
)
from executor.sandbox.runtime import wire


def _payload(status: int, outputs: list[bytes], detail: bytes) -> bytes:
    parts = [wire.CHILD.pack(status, len(outputs))]
    for text in [*outputs, detail]:
        parts.append(wire.LENGTH.pack(len(text)) + text)
    return b"".join(parts)


def test_child_payload_round_trips_any_text() -> None:
    payload = _payload(0, [b"'a\\udcff'", b"[1, 2]"], b"")
    assert decode_child_payload(payload) == ("ok", ("'a\\udcff'", "[1, 2]"), "")
    # Bytes that are not UTF-8 still decode, escaped: the judge never sees a surrogate.
    status, outputs, _ = decode_child_payload(_payload(0, [b"\xff\xfe"], b""))
    assert status == "ok" and outputs == ("\\xff\\xfe",)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00", _payload(0, [b"1"], b"")[:-1], _payload(0, [b"1"], b"") + b"x", _payload(99, [], b"")],
)
def test_a_corrupt_child_payload_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        decode_child_payload(payload)


def test_records_carry_figures_and_a_corrupt_report_is_a_runtime_error() -> None:
    good = wire.RECORD.pack(7, wire.KIND_RESULT, 0, 1.5, 0.75, 2048) + _payload(0, [b"1"], b"")
    record = decode_record(good)
    assert record.job_id == 7 and record.result is not None
    assert (record.result.status, record.result.outputs, record.result.wall_ms, record.result.maxrss_kb) == (
        "ok",
        ("1",),
        1.5,
        2048,
    )
    bad = decode_record(wire.RECORD.pack(8, wire.KIND_RESULT, 0, 1.0, 1.0, 0) + b"junk")
    assert bad.result is not None and bad.result.status == "runtime_error"
    timeout = decode_record(wire.RECORD.pack(9, wire.KIND_TIMEOUT, 9, 5000.0, 1.0, 0), {9: 5.0})
    assert (
        timeout.result is not None and timeout.result.status == "timeout" and "5 s" in timeout.result.detail
    )
    demoted = decode_record(wire.RECORD.pack(10, wire.KIND_DEMOTED, 0, 0, 0, 0))
    assert demoted.kind == wire.KIND_DEMOTED and demoted.result is None
    with pytest.raises(ValueError):
        decode_record(b"short")


def test_frames_round_trip_and_an_oversized_frame_is_refused() -> None:
    buffer = io.BytesIO()
    wire.write_frame(buffer, b"hello")
    buffer.seek(0)
    assert wire.read_frame(buffer) == b"hello" and wire.read_frame(buffer) is None
    with pytest.raises(ValueError):
        wire.read_frame(io.BytesIO(wire.FRAME.pack(wire.MAX_FRAME_BYTES + 1)))


def _start(hello: ZygoteHello) -> tuple[subprocess.Popen[bytes], dict]:
    process = subprocess.Popen(
        [default_sandbox_python(), "-s", "-S", "-B", str(LAUNCH_PATH)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={"PYTHONHASHSEED": "1", "PATH": "/usr/bin:/bin"},
    )
    assert process.stdin is not None and process.stdout is not None
    wire.write_frame(process.stdin, hello.encode())
    body = wire.read_frame(process.stdout)
    assert body is not None
    return process, json.loads(body)


def test_a_zygote_without_its_c_loop_refuses_to_serve() -> None:
    process, answer = _start(ZygoteHello(sandbox_uid=64900, sandbox_gid=64900, spawn_helper=None))
    process.kill()
    process.wait()
    assert "error" in answer and "c_runner" in answer["error"], answer


def test_every_layer_holds_in_the_default_zygote(engine: Engine) -> None:
    for info in engine.pool.zygote_info():
        assert info["missing"] == [], info
        assert set(info["layers"]) >= {"c_runner", "landlock", "seccomp", "uid", "python"}


def test_the_launcher_loads_the_runtime_package_without_compiling_in_the_zygote() -> None:
    helper = native.spawn_helper(default_sandbox_python())
    assert helper is not None
    process, answer = _start(
        ZygoteHello(sandbox_uid=64901, sandbox_gid=64901, spawn_helper=helper, fast_slots=1, max_live=2)
    )
    try:
        assert "ready" in answer, answer
        assert answer["ready"]["runtime_version"]
    finally:
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=10) == 0


def _run(engine: Engine, program: str, argument: str = "", lane: int = 0) -> ChildResult:
    limits = engine.settings.limits
    job = SandboxJob(program, argument, calls=1, timeout_s=limits.timeout_s, cpu_s=limits.cpu_seconds())
    return engine.pool.submit(job, lane, "test").result(timeout=60)


def test_recursion_limit_is_capped_in_the_sandbox(engine: Engine) -> None:
    program = "import sys\ndef f(n):\n    sys.setrecursionlimit(10 ** 9)\n    return sys.getrecursionlimit()"
    result = _run(engine, program, "0")
    assert result.status == "ok" and int(result.outputs[0]) <= 20_000, result


@pytest.mark.parametrize(
    ("expression", "refused_early"),
    [
        ("[0] * 150_000", True),
        ("{i: 0 for i in range(60_000)}", True),
        ("'x' * 250_000", True),
        ("[0] * 90_000", False),
    ],
)
def test_an_output_that_cannot_fit_is_refused_before_repr(
    engine: Engine, expression: str, refused_early: bool
) -> None:
    result = _run(engine, f"def f():\n    return {expression}")
    assert result.status == "output_limit", result
    assert ("at least" in result.detail) is refused_early, result.detail


@pytest.mark.parametrize(
    ("program", "argument", "status"),
    [
        ("def f(a):\n    return a[::-1]", "'abc'", "ok"),
        ("x = (", "1", "syntax_error"),
        ("def g():\n    pass", "1", "bad_form"),
        ("f = 3", "1", "bad_form"),
        ("def f(a):\n    raise KeyError('k')", "1", "runtime_error"),
        ("raise SystemExit(0)\ndef f(a):\n    return a", "1", "runtime_error"),
        ("def f(a):\n    return a", "1), (2", "invalid_input"),
        ("def f(a):\n    return a", "undefined_name", "invalid_input"),
        ("def f(a):\n    return bytearray(10 ** 10)", "1", "memory_limit"),
        ("def f(a):\n    print('x' * 2_000_000)\n    return a", "1", "output_limit"),
        ("def f(a):\n    return a\x00", "1", "syntax_error"),
    ],
)
def test_what_a_child_reports(engine: Engine, program: str, argument: str, status: str) -> None:
    result = _run(engine, program, argument)
    assert result.status == status, result
    if status == "ok":
        assert result.outputs == ("'cba'",)
    else:
        assert result.outputs == () and result.detail


def test_a_child_reports_both_calls_so_hidden_state_shows(engine: Engine) -> None:
    job = SandboxJob("def f(a, seen=[]):\n    seen.append(a)\n    return len(seen)", "1", calls=2)
    result = engine.pool.submit(job, 0, "test").result(timeout=60)
    assert result.status == "ok" and result.outputs == ("1", "2"), result


def test_repeats_go_to_different_lanes_and_lanes_to_different_processes(engine: Engine) -> None:
    infos = engine.pool.zygote_info()
    assert len({info["pid"] for info in infos}) == len(infos) == engine.pool.size
    assert len({info["hash_seed_probe"] for info in infos}) == engine.settings.sandbox.lanes


def test_a_dead_zygote_is_restarted_and_the_job_still_gets_a_result() -> None:
    with SandboxPool(PoolConfig(lanes=1, zygotes_per_lane=1, sandbox_uid_base=64500)) as pool:
        pid = pool.zygote_info()[0]["pid"]
        subprocess.run(["kill", "-9", str(pid)], check=True)
        result = pool.submit(SandboxJob("def f(a):\n    return a", "7"), 0).result(timeout=60)
        assert result.status == "ok" and result.outputs[0] == "7", result
        assert pool.zygote_info()[0]["pid"] != pid


def test_the_helper_is_built_once_and_reused() -> None:
    python = default_sandbox_python()
    first = native.spawn_helper(python)
    native.spawn_helper.cache_clear()
    assert native.spawn_helper(python) == first  # found in the cache directory, not rebuilt
    assert first is not None and Path(first).stat().st_size > 0


def _anonymous_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("RssAnon:")).split()[1])


def test_big_outputs_do_not_stay_resident_in_the_zygote(engine: Engine) -> None:
    """Every page a zygote holds is copied at each fork: 100 kB reports must not leave it bigger."""
    pid = engine.pool.zygote_info()[0]["pid"]
    small = SandboxJob("def f(a):\n    return a", "1")
    [f.result() for f in [engine.pool.submit(small, 0) for _ in range(16)]]
    before = _anonymous_kb(pid)
    big = SandboxJob("def f(a):\n    return ['x' * 100] * 1000", "0")
    for _ in range(4):
        results = [f.result() for f in [engine.pool.submit(big, 0) for _ in range(16)]]
        assert all(r.status == "ok" for r in results)
    assert _anonymous_kb(pid) - before < 1024, (before, _anonymous_kb(pid))


def test_host_compiled_code_is_used_and_a_corrupt_one_falls_back_to_the_source(engine: Engine) -> None:
    from executor.engine import compiled_program

    program = "def f(a):\n    return a + 1"
    assert engine.pool._accepts_code, "the zygotes read this interpreter's bytecode"
    compiled = compiled_program(program)
    assert compiled
    good = engine.pool.submit(SandboxJob(program, "1", code=compiled), 0).result(timeout=60)
    corrupt = engine.pool.submit(SandboxJob(program, "1", code=b"\x00garbage"), 0).result(timeout=60)
    assert good.outputs == ("2", "2") and corrupt.outputs == ("2", "2"), (good, corrupt)
