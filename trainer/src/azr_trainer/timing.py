"""Wall-clock time per phase (generation / service / update / other) within one step."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = ("generation", "service", "update")


class PhaseTimer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._active: str | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self._active is not None:  # nested: the outer phase keeps counting
            yield
            return
        self._active = name
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.totals[name] += time.perf_counter() - t0
            self._active = None

    def reset(self) -> dict[str, float]:
        out = {k: self.totals.get(k, 0.0) for k in PHASES}
        out.update({k: v for k, v in self.totals.items() if k not in out})
        self.totals = defaultdict(float)
        return out
