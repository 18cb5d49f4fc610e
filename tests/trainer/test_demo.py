"""``azr-train demo``: the pure pairing of the two runs, and the real command end to end (a short
run against an embedded service it starts itself)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azr_trainer.demo import learning_curves, solve_rate_curves


def test_learning_curves_pair_the_runs_by_step() -> None:
    trained = [{"step": 0, "eval/toy": 0.1}, {"step": 5, "eval/toy": 0.4}, {"step": 10, "eval/toy": 0.5}]
    control = [{"step": 0, "eval/toy": 0.1}, {"step": 5, "eval/toy": 0.1}]
    got = learning_curves(trained, control, "eval/toy")
    assert got.steps == [0, 5] and got.trained == [0.1, 0.4] and got.control == [0.1, 0.1]
    assert got.gain == pytest.approx(0.3)
    assert learning_curves([], control, "eval/toy").gain == 0.0


def test_solve_rate_curves_keep_missing_steps_as_none() -> None:
    rows = [{"step": 0, "proposal_solve_rate/deduction": 0.25}, {"step": 1}]
    assert solve_rate_curves(rows, ("deduction",)) == {"steps": [0, 1], "deduction": [0.25, None]}


@pytest.mark.e2e
def test_demo_command_end_to_end(tmp_path: Path) -> None:
    """The real CLI, embedded service included; tiny sizes so it takes about a minute."""
    out = tmp_path / "demo"
    exe = Path(sys.executable).parent / "azr-train"
    sets = [
        "model.tiny.warmup_steps=4",
        "model.tiny.hidden_size=32",
        "model.tiny.num_layers=1",
        "selfplay.batch_size=2",
        "selfplay.solve_batch_size=4",
        "selfplay.learnability_rollouts=2",
        "toy.heldout_per_type=4",
        "train.eval_every=1",
    ]
    cmd = [str(exe), "demo", "--out", str(out), "--steps", "2", "--no-progress"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, AZR_TINY_CACHE="off")
    env.pop("AZR_REDIS_URL", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    learning = json.loads((out / "learning.json").read_text())
    assert set(learning) == {"steps", "trained", "control"}
    assert learning["steps"] == [0, 1, 2]
    assert all(0.0 <= a <= 1.0 for a in learning["trained"] + learning["control"])
    # both runs start from the same weights: the same greedy answers before any update
    assert learning["trained"][0] == learning["control"][0]
    assert (out / "learning.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["minutes_total"] > 0
    rates = json.loads((out / "solve_rates.json").read_text())
    assert rates["trained"]["steps"] == [0, 1]
    # the control really did not move: its checkpoint equals the base it started from
    control_cfg = (out / "control" / "config.yaml").read_text()
    assert "lr: 0.0" in control_cfg
    assert "held-out accuracy at step 2" in proc.stdout


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        parent = stack.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            stack += list(kids - found)
            found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_sigterm_stops_both_runs_and_the_embedded_service(tmp_path: Path) -> None:
    """`azr-train demo` killed with SIGTERM leaves nothing running: its two training runs and
    the service it started (with the service's sandboxes) all stop with it."""
    out = tmp_path / "demo"
    exe = Path(sys.executable).parent / "azr-train"
    cmd = [str(exe), "demo", "--out", str(out), "--steps", "500", "--no-progress"]
    for s in ["model.tiny.warmup_steps=2", "model.tiny.hidden_size=32", "model.tiny.num_layers=1"]:
        cmd += ["--set", s]
    env = dict(os.environ, AZR_TINY_CACHE="off")
    env.pop("AZR_REDIS_URL", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        while not all((out / run / "metrics.jsonl").exists() for run in ("trained", "control")):
            assert proc.poll() is None and time.monotonic() < deadline, "the demo did not start its runs"
            time.sleep(0.5)
        started = _descendants(proc.pid)
        assert len(started) >= 3  # the service and both runs, at least
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while (left := {pid for pid in started if _alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"left running after SIGTERM: {sorted(left)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
