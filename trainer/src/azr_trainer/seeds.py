"""Seed tasks: the identity triplet, or the azr_seeds jsonl files."""

from __future__ import annotations

import json
from pathlib import Path

from azr_trainer.tasks import IDENTITY_INDUCTION, IDENTITY_TRIPLET, InductionTask, Triplet


def _with_imports(snippet: str, imports: list[str] | None) -> str:
    imports = [i.strip() for i in imports or [] if i.strip()]
    missing = [i for i in imports if i not in snippet]
    return ("\n".join(missing) + "\n\n" + snippet) if missing else snippet


def load_triplet_seeds(path: Path, limit: int | None = None) -> list[Triplet]:
    """Rows with ``snippet``, ``input``, ``output`` (and ``imports``)."""
    out: list[Triplet] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            out.append(
                Triplet(
                    program=_with_imports(row["snippet"], row.get("imports")),
                    input=str(row["input"]),
                    output=str(row["output"]),
                    step=-1,
                )
            )
            if limit is not None and len(out) >= limit:
                break
    return out


def load_induction_seeds(path: Path, limit: int | None = None) -> list[InductionTask]:
    """Rows with ``snippet``, ``inputs``, ``outputs``, ``message``."""
    out: list[InductionTask] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            out.append(
                InductionTask(
                    program=_with_imports(row["snippet"], row.get("imports")),
                    inputs=tuple(str(x) for x in row["inputs"]),
                    outputs=tuple(str(x) for x in row["outputs"]),
                    message=str(row.get("message", "")),
                    step=-1,
                )
            )
            if limit is not None and len(out) >= limit:
                break
    return out


def identity_seeds() -> tuple[list[Triplet], list[InductionTask]]:
    return [IDENTITY_TRIPLET], [IDENTITY_INDUCTION]
