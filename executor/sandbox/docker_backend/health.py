"""Whether a sandbox container still runs, asked of the Docker engine only when it matters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# How often a channel with nothing outstanding checks its container.
IDLE_WATCHDOG_S = 60.0

ContainerState = Callable[[], "dict[str, Any] | None"]


class ContainerWatch:
    """The health of one container: why it is dead (if it is), and the watchdog a channel
    runs while it waits on the container's socket.

    `state()` asks the Docker engine for the container's State (None: it is gone). A waiting
    read or write calls `check_during_wait()` every `watchdog_s`; the engine is asked only
    while jobs are in flight on the container (the pool says so through `watch_busy`), else
    every IDLE_WATCHDOG_S, so idle containers cost the engine next to nothing.
    """

    def __init__(self, name: str, state: ContainerState, watchdog_s: float) -> None:
        self.name = name
        self.state = state
        self.watchdog_s = watchdog_s
        self.dead_reason = ""
        self._sent_at = 0.0  # when a frame was last written
        self._received_at = 0.0  # when the zygote last wrote anything
        self._checked_at = time.monotonic()  # when the container's state was last known good
        # Whether jobs are outstanding: the pool says (watch_busy); until then, a guess.
        self._busy: Callable[[], bool] = lambda: self._sent_at > self._received_at

    def watch_busy(self, busy: Callable[[], bool]) -> None:
        """The pool's hook: `busy()` tells whether this zygote has jobs in flight."""
        self._busy = busy

    def sent(self) -> None:
        self._sent_at = time.monotonic()

    def received(self) -> None:
        self._received_at = time.monotonic()

    def running(self) -> bool:
        state = self.state()
        return bool(state and state.get("Running") and not state.get("Paused"))

    def mark_dead(self, reason: str) -> None:
        if not self.dead_reason:
            self.dead_reason = reason
            state = self.state()
            if state and state.get("OOMKilled"):
                self.dead_reason += " (the container was OOM-killed)"
            log.warning("sandbox container %s is dead: %s", self.name, self.dead_reason)

    def check_during_wait(self) -> None:
        """Called every watchdog_s while blocked on the socket; raises if the container is gone.

        Asks the Docker engine only while jobs are in flight (a quiet zygote with nothing
        to do is the normal case), else every IDLE_WATCHDOG_S."""
        now = time.monotonic()
        if not self.dead_reason and not self._busy() and now - self._checked_at < IDLE_WATCHDOG_S:
            return
        self._checked_at = now
        state = self.state()
        if state is None or not state.get("Running"):
            self.mark_dead("the container stopped")
        elif state.get("Paused"):
            self.mark_dead("the container is paused")
        if self.dead_reason:
            raise ConnectionError(f"sandbox container {self.name}: {self.dead_reason}")
