from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from azr_trainer import cli
from azr_trainer.config import load_config
from azr_trainer.modeling import apply_lora, trainable_state
from azr_trainer.tiny import build_tiny_model


def test_help_and_show_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "azr-train" in capsys.readouterr().out
    assert cli.main(["show-config", "--preset", "paper-7b", "--set", "train.steps=3"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["steps"] == 3 and shown["optim"]["lr"] == 1e-6
    assert shown["selfplay"]["proposer_rewards"] == "official"
    assert shown["selfplay"]["answer_parsing"] == "official"


def test_cli_reports_config_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show-config", "--preset", "tiny-cpu", "--set", "optim.nope=1"]) == 2
    assert "optim: unknown key(s) ['nope']" in capsys.readouterr().err


def test_train_command_fails_cleanly_without_service(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AZR_TINY_CACHE", "off")
    code = cli.main(
        [
            "--preset",
            "tiny-cpu",
            "--set",
            "service.url=http://127.0.0.1:9",
            "--set",
            f"train.output_dir={tmp_path}",
            "--set",
            "model.tiny.warmup_steps=0",
        ]
    )
    assert code == 2


def test_lora_trains_only_the_adapter(tiny_tokenizer) -> None:
    pytest.importorskip("peft")
    cfg = load_config(preset="tiny-cpu", overrides=["model.lora.enabled=true", "model.lora.r=4"])
    model = apply_lora(build_tiny_model(cfg.model.tiny, tiny_tokenizer), cfg)
    state = trainable_state(model, lora=True)
    assert state and all("lora_" in k for k in state)
    full = trainable_state(model, lora=False)
    assert len(full) > len(state)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
