"""Reward curves from a run's ``metrics.jsonl`` (``python -m azr_trainer.plots RUN_DIR OUT.png``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azr_trainer.config import ROLES, TASK_TYPES
from azr_trainer.metrics import read_metrics


def plot_reward_curves(metrics_path: str | Path, out: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for role, ax in zip(ROLES, axes[:2], strict=False):
        for tt in TASK_TYPES:
            key = f"reward/{tt}/{role}"
            ys = [r.get(key) for r in rows]
            if any(y is not None for y in ys):
                ax.plot(steps, ys, marker=".", label=tt)
        ax.set_title(f"{role} reward (−1 format, −0.5 wrong/invalid)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="grey", lw=0.5)
        ax.legend(fontsize=8)
    ax = axes[2]
    for tt in TASK_TYPES:
        for key, style in ((f"accuracy/{tt}/solve", "-"), (f"validity/{tt}/propose", "--")):
            ys = [r.get(key) for r in rows]
            if any(y is not None for y in ys):
                ax.plot(steps, ys, style, marker=".", label=key.split("/")[0] + " " + tt)
    ax.set_title("solve accuracy (—) / proposal validity (--)", fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_learning(
    learning: Any, rates: dict[str, dict[str, list[Any]]], task_types: Sequence[str], out: str | Path
) -> None:
    """``azr-train demo``: held-out greedy accuracy, trained vs control, and the proposer's
    solve-rate curves (``rates[run]["steps"]`` and ``rates[run][task_type]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    ax = axes[0]
    ax.plot(learning.steps, learning.trained, marker="o", label="trained", color="#c0392b")
    ax.plot(learning.steps, learning.control, marker="s", label="control (lr = 0)", color="#7f8c8d")
    ax.set_title("held-out greedy accuracy (toy set, judged by the service)", fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    for run, style in (("trained", "-"), ("control", ":")):
        curves = rates.get(run, {})
        for tt in task_types:
            ys = curves.get(tt, [])
            pts = [(x, y) for x, y in zip(curves.get("steps", []), ys, strict=False) if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{run}: {tt}")
    ax.set_title("proposer: mean solve rate of its valid proposals", fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m azr_trainer.plots RUN_DIR OUT.png [TITLE]", file=sys.stderr)
        return 2
    plot_reward_curves(Path(args[0]) / "metrics.jsonl", args[1], args[2] if len(args) > 2 else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
