"""The update's log-probs: response positions only, equal to the full computation."""

from __future__ import annotations

import random

import pytest
import torch
from azr_trainer.config import TinyModelConfig
from azr_trainer.tiny import build_tiny_model
from azr_trainer.update import TrainSample, pad_batch, token_logprobs


def _samples(n: int = 5, prompt_len: int = 40) -> list[TrainSample]:
    rng = random.Random(3)
    return [
        TrainSample(
            [rng.randrange(2, 300) for _ in range(prompt_len + 7 * i)],
            [rng.randrange(2, 300) for _ in range(1 + (3 * i) % 7)],
            0.0,
            ("deduction", "solve"),
        )
        for i in range(n)
    ]


def _full_reference(model, samples, pad_id) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The old computation: right padding, fp32 logits and log-softmax over every position."""
    width = max(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id)
    attn = torch.zeros((len(samples), width), dtype=torch.long)
    for row, s in enumerate(samples):
        seq = s.prompt_ids + s.response_ids
        ids[row, : len(seq)] = torch.tensor(seq)
        attn[row, : len(seq)] = 1
    logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits[:, :-1].float()
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, ids[:, 1:, None]).squeeze(-1)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    lps, ents = [], []
    for row, s in enumerate(samples):
        p, r = len(s.prompt_ids), len(s.response_ids)
        lps.append(logp[row, p - 1 : p - 1 + r])
        ents.append(ent[row, p - 1 : p - 1 + r])
    return lps, ents


@pytest.fixture()
def model(tiny_tokenizer):
    m = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2), tiny_tokenizer, seed=1)
    m.eval()
    return m


@pytest.mark.parametrize("chunk", [1, 3, 1024])
def test_response_only_logprobs_equal_the_full_computation(model, tiny_tokenizer, chunk: int) -> None:
    samples = _samples()
    pad = tiny_tokenizer.pad_token_id
    with torch.no_grad():
        want_lp, want_ent = _full_reference(model, samples, pad)
        b = pad_batch(samples, pad, torch.device("cpu"))
        logp, ent = token_logprobs(model, b, with_entropy=True, chunk=chunk)
    assert ent is not None
    for row, (wl, we) in enumerate(zip(want_lp, want_ent, strict=True)):
        got = b.mask[row] > 0
        torch.testing.assert_close(logp[row][got], wl, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ent[row][got], we, atol=1e-5, rtol=1e-5)


def test_float_logits_are_bounded_by_the_response_not_the_prompt(
    model, tiny_tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long prompts, short responses: the lm_head and every fp32 log-softmax see only
    response positions (at most ``chunk`` of them at a time), also with gradients."""
    samples = _samples(n=4, prompt_len=300)
    longest = max(len(s.response_ids) for s in samples)
    vocab = model.config.vocab_size
    head_shapes: list[tuple[int, ...]] = []
    model.lm_head.register_forward_hook(lambda _m, _i, out: head_shapes.append(tuple(out.shape)))
    softmax_shapes: list[tuple[int, ...]] = []
    real = torch.log_softmax

    def spy(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        softmax_shapes.append(tuple(x.shape))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(torch, "log_softmax", spy)
    b = pad_batch(samples, tiny_tokenizer.pad_token_id, torch.device("cpu"))
    assert b.ids.shape[1] > 300 and b.response_width == longest
    model.train()
    logp, ent = token_logprobs(model, b, with_entropy=True, chunk=4)
    assert ent is not None
    ((logp * b.mask).sum() + (ent * b.mask).sum()).backward()  # chunks recomputed in backward
    assert head_shapes and all(s == (4, longest + 1, vocab) for s in head_shapes)
    assert softmax_shapes and all(s[0] == 4 and s[1] <= 4 and s[2] == vocab for s in softmax_shapes)
    assert sum(s[1] for s in softmax_shapes) == 2 * longest  # forward + recomputation
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)  # left padding: no NaN
