"""Loaders for the shared workloads (CRUXEval, AZR seed triplets), from a configurable path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from executor.settings import load_settings


def data_dir() -> Path:
    """The settings' `data.dir`: `AZR_DATA_DIR` if set, else the repository's own `data/`
    (CRUXEval and the AZR seeds, with their licences)."""
    return load_settings().data.dir


@dataclass(frozen=True)
class Triplet:
    id: str
    program: str
    input: str
    output: str
    source: str


def _read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def cruxeval(root: Path | None = None) -> list[Triplet]:
    path = (root or data_dir()) / "cruxeval" / "cruxeval.jsonl"
    return [
        Triplet(row["id"], row["code"], row["input"], row["output"], "cruxeval") for row in _read_jsonl(path)
    ]


def azr_seed_files(root: Path | None = None) -> list[Path]:
    return sorted(((root or data_dir()) / "azr_seeds").glob("*_seed_io.jsonl"))


def azr_seeds(root: Path | None = None) -> list[Triplet]:
    """Deduction/abduction seed triplets (files without `code_f`)."""
    triplets = []
    for path in azr_seed_files(root):
        if "code_f" in path.name:
            continue
        for number, row in enumerate(_read_jsonl(path)):
            triplets.append(
                Triplet(f"{path.stem}:{number}", row["snippet"], row["input"], row["output"], path.name)
            )
    return triplets


@dataclass(frozen=True)
class InductionSeed:
    id: str
    program: str
    inputs: list[str]
    outputs: list[str]
    message: str


def azr_induction_seeds(root: Path | None = None) -> list[InductionSeed]:
    seeds = []
    for path in azr_seed_files(root):
        if "code_f" not in path.name:
            continue
        for number, row in enumerate(_read_jsonl(path)):
            seeds.append(
                InductionSeed(
                    f"{path.stem}:{number}",
                    row["snippet"],
                    list(row["inputs"]),
                    list(row["outputs"]),
                    row.get("message", ""),
                )
            )
    return seeds
