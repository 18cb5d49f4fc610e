"""Step metrics (pure summaries) and their sinks (TensorBoard + a JSONL file)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azr_trainer.config import ROLES, TASK_TYPES


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def summarize(rollouts: Sequence[Any]) -> dict[str, float]:
    """Reward, format, validity/accuracy and learnability by task type and role."""
    out: dict[str, float] = {}
    for tt in TASK_TYPES:
        for role in ROLES:
            group = [r for r in rollouts if r.task_type == tt and r.role == role]
            if not group:
                continue
            key = f"{tt}/{role}"
            scored = [r.reward for r in group if r.reward is not None]
            out[f"reward/{key}"] = _mean(scored)
            out[f"format_ok/{key}"] = _mean([1.0 if r.well_formed else 0.0 for r in group])
            rate = _mean([1.0 if r.passed else 0.0 for r in group])
            out[f"{'validity' if role == 'propose' else 'accuracy'}/{key}"] = rate
            out[f"unverified/{key}"] = float(sum(1 for r in group if r.reward is None))
            out[f"count/{key}"] = float(len(group))
            out[f"response_len/{key}"] = _mean([float(len(r.gen.response_ids)) for r in group])
            if role == "propose":
                learn = [r.learnability for r in group if r.learnability is not None]
                if learn:
                    out[f"learnability/{tt}"] = _mean(learn)
                rates = [r.info["solve_rate"] for r in group if "solve_rate" in r.info]
                if rates:
                    out[f"proposal_solve_rate/{tt}"] = _mean(rates)
    return out


class MetricsSink:
    def __init__(self, output_dir: str | Path, tensorboard: bool = True) -> None:
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.dir / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(self.dir / "tb"))
            except ImportError:  # pragma: no cover - tensorboard is a dependency
                self.writer = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        with open(self.jsonl, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        """Held-out accuracies: TensorBoard only (``eval.jsonl`` is written by the evaluator)."""
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    return rows
