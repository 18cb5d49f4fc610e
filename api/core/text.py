"""Text that UTF-8 cannot encode, made encodable.

A Python string may hold a lone surrogate ('\\udcff'): JSON escapes such as "\\udcff" in a
request decode to one, and so may an exception message or a repr that comes back from the
sandbox. UTF-8 has no bytes for it, so a JSON response, a SQLite row or a Prometheus label
holding one cannot be written. What writes text out passes it through these functions,
which write such a character as its backslash escape, the six characters `\\udcff`.
"""

from __future__ import annotations

import math
from typing import Any


def escape_unencodable(text: str) -> str:
    """``text`` with each character UTF-8 cannot encode written as a backslash escape."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


DEEPER = "..."  # what `encodable` writes for a list or dict nested past its max_depth


def encodable(value: Any, max_depth: int | None = None) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, strings, numbers) that any strict
    JSON encoder writes: every string, keys included, through `escape_unencodable`, and NaN
    and the infinities, which JSON lacks, as None. Other values are kept as they are; with
    ``max_depth``, a list or dict nested deeper is `DEEPER` (JSON encoders recurse).

    Iterative: a request may nest as deep as the JSON decoder allowed, and a 422 repeats it.
    """
    holder: list[Any] = [None]
    # (the copy being filled, where in it, the original value that goes there, its depth)
    pending: list[tuple[Any, Any, Any, int]] = [(holder, 0, value, 0)]
    while pending:
        target, slot, item, depth = pending.pop()
        if max_depth is not None and depth > max_depth and isinstance(item, dict | list | tuple):
            target[slot] = DEEPER
        elif isinstance(item, str):
            target[slot] = escape_unencodable(item)
        elif isinstance(item, float):
            target[slot] = item if math.isfinite(item) else None
        elif isinstance(item, dict):
            copy: dict[Any, Any] = {}
            target[slot] = copy
            for key, child in item.items():
                key = escape_unencodable(key) if isinstance(key, str) else key
                copy[key] = None  # the keys keep their order; the values are filled in below
                pending.append((copy, key, child, depth + 1))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            target[slot] = items
            pending.extend((items, index, child, depth + 1) for index, child in enumerate(item))
        else:
            target[slot] = item
    return holder[0]
