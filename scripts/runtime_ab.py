#!/usr/bin/env python3
"""A/B test sandbox runtimes on the AZR seed workload: CPU and page faults per execution.

    .venv/bin/python scripts/runtime_ab.py [--rounds 5] [--tiny] [RUNTIME.py[@c|@python] ...]

Each variant, a runtime file and how its zygote forks (``@c``: the C loop of
executor/sandbox/spawn.c, built for the sandbox interpreter; ``@python``: in Python;
default: this checkout's runtime.py both ways), is started as one zygote through
launch.py and fed the same seed jobs (or, with ``--tiny``, a one-line program) in
batches of 16; the variants
take turns, round after round, so that the VM's drift hits them alike. Printed per
variant, as medians over the rounds: wall time and CPU time per execution (zygote plus
its children, from /proc), and minor page faults per execution in the zygote and in its
children. A variant must speak this checkout's frame protocol (results frames).

Why: on a VM whose speed drifts by a third from minute to minute, only interleaved
runs compare, and copy-on-write faults are the cost to watch (see runtime.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from executor import datasets  # noqa: E402
from executor.sandbox import native, runtime  # noqa: E402
from executor.sandbox.pool import (  # noqa: E402
    LAUNCH_PATH,
    RUNTIME_PATH,
    ZYGOTE_ENVIRONMENT,
    default_sandbox_python,
)

LIMITS = {"timeout_s": 5.0, "cpu_s": 6, "memory_mb": 512}
SLOW_MS = 50.0  # executions this long are the program's own work: left out


def _stat(pid: int) -> list[int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # minflt, cminflt, utime, stime, cutime, cstime
    return [int(fields[index]) for index in (7, 8, 11, 12, 13, 14)]


def measure(variant: str, jobs: list[dict], uid: int | None) -> dict[str, float]:
    path, _, spawn = variant.partition("@")
    helper = native.spawn_helper(default_sandbox_python()) if spawn == "c" else None
    if spawn == "c" and helper is None:
        raise SystemExit("the C fork loop could not be built here (see the log)")
    env = {"PYTHONHASHSEED": "7", **ZYGOTE_ENVIRONMENT}  # as the pool starts its zygotes
    command = [default_sandbox_python(), "-s", "-S", "-B", str(LAUNCH_PATH), path]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert process.stdin is not None and process.stdout is not None
    try:
        hello = {"sandbox_uid": uid, "sandbox_gid": uid, "spawn_helper": helper}
        runtime.write_frame(process.stdin, hello)
        if runtime.read_frame(process.stdout) is None:
            raise SystemExit(f"{path}: the zygote did not start")
        runtime.write_frame(process.stdin, {"jobs": jobs[:32]})  # warm-up
        runtime.read_results(process.stdout)
        before, started = _stat(process.pid), time.perf_counter()
        for start in range(0, len(jobs), 16):
            runtime.write_frame(process.stdin, {"jobs": jobs[start : start + 16]})
            if runtime.read_results(process.stdout) is None:
                raise SystemExit(f"{path}: the zygote closed its channel")
        elapsed, after = time.perf_counter() - started, _stat(process.pid)
    finally:
        process.stdin.close()
        process.wait()
    delta = [b - a for a, b in zip(before, after, strict=True)]
    tick, count = os.sysconf("SC_CLK_TCK"), len(jobs)
    return {
        "wall_us": elapsed / count * 1e6,
        "cpu_us": sum(delta[2:]) / tick / count * 1e6,
        "zygote_faults": delta[0] / count,
        "child_faults": delta[1] / count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument(
        "variants",
        nargs="*",
        help="RUNTIME.py[@c|@python] (default: this checkout's runtime.py, @c and @python)",
    )
    parser.add_argument("--tiny", action="store_true", help="a one-line program instead of the seeds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args(argv)
    variants = args.variants or [f"{RUNTIME_PATH}@c", f"{RUNTIME_PATH}@python"]
    variants = [v if "@" in v else f"{v}@python" for v in variants]
    if args.tiny:
        program = "def f(a):\n    return a"
        jobs = [
            {"mode": "run", "program": f"{program}  # {i}", "input": "[1, 2]", "calls": 2, "limits": LIMITS}
            for i in range(800)
        ]
    else:
        jobs = [
            {"mode": "run", "program": s.program, "input": s.input, "calls": 2, "limits": LIMITS}
            for s in datasets.azr_seeds()
        ]
    # Leave out the seeds whose own work dominates (seed #224 builds 3.2 million strings).
    with subprocess.Popen(
        [default_sandbox_python(), "-s", "-S", "-B", str(LAUNCH_PATH), str(RUNTIME_PATH)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as probe:
        assert probe.stdin is not None and probe.stdout is not None
        runtime.write_frame(probe.stdin, {})
        runtime.read_frame(probe.stdout)
        runtime.write_frame(probe.stdin, {"jobs": jobs})
        timings = runtime.read_results(probe.stdout) or []
        probe.stdin.close()
    jobs = [job for job, result in zip(jobs, timings, strict=True) if result.get("wall_ms", 0.0) < SLOW_MS]
    uid = 61000 if os.getuid() == 0 else None
    print(f"{len(jobs)} jobs per round (executions over {SLOW_MS:g} ms left out), {args.rounds} rounds")
    figures: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    for _ in range(args.rounds):
        for variant in variants:
            figures[variant].append(measure(variant, jobs, uid))
    for variant, rounds in figures.items():
        median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(
            f"{variant:60s} wall {median['wall_us']:6.0f} us  cpu {median['cpu_us']:6.0f} us  "
            f"faults: zygote {median['zygote_faults']:4.0f}, child {median['child_faults']:4.0f}  per execution"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
