"""fp32 master weights with bf16 compute: small AdamW steps must not round away."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from azr_trainer import precision
from azr_trainer.config import ConfigError, OptimConfig, load_config
from azr_trainer.modeling import load_policy
from azr_trainer.update import TrainSample, ppo_update

OPT = OptimConfig(lr=1e-6, mini_batch_size=8, micro_batch_size=4, entropy_coef=0.0)


def _samples() -> list[TrainSample]:
    rng = random.Random(0)
    out = []
    for i in range(8):
        prompt = [rng.randrange(2, 200) for _ in range(6 + i)]
        response = [rng.randrange(2, 200) for _ in range(3 + i % 3)]
        out.append(TrainSample(prompt, response, float(i % 2), ("deduction", "solve")))
    return out


def _fraction_moved(model: torch.nn.Module, before: list[torch.Tensor]) -> float:
    """Among the weights that got a nonzero gradient, the share whose value changed."""
    moved = total = 0
    for p, b in zip(model.parameters(), before, strict=True):
        assert p.grad is not None
        had_grad = p.grad != 0
        moved += int((p.detach() != b)[had_grad].sum())
        total += int(had_grad.sum())
    assert total > 1000
    return moved / total


def _one_step(model: torch.nn.Module, pad_id: int, compute: torch.dtype) -> float:
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=OPT.lr)
    stats = ppo_update(
        model, opt, _samples(), OPT, pad_id, torch.device("cpu"), random.Random(0), compute_dtype=compute
    )
    assert stats["grad_norm"] > 0
    return _fraction_moved(model, before)


def test_bf16_config_keeps_fp32_masters_and_small_steps_move_them(saved_tiny: Path, tiny_tokenizer) -> None:
    cfg = load_config(
        overrides=[f"model.name_or_path={saved_tiny}", "model.dtype=bfloat16", "model.device=cpu"]
    )
    model, tok, _ = load_policy(cfg)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    seen: list[torch.dtype] = []
    model.lm_head.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    moved = _one_step(model, tok.pad_token_id, precision.to_dtype(cfg.model.dtype))
    assert seen and set(seen) == {torch.bfloat16}  # the forward passes ran in bf16
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert moved > 0.95


def test_bf16_weights_with_plain_adamw_round_the_step_away(saved_tiny: Path, tiny_tokenizer) -> None:
    """The old behaviour: bf16 parameters stepped directly at lr 1e-6 barely change."""
    cfg = load_config(
        overrides=[
            f"model.name_or_path={saved_tiny}",
            "model.dtype=bfloat16",
            "model.param_dtype=bfloat16",
            "model.device=cpu",
        ]
    )
    model, tok, _ = load_policy(cfg)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    moved = _one_step(model, tok.pad_token_id, torch.bfloat16)
    assert moved < 0.1


def test_precision_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="model.param_dtype"):
        load_config(overrides=["model.param_dtype=fp8"])
    with pytest.raises(ValueError, match="loss scaling"):
        precision.check_trainable("float16", "float32")
    precision.check_trainable("bfloat16", "float32")
    with precision.autocast(torch.device("cpu"), torch.bfloat16):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with precision.autocast(torch.device("cpu"), torch.float32):
        assert not torch.is_autocast_enabled("cpu")


def test_lora_keeps_the_frozen_base_in_bf16_and_the_adapter_in_fp32(saved_tiny: Path) -> None:
    pytest.importorskip("peft")
    cfg = load_config(
        overrides=[
            f"model.name_or_path={saved_tiny}",
            "model.dtype=bfloat16",
            "model.device=cpu",
            "model.lora.enabled=true",
            "model.lora.r=4",
        ]
    )
    model, _, _ = load_policy(cfg)
    trainable = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert trainable == {torch.float32} and frozen == {torch.bfloat16}
