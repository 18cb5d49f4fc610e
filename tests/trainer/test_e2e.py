"""End to end on CPU: the tiny model trains 3 full steps against a real ``azr-exec serve``
over HTTP on loopback; then a checkpoint resumes to the identical state."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from azr_trainer.config import ROLES, TASK_TYPES, load_config
from azr_trainer.trainer import Trainer

pytestmark = pytest.mark.e2e


def _config(url: str, out: Path, **extra: str):
    overrides = [
        f"service.url={url}",
        f"train.output_dir={out}",
        "train.steps=3",
        "train.save_every=2",
        "train.progress=false",
        "eval.limit=2",
    ]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_config(preset="tiny-cpu", overrides=overrides)


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.fixture(scope="module")
def warm_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warmed-up tiny model, built once and copied into each run's output dir."""
    from azr_trainer.modeling import build_or_load_tiny

    out = tmp_path_factory.mktemp("base")
    cfg = _config("http://unused", out)
    build_or_load_tiny(cfg)
    return out / "base_model"


def _run_dir(tmp_path: Path, name: str, base: Path) -> Path:
    out = tmp_path / name
    shutil.copytree(base, out / "base_model")
    return out


def test_three_steps_against_real_service_then_exact_resume(
    azr_service: str, tmp_path: Path, warm_base: Path
) -> None:
    out = _run_dir(tmp_path, "run", warm_base)
    cfg = _config(azr_service, out)
    trainer = Trainer(cfg)
    assert trainer.verifier.healthz() and trainer.verifier.readyz()
    history = trainer.train()
    assert len(history) == 3 and trainer.step == 3

    # all six task × role batches ran every step, every reward from a real verdict
    for m in history:
        for tt in TASK_TYPES:
            for role in ROLES:
                assert m[f"count/{tt}/{role}"] == cfg.selfplay.batch_size
                assert m[f"unverified/{tt}/{role}"] == 0
                assert -1.0 <= m[f"reward/{tt}/{role}"] <= 1.0
        assert math.isfinite(m["train/loss"]) and m["train/num_samples"] > 0
        assert m["time/generation"] > 0 and m["time/service"] > 0 and m["time/update"] > 0
    # buffers grew from validated proposals (seeded with one task each)
    sizes = trainer.buffers.sizes()
    assert sum(sizes.values()) > 3, sizes
    # the service judged responses in both roles (not only format errors)
    assert any(m[f"format_ok/{tt}/solve"] > 0 for m in history for tt in TASK_TYPES)
    assert any(m[f"format_ok/{tt}/propose"] > 0 for m in history for tt in TASK_TYPES)
    # logs, tensorboard, checkpoints
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert any((out / "tb").iterdir())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3 * 6 and {(x["task_type"], x["role"]) for x in samples} == {
        (tt, role) for tt in TASK_TYPES for role in ROLES
    }
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step_000002", "step_000003"]
    expected = _state(trainer)

    # resume=auto at the end: nothing left to do
    assert Trainer(_config(azr_service, out, **{"train.resume": "auto"})).train() == []

    # resume from step 2 redoes step 3 exactly: model, optimizer, buffers, RNG
    ckpt2 = out / "checkpoints" / "step_000002"
    resumed = Trainer(_config(azr_service, out, **{"train.resume": str(ckpt2)}))
    hist_r = resumed.train()
    assert len(hist_r) == 1 and resumed.step == 3
    for k, v in _state(resumed).items():
        assert torch.equal(v, expected[k]), k
    assert resumed.buffers.state_dict() == trainer.buffers.state_dict()
    opt_a = trainer.optimizer.state_dict()["state"]
    opt_b = resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)
    assert resumed.rng.getstate() == trainer.rng.getstate()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3 * 6
    assert rows[2]["reward/deduction/solve"] == history[2]["reward/deduction/solve"]


def test_eval_command_against_real_service(
    azr_service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azr_trainer.config import data_root
    from azr_trainer.eval.runner import run_eval

    # CRUXEval from the repository's own data/ (the default root: no ../shared needed); the
    # math sets are optional (`make data`), so two problems of our own stand in for MATH500.
    monkeypatch.delenv("AZR_DATA_DIR", raising=False)
    monkeypatch.delenv("AZR_DATA_ROOT", raising=False)
    shipped = data_root(load_config(preset="tiny-cpu"))
    assert shipped == Path(__file__).resolve().parents[2] / "data"
    root = tmp_path / "data"
    (root / "math" / "math500").mkdir(parents=True)
    (root / "cruxeval").symlink_to(shipped / "cruxeval")
    problems = [
        {"problem": "What is $2 + 3$?", "answer": "5"},
        {"problem": "What is $7 - 4$?", "answer": "3"},
    ]
    (root / "math" / "math500" / "test.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    cfg = _config(
        azr_service,
        tmp_path / "ev",
        **{
            "data.root": str(root),
            "eval.output_dir": str(tmp_path / "ev" / "eval"),
            "eval.benchmarks": "cruxeval-o,cruxeval-i,math500,mbppplus-slice",
            "eval.max_new_tokens": "16",
            "model.tiny.warmup_steps": "0",
        },
    )
    results = run_eval(cfg)
    names = ["cruxeval-o", "cruxeval-i", "math500", "mbppplus-slice-base", "mbppplus-slice"]
    assert [r.name for r in results] == names
    assert all(r.n == 2 and r.unverified == 0 for r in results)
    assert (tmp_path / "ev" / "eval" / "results.png").stat().st_size > 0


def test_eval_during_training_writes_heldout_rows(azr_service: str, tmp_path: Path, warm_base: Path) -> None:
    """train.eval_every: greedy held-out accuracy before step 0, every k steps and at the end."""
    out = _run_dir(tmp_path, "evalrun", warm_base)
    cfg = _config(
        azr_service,
        out,
        **{
            "train.steps": "3",
            "train.eval_every": "2",
            "train.eval_sets": "[toy]",
            "toy.heldout_per_type": "4",
        },
    )
    Trainer(cfg).train()
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 3]
    for r in rows:
        assert 0.0 <= r["eval/toy"] <= 1.0
        for tt in TASK_TYPES:  # the tiny-cpu preset runs all three task types
            assert 0.0 <= r[f"eval/toy/{tt}"] <= 1.0
