"""Use the verification service as a reward function from other RL libraries.

TRL (``GRPOTrainer``)::

    from azr_client import VerificationClient
    from azr_client.rewards import make_reward_fn

    client = VerificationClient("http://verifier:8000", api_key="...")
    reward = make_reward_fn(client, task_type="deduction")
    # dataset rows carry the gold columns: program, input, output (deduction),
    # program, output (abduction) or cases (induction)
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=ds, ...)

TRL calls ``reward(prompts=..., completions=..., **dataset_columns)`` and gets one float per
completion. Conversational completions (lists of ``{"role", "content"}``) are handled.

verl (``custom_reward_function``)::

    # my_reward.py
    from azr_client import VerificationClient
    from azr_client.rewards import make_verl_compute_score

    compute_score = make_verl_compute_score(VerificationClient("http://verifier:8000"))

    # config: custom_reward_function.path=my_reward.py custom_reward_function.name=compute_score

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)``;
``ground_truth`` is a dict (or its JSON text) with ``task_type`` and the gold fields.

A completion's answer is taken from the last fenced block inside ``<answer>…</answer>``
(or the whole text if there is none). Answers the service could not check in time score
``unverified_reward`` (0.0 by default) rather than raising.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from azr_client.models import AbductionAnswer, Case, DeductionAnswer, InductionAnswer

_ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)


def extract_answer(text: str) -> str:
    """Text of the last fenced block in the ``<answer>`` section (or the section, or the text)."""
    found = _ANSWER_RE.findall(text)
    section = found[-1] if found else text
    blocks = _FENCE_RE.findall(section)
    if blocks:
        return blocks[-1][1].strip()
    return section.strip()


def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    return str(completion)


def _make_answer(task_type: str, idx: str, answer: str, gold: Mapping[str, Any]) -> Any:
    if task_type == "deduction":
        return DeductionAnswer(
            id=idx,
            output=str(gold["output"]),
            answer=answer,
            program=gold.get("program"),
            input=gold.get("input"),
        )
    if task_type == "abduction":
        return AbductionAnswer(
            id=idx, program=str(gold["program"]), output=str(gold["output"]), answer=answer
        )
    if task_type == "induction":
        cases = gold["cases"]
        if isinstance(cases, str):
            cases = json.loads(cases)
        return InductionAnswer(
            id=idx,
            answer=answer,
            cases=[Case(input=str(c["input"]), output=str(c["output"])) for c in cases],
        )
    raise ValueError(f"unknown task_type {task_type!r}")


def score_answers(
    client: Any,
    task_types: Sequence[str],
    answers: Sequence[str],
    golds: Sequence[Mapping[str, Any]],
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
) -> list[float]:
    """Verify ``answers`` in one batched call and map verdicts to floats."""
    items = [
        _make_answer(tt, f"r{i}", ans, gold)
        for i, (tt, ans, gold) in enumerate(zip(task_types, answers, golds, strict=True))
    ]
    results = client.verify(items)
    scores = []
    for res in results:
        if res.correct:
            scores.append(correct_reward)
        elif res.client_side:
            scores.append(unverified_reward)
        else:
            scores.append(wrong_reward)
    return scores


def make_reward_fn(
    client: Any,
    task_type: str | None = None,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
) -> Callable[..., list[float]]:
    """A TRL-style reward function ``f(prompts, completions, **columns) -> list[float]``.

    ``task_type`` fixes the type; otherwise each row's ``task_type`` column is used.
    """

    def reward(
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] = (),
        **columns: Any,
    ) -> list[float]:
        n = len(completions)
        types = [task_type] * n if task_type else list(columns["task_type"])
        golds = []
        for i in range(n):
            golds.append({k: v[i] for k, v in columns.items() if isinstance(v, Sequence) and len(v) == n})
        answers = [extract(_completion_text(c)) for c in completions]
        return score_answers(client, types, answers, golds, correct_reward, wrong_reward, unverified_reward)

    reward.__name__ = f"azr_{task_type or 'mixed'}_reward"
    return reward


def make_verl_compute_score(
    client: Any,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
) -> Callable[..., float]:
    """A verl ``compute_score(data_source, solution_str, ground_truth, extra_info=None)``."""

    def compute_score(
        data_source: str,
        solution_str: str,
        ground_truth: Any,
        extra_info: Mapping[str, Any] | None = None,
    ) -> float:
        gold = json.loads(ground_truth) if isinstance(ground_truth, str) else dict(ground_truth)
        task_type = str(gold.get("task_type") or (extra_info or {}).get("task_type"))
        return score_answers(
            client,
            [task_type],
            [extract(solution_str)],
            [gold],
            correct_reward,
            wrong_reward,
            unverified_reward,
        )[0]

    return compute_score
