"""Reward curves from a run's ``metrics.jsonl`` (``python -m azr_trainer.plots RUN_DIR OUT.png``)."""

from __future__ import annotations

import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m azr_trainer.plots RUN_DIR OUT.png [TITLE]", file=sys.stderr)
        return 2
    plot_reward_curves(Path(args[0]) / "metrics.jsonl", args[1], args[2] if len(args) > 2 else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
