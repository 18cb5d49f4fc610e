"""The engine sections of `azr-exec bench`: throughput and latency of isolated executions,
next to a naive baseline (``engine``), and a single request's latency while another client
floods the pool with spinning programs (``flood``).

The engine section replays the AZR seed workload (deduction/abduction seeds: program +
input) through ``Engine.validate`` (cold, so every task runs ``repeats`` times) and
``Engine.verify`` (deduction and abduction answers), then the same validation again to
measure cache hits. The BASELINE, measured in the same run on the same programs, is what a
naive executor does: one fresh ``/usr/bin/python3`` subprocess per execution, with rlimits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.sections import SectionUnavailable, print_table, row
from executor.limits import Limits

# An execution this long is the program's own work, not the executor's (reported apart).
SLOW_EXECUTION_MS = 50

# ---------------------------------------------------------------------------- baseline

_BASELINE_SCRIPT = r"""
import json, resource, sys
job = json.loads(sys.stdin.read())
for which, value in ((resource.RLIMIT_CPU, job["cpu_s"]), (resource.RLIMIT_AS, job["memory_mb"] << 20),
                     (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(which, (value, value))
namespace = {"__name__": "__main__"}
try:
    exec(compile(job["program"], "<program>", "exec"), namespace)
    args, kwargs = eval("(lambda *a, **k: (a, k))(" + job["input"] + ")", namespace)
    print(json.dumps({"status": "ok", "output": repr(namespace["f"](*args, **kwargs))[:1000]}))
except BaseException as exc:
    print(json.dumps({"status": "error", "detail": type(exc).__name__}))
"""


def baseline(
    jobs: list[tuple[str, str]], runs: int, workers: int, limits: Limits | None = None
) -> dict[str, Any]:
    """One fresh `/usr/bin/python3 -I -S` per execution, rlimits set (the engine's default
    limits), `workers` at a time."""
    limits = limits or Limits()
    timeout_s = limits.timeout_s
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    latencies: list[float] = []

    def one(index: int) -> None:
        program, text = jobs[index % len(jobs)]
        payload = json.dumps(
            {"program": program, "input": text, "cpu_s": limits.cpu_seconds(), "memory_mb": limits.memory_mb}
        )
        started = time.perf_counter()
        try:
            subprocess.run(
                [python, "-I", "-S", "-c", _BASELINE_SCRIPT],
                input=payload.encode(),
                capture_output=True,
                timeout=timeout_s,
                env={"PATH": "/usr/bin:/bin"},
            )
        except subprocess.TimeoutExpired:
            pass
        latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with (
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=runs, desc="baseline (fresh python3)", unit="exec") as bar,
    ):
        for _ in pool.map(one, range(runs)):
            bar.update()
    elapsed = time.perf_counter() - started
    return row(f"BASELINE: fresh python3 x{workers}", runs, elapsed, latencies, f"{python} -I -S, rlimits")


# ---------------------------------------------------------------------------- engine section


def _sandbox_cpu_s(pool: Any) -> float:
    """CPU seconds used so far by the pool's local zygotes and their reaped children
    (from /proc), or -1.0 where they cannot be read."""
    if getattr(pool, "docker_factory", None) is not None:
        return -1.0  # zygote pids are the containers' own, not this machine's
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for info in pool.zygote_info():
            fields = Path(f"/proc/{info['pid']}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[index]) for index in (11, 12, 13, 14))  # utime stime cutime cstime
    except (OSError, KeyError, ValueError, IndexError):
        return -1.0
    return total / ticks


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def engine_section(args: argparse.Namespace) -> dict[str, Any]:
    from executor import datasets
    from executor.engine import Engine
    from executor.settings import load_settings
    from executor.verdicts import Answer, ValidateTask, Verdict

    quick = bool(getattr(args, "quick", False))
    try:
        seeds = datasets.azr_seeds()
    except OSError as exc:
        raise SectionUnavailable(
            f"no AZR seed data under {datasets.data_dir()} ({exc}); set AZR_DATA_DIR"
        ) from exc
    if not seeds:
        raise SectionUnavailable(f"no AZR seed files under {datasets.data_dir()}")
    rounds = 1 if quick else 3
    # A per-run tag makes every program new to the cache, so the cold phases really execute.
    tag = uuid.uuid4().hex[:8]
    settings = load_settings()
    sandbox = settings.sandbox
    engine = Engine(settings)
    started = time.perf_counter()
    engine.start()
    startup_s = time.perf_counter() - started
    print(
        f"\nengine: {sandbox.lanes} lanes x {sandbox.zygotes_per_lane} zygote(s), {sandbox.fast_slots} fast slot(s) each, "
        f"{os.cpu_count()} CPUs, started in {startup_s:.2f} s; workload: {len(seeds)} AZR seed triplets"
        f" x {rounds} round(s)"
    )
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {
        "lanes": sandbox.lanes,
        "zygotes_per_lane": sandbox.zygotes_per_lane,
        "startup_s": round(startup_s, 3),
        "seed_triplets": len(seeds),
    }
    try:
        # Warm-up: a few executions so that first-touch costs are not counted.
        engine.validate(
            [ValidateTask(f"w{i}", f"def f(a):\n    return a  # warm {tag} {i}", ["1"]) for i in range(32)]
        )

        tasks = [
            ValidateTask(f"{s.id}#{r}", f"{s.program}\n# bench {tag} round {r}", [s.input])
            for r in range(rounds)
            for s in seeds
        ]

        # ---- validate, cold: every task runs twice (repeats=2), each run a fresh forked process.
        pool = engine.pool
        pool.latencies = []
        before = pool.executions
        results = []
        cpu_before = _sandbox_cpu_s(pool)
        started = time.perf_counter()
        with tqdm(total=len(tasks), desc="validate (cold)", unit="task") as bar:
            for chunk in _chunks(tasks, 256):
                results += engine.validate(chunk, repeats=2)
                bar.update(len(chunk))
        elapsed = time.perf_counter() - started
        sandbox_cpu_s = _sandbox_cpu_s(pool) - cpu_before
        executions = pool.executions - before
        verdicts = {v.value: 0 for v in Verdict}
        for result in results:
            verdicts[result.verdict.value] += 1
        rows.append(
            row(
                "engine validate, cold (repeats=2)",
                executions,
                elapsed,
                pool.latencies,
                f"{len(tasks)} tasks in {elapsed:.2f} s",
            )
        )
        figures["validate_verdicts"] = {k: v for k, v in verdicts.items() if v}
        # Where the phase's time went: a few seeds compute for a long time in f itself
        # (seed #224 builds 3.2 million strings), which no executor can make faster.
        slow = [wall for wall in pool.latencies if wall > SLOW_EXECUTION_MS]
        figures["validate_slow_executions"] = {
            "count": len(slow),
            "wall_s": round(sum(slow) / 1000, 3),
            "share_of_cpu": round(sum(slow) / 1000 / (elapsed * (os.cpu_count() or 1)), 3),
        }
        # How busy the CPUs were: the zygotes and their children, as a share of every CPU for
        # the phase (None where the zygotes are not this machine's processes, as with Docker).
        figures["validate_sandbox_cpu_share"] = (
            round(sandbox_cpu_s / (elapsed * (os.cpu_count() or 1)), 3) if sandbox_cpu_s >= 0 else None
        )

        # ---- verify, cold: a deduction and an abduction answer per valid task.
        answers = []
        for task, result in zip(tasks, results, strict=True):
            if result.valid and result.outputs[0] is not None:
                answers.append(
                    Answer(
                        task.id + "/d",
                        "deduction",
                        result.outputs[0],
                        task.program,
                        task.inputs[0],
                        result.outputs[0],
                    )
                )
                answers.append(
                    Answer(task.id + "/a", "abduction", task.inputs[0], task.program, None, result.outputs[0])
                )
        pool.latencies = []
        before = pool.executions
        checked = []
        started = time.perf_counter()
        with tqdm(total=len(answers), desc="verify (cold)", unit="answer") as bar:
            for chunk in _chunks(answers, 256):
                checked += engine.verify(chunk)
                bar.update(len(chunk))
        elapsed = time.perf_counter() - started
        executions = pool.executions - before
        rows.append(
            row(
                "engine verify, cold (ded+abd)",
                executions,
                elapsed,
                pool.latencies,
                f"{sum(r.correct for r in checked)}/{len(checked)} correct",
            )
        )

        # ---- deduction verify: no sandbox at all, two literals parsed and compared here.
        deductions = [a for a in answers if a.task_type == "deduction"]
        deductions = (deductions * (1 + 20_000 // max(1, len(deductions))))[:20_000]
        before = pool.executions
        started = time.perf_counter()
        judged = engine.verify(deductions)
        elapsed = time.perf_counter() - started
        deduction_row = row(
            "engine verify, deduction only",
            len(deductions),
            elapsed,
            [elapsed * 1000 / max(1, len(deductions))],
            f"{pool.executions - before} executions (none needed); "
            f"{sum(r.correct for r in judged)}/{len(judged)} correct; answers/s",
        )
        rows.append(deduction_row)
        figures["deduction_answers_per_s"] = deduction_row["executions_per_s"]

        # ---- cache hits: the same validations again.
        cache = engine.cache
        hits_before = getattr(cache, "hits", 0)
        misses_before = getattr(cache, "misses", 0)
        before = pool.executions
        latencies = []
        started = time.perf_counter()
        with tqdm(total=len(tasks), desc="validate (cached)", unit="task") as bar:
            for chunk in _chunks(tasks, 256):
                t0 = time.perf_counter()
                engine.validate(chunk, repeats=2)
                latencies.append((time.perf_counter() - t0) * 1000 / len(chunk))
                bar.update(len(chunk))
        elapsed = time.perf_counter() - started
        hits = getattr(cache, "hits", 0) - hits_before
        lookups = hits + getattr(cache, "misses", 0) - misses_before
        hit_rate = hits / lookups if lookups else 0.0
        cache_row = row(
            "engine validate, cache hits",
            len(tasks),
            elapsed,
            latencies,
            f"hit rate {hit_rate:.1%}, {pool.executions - before} executions; per task",
        )
        rows.append(cache_row)
        figures["cache_hit_rate"] = round(hit_rate, 4)
        figures["cache_tasks_per_s"] = cache_row["executions_per_s"]

        # ---- isolation capacity: tiny fresh programs, so the figure is the executor's own cost.
        tiny = [
            ValidateTask(f"c{i}", f"def f(a):\n    return a  # {tag} capacity {i}", ["[1, 2]"])
            for i in range(500 if quick else 2000)
        ]
        pool.latencies = []
        before = pool.executions
        started = time.perf_counter()
        with tqdm(total=len(tiny), desc="validate, tiny programs", unit="task") as bar:
            for chunk in _chunks(tiny, 256):
                engine.validate(chunk, repeats=2)
                bar.update(len(chunk))
        elapsed = time.perf_counter() - started
        rows.append(
            row(
                "engine validate, tiny programs",
                pool.executions - before,
                elapsed,
                pool.latencies,
                "isolation capacity: the executor's own cost",
            )
        )

        # ---- one task at a time: the round-trip latency a single caller sees.
        singles = [
            ValidateTask(f"s{i}", f"def f(a):\n    return sorted(a)[::-1]  # {tag} single {i}", ["[3, 1, 2]"])
            for i in range(100 if quick else 300)
        ]
        latencies = []
        before = pool.executions
        started = time.perf_counter()
        for task in tqdm(singles, desc="validate, one task at a time", unit="task"):
            t0 = time.perf_counter()
            engine.validate([task], repeats=2)
            latencies.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - started
        rows.append(
            row(
                "engine validate, 1 task per call",
                pool.executions - before,
                elapsed,
                latencies,
                "latency = whole call (2 executions)",
            )
        )
        pool.latencies = None
    finally:
        engine.close()

    # ---- the baseline, same machine, same run, same programs.
    runs = max(10, int(getattr(args, "baseline_runs", 300) or 300))
    if quick:
        runs = min(runs, 200)
    workers = os.cpu_count() or 2
    jobs = [(s.program, s.input) for s in seeds]
    base = baseline(jobs, runs, workers)
    rows.append(base)
    rate = base["executions_per_s"]
    print_table(
        "engine section (executions = fresh processes; latency = fork -> result -> reaped)", rows, rate
    )
    engine_rate = rows[0]["executions_per_s"]
    capacity = next(row for row in rows if row["name"] == "engine validate, tiny programs")
    slow = figures["validate_slow_executions"]
    print(
        f"\nisolated executions/s: {engine_rate:,.0f} (validate) / {rows[1]['executions_per_s']:,.0f} (verify); "
        f"p50 {rows[0]['p50_ms']:.2f} ms, p99 {rows[0]['p99_ms']:.2f} ms per execution; "
        f"baseline {rate:,.0f}/s -> {engine_rate / rate:.1f}x; cache hit rate {figures['cache_hit_rate']:.1%}\n"
        f"isolation capacity (tiny programs): {capacity['executions_per_s']:,.0f} executions/s, "
        f"p50 {capacity['p50_ms']:.2f} ms -> {capacity['executions_per_s'] / rate:.1f}x baseline; "
        f"in the validate phase, {slow['count']} execution(s) over {SLOW_EXECUTION_MS} ms (the programs' own "
        f"work) took {slow['wall_s']:.1f} s, about {slow['share_of_cpu']:.0%} of its CPU"
    )
    busy = figures.get("validate_sandbox_cpu_share")
    if busy is not None:
        print(
            f"the sandboxes used {busy:.0%} of all CPU time in the validate phase (the engine itself and idle "
            "time waiting for a call's last, long execution make up the rest)"
        )
    figures["capacity_executions_per_s"] = capacity["executions_per_s"]
    figures["rows"] = rows
    figures["ratio_to_baseline"] = round(engine_rate / rate, 2) if rate else None
    return figures


def flood_section(args: argparse.Namespace) -> dict[str, Any]:
    """One client's single-task requests while another client runs 64 programs that spin
    until a 10 s timeout: the latency the first client sees, idle and under the flood."""
    import threading

    from executor.engine import Engine
    from executor.settings import load_settings
    from executor.verdicts import ValidateTask, Verdict

    quick = bool(getattr(args, "quick", False))
    tag = uuid.uuid4().hex[:8]
    spin_timeout_s = 10.0
    engine = Engine(load_settings())
    engine.start()

    def single(index: int) -> tuple[float, bool]:
        task = ValidateTask(
            f"s{index}", f"def f(a):\n    return sorted(a)[::-1]  # {tag} {index}", ["[3, 1, 2]"]
        )
        t0 = time.perf_counter()
        result = engine.validate([task], repeats=2, client="single")[0]
        return (time.perf_counter() - t0) * 1000, result.valid and result.outputs == ["[3, 2, 1]"]

    try:
        idle = [single(i) for i in range(30)]
        spinners = [
            ValidateTask(f"spin{i}", f"def f(a):\n    while True:\n        a += 1  # {tag} {i}", ["1"])
            for i in range(64)
        ]
        flood_results: list[Any] = []

        def flood() -> None:
            flood_results.extend(
                engine.validate(spinners, repeats=2, timeout_s=spin_timeout_s, client="flood")
            )

        thread = threading.Thread(target=flood, daemon=True)
        flood_started = time.perf_counter()
        thread.start()
        time.sleep(0.5)  # the flood is under way
        loaded: list[tuple[float, bool]] = []
        window_s = 4.0 if quick else 8.0
        with tqdm(desc="single-task requests under the flood", unit="request") as bar:
            while time.perf_counter() - flood_started < window_s and thread.is_alive():
                loaded.append(single(1000 + len(loaded)))
                bar.update(1)
        thread.join()
        flood_s = time.perf_counter() - flood_started
    finally:
        engine.close()
    idle_ms = [ms for ms, _ in idle]
    loaded_ms = [ms for ms, _ in loaded]
    wrong = sum(not ok for _, ok in idle + loaded)
    timeouts = sum(r.verdict is Verdict.TIMEOUT for r in flood_results)
    rows = [
        row("single task, idle engine", len(idle), sum(idle_ms) / 1000, idle_ms, "latency = whole call"),
        row(
            "single task, under the flood",
            len(loaded),
            sum(loaded_ms) / 1000,
            loaded_ms,
            f"while 64 spinners x 2 repeats run to their {spin_timeout_s:g} s timeout",
        ),
    ]
    print_table("flood section (a client's single-task latency while another floods)", rows, None)
    p50 = rows[1]["p50_ms"]
    print(
        f"\nunder the flood: p50 {p50:.1f} ms, p99 {rows[1]['p99_ms']:.1f} ms (idle p50 {rows[0]['p50_ms']:.1f} ms; "
        f"target p50 < 50 ms); {wrong} wrong verdict(s) among {len(idle) + len(loaded)} single tasks; "
        f"{timeouts}/64 spinners timed out, the flood took {flood_s:.1f} s"
    )
    return {"rows": rows, "flood_p50_ms": p50, "wrong_single_verdicts": wrong, "spinner_timeouts": timeouts}
