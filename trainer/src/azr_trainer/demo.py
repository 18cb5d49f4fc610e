"""``azr-train demo``: the toy preset trained against a control run (same seed, ``optim.lr=0``).

Both runs start from the same warmed-up model and run side by side (one CPU thread each)
against one verification service, started here unless ``--service-url`` names one. The held-out
greedy accuracies go to ``DIR/learning.json`` (``{"steps", "trained", "control"}``), the
proposer's solve-rate curves to ``DIR/solve_rates.json``, both plots to ``DIR/learning.png``,
and the timing to ``DIR/summary.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from azr_trainer.config import TASK_TYPES, Config, load_config
from azr_trainer.launch import train_args

log = logging.getLogger(__name__)

RUNS = ("trained", "control")


@dataclass(frozen=True)
class DemoOptions:
    out: Path
    service_url: str | None = None
    steps: int | None = None
    task_types: tuple[str, ...] = ("deduction",)
    seed: int = 0
    overrides: tuple[str, ...] = ()
    progress: bool = True


@dataclass(frozen=True)
class Learning:
    """Held-out accuracy of both runs at the steps where both were evaluated."""

    steps: list[int]
    trained: list[float]
    control: list[float]

    @property
    def gain(self) -> float:
        return self.trained[-1] - self.control[-1] if self.steps else 0.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def learning_curves(trained: list[dict[str, Any]], control: list[dict[str, Any]], key: str) -> Learning:
    """Pair the two runs' ``eval.jsonl`` rows by step (pure)."""
    t = {int(r["step"]): float(r[key]) for r in trained if key in r}
    c = {int(r["step"]): float(r[key]) for r in control if key in r}
    steps = sorted(set(t) & set(c))
    return Learning(steps, [t[s] for s in steps], [c[s] for s in steps])


def solve_rate_curves(metrics: list[dict[str, Any]], task_types: tuple[str, ...]) -> dict[str, list[Any]]:
    """Per step, the proposer's mean solve rate (learnability rollouts) for each task type (pure):
    ``{"steps": [...], task_type: [rate or None, ...]}``."""
    out: dict[str, list[Any]] = {"steps": [row["step"] for row in metrics]}
    for tt in task_types:
        out[tt] = [row.get(f"proposal_solve_rate/{tt}") for row in metrics]
    return out


def run_overrides(opts: DemoOptions, url: str, name: str) -> list[str]:
    """The ``--set`` values of one run on top of the toy preset (the control adds ``optim.lr=0``)."""
    sets = [
        f"service.url={url}",
        f"train.seed={opts.seed}",
        f"selfplay.task_types=[{', '.join(opts.task_types)}]",
        "train.progress=false",
        "train.resume=null",
        f"train.output_dir={opts.out / name}",
        f"train.run_name=toy-{name}",
    ]
    if opts.steps is not None:
        sets.append(f"train.steps={opts.steps}")
    sets += list(opts.overrides)
    if name == "control":
        sets.append("optim.lr=0")
    return sets


def run_configs(opts: DemoOptions, url: str) -> dict[str, Config]:
    return {name: load_config(preset="toy", overrides=run_overrides(opts, url, name)) for name in RUNS}


def _cli_args(opts: DemoOptions, url: str, name: str) -> list[str]:
    """The ``azr-train train`` command line of one run."""
    return [sys.executable, *train_args("toy", run_overrides(opts, url, name))]


def _prepare_base(cfgs: dict[str, Config]) -> None:
    """Build (or reuse) the warmed-up model once, so both runs start from the same weights."""
    from azr_trainer.modeling import build_or_load_tiny, tiny_base_dir

    trained, control = cfgs["trained"], cfgs["control"]
    build_or_load_tiny(trained)
    src, dst = tiny_base_dir(trained), tiny_base_dir(control)
    if not (dst / "config.json").exists():
        shutil.copytree(src, dst, dirs_exist_ok=True)


def _run_both(cfgs: dict[str, Config], opts: DemoOptions, url: str) -> None:
    from tqdm.auto import tqdm

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    bars: dict[str, Any] = {}
    for name, cfg in cfgs.items():
        out = Path(cfg.train.output_dir)
        for stale in ("metrics.jsonl", "eval.jsonl", "samples.jsonl"):
            (out / stale).unlink(missing_ok=True)
        with open(out / "train.log", "wb") as log_file:  # the child keeps its own copy
            procs[name] = subprocess.Popen(
                _cli_args(opts, url, name), stdout=log_file, stderr=subprocess.STDOUT, env=env
            )
        bars[name] = tqdm(total=cfg.train.steps, desc=f"{name:>7}", unit="step", disable=not opts.progress)
    try:
        while any(p.poll() is None for p in procs.values()):
            time.sleep(2)
            for name, cfg in cfgs.items():
                done = len(read_jsonl(Path(cfg.train.output_dir) / "metrics.jsonl"))
                bars[name].update(done - bars[name].n)
                ev = read_jsonl(Path(cfg.train.output_dir) / "eval.jsonl")
                if ev and "eval/toy" in ev[-1]:
                    bars[name].set_postfix(heldout=f"{ev[-1]['eval/toy']:.2f}")
    except BaseException:  # Ctrl-C, SIGTERM (SystemExit, see run_demo), or an error here
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        raise
    finally:
        for name in procs:
            bars[name].close()
    failed = {n: p.returncode for n, p in procs.items() if p.returncode != 0}
    if failed:
        details = "; ".join(
            f"{n} exited {rc}, see {Path(cfgs[n].train.output_dir) / 'train.log'}" for n, rc in failed.items()
        )
        raise RuntimeError(f"demo run failed: {details}")


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run both, write the outputs, return the summary."""
    from azr_trainer.service_process import EmbeddedService

    opts.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM unwinds like Ctrl-C: both runs and the embedded service are stopped,
            # not left running without their parent.
            previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
            stack.callback(signal.signal, signal.SIGTERM, previous)
        url = opts.service_url
        if url is None:
            url = stack.enter_context(EmbeddedService(opts.out / "service.log")).url
            log.info("embedded verification service at %s (log: %s)", url, opts.out / "service.log")
        cfgs = run_configs(opts, url)
        t_base = time.monotonic()
        _prepare_base(cfgs)
        base_s = time.monotonic() - t_base
        t_runs = time.monotonic()
        _run_both(cfgs, opts, url)
        runs_s = time.monotonic() - t_runs
    return write_outputs(cfgs, opts, base_s, runs_s, time.monotonic() - t0)


def write_outputs(
    cfgs: dict[str, Config], opts: DemoOptions, base_s: float, runs_s: float, total_s: float
) -> dict[str, Any]:
    from azr_trainer.plots import plot_learning

    out = opts.out
    rows = {n: read_jsonl(Path(c.train.output_dir) / "eval.jsonl") for n, c in cfgs.items()}
    learning = learning_curves(rows["trained"], rows["control"], "eval/toy")
    (out / "learning.json").write_text(json.dumps(asdict(learning)) + "\n")
    task_types = tuple(t for t in TASK_TYPES if t in opts.task_types)
    per_type = {
        tt: asdict(learning_curves(rows["trained"], rows["control"], f"eval/toy/{tt}"))
        for tt in task_types
        if len(task_types) > 1
    }
    metrics = {n: read_jsonl(Path(c.train.output_dir) / "metrics.jsonl") for n, c in cfgs.items()}
    rates = {n: solve_rate_curves(m, task_types) for n, m in metrics.items()}
    (out / "solve_rates.json").write_text(json.dumps(rates) + "\n")
    steps = cfgs["trained"].train.steps
    summary = {
        "final_step": learning.steps[-1] if learning.steps else None,
        "trained": learning.trained[-1] if learning.steps else None,
        "control": learning.control[-1] if learning.steps else None,
        "gain": round(learning.gain, 4),
        "task_types": list(task_types),
        "heldout_by_type": per_type,
        "minutes_total": round(total_s / 60, 2),
        "minutes_warmup": round(base_s / 60, 2),
        "minutes_runs": round(runs_s / 60, 2),
        "steps_per_minute": round(steps / (runs_s / 60), 2) if runs_s else None,
        "steps": steps,
        "seed": opts.seed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot_learning(learning, rates, task_types, out / "learning.png")
    return summary
