#!/usr/bin/env python3
"""A diagnostic of the toy world: the solver alone, trained with rewards from the family itself.

    .venv/bin/python scripts/toy_probe.py --steps 150                       # toy preset's settings
    .venv/bin/python scripts/toy_probe.py --steps 150 --set optim.entropy_coef=0.01
    .venv/bin/python scripts/toy_probe.py --steps 200 --baseline prompt --group 8

It is *not* self-play and does not use the verification service: it asks what the solver's
update can learn when the task distribution is fixed (uniform over the family's members and
inputs) and the reward is exact (the family's own Python functions on literal values). It
builds the toy preset's warmed-up model, then each step samples `--batch` deduction answers,
rewards them 1/0, and takes the trainer's own TRR++ update (`azr_trainer.update.ppo_update`),
with one baseline per task type (`--baseline type`, as the trainer) or per prompt over
`--group` samples of it (`--baseline prompt`, GRPO-style). Every `--eval-every` steps it prints
greedy accuracy on every distinct (member, input) pair of the family, per op, and the most
common greedy answers.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "trainer" / "src")]

import torch  # noqa: E402
from azr_trainer import parsing, prompts, toy  # noqa: E402
from azr_trainer.backends.hf import HFBackend  # noqa: E402
from azr_trainer.config import load_config  # noqa: E402
from azr_trainer.modeling import load_policy  # noqa: E402
from azr_trainer.tasks import Triplet  # noqa: E402
from azr_trainer.update import TrainSample, ppo_update  # noqa: E402

from executor import literals  # noqa: E402

Task = tuple[toy.ToyMember, object]


def all_tasks(family: toy.ToyFamily) -> list[Task]:
    """Every distinct (member, input) pair (strings: every one the family draws)."""
    strings = sorted({str(family.value("str", random.Random(i))) for i in range(2000)})
    tasks: list[Task] = []
    for member in family.members:
        values: list[object] = list(range(family.max_int + 1)) if member.op.kind == "int" else list(strings)
        tasks += [(member, value) for value in values]
    return tasks


def prompt(task: Task, style: str) -> str:
    member, value = task
    return prompts.solve_prompt("deduction", Triplet(member.program, repr(value), "", -1), style=style)


def reward(text: str, task: Task) -> float:
    parsed = parsing.parse_solve(text, "deduction")
    if not parsed.ok:
        return 0.0
    try:
        return float(literals.values_equal(task[0].run(task[1]), literals.parse_value(parsed.answer)))
    except literals.LiteralError:
        return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=150, help="update steps (default 150)")
    parser.add_argument("--batch", type=int, default=128, help="solver samples per step (default 128)")
    parser.add_argument("--baseline", choices=["type", "prompt"], default="type", help="advantage baseline")
    parser.add_argument("--group", type=int, default=8, help="samples per prompt with --baseline prompt")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="a toy-preset override"
    )
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    cfg = load_config(preset="toy", overrides=["train.output_dir=runs/toy-probe", *args.sets])
    model, tokenizer, device = load_policy(cfg)
    family = toy.family_from_config(cfg.toy)
    backend = HFBackend(model, tokenizer, cfg.generation, device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr)
    rng = random.Random(args.seed)
    style = cfg.generation.prompt_style
    held_out = all_tasks(family)
    group = args.group if args.baseline == "prompt" else 1

    def evaluate(step: int, started: float) -> None:
        texts = [g.text for g in backend.generate([prompt(t, style) for t in held_out], greedy=True)]
        scores = [reward(text, task) for text, task in zip(texts, held_out, strict=True)]
        per_op: dict[str, list[float]] = collections.defaultdict(list)
        for score, (member, _) in zip(scores, held_out, strict=True):
            per_op[member.op.name].append(score)
        answers = collections.Counter(text.split("```output\n")[-1].split("\n")[0] for text in texts)
        ops = " ".join(f"{op} {sum(s) / len(s):.2f}" for op, s in per_op.items())
        print(
            f"step {step:4d}  {time.monotonic() - started:5.0f} s  held-out {sum(scores) / len(scores):.3f}  "
            f"[{ops}]  greedy answers {answers.most_common(3)}",
            flush=True,
        )

    started = time.monotonic()
    evaluate(0, started)
    for step in range(1, args.steps + 1):
        tasks: list[Task] = []
        for _ in range(max(1, args.batch // group)):
            member = family.member(rng)
            tasks += [(member, family.value(member.op.kind, rng))] * group
        generations = backend.generate([prompt(t, style) for t in tasks])
        samples = []
        for generation, task in zip(generations, tasks, strict=True):
            key = f"{task[0].program}|{task[1]!r}" if args.baseline == "prompt" else ""
            samples.append(
                TrainSample(
                    generation.prompt_ids,
                    generation.response_ids,
                    reward(generation.text, task),
                    ("deduction", "solve" + key),
                )
            )
        ppo_update(model, optimizer, samples, cfg.optim, tokenizer.pad_token_id, device, rng)
        if step % args.eval_every == 0:
            evaluate(step, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
