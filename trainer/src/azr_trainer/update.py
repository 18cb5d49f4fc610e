"""The policy update: log-probabilities of the responses and the TRR++ PPO step."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from azr_trainer import parallel, trrpp
from azr_trainer.config import OptimConfig
from azr_trainer.parallel import LocalRuntime, Runtime


@dataclass(frozen=True)
class TrainSample:
    prompt_ids: list[int]
    response_ids: list[int]
    reward: float
    group: tuple[str, str]  # (task_type, role)


def pad_batch(
    samples: Sequence[TrainSample], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask`` (B, L) and a response mask (B, L−1).

    ``mask[:, j]`` marks that token ``j + 1`` is a response token, i.e. it is aligned with the
    logits at position ``j``.
    """
    width = max(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(samples), width), dtype=torch.long)
    mask = torch.zeros((len(samples), width - 1), dtype=torch.float32)
    for row, s in enumerate(samples):
        seq = s.prompt_ids + s.response_ids
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attn[row, : len(seq)] = 1
        p = len(s.prompt_ids)
        mask[row, p - 1 : p - 1 + len(s.response_ids)] = 1.0
    return ids.to(device), attn.to(device), mask.to(device)


def token_logprobs(
    model: Any, ids: torch.Tensor, attn: torch.Tensor, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(token_{j+1} | ≤ j) for every position j, shape (B, L−1); optionally entropies."""
    logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    entropy = trrpp.entropy_from_logits(logits) if with_entropy else None
    return logp, entropy


def _chunks(idx: list[int], size: int) -> list[list[int]]:
    return [idx[i : i + size] for i in range(0, len(idx), max(1, size))]


@torch.no_grad()
def old_logprobs(
    model: Any, samples: Sequence[TrainSample], micro: int, pad_id: int, device: torch.device
) -> list[torch.Tensor]:
    """Per-sample behaviour log-probs (response positions only), computed before the update."""
    out: list[torch.Tensor] = []
    model.eval()
    for chunk in _chunks(list(range(len(samples))), micro):
        batch = [samples[i] for i in chunk]
        ids, attn, mask = pad_batch(batch, pad_id, device)
        logp, _ = token_logprobs(model, ids, attn)
        for row in range(len(batch)):
            out.append(logp[row][mask[row] > 0].detach().cpu())
    model.train()
    return out


def _scatter(values: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    full = torch.zeros_like(mask)
    for row, v in enumerate(values):
        full[row, mask[row] > 0] = v.to(full.device, full.dtype)
    return full


def ppo_update(
    model: Any,
    optimizer: torch.optim.Optimizer,
    samples: Sequence[TrainSample],
    cfg: OptimConfig,
    pad_id: int,
    device: torch.device,
    rng: random.Random,
    ref_model: Any | None = None,
    runtime: Runtime | None = None,
) -> dict[str, float]:
    """One TRR++ update over all six groups together; returns averaged statistics.

    ``samples`` is the GLOBAL batch on every rank. Under a multi-process ``runtime`` each rank
    runs its share of every mini-batch (``parallel.lockstep_shard``) with the loss scaled so
    that the averaged gradient equals the one-process gradient; advantages are computed over
    the global batch and the returned statistics are global.
    """
    rt = runtime if runtime is not None else LocalRuntime()
    samples = [s for s in samples if s.response_ids]
    if not samples:
        return {"loss": 0.0, "grad_norm": 0.0, "num_samples": 0.0}
    rewards = [s.reward for s in samples]
    groups = [s.group for s in samples]
    lengths = [len(s.response_ids) for s in samples]
    adv = trrpp.group_advantages(rewards, groups, lengths, mode=cfg.normalize)
    micro_size = cfg.micro_batch_size
    old = parallel.sharded_map(
        rt, lambda part: old_logprobs(model, part, micro_size, pad_id, device), samples
    )
    ref: list[torch.Tensor] | None = None
    if ref_model is not None and cfg.kl_coef:
        ref = parallel.sharded_map(
            rt, lambda part: old_logprobs(ref_model, part, micro_size, pad_id, device), samples
        )
    params = [p for p in model.parameters() if p.requires_grad]
    totals: dict[str, float] = {"loss": 0.0, "pg_loss": 0.0, "clip_frac": 0.0, "entropy": 0.0}
    totals.update({"kl": 0.0, "grad_norm": 0.0, "approx_kl": 0.0})
    n_steps = 0
    model.train()
    for _ in range(cfg.ppo_epochs):
        order = list(range(len(samples)))
        rng.shuffle(order)
        for mb in _chunks(order, cfg.mini_batch_size):
            n_tok = float(sum(lengths[i] for i in mb))
            optimizer.zero_grad(set_to_none=True)
            mb_loss = 0.0
            # this rank's share (None: padding, masked out, so every rank runs as many passes)
            share = parallel.lockstep_shard(mb, rt.rank, rt.world_size)
            micros = _chunks(list(range(len(share))), cfg.micro_batch_size)
            for k, pos in enumerate(micros):
                micro = [share[j] if share[j] is not None else mb[0] for j in pos]
                keep = torch.tensor([share[j] is not None for j in pos], dtype=torch.float32, device=device)
                batch = [samples[i] for i in micro]
                with rt.grad_sync(model, sync=k == len(micros) - 1):
                    ids, attn, mask = pad_batch(batch, pad_id, device)
                    logp, ent = token_logprobs(model, ids, attn, with_entropy=cfg.entropy_coef > 0)
                    old_t = _scatter([old[i] for i in micro], mask)
                    ref_t = _scatter([ref[i] for i in micro], mask) if ref is not None else None
                    adv_t = trrpp.broadcast_advantages(
                        torch.tensor([adv[i] for i in micro], device=device), mask
                    )
                    loss, st = trrpp.policy_loss(
                        logp,
                        old_t,
                        adv_t,
                        mask * keep[:, None],
                        clip_ratio=cfg.clip_ratio,
                        entropy=ent,
                        entropy_coef=cfg.entropy_coef,
                        ref_logp=ref_t,
                        kl_coef=cfg.kl_coef,
                        # ranks' gradients are averaged: scale so the average is the global mean
                        num_tokens=n_tok / rt.world_size,
                    )
                    rt.backward(loss)
                mb_loss += float(loss.detach())
                for key in ("pg_loss", "clip_frac", "entropy", "kl", "approx_kl"):
                    totals[key] += getattr(st, key)
            grad_norm = rt.clip_grad_norm(params, cfg.grad_clip)
            optimizer.step()
            totals["loss"] += mb_loss
            totals["grad_norm"] += float(grad_norm)
            n_steps += 1
    if rt.world_size > 1:  # each rank holds its share of the sums: the global value is their mean
        per_rank = rt.all_gather(totals)
        totals = {k: sum(r[k] for r in per_rank) / rt.world_size for k in totals}
        totals["grad_norm"] = per_rank[0]["grad_norm"]  # the same on every rank (synced grads)
    out = {k: v / max(1, n_steps) for k, v in totals.items()}
    out["num_samples"] = float(len(samples))
    out["num_tokens"] = float(sum(lengths))
    return out
