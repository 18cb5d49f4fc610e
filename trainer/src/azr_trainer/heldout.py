"""Evaluation during training: greedy accuracy on fixed held-out sets, judged by the service.

Sets: ``toy`` (the toy family's held-out tasks, one group per task type of the run) and the
CRUXEval sets (``cruxeval-o``, ``cruxeval-i``). Every answer is checked by the verification
service, as in training; a held-out task is never trained on (no gradient touches its prompt).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azr_client import ValidateTask

from azr_trainer import parsing, prompts
from azr_trainer.config import Config
from azr_trainer.tasks import InductionTask, Triplet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalItem:
    task_type: str
    task: Triplet | InductionTask


@dataclass(frozen=True)
class SetScore:
    """Greedy accuracy of one held-out set, with its per-task-type parts."""

    name: str
    n: int
    correct: int
    by_type: dict[str, tuple[int, int]]  # task type -> (correct, n)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def metrics(self) -> dict[str, float]:
        out = {f"eval/{self.name}": self.accuracy}
        if len(self.by_type) > 1:
            for tt, (c, n) in self.by_type.items():
                out[f"eval/{self.name}/{tt}"] = c / n if n else 0.0
        return out


class HeldOutEvaluator:
    """Builds the sets once (gold outputs from the service), then scores the policy on demand."""

    def __init__(self, cfg: Config, backend: Any, verifier: Any) -> None:
        self.cfg = cfg
        self.backend = backend
        self.verifier = verifier
        self._sets: dict[str, list[EvalItem]] = {}

    # ------------------------------------------------------------------ the sets
    def items(self, name: str) -> list[EvalItem]:
        if name not in self._sets:
            self._sets[name] = self._build(name)
            log.info("held-out set %s: %d tasks", name, len(self._sets[name]))
        return self._sets[name]

    def _build(self, name: str) -> list[EvalItem]:
        if name == "toy":
            from azr_trainer import toy

            family = toy.family_from_config(self.cfg.toy)
            raw = toy.heldout_set(
                family,
                self.cfg.toy.heldout_per_type,
                self.cfg.selfplay.task_types,
                self.cfg.selfplay.induction_num_inputs,
                self.cfg.train.seed,
            )
            return self._with_service_outputs([EvalItem(h.task_type, h.task) for h in raw])
        from azr_trainer.config import data_root
        from azr_trainer.eval import datasets

        crux = datasets.load_cruxeval(data_root(self.cfg), self.cfg.train.eval_limit)
        tt = "deduction" if name == "cruxeval-o" else "abduction"
        return [EvalItem(tt, Triplet(c.program, c.input, c.output)) for c in crux]

    def _with_service_outputs(self, items: list[EvalItem]) -> list[EvalItem]:
        """Gold outputs are the service's, as for every task the trainer uses."""
        tasks = []
        for i, it in enumerate(items):
            inputs = list(it.task.inputs) if isinstance(it.task, InductionTask) else [it.task.input]
            tasks.append(ValidateTask(f"h{i}", it.task.program, inputs))
        results = self.verifier.validate(tasks, run=f"{self.cfg.train.run_name}/heldout")
        out: list[EvalItem] = []
        for it, r in zip(items, results, strict=True):
            if not r.valid or any(o is None for o in r.outputs):
                continue
            if isinstance(it.task, InductionTask):
                task: Triplet | InductionTask = InductionTask(
                    it.task.program, it.task.inputs, tuple(r.outputs), it.task.message
                )
            else:
                task = Triplet(it.task.program, it.task.input, r.outputs[0])
            out.append(EvalItem(it.task_type, task))
        if len(out) < len(items):
            log.warning("the service rejected %d held-out tasks", len(items) - len(out))
        return out

    # ------------------------------------------------------------------ scoring
    def score(self, name: str, step: int | None = None) -> SetScore:
        from azr_trainer.selfplay import make_answer

        items = self.items(name)
        gens = self.backend.generate(
            [prompts.solve_prompt(it.task_type, it.task, self.cfg.generation.prompt_style) for it in items],
            greedy=True,
            max_new_tokens=self.cfg.eval.max_new_tokens,
        )
        answers, where = [], []
        for i, (it, g) in enumerate(zip(items, gens, strict=True)):
            p = parsing.parse_solve(
                g.text, it.task_type, lenient=self.cfg.selfplay.answer_parsing == "official"
            )
            if p.ok:
                answers.append(make_answer(it.task_type, it.task, p.answer, f"h{step}-{i}"))
                where.append(i)
        correct = [False] * len(items)
        if answers:
            run = f"{self.cfg.train.run_name}/heldout"
            for i, r in zip(where, self.verifier.verify(answers, run=run, step=step), strict=True):
                correct[i] = bool(r.correct)
        by_type: dict[str, tuple[int, int]] = {}
        for it, ok in zip(items, correct, strict=True):
            c, n = by_type.get(it.task_type, (0, 0))
            by_type[it.task_type] = (c + int(ok), n + 1)
        return SetScore(name, len(items), sum(correct), by_type)

    def evaluate(self, step: int, out_dir: Path | None = None) -> dict[str, float]:
        """Score every configured set; append a row to ``out_dir/eval.jsonl``."""
        metrics: dict[str, float] = {}
        for name in self.cfg.train.eval_sets:
            metrics.update(self.score(name, step).metrics())
        if out_dir is not None:
            with open(out_dir / "eval.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": step, **metrics}) + "\n")
        return metrics
