"""``azr-train eval``: greedy decoding on CRUXEval-I/O (checked by the service) and the math sets
(checked locally with math-verify/sympy); prints a table, writes JSON and a bar plot."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azr_trainer import parsing, prompts
from azr_trainer.config import Config, data_root, repo_root
from azr_trainer.eval import code_eval, code_sets, datasets
from azr_trainer.eval.math_grader import extract_math_answer, is_equiv

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchResult:
    name: str
    n: int
    correct: int
    unverified: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


def eval_cruxeval(
    mode: str, items: list[datasets.CruxItem], backend: Any, verifier: Any, max_new: int
) -> tuple[BenchResult, list[dict]]:
    """``mode`` is ``o`` (predict the output) or ``i`` (predict an input)."""
    from azr_trainer.selfplay import make_answer, unverified
    from azr_trainer.tasks import Triplet

    task_type = "deduction" if mode == "o" else "abduction"
    label = "output" if mode == "o" else "input"
    triplets = [Triplet(it.program, it.input, it.output) for it in items]
    gens = backend.generate(
        [prompts.solve_prompt(task_type, t) for t in triplets], greedy=True, max_new_tokens=max_new
    )
    answers, where = [], []
    for i, (t, g) in enumerate(zip(triplets, gens, strict=False)):
        ans = parsing.extract_answer_loose(g.text, label)
        if ans is not None:
            answers.append(make_answer(task_type, t, ans, f"crux-{mode}-{i}"))
            where.append(i)
    results: list[Any] = [None] * len(items)
    for i, r in zip(where, verifier.verify(answers, run="eval") if answers else [], strict=False):
        results[i] = r
    rows = []
    for it, g, r in zip(items, gens, results, strict=False):
        rows.append(
            {
                "id": it.id,
                "correct": bool(r and r.correct),
                "verdict": r.verdict if r else "no_answer",
                "response": g.text,
            }
        )
    n_unverified = sum(1 for r in results if r is not None and unverified(r))
    correct = sum(1 for row in rows if row["correct"])
    return BenchResult(f"cruxeval-{mode}", len(items), correct, n_unverified), rows


def eval_math(
    name: str, items: list[datasets.MathItem], backend: Any, max_new: int
) -> tuple[BenchResult, list[dict]]:
    gens = backend.generate(
        [prompts.math_prompt(it.problem) for it in items], greedy=True, max_new_tokens=max_new
    )
    rows = []
    for it, g in zip(items, gens, strict=False):
        pred = extract_math_answer(g.text, last_number=name == "gsm8k")
        rows.append(
            {
                "id": it.id,
                "gold": it.answer,
                "pred": pred,
                "correct": is_equiv(pred, it.answer),
                "response": g.text,
            }
        )
    return BenchResult(name, len(items), sum(r["correct"] for r in rows)), rows


def format_table(results: list[BenchResult]) -> str:
    lines = [f"{'benchmark':<16}{'n':>6}{'correct':>9}{'accuracy':>10}", "-" * 41]
    for r in results:
        lines.append(f"{r.name:<16}{r.n:>6}{r.correct:>9}{100 * r.accuracy:>9.1f}%")
        if r.unverified:
            lines[-1] += f"  ({r.unverified} unverified)"
    return "\n".join(lines)


def plot_results(results: list[BenchResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(results)), 3.2))
    ax.bar([r.name for r in results], [100 * r.accuracy for r in results], color="#4878a8")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_eval(
    cfg: Config,
    model_path: str | None = None,
    gguf_file: str | None = None,
    backend: Any = None,
    verifier: Any = None,
) -> list[BenchResult]:
    from azr_trainer.backends.hf import HFBackend
    from azr_trainer.modeling import load_policy, load_pretrained, resolve_device
    from azr_trainer.precision import to_dtype

    if backend is None:
        if model_path:
            model, tok = load_pretrained(model_path, gguf_file, cfg.model.dtype)
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            device = resolve_device(cfg.model.device)
            model.to(device)
        else:
            model, tok, device = load_policy(cfg)
        gen_cfg = cfg.generation
        gen_cfg.batch_size = cfg.eval.batch_size
        backend = HFBackend(model, tok, gen_cfg, device, compute_dtype=to_dtype(cfg.model.dtype))
    crux_needed = any(b in datasets.CRUX_SETS or b in datasets.CODE_SETS for b in cfg.eval.benchmarks)
    if verifier is None and crux_needed:
        from azr_trainer.trainer import make_client

        verifier = make_client(cfg)
    root = data_root(cfg)
    out_dir = Path(cfg.eval.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[BenchResult] = []
    details: dict[str, list[dict]] = {}
    max_new = cfg.eval.max_new_tokens
    for name in cfg.eval.benchmarks:
        if name in datasets.CRUX_SETS:
            items = datasets.load_cruxeval(root, cfg.eval.limit)
            res, rows = eval_cruxeval(name[-1], items, backend, verifier, max_new)
        elif name in datasets.MATH_SETS:
            items_m = datasets.load_math(root, name, cfg.eval.limit)
            res, rows = eval_math(name, items_m, backend, max_new)
        elif name in datasets.CODE_SETS:
            path, kind = datasets.code_set_path(name, root, repo_root())
            problems = code_sets.load_evalplus(path, kind, cfg.eval.limit)
            code_res, rows = code_eval.eval_code(name, problems, backend, verifier, max_new)
            log.info(
                "%s: %d problems graded, %d skipped (reference failed every base input), "
                "%d inputs dropped (reference failed or input too long)",
                name,
                code_res.n,
                code_res.skipped_problems,
                code_res.dropped_inputs,
            )
            results.append(
                BenchResult(f"{name}-base", code_res.n, code_res.base_correct, code_res.unverified)
            )
            res = BenchResult(name, code_res.n, code_res.plus_correct, code_res.unverified)
        else:
            raise ValueError(f"unknown benchmark {name!r}")
        log.info("%s: %d/%d", name, res.correct, res.n)
        results.append(res)
        details[name] = rows
    table = format_table(results)
    print(table)
    (out_dir / "results.json").write_text(
        json.dumps(
            {
                "model": model_path or cfg.model.name_or_path,
                "results": [
                    {"benchmark": r.name, "n": r.n, "correct": r.correct, "accuracy": r.accuracy}
                    for r in results
                ],
                "details": details,
            },
            indent=1,
        )
    )
    (out_dir / "results.txt").write_text(table + "\n")
    plot_results(results, out_dir / "results.png", f"greedy eval: {model_path or cfg.model.name_or_path}")
    return results
