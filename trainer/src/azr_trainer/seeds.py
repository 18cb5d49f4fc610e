"""Seed tasks: the identity triplet, or the azr_seeds jsonl files."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from azr_trainer.tasks import IDENTITY_INDUCTION, IDENTITY_TRIPLET, InductionTask, Triplet


def _with_imports(snippet: str, imports: list[str] | None) -> str:
    imports = [i.strip() for i in imports or [] if i.strip()]
    missing = [i for i in imports if i not in snippet]
    return ("\n".join(missing) + "\n\n" + snippet) if missing else snippet


def _rows(path: Path, limit: int | None) -> Iterator[dict[str, Any]]:
    """The JSON objects of a jsonl file, blank lines skipped, at most ``limit`` of them."""
    with open(path, encoding="utf-8") as fh:
        rows = (json.loads(line) for line in fh if line.strip())
        yield from itertools.islice(rows, limit)


def load_triplet_seeds(path: Path, limit: int | None = None) -> list[Triplet]:
    """Rows with ``snippet``, ``input``, ``output`` (and ``imports``)."""
    return [
        Triplet(
            program=_with_imports(row["snippet"], row.get("imports")),
            input=str(row["input"]),
            output=str(row["output"]),
            step=-1,
        )
        for row in _rows(path, limit)
    ]


def load_induction_seeds(path: Path, limit: int | None = None) -> list[InductionTask]:
    """Rows with ``snippet``, ``inputs``, ``outputs``, ``message``."""
    return [
        InductionTask(
            program=_with_imports(row["snippet"], row.get("imports")),
            inputs=tuple(str(x) for x in row["inputs"]),
            outputs=tuple(str(x) for x in row["outputs"]),
            message=str(row.get("message", "")),
            step=-1,
        )
        for row in _rows(path, limit)
    ]


def identity_seeds() -> tuple[list[Triplet], list[InductionTask]]:
    return [IDENTITY_TRIPLET], [IDENTITY_INDUCTION]
