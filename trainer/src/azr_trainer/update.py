"""The policy update: log-probabilities of the responses and the TRR++ PPO step."""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from azr_trainer import parallel, trrpp
from azr_trainer.config import OptimConfig
from azr_trainer.parallel import LocalRuntime, Runtime
from azr_trainer.precision import autocast


@dataclass(frozen=True)
class TrainSample:
    prompt_ids: list[int]
    response_ids: list[int]
    reward: float
    group: tuple[str, str]  # (task_type, role)


@dataclass(frozen=True)
class Batch:
    """A left-padded micro-batch: every sequence ends in the last column, so the responses
    are (the right-aligned parts of) the last ``R`` columns, R = the longest response."""

    #: (B, L) prompt + response tokens, left-padded
    ids: torch.Tensor
    #: (B, L) 1 on real tokens
    attn: torch.Tensor
    #: (B, L) position ids counted from each row's first real token, as in generation
    positions: torch.Tensor
    #: (B, R) 1 where column j of ``ids[:, L − R:]`` is a response token
    mask: torch.Tensor

    @property
    def response_width(self) -> int:
        return int(self.mask.shape[1])


def pad_batch(samples: Sequence[TrainSample], pad_id: int, device: torch.device) -> Batch:
    """Left-pad prompt + response; the response mask covers only the last R columns."""
    if any(not s.prompt_ids for s in samples):
        raise ValueError("every sample needs a non-empty prompt")
    width = max(len(s.prompt_ids) + len(s.response_ids) for s in samples)
    resp = max(len(s.response_ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(samples), width), dtype=torch.long)
    mask = torch.zeros((len(samples), resp), dtype=torch.float32)
    for row, s in enumerate(samples):
        seq = s.prompt_ids + s.response_ids
        ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        attn[row, width - len(seq) :] = 1
        mask[row, resp - len(s.response_ids) :] = 1.0
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    return Batch(ids.to(device), attn.to(device), positions.to(device), mask.to(device))


def _logits_to_keep_arg(model: Any) -> str | None:
    """The keyword that makes the model apply its lm_head to the last positions only."""
    m = model
    for _ in range(6):  # wrappers: the KL reference's adapter switch, DDP, peft, the HF model
        if m is None:
            return None
        if isinstance(m, torch.nn.parallel.DistributedDataParallel):
            m = m.module
        if hasattr(m, "get_base_model"):
            m = m.get_base_model()
        forward = getattr(m, "forward", None)
        if forward is not None:
            params = inspect.signature(forward).parameters
            for name in ("logits_to_keep", "num_logits_to_keep"):  # transformers >= 4.50, 4.45
                if name in params:
                    return name
        m = getattr(m, "model", None)
    return None


def _logp_entropy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 log π(target) and entropy for one chunk of positions."""
    logp_all = torch.log_softmax(logits.float(), dim=-1)
    logp = logp_all.gather(-1, targets[..., None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def token_logprobs(
    model: Any,
    batch: Batch,
    with_entropy: bool = False,
    compute_dtype: torch.dtype = torch.float32,
    chunk: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π of the last R tokens of each row (B, R), aligned with ``batch.mask``; optionally
    their entropies.

    Memory: the lm_head runs only on the last R + 1 positions (``logits_to_keep``), never on
    the prompt, and the fp32 log-softmax is taken ``chunk`` positions at a time. With
    gradients on, each chunk is recomputed in the backward pass (activation checkpointing), so
    at most one chunk of (B, chunk, vocab) fp32 values is alive at once. The forward pass runs
    under autocast in ``compute_dtype``.
    """
    r = batch.response_width
    kwargs: dict[str, Any] = {}
    keep = _logits_to_keep_arg(model)
    if keep is not None:
        kwargs[keep] = r + 1
    with autocast(batch.ids.device, compute_dtype):
        out = model(
            input_ids=batch.ids,
            attention_mask=batch.attn,
            position_ids=batch.positions,
            use_cache=False,
            **kwargs,
        )
    logits = out.logits[:, -(r + 1) : -1]  # position j predicts token j + 1
    targets = batch.ids[:, -r:]
    grad = torch.is_grad_enabled() and logits.requires_grad
    logps, ents = [], []
    for start in range(0, r, max(1, chunk)):
        piece = (logits[:, start : start + chunk], targets[:, start : start + chunk])
        if grad:
            lp, en = checkpoint(_logp_entropy, *piece, use_reentrant=False)
        else:
            lp, en = _logp_entropy(*piece)
        logps.append(lp)
        ents.append(en)
    logp = torch.cat(logps, dim=1)
    entropy = torch.cat(ents, dim=1) if with_entropy else None
    return logp, entropy


def _chunks(idx: list[int], size: int) -> list[list[int]]:
    return [idx[i : i + size] for i in range(0, len(idx), max(1, size))]


@torch.no_grad()
def old_logprobs(
    model: Any,
    samples: Sequence[TrainSample],
    micro: int,
    pad_id: int,
    device: torch.device,
    compute_dtype: torch.dtype = torch.float32,
    chunk: int = 1024,
) -> list[torch.Tensor]:
    """Per-sample behaviour log-probs (response positions only), computed before the update."""
    out: list[torch.Tensor] = []
    model.eval()
    for part in _chunks(list(range(len(samples))), micro):
        batch = [samples[i] for i in part]
        b = pad_batch(batch, pad_id, device)
        logp, _ = token_logprobs(model, b, compute_dtype=compute_dtype, chunk=chunk)
        for row in range(len(batch)):
            out.append(logp[row][b.mask[row] > 0].detach().cpu())
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
    compute_dtype: torch.dtype = torch.float32,
    runtime: Runtime | None = None,
) -> dict[str, float]:
    """One TRR++ update over all six groups together; returns averaged statistics.

    Forward passes run under autocast in ``compute_dtype``; the parameters, their gradients
    and the optimizer state keep the parameters' own dtype (fp32 master weights).

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
    chunk = cfg.logprob_chunk
    micro_size = cfg.micro_batch_size

    def logprobs_of(m: Any) -> list[torch.Tensor]:  # each rank its share, gathered in order
        return parallel.sharded_map(
            rt, lambda part: old_logprobs(m, part, micro_size, pad_id, device, compute_dtype, chunk), samples
        )

    old = logprobs_of(model)
    ref: list[torch.Tensor] | None = None
    if ref_model is not None and cfg.kl_coef:
        ref = logprobs_of(ref_model)
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
                picked = [share[j] for j in pos]
                micro = [i if i is not None else mb[0] for i in picked]
                keep = torch.tensor([i is not None for i in picked], dtype=torch.float32, device=device)
                batch = [samples[i] for i in micro]
                with rt.grad_sync(model, sync=k == len(micros) - 1):
                    b = pad_batch(batch, pad_id, device)
                    mask = b.mask
                    logp, ent = token_logprobs(
                        model, b, with_entropy=cfg.entropy_coef > 0, compute_dtype=compute_dtype, chunk=chunk
                    )
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
