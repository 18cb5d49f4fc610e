"""Unit tests of the self-contained sandbox runtime (no zygote needed) and of the pool."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import pytest

from executor.engine import Engine
from executor.sandbox import runtime
from executor.sandbox.pool import LAUNCH_PATH, default_sandbox_python


def _denied(program: bytes) -> set[int]:
    """Syscall numbers the straight-line part of a filter returns an errno for."""
    insns = [struct.unpack("HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    denied = set()
    for (code, jt, jf, k), nxt in zip(insns, insns[1:], strict=False):
        if code == 0x15 and jt == 0 and jf == 1 and nxt[0] == 0x06 and nxt[3] & 0xFFFF0000 == 0x00050000:
            denied.add(k)
    return denied


def test_split_seccomp_stages_deny_what_the_full_filter_denies() -> None:
    full = _denied(runtime.build_seccomp_program("full"))
    zygote = _denied(runtime.build_seccomp_program("zygote"))
    child = _denied(runtime.build_seccomp_program("child"))
    assert zygote | child == full
    for name in runtime._CHILD_ONLY:
        assert runtime._DENY_EPERM[name] in child and runtime._DENY_EPERM[name] not in zygote
    for name in ("socket", "execve", "ptrace", "mount", "unshare", "bpf", "setns"):
        assert runtime._DENY_EPERM[name] in zygote
    assert len(runtime.build_seccomp_program("child")) < len(runtime.build_seccomp_program("full")) // 3
    with pytest.raises(ValueError):
        runtime.build_seccomp_program("other")


def test_zygotes_run_with_both_seccomp_stages(engine: Engine) -> None:
    for info in engine.pool.zygote_info():
        assert info["seccomp"] is True
        assert info.get("seccomp_mode") == "zygote+child", info


def test_frames_round_trip() -> None:
    buffer = io.BytesIO()
    runtime.write_frame(buffer, {"jobs": [{"a": 1}]})
    buffer.seek(0)
    assert runtime.read_frame(buffer) == {"jobs": [{"a": 1}]}
    assert runtime.read_frame(buffer) is None


def test_result_fields_round_trip_any_text() -> None:
    result = {
        "status": "nondeterministic",
        "detail": "3:4: colons, digits 12:ab and a lone surrogate \udc80",
        "output": "",
        "outputs": ["1:2", "", "\x00\n"],
    }
    assert runtime.decode_fields(runtime.encode_fields(result)) == result


@pytest.mark.parametrize("payload", [b"6:status", b"x:y", b"2:ab", b"-1:a1:b", b"9:status2:ok"])
def test_malformed_result_fields_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        runtime.decode_fields(payload)


def test_results_frame_carries_zygote_figures_and_flags_a_corrupt_payload() -> None:
    records = [
        runtime.encode_result(runtime.encode_fields({"status": "ok", "output": "1"}), 1.5, 2048, 0.75),
        runtime.encode_result(b"not fields", 2.0, 0, 0.0),
    ]
    buffer = io.BytesIO()
    runtime.write_results(buffer, records)
    buffer.seek(0)
    first, second = runtime.read_results(buffer) or []
    assert first == {"status": "ok", "output": "1", "wall_ms": 1.5, "maxrss_kb": 2048, "cpu_ms": 0.75}
    assert second["status"] == "runtime_error" and "corrupted" in second["detail"]
    assert runtime.read_results(buffer) is None


def test_truncated_results_frame_is_an_error() -> None:
    body = runtime.encode_result(b"6:status2:ok", 1.0, 1, 1.0)[:-3]
    with pytest.raises(ValueError):
        runtime.decode_results(body)


def test_launcher_runs_the_runtime_as_main_and_reports_a_file_it_cannot_compile(tmp_path: Path) -> None:
    python = default_sandbox_python()
    script = tmp_path / "probe.py"
    script.write_text("import sys\nif __name__ == '__main__':\n    print(__file__, sys.argv[1:])\n")
    done = subprocess.run(
        [python, "-s", "-S", "-B", str(LAUNCH_PATH), str(script), "a", "b"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"{script} ['a', 'b']", done
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    done = subprocess.run(
        [python, "-s", "-S", "-B", str(LAUNCH_PATH), str(broken)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0 and "cannot compile" in done.stderr, done


def test_oversized_frame_is_refused() -> None:
    buffer = io.BytesIO(runtime.FRAME_HEADER.pack(runtime.MAX_FRAME_BYTES + 1))
    with pytest.raises(ValueError):
        runtime.read_frame(buffer)


def test_canonical_form_ignores_set_and_dict_order_only() -> None:
    assert runtime.canonical({"b", "a"}) == runtime.canonical({"a", "b"})
    assert runtime.canonical({2: 0, 1: 0}) == runtime.canonical({1: 0, 2: 0})
    assert runtime.canonical([1, 2]) != runtime.canonical([2, 1])
    assert runtime.canonical((1,)) != runtime.canonical([1])
    assert runtime.canonical(frozenset({1})) != runtime.canonical({1})


def test_values_equal_is_python_equality_without_program_classes() -> None:
    assert runtime.values_equal((1,), (1,)) and runtime.values_equal(1, 1.0)
    assert not runtime.values_equal([1], (1,))

    class Anything:
        __module__ = "__main__"

        def __eq__(self, other: object) -> bool:
            return True

    assert not runtime.values_equal(5, Anything())
    assert runtime.values_equal(Anything(), Anything())  # the gold itself holds the class


def test_recursion_limit_is_capped_in_the_sandbox(engine: Engine) -> None:
    program = "import sys\ndef f(n):\n    sys.setrecursionlimit(10 ** 9)\n    return sys.getrecursionlimit()"
    job = {
        "mode": "run",
        "program": program,
        "input": "0",
        "calls": 1,
        "limits": engine.settings.limits.for_job(),
    }
    [result] = engine.pool.run([(job, 0)])
    assert result["status"] == "ok" and int(result["output"]) <= runtime.MAX_RECURSION_LIMIT


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
    job = {
        "mode": "run",
        "program": f"def f():\n    return {expression}",
        "input": "",
        "calls": 1,
        "limits": engine.settings.limits.for_job(),
    }
    [result] = engine.pool.run([(job, 0)])
    assert result["status"] == "output_limit", result
    assert ("at least" in result["detail"]) is refused_early, result["detail"]


def test_result_channel_needs_the_per_job_token(engine: Engine) -> None:
    program = (
        'import os\ndef f(x):\n    os.write(3, b\'AZR-RESULT\\n{"status": "ok", "output": "1"}\')\n'
        '    os.write(4, b\'AZR-RESULT\\n{"status": "ok", "output": "1"}\')\n    os._exit(0)'
    )
    job = {
        "mode": "check_call",
        "program": program,
        "input": "0",
        "expected": "1",
        "limits": engine.settings.limits.for_job(),
    }
    [result] = engine.pool.run([(job, 1)])
    assert result["status"] == "runtime_error", result


def test_repeats_go_to_different_lanes_and_lanes_to_different_processes(engine: Engine) -> None:
    infos = engine.pool.zygote_info()
    assert len({info["pid"] for info in infos}) == len(infos) == engine.pool.size
    assert len({info["hash_seed_probe"] for info in infos}) == engine.settings.lanes


def test_a_dead_zygote_is_restarted_and_the_job_still_gets_a_result() -> None:
    from executor.sandbox.pool import PoolConfig, SandboxPool

    with SandboxPool(PoolConfig(lanes=1, sandbox_uid_base=64500)) as pool:
        zygote = pool._zygotes[0]
        assert zygote.channel is not None
        zygote.channel.process.kill()  # type: ignore[attr-defined]
        zygote.channel.process.wait()  # type: ignore[attr-defined]
        job = {
            "mode": "run",
            "program": "def f(a):\n    return a",
            "input": "7",
            "calls": 1,
            "limits": {"timeout_s": 5, "cpu_s": 6, "memory_mb": 256},
        }
        [result] = pool.run([(job, 0)])
        assert result["status"] == "ok" and result["output"] == "7"
        assert zygote.restarts == 1
