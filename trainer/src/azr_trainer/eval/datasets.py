"""Loading the evaluation sets from the shared data folder (never copied into the repo)."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from azr_trainer.eval.math_grader import last_boxed

MATH_SETS = ("math500", "aime24", "aime25", "amc23", "minerva_math", "olympiadbench", "gsm8k")
CRUX_SETS = ("cruxeval-i", "cruxeval-o")
#: EvalPlus-format program synthesis: name → (file, kind). ``data/…`` files ship with the
#: repository; the others are looked up under the data root.
CODE_SETS: dict[str, tuple[str, str]] = {
    "mbppplus": ("mbppplus/MbppPlus.jsonl", "mbpp"),
    "humanevalplus": ("humanevalplus/HumanEvalPlus.jsonl", "humaneval"),
    "mbppplus-slice": ("data/mbppplus/MbppPlus-slice.jsonl", "mbpp"),
}


def code_set_path(name: str, root: Path, repo: Path) -> tuple[Path, str]:
    rel, kind = CODE_SETS[name]
    if rel.startswith("data/"):
        return repo / rel, kind
    return root / rel, kind


@dataclass(frozen=True)
class CruxItem:
    id: str
    program: str
    input: str
    output: str


@dataclass(frozen=True)
class MathItem:
    id: str
    problem: str
    answer: str


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_cruxeval(root: Path, limit: int | None = None) -> list[CruxItem]:
    rows = _rows(root / "cruxeval" / "cruxeval.jsonl")[:limit]
    return [CruxItem(str(r["id"]), r["code"], r["input"], r["output"]) for r in rows]


def math_gold(name: str, row: dict) -> str:
    if name == "gsm8k":
        return str(row["answer"]).split("####")[-1].strip().replace(",", "")
    if name == "minerva_math":
        return last_boxed(str(row["solution"])) or ""
    if name == "olympiadbench":
        fa = row.get("final_answer")
        if isinstance(fa, str):
            try:
                fa = ast.literal_eval(fa)
            except (ValueError, SyntaxError):
                fa = [fa]
        vals = fa if isinstance(fa, list) else [fa]
        return ", ".join(str(v).strip().strip("$") for v in vals)
    ans = row.get("answer")
    if isinstance(ans, float) and ans.is_integer():
        ans = int(ans)
    text = str(ans)
    if name == "amc23" and text.endswith(".0"):
        text = text[:-2]
    return text


def load_math(root: Path, name: str, limit: int | None = None) -> list[MathItem]:
    rows = _rows(root / "math" / name / "test.jsonl")[:limit]
    out = []
    for i, r in enumerate(rows):
        problem = r.get("problem") or r.get("question") or ""
        ident = r.get("id", r.get("idx", r.get("unique_id", i)))
        out.append(MathItem(str(ident), str(problem), math_gold(name, r)))
    return out
