"""Policy update on the tiny model, and exact resume from a checkpoint."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from azr_trainer import checkpoint
from azr_trainer.backends.hf import HFBackend
from azr_trainer.buffers import Buffers
from azr_trainer.config import GenerationConfig, OptimConfig, TinyModelConfig
from azr_trainer.tiny import build_tiny_model
from azr_trainer.update import TrainSample, pad_batch, ppo_update

OPT = OptimConfig(lr=1e-2, mini_batch_size=4, micro_batch_size=2, entropy_coef=0.001)
GEN = GenerationConfig(max_prompt_tokens=64, max_response_tokens=8, batch_size=4)
PROMPTS = ["User: reverse 'abc'\nAssistant: <think>", "User: add 1 and 2\nAssistant: <think>"] * 2


def _make(tok):
    torch.manual_seed(0)
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2), tok, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=OPT.lr)
    return model, opt


def _step(model, opt, tok, rng: random.Random) -> None:
    """Sample (torch RNG), reward by length (trainer RNG picks the groups), update."""
    backend = HFBackend(model, tok, GEN, torch.device("cpu"))
    gens = backend.generate(PROMPTS)
    samples = [
        TrainSample(g.prompt_ids, g.response_ids, float(len(g.text) % 3), (rng.choice("ab"), "solve"))
        for g in gens
    ]
    ppo_update(model, opt, samples, OPT, tok.pad_token_id, torch.device("cpu"), rng)


def test_pad_batch_aligns_response_mask(tiny_tokenizer) -> None:
    s = TrainSample([5, 6, 7], [8, 9], 1.0, ("deduction", "solve"))
    t = TrainSample([5], [8], 0.0, ("deduction", "solve"))
    b = pad_batch([s, t], pad_id=0, device=torch.device("cpu"))
    # left padding: every sequence ends in the last column
    assert b.ids.tolist() == [[5, 6, 7, 8, 9], [0, 0, 0, 5, 8]]
    assert b.attn.tolist() == [[1, 1, 1, 1, 1], [0, 0, 0, 1, 1]]
    assert b.positions.tolist() == [[0, 1, 2, 3, 4], [0, 0, 0, 0, 1]]
    # the mask covers the last R = 2 columns: tokens 8, 9 of row 0 and token 8 of row 1
    assert b.mask.tolist() == [[1, 1], [0, 1]] and b.response_width == 2
    with pytest.raises(ValueError, match="non-empty prompt"):
        pad_batch([TrainSample([], [1], 0.0, ("deduction", "solve"))], 0, torch.device("cpu"))


def test_update_changes_weights_and_reports_finite_loss(tiny_tokenizer) -> None:
    model, opt = _make(tiny_tokenizer)
    before = [p.detach().clone() for p in model.parameters()]
    backend = HFBackend(model, tiny_tokenizer, GEN, torch.device("cpu"))
    gens = backend.generate(PROMPTS)
    assert all(0 < len(g.response_ids) <= GEN.max_response_tokens for g in gens)
    samples = [
        TrainSample(g.prompt_ids, g.response_ids, r, ("deduction", "solve"))
        for g, r in zip(gens, [1.0, -1.0, 0.5, -0.5], strict=False)
    ]
    stats = ppo_update(
        model, opt, samples, OPT, tiny_tokenizer.pad_token_id, torch.device("cpu"), random.Random(0)
    )
    assert torch.isfinite(torch.tensor(stats["loss"])) and stats["grad_norm"] > 0
    assert stats["clip_frac"] == 0.0  # first mini-batch starts at ratio 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=False))


def test_greedy_generation_is_deterministic(tiny_tokenizer) -> None:
    model, _ = _make(tiny_tokenizer)
    backend = HFBackend(model, tiny_tokenizer, GEN, torch.device("cpu"))
    a = backend.generate(PROMPTS[:2], greedy=True)
    b = backend.generate(PROMPTS[:2], greedy=True)
    assert [g.response_ids for g in a] == [g.response_ids for g in b]


def test_checkpoint_resume_is_exact(tiny_tokenizer, tmp_path: Path) -> None:
    torch.manual_seed(123)
    model, opt = _make(tiny_tokenizer)
    rng = random.Random(7)
    buffers = Buffers(10)
    _step(model, opt, tiny_tokenizer, rng)
    checkpoint.save_checkpoint(tmp_path, 1, model.state_dict(), opt, buffers, rng, {"x": 1})
    _step(model, opt, tiny_tokenizer, rng)  # uninterrupted run: step 2
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    expected_next = rng.random()

    torch.manual_seed(999)  # resuming must not depend on the process' current RNG state
    model2, opt2 = _make(tiny_tokenizer)
    rng2 = random.Random(0)
    buffers2 = Buffers(10)
    path = checkpoint.latest_checkpoint(tmp_path)
    assert path is not None and path.name == "step_000001"
    state = checkpoint.load_checkpoint(path, model2, opt2, buffers2, rng2)
    assert state["step"] == 1
    _step(model2, opt2, tiny_tokenizer, rng2)  # resumed run: step 2
    for k, v in model2.state_dict().items():
        assert torch.equal(v, expected[k]), k
    assert rng2.random() == expected_next


def test_checkpoint_rotation(tiny_tokenizer, tmp_path: Path) -> None:
    model, opt = _make(tiny_tokenizer)
    for step in (1, 2, 3):
        checkpoint.save_checkpoint(
            tmp_path, step, model.state_dict(), opt, Buffers(2), random.Random(0), {}, keep=2
        )
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_000002", "step_000003"]
