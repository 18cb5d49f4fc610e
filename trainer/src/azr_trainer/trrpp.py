"""Task-Relative REINFORCE++ as pure functions.

1. ``group_advantages``: each of the six (task type, role) groups is normalised with its own
   mean and standard deviation — per sample (the paper's equation) or weighted by response
   length (``token``: the official code whitens over response tokens).
2. The reward sits on the last token and there is no discount, so every response token gets
   its sample's advantage (``broadcast_advantages``).
3. ``policy_loss``: PPO-clipped ratio objective, *minimised*, so its gradient ascends
   ``min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)``; token-level mean; optional k3 KL to a reference and an
   entropy bonus.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch


def group_advantages(
    rewards: Sequence[float],
    groups: Sequence[Hashable],
    lengths: Sequence[int] | None = None,
    mode: str = "sample",
    eps: float = 1e-6,
) -> list[float]:
    """``(r − mean_g) / (std_g + eps)`` within each group ``g`` (population std).

    ``mode="token"`` weighs each sample by its response length when computing mean and std.
    A group of identical rewards gets advantage 0.
    """
    if len(rewards) != len(groups):
        raise ValueError("rewards and groups differ in length")
    if mode not in ("sample", "token"):
        raise ValueError("mode must be 'sample' or 'token'")
    if mode == "token":
        if lengths is None or len(lengths) != len(rewards):
            raise ValueError("token mode needs one length per reward")
    out = [0.0] * len(rewards)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    for idx in members.values():
        w = [float(lengths[i]) if mode == "token" and lengths else 1.0 for i in idx]
        total = sum(w)
        if total <= 0:
            continue
        mean = sum(wi * rewards[i] for wi, i in zip(w, idx, strict=False)) / total
        var = sum(wi * (rewards[i] - mean) ** 2 for wi, i in zip(w, idx, strict=False)) / total
        std = math.sqrt(var)
        if std + eps == 0.0:  # a constant group carries no signal
            continue
        for i in idx:
            out[i] = (rewards[i] - mean) / (std + eps)
    return out


def broadcast_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) sample advantages → (B, T) token advantages on the response tokens."""
    return advantages[:, None].to(mask.dtype) * mask


def masked_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum()


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the softmax over the last dimension."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(π‖π_ref): exp(Δ) − Δ − 1 with Δ = log π_ref − log π (≥ 0)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


@dataclass(frozen=True)
class LossStats:
    pg_loss: float
    clip_frac: float
    approx_kl: float
    entropy: float
    kl: float


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_ratio: float = 0.2,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    num_tokens: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """PPO-clipped TRR++ loss, averaged over response tokens.

    All tensors are (B, T); ``advantages`` is per token (see :func:`broadcast_advantages`).
    ``num_tokens`` is the denominator of the token mean; pass the mini-batch's token count when
    the mini-batch is split in micro-batches so their losses add up to the mini-batch mean.
    """
    mask = mask.to(logp.dtype)
    denom = mask.sum().clamp(min=1.0) if num_tokens is None else num_tokens
    ratio = torch.exp(logp - old_logp)
    surr = ratio * advantages
    surr_clipped = torch.clamp(ratio, 1.0 - clip_ratio, 1.0 + clip_ratio) * advantages
    pg = -torch.minimum(surr, surr_clipped)
    loss = masked_sum(pg, mask) / denom
    ent_val = 0.0
    kl_val = 0.0
    if entropy is not None and entropy_coef:
        ent = masked_sum(entropy, mask) / denom
        loss = loss - entropy_coef * ent
        ent_val = float(ent.detach())
    elif entropy is not None:
        ent_val = float((masked_sum(entropy, mask) / denom).detach())
    if ref_logp is not None and kl_coef:
        kl = masked_sum(kl_k3(logp, ref_logp), mask) / denom
        loss = loss + kl_coef * kl
        kl_val = float(kl.detach())
    with torch.no_grad():
        clipped = ((ratio - 1.0).abs() > clip_ratio).to(mask.dtype)
        stats = LossStats(
            pg_loss=float(masked_sum(pg, mask) / denom),
            clip_frac=float(masked_sum(clipped, mask) / denom),
            approx_kl=float(masked_sum(old_logp - logp, mask) / denom),
            entropy=ent_val,
            kl=kl_val,
        )
    return loss, stats
