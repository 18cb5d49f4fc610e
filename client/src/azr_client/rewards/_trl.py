"""TRL reward functions: ``reward(prompts, completions, **columns) -> list[float]``.

TRL's ``GRPOTrainer`` calls a reward function with the batch's prompts and completions, every
dataset column (one list each) and a few keyword arguments of its own (:data:`TRL_KWARGS`).
It awaits a reward function that is a coroutine function, so the async client gets an
``async def`` reward function that TRL runs on its event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, overload

from azr_client.models import Answer
from azr_client.rewards._gold import RewardInputError, check_task_type, gold_answer
from azr_client.rewards._scoring import (
    AsyncVerifier,
    Rewards,
    SyncVerifier,
    completion_text,
    extract_answer,
    is_async,
)

#: Keyword arguments TRL passes that are not dataset columns. ``trainer_state`` gives the step
#: sent with ``run=``; the others are ignored.
TRL_KWARGS = ("completion_ids", "trainer_state", "log_extra", "log_metric", "environments")

RewardFn = Callable[..., list[float]]
AsyncRewardFn = Callable[..., Awaitable[list[float]]]


def _answers(
    completions: Sequence[Any],
    columns: Mapping[str, Any],
    task_type: str | None,
    extract: Callable[[str], str],
) -> list[Answer]:
    n = len(completions)
    if task_type is not None:
        types = [task_type] * n
    elif "task_type" in columns:
        types = list(columns["task_type"])
    else:
        raise RewardInputError(
            "no task type: the dataset has no 'task_type' column and make_reward_fn() was given no "
            "task_type= (one of deduction, abduction, induction)"
        )
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, values in columns.items():
        if name in TRL_KWARGS or not isinstance(values, (list, tuple)) or len(values) != n:
            continue
        for row, value in zip(rows, values, strict=True):
            row[name] = value
    return [
        gold_answer(types[i], f"r{i}", extract(completion_text(c)), rows[i], f"batch row {i}", "column")
        for i, c in enumerate(completions)
    ]


def _tags(run: str | None, columns: Mapping[str, Any]) -> dict[str, Any]:
    if run is None:
        return {}
    step = getattr(columns.get("trainer_state"), "global_step", None)
    return {"run": run, "step": step if isinstance(step, int) and step >= 0 else None}


@overload
def make_reward_fn(
    client: AsyncVerifier,
    task_type: str | None = None,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
    *,
    run: str | None = None,
) -> AsyncRewardFn: ...


@overload
def make_reward_fn(
    client: SyncVerifier,
    task_type: str | None = None,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
    *,
    run: str | None = None,
) -> RewardFn: ...


def make_reward_fn(
    client: Any,
    task_type: str | None = None,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
    *,
    run: str | None = None,
) -> RewardFn | AsyncRewardFn:
    """A TRL reward function ``f(prompts, completions, **columns) -> list[float]``.

    With an :class:`~azr_client.AsyncVerificationClient` it is an ``async def`` (TRL awaits it).
    ``task_type`` fixes the type; otherwise each row's ``task_type`` column is used. Gold columns:
    ``output`` (+ optional ``program``/``code`` and ``input``) for deduction, ``program`` (or
    ``code``) and ``output`` for abduction, ``cases`` for induction. ``run`` tags the requests
    (with TRL's global step) in the service's audit trail.
    """
    if task_type is not None:
        check_task_type(task_type, "make_reward_fn(task_type=...)")
    rewards = Rewards(correct_reward, wrong_reward, unverified_reward)
    name = f"azr_{task_type or 'mixed'}_reward"

    if is_async(client):

        async def async_reward(
            prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
        ) -> list[float]:
            answers = _answers(completions, columns, task_type, extract)
            return rewards.score(await client.verify(answers, **_tags(run, columns)))

        async_reward.__name__ = async_reward.__qualname__ = name
        return async_reward

    def reward(
        prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any
    ) -> list[float]:
        answers = _answers(completions, columns, task_type, extract)
        return rewards.score(client.verify(answers, **_tags(run, columns)))

    reward.__name__ = reward.__qualname__ = name
    return reward
