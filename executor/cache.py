"""Result cache keyed by everything that decides a verdict."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class ResultCache(Protocol):
    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]: ...

    def set_many(self, items: dict[str, dict[str, Any]]) -> None: ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLru(Generic[K, V]):
    """A thread-safe LRU map bounded both in entries and in bytes, as `size(key, value)`
    estimates them: the least recently used go first, so the memory it holds stays under
    `max_bytes` however long the process runs and whatever sizes its entries have. An entry
    larger than `max_bytes` on its own is not kept."""

    def __init__(self, max_entries: int, max_bytes: int, size: Callable[[K, V], int]) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size = size
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        found = self.lookup(key)
        return found[0] if found is not None else None

    def lookup(self, key: K) -> tuple[V] | None:
        """`(value,)` when the key is held (the value may be None), else None."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            self._data.move_to_end(key)
            return (entry[0],)

    def put(self, key: K, value: V) -> None:
        if self.max_entries <= 0:
            return
        size = self._size(key, value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._data[key] = (value, size)
            self.bytes += size
            while len(self._data) > self.max_entries or self.bytes > self.max_bytes:
                _, (_, dropped) = self._data.popitem(last=False)
                self.bytes -= dropped


def memoize(
    max_entries: int, max_bytes: int, size: Callable[[K, V], int]
) -> Callable[[Callable[[K], V]], Callable[[K], V]]:
    """`functools.lru_cache` for a one-argument pure function, bounded in bytes as well."""

    def wrap(function: Callable[[K], V]) -> Callable[[K], V]:
        table: SizedLru[K, V] = SizedLru(max_entries, max_bytes, size)

        @functools.wraps(function)
        def cached(key: K) -> V:
            found = table.lookup(key)
            if found is not None:
                return found[0]
            value = function(key)
            table.put(key, value)
            return value

        cached.table = table  # type: ignore[attr-defined]
        return cached

    return wrap


# What one entry costs beyond its text: the key (64 hex characters), the dict, its small values
# and the LRU's links; measured with tracemalloc at about 700 bytes for an entry with short text.
ENTRY_OVERHEAD_BYTES = 640


def entry_bytes(key: str, value: dict[str, Any]) -> int:
    """An estimate of what a result-cache entry holds in memory: the overhead plus its text (one
    byte per character, which is what CPython stores for ASCII)."""
    size = ENTRY_OVERHEAD_BYTES + len(key)
    for item in value.values():
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, (list, tuple)):
            size += sum(len(x) + 56 for x in item if isinstance(x, str))
    return size


class MemoryCache:
    """The result cache in this process (the embedded default): a `SizedLru` of verdicts."""

    def __init__(self, max_entries: int = 100_000, max_bytes: int = 256 * 2**20) -> None:
        self._table: SizedLru[str, dict[str, Any]] = SizedLru(max_entries, max_bytes, entry_bytes)
        self._counts = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._table)

    @property
    def bytes(self) -> int:
        return self._table.bytes

    @property
    def max_bytes(self) -> int:
        return self._table.max_bytes

    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        found = [self._table.get(key) for key in keys]
        hits = sum(value is not None for value in found)
        with self._counts:
            self.hits += hits
            self.misses += len(found) - hits
        return found

    def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        for key, value in items.items():
            self._table.put(key, value)


class NoCache:
    def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        return [None] * len(keys)

    def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        return None
