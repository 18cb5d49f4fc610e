"""Canned, well-formed responses for the six task × role prompts.

They give the tiny model's tokenizer its corpus and, with ``tiny.warmup_steps``, a short
supervised warm-up so that a randomly initialised model emits the tag format at all and the
self-play loop has valid proposals to work with. Real models do not need this.
"""

from __future__ import annotations

import ast
import functools
import random
from typing import Any

import torch

from azr_trainer import prompts
from azr_trainer.tasks import IDENTITY_INDUCTION, IDENTITY_TRIPLET, InductionTask, Triplet

PROGRAMS: list[tuple[str, list[str]]] = [
    ("def f(a):\n    return a * 2", ["3", "'ab'", "[1, 2]", "-4"]),
    ("def f(a):\n    return a[::-1]", ["'abc'", "[1, 2, 3]", "'stop'", "(4, 5)"]),
    ("def f(a, b):\n    return a + b", ["1, 2", "'x', 'y'", "[1], [2]", "10, -3"]),
    ("def f(x):\n    return len(x)", ["'hello'", "[1, 2, 3]", "{}", "'a b'"]),
    ("def f(n):\n    return sum(range(n))", ["5", "10", "4", "6"]),
    ("def f(s):\n    return s.upper()", ["'hello'", "'MiXeD'", "'a1'", "'ok'"]),
    ("def f(a):\n    return sorted(a)", ["[3, 1, 2]", "'cab'", "(9, 7)", "[2, 2, 1]"]),
    ("def f(a):\n    return a % 3", ["7", "10", "5", "-1"]),
    ("def f(a):\n    return [x * x for x in a]", ["[1, 2, 3]", "[3]", "[-2, 5]", "[4, -1]"]),
    ("def f(d):\n    return sorted(d.keys())", ["{'b': 1, 'a': 2}", "{1: 0}", "{}", "{'z': 0}"]),
    ("def f(a, b):\n    return max(a, b) - min(a, b)", ["3, 8", "5, 5", "-1, 1", "0, 9"]),
    ("def f(s):\n    return s.count('a')", ["'banana'", "'xyz'", "'aaa'", "''"]),
]

_TRUSTED = frozenset(prog for prog, _ in PROGRAMS)

THOUGHTS = [
    "Let me work through it.",
    "I will reason step by step.",
    "Think about what f does.",
    "A small function is enough.",
]


def _wrap(thought: str, body: str) -> str:
    return f" {thought} </think>\n<answer>\n{body}</answer>"


def propose_code_response(rng: random.Random) -> str:
    prog, inputs = rng.choice(PROGRAMS)
    body = f"```python\n{prog}\n```\n```input\n{rng.choice(inputs)}\n```\n"
    return _wrap(rng.choice(THOUGHTS), body)


def propose_induction_response(rng: random.Random, program: str, num_inputs: int) -> str:
    pool = [i for _, ins in PROGRAMS for i in ins]
    inputs = rng.sample(pool, min(num_inputs, len(pool)))
    body = "".join(f"```input\n{i}\n```\n" for i in inputs)
    body += "```message\nFind the rule that maps each input to its output.\n```\n"
    return _wrap(rng.choice(THOUGHTS), body)


def solve_response(task_type: str, task: Triplet | InductionTask, rng: random.Random) -> str:
    if task_type == "deduction":
        assert isinstance(task, Triplet)
        body = f"```output\n{task.output}\n```\n"
    elif task_type == "abduction":
        assert isinstance(task, Triplet)
        body = f"```input\n{task.input}\n```\n"
    else:
        body = f"```python\n{task.program}\n```\n"
    return _wrap(rng.choice(THOUGHTS), body)


@functools.cache
def demo_output(program: str, inp: str) -> str:
    """The repr of ``f(<inp>)`` for one of OUR fixed demo programs above.

    Only the constants in ``PROGRAMS`` are run here, in-process; anything else (model text in
    particular) is refused: untrusted code only ever runs in the verification service.
    """
    if program not in _TRUSTED:
        raise ValueError("demo_output only runs the fixed programs of warmup.PROGRAMS")
    namespace: dict[str, Any] = {}
    exec(program, namespace)  # trusted: a constant of this module
    args = ast.literal_eval(f"({inp},)")
    return repr(namespace["f"](*args))


def _demo_triplets(rng: random.Random) -> list[Triplet]:
    """The identity seed plus two triplets per demo program, with their true outputs (so the
    warm-up does not teach that the output repeats the input)."""
    out = [IDENTITY_TRIPLET]
    for prog, inputs in PROGRAMS:
        for inp in inputs[:2]:
            out.append(Triplet(prog, inp, demo_output(prog, inp)))
    rng.shuffle(out)
    return out


def demonstrations(n: int, rng: random.Random, num_references: int, num_inputs: int) -> list[tuple[str, str]]:
    """``n`` (prompt, response) pairs spread over the six task × role cases."""
    triplets = _demo_triplets(rng)
    pairs: list[tuple[str, str]] = []
    kinds = ["pd", "pa", "pi", "sd", "sa", "si"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind in ("pd", "pa"):
            refs = rng.sample(triplets, min(num_references, len(triplets)))
            ttype = "deduction" if kind == "pd" else "abduction"
            pairs.append((prompts.propose_code_prompt(ttype, refs), propose_code_response(rng)))
        elif kind == "pi":
            prog = rng.choice(triplets).program
            pairs.append(
                (
                    prompts.propose_induction_prompt(prog, num_inputs),
                    propose_induction_response(rng, prog, num_inputs),
                )
            )
        elif kind in ("sd", "sa"):
            t = rng.choice(triplets)
            ttype = "deduction" if kind == "sd" else "abduction"
            pairs.append((prompts.solve_prompt(ttype, t), solve_response(ttype, t, rng)))
        else:
            task = IDENTITY_INDUCTION
            pairs.append((prompts.solve_induction_prompt(task), solve_response("induction", task, rng)))
    return pairs


def tokenizer_corpus(num_inputs: int = 10) -> list[str]:
    rng = random.Random(1234)
    texts = [p + r for p, r in demonstrations(240, rng, num_references=3, num_inputs=num_inputs)]
    texts.append(prompts.math_prompt("What is $1+1$? The answer is \\boxed{2}."))
    return texts


def supervised_warmup(
    model: torch.nn.Module,
    tokenizer,
    steps: int,
    lr: float,
    num_references: int,
    num_inputs: int,
    seed: int = 0,
    batch_size: int = 8,
    max_len: int = 1024,
    pairs: list[tuple[str, str]] | None = None,
) -> list[float]:
    """A few Adam steps of response-only cross-entropy on the demonstrations (``pairs``, or the
    canned ones)."""
    if steps <= 0:
        return []
    rng = random.Random(seed)
    data = pairs if pairs is not None else demonstrations(max(60, steps * 2), rng, num_references, num_inputs)
    encoded = []
    for p, r in data:
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (p_ids + r_ids)[-max_len:]
        n_resp = min(len(r_ids), len(ids))
        encoded.append((ids, n_resp))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    device = next(model.parameters()).device
    model.train()
    losses = []
    for _ in range(steps):
        batch = rng.sample(encoded, min(batch_size, len(encoded)))
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        attn = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, n_resp) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attn[row, : len(ids)] = 1
            labels[row, len(ids) - n_resp : len(ids)] = torch.tensor(ids[len(ids) - n_resp :])
        out = model(input_ids=input_ids.to(device), attention_mask=attn.to(device), labels=labels.to(device))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(out.loss.detach()))
    return losses
