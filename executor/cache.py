"""Result cache keyed by everything that decides a verdict."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Protocol


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class ResultCache(Protocol):
    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]: ...

    def set_many(self, items: dict[str, dict[str, Any]]) -> None: ...


class MemoryCache:
    """A thread-safe LRU cache in this process (the embedded default)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        found: list[dict[str, Any] | None] = []
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is None:
                    self.misses += 1
                else:
                    self.hits += 1
                    self._data.move_to_end(key)
                found.append(value)
        return found

    def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            for key, value in items.items():
                self._data[key] = value
                self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)


class NoCache:
    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        return [None] * len(keys)

    def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        return None
