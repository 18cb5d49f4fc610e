"""Bounded per-task-type buffers with the two sampling rules of AZR.

* references for a proposer: uniform, without replacement;
* a solver batch: the newest tasks first (those added at the latest step), then uniform.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from azr_trainer.tasks import InductionTask, Triplet

T = TypeVar("T", Triplet, InductionTask)


class TaskBuffer(Generic[T]):
    def __init__(self, capacity: int, kind: type[T]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.kind: type[T] = kind
        self._items: deque[T] = deque(maxlen=capacity)  # oldest dropped first
        self._keys: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def items(self) -> list[T]:
        return list(self._items)

    def contains(self, item: T) -> bool:
        return self._keys.get(item.key(), 0) > 0

    def add(self, item: T) -> None:
        if len(self._items) == self.capacity:
            old = self._items[0]
            self._keys[old.key()] -= 1
        self._items.append(item)
        self._keys[item.key()] = self._keys.get(item.key(), 0) + 1

    def extend(self, items: Iterable[T]) -> None:
        for it in items:
            self.add(it)

    def sample_references(self, k: int, rng: random.Random) -> list[T]:
        """Up to ``k`` distinct items, uniformly, without replacement."""
        k = min(k, len(self._items))
        return rng.sample(list(self._items), k) if k else []

    def sample_for_solve(self, n: int, rng: random.Random) -> list[T]:
        """``n`` tasks: the newest (latest step) first, then uniform from the rest.

        Draws with replacement only when the buffer holds fewer than ``n`` tasks.
        """
        if not self._items or n <= 0:
            return []
        items = list(self._items)
        newest_step = items[-1].step
        newest = [it for it in items if it.step == newest_step and newest_step >= 0]
        rest = [it for it in items if not (it.step == newest_step and newest_step >= 0)]
        if len(newest) >= n:
            return newest[-n:]
        picked = list(newest)
        need = n - len(picked)
        if len(rest) >= need:
            picked += rng.sample(rest, need)
        else:
            picked += rest
            pool = items
            picked += [rng.choice(pool) for _ in range(n - len(picked))]
        return picked

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "items": [it.to_dict() for it in self._items]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = int(state["capacity"])
        self._items = deque(maxlen=self.capacity)
        self._keys = {}
        self.extend(self.kind.from_dict(d) for d in state["items"])


class Buffers:
    """The three buffers of one run."""

    def __init__(self, capacity: int) -> None:
        self.deduction: TaskBuffer[Triplet] = TaskBuffer(capacity, Triplet)
        self.abduction: TaskBuffer[Triplet] = TaskBuffer(capacity, Triplet)
        self.induction: TaskBuffer[InductionTask] = TaskBuffer(capacity, InductionTask)

    def get(self, task_type: str) -> TaskBuffer:
        return getattr(self, task_type)

    def sizes(self) -> dict[str, int]:
        return {t: len(self.get(t)) for t in ("deduction", "abduction", "induction")}

    def program_pool(self) -> list[Triplet]:
        """Programs an induction proposer may be given: deduction ∪ abduction."""
        return self.deduction.items() + self.abduction.items()

    def state_dict(self) -> dict[str, Any]:
        return {t: self.get(t).state_dict() for t in ("deduction", "abduction", "induction")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for t in ("deduction", "abduction", "induction"):
            self.get(t).load_state_dict(state[t])
