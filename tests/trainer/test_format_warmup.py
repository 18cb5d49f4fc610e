"""`model.format_warmup`: supervised format steps for a pretrained model on a fresh start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azr_trainer.config import ConfigError, load_config
from azr_trainer.trainer import Trainer


def test_format_warmup_trains_the_policy_and_records_its_losses(saved_tiny: Path, tmp_path: Path) -> None:
    cfg = load_config(
        overrides=[
            f"model.name_or_path={saved_tiny}",
            "model.device=cpu",
            "model.format_warmup.steps=4",
            "model.format_warmup.lr=1e-3",
            "model.format_warmup.batch_size=2",
            f"train.output_dir={tmp_path / 'run'}",
            "service.url=http://127.0.0.1:9",  # never called: the warm-up needs no service
        ]
    )
    trainer = Trainer(cfg)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    losses = trainer.format_warmup()
    assert len(losses) == 4 and all(loss > 0 for loss in losses)
    moved = sum(int((p.detach() != b).sum()) for p, b in zip(trainer.model.parameters(), before, strict=True))
    assert moved > 1000
    assert trainer.model.training
    record = json.loads((trainer.out / "format_warmup.json").read_text())
    assert record["steps"] == 4 and record["losses"] == losses


def test_format_warmup_is_refused_for_the_tiny_model_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="model.tiny.warmup_steps"):
        load_config(overrides=["model.format_warmup.steps=3"])
    with pytest.raises(ConfigError, match="format_warmup"):
        load_config(overrides=["model.name_or_path=/x", "model.format_warmup.batch_size=0"])
