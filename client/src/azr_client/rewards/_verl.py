"""verl entry points: ``custom_reward_function`` for one sample and for a whole batch.

- Per sample, ``compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)``:
  what verl's reward loop managers (``naive``, ``dapo``, ``limited``; verl 0.9's default path)
  call. With the async client it is an ``async def``, which those managers await.
- Per batch, ``compute_score(data_sources, solution_strs, ground_truths, extra_infos, **kwargs)``:
  what verl's ``BatchRewardManager`` (``reward_manager=batch``) calls, synchronously, with the
  whole batch; this one sends the batch to the service in one ``verify`` call.

verl merges ``custom_reward_function.reward_kwargs`` into every call, and passes
``reward_router_address`` and ``reward_model_tokenizer`` when a reward model is configured.
Used: :data:`USED_KWARGS`. Ignored: :data:`IGNORED_KWARGS` silently, anything else with one
warning per name.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, overload

from azr_client.models import Answer
from azr_client.rewards._gold import RewardInputError, gold_answer, parse_ground_truth
from azr_client.rewards._scoring import AsyncVerifier, Rewards, SyncVerifier, extract_answer, is_async

log = logging.getLogger("azr_client.rewards")

#: Keyword arguments that change a call: the three reward values and the audit ``run`` tag.
USED_KWARGS = ("correct_reward", "wrong_reward", "unverified_reward", "run")
#: Passed by verl when a reward model is configured; this reward needs none.
IGNORED_KWARGS = ("reward_router_address", "reward_model_tokenizer")

_warned: set[str] = set()

ComputeScore = Callable[..., float]
AsyncComputeScore = Callable[..., Awaitable[float]]
BatchComputeScore = Callable[..., list[float]]


def _options(base: Rewards, run: str | None, kwargs: Mapping[str, Any]) -> tuple[Rewards, dict[str, Any]]:
    for name in kwargs:
        if name not in USED_KWARGS and name not in IGNORED_KWARGS and name not in _warned:
            _warned.add(name)
            log.warning(
                "azr_client verl reward: ignoring unknown keyword argument %r (uses %s)", name, USED_KWARGS
            )
    run = kwargs.get("run", run)
    return base.overridden(kwargs), ({"run": str(run)} if run is not None else {})


def _answer(
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None,
    extract: Callable[[str], str],
    item_id: str,
    where: str,
) -> Answer:
    gold = parse_ground_truth(ground_truth, where)
    task_type = gold.get("task_type")
    if task_type is None and isinstance(extra_info, Mapping):
        task_type = extra_info.get("task_type")
    if task_type is None:
        raise RewardInputError(
            f"{where}: no task_type: put 'task_type' (deduction, abduction or induction) in the ground_truth "
            "dict or in extra_info"
        )
    return gold_answer(task_type, item_id, extract(str(solution_str)), gold, f"{where} ground_truth", "key")


@overload
def make_verl_compute_score(
    client: AsyncVerifier,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
    *,
    run: str | None = None,
) -> AsyncComputeScore: ...


@overload
def make_verl_compute_score(
    client: SyncVerifier,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
    *,
    run: str | None = None,
) -> ComputeScore: ...


def make_verl_compute_score(
    client: Any,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
    *,
    run: str | None = None,
) -> ComputeScore | AsyncComputeScore:
    """verl's per-sample ``compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)``.

    ``ground_truth`` is a dict (or its JSON text) with ``task_type`` and the gold fields;
    ``task_type`` may come from ``extra_info`` instead. An ``async def`` for the async client.
    """
    base = Rewards(correct_reward, wrong_reward, unverified_reward)

    if is_async(client):

        async def async_compute_score(
            data_source: Any,
            solution_str: str,
            ground_truth: Any,
            extra_info: Mapping[str, Any] | None = None,
            **kwargs: Any,
        ) -> float:
            rewards, tags = _options(base, run, kwargs)
            answer = _answer(solution_str, ground_truth, extra_info, extract, "r0", "compute_score")
            return rewards.score(await client.verify([answer], **tags))[0]

        async_compute_score.__name__ = async_compute_score.__qualname__ = "compute_score"
        return async_compute_score

    def compute_score(
        data_source: Any,
        solution_str: str,
        ground_truth: Any,
        extra_info: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> float:
        rewards, tags = _options(base, run, kwargs)
        answer = _answer(solution_str, ground_truth, extra_info, extract, "r0", "compute_score")
        return rewards.score(client.verify([answer], **tags))[0]

    return compute_score


def make_verl_batch_compute_score(
    client: SyncVerifier,
    extract: Callable[[str], str] = extract_answer,
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
    *,
    run: str | None = None,
) -> BatchComputeScore:
    """verl's batch ``compute_score(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs)``
    for ``BatchRewardManager``: one float per sample, the whole batch in one ``verify`` call."""
    if is_async(client):
        raise TypeError(
            "verl's BatchRewardManager calls compute_score without awaiting it: give "
            "make_verl_batch_compute_score a VerificationClient (the async client fits "
            "make_verl_compute_score, which verl's reward loop awaits)"
        )
    base = Rewards(correct_reward, wrong_reward, unverified_reward)

    def compute_score(
        data_sources: Sequence[Any],
        solution_strs: Sequence[str],
        ground_truths: Sequence[Any],
        extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        rewards, tags = _options(base, run, kwargs)
        n = len(solution_strs)
        infos: Sequence[Mapping[str, Any] | None] = [None] * n if extra_infos is None else extra_infos
        lengths = {
            "data_sources": len(data_sources),
            "ground_truths": len(ground_truths),
            "extra_infos": len(infos),
        }
        if any(length != n for length in lengths.values()):
            raise RewardInputError(f"compute_score: {n} solution_strs but {lengths}; one of each per sample")
        answers = [
            _answer(solution_strs[i], ground_truths[i], infos[i], extract, f"r{i}", f"sample {i}")
            for i in range(n)
        ]
        return rewards.score(client.verify(answers, **tags)) if answers else []

    return compute_score
