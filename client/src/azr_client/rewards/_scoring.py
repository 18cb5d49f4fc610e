"""Completions -> answers -> one verify call -> floats, for sync and async clients alike."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from azr_client.models import Answer, VerifyResult
from azr_client.rewards._gold import gold_answer

_ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)


class SyncVerifier(Protocol):
    """What a sync reward function needs (:class:`azr_client.VerificationClient` fits)."""

    def verify(
        self, answers: Sequence[Answer | Mapping[str, Any]], run: str | None = None, step: int | None = None
    ) -> list[VerifyResult]: ...


class AsyncVerifier(Protocol):
    """What an async reward function needs (:class:`azr_client.AsyncVerificationClient` fits)."""

    async def verify(
        self, answers: Sequence[Answer | Mapping[str, Any]], run: str | None = None, step: int | None = None
    ) -> list[VerifyResult]: ...


def is_async(client: Any) -> bool:
    """Whether ``client.verify`` is a coroutine function (the async client)."""
    verify = getattr(client, "verify", None)
    if verify is None or not callable(verify):
        raise TypeError(
            f"a reward function needs a client with a verify() method; got {type(client).__name__}"
        )
    return inspect.iscoroutinefunction(verify)


def extract_answer(text: str) -> str:
    """Text of the last fenced block in the ``<answer>`` section (or the section, or the text)."""
    found = _ANSWER_RE.findall(text)
    section = found[-1] if found else text
    blocks = _FENCE_RE.findall(section)
    if blocks:
        return str(blocks[-1][1]).strip()
    return str(section).strip()


def completion_text(completion: Any) -> str:
    """A TRL completion: plain text, or a conversation whose last message is the reply."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    return str(completion)


@dataclass(frozen=True)
class Rewards:
    """Verdict -> float. ``unverified`` is for answers the service could not check in time
    (``client_side`` results): neither right nor wrong."""

    correct: float = 1.0
    wrong: float = 0.0
    unverified: float = 0.0

    #: The keyword arguments a call may use to override these (verl's ``reward_kwargs``).
    KWARGS: ClassVar[dict[str, str]] = {
        "correct_reward": "correct",
        "wrong_reward": "wrong",
        "unverified_reward": "unverified",
    }

    def overridden(self, kwargs: Mapping[str, Any]) -> Rewards:
        changes = {field: float(kwargs[key]) for key, field in self.KWARGS.items() if key in kwargs}
        return replace(self, **changes) if changes else self

    def score(self, results: Sequence[VerifyResult]) -> list[float]:
        return [
            self.correct if r.correct else self.unverified if r.client_side else self.wrong for r in results
        ]


def score_answers(
    client: SyncVerifier,
    task_types: Sequence[str],
    answers: Sequence[str],
    golds: Sequence[Mapping[str, Any]],
    correct_reward: float = 1.0,
    wrong_reward: float = 0.0,
    unverified_reward: float = 0.0,
) -> list[float]:
    """Verify ``answers`` against ``golds`` in one batched call and map verdicts to floats."""
    items = [
        gold_answer(tt, f"r{i}", ans, gold, f"item {i}", "key")
        for i, (tt, ans, gold) in enumerate(zip(task_types, answers, golds, strict=True))
    ]
    return Rewards(correct_reward, wrong_reward, unverified_reward).score(client.verify(items))
