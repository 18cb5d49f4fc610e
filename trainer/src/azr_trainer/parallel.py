"""How one training step is split over processes: the runtime hooks and their one-process form.

The trainer, self-play and the update call a :class:`Runtime` at the few places where more
than one process changes what happens. :class:`LocalRuntime` is the single process (every hook
is the identity); ``azr_trainer.distributed.AccelerateRuntime`` runs N processes under
``accelerate launch``. The scheme (docs/trainer/README.md, "Multi-process training"):

* Every rank holds the same replicated state: buffers, the trainer's RNG, the step, and the
  full list of rollouts of a step. Nothing here is owned by one rank, so nothing needs to be
  sent back; the state stays equal because every rank sees the same inputs in the same order.
* Generation is split: the prompts of one call are cut into chunks, chunk ``c`` goes to rank
  ``c % world`` and is sampled under the seed ``base + c`` (``base`` drawn by rank 0), and the
  generations are gathered to every rank in prompt order.
* Verdict requests are sent by rank 0 only and the results are broadcast.
* The update: all ranks compute rewards and TRR++ advantages over the global batch; each
  mini-batch is split across ranks and the gradients are averaged (DDP/FSDP).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from azr_trainer.modeling import trainable_state

T = TypeVar("T")
#: Per-step fingerprints of every rank's replicated state, written by rank 0.
REPLICAS_LOG = "replicas.jsonl"
StateLoader = Callable[[dict[str, torch.Tensor], dict[str, Any]], None]


class Runtime(Protocol):
    """The hooks the trainer needs from its process group."""

    rank: int
    world_size: int
    #: False where each rank holds a shard of the parameters (FSDP).
    replicates_params: bool

    @property
    def is_main(self) -> bool: ...

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (pickled)."""
        ...

    def all_gather(self, obj: T) -> list[T]:
        """One ``obj`` per rank, in rank order, on every rank (pickled)."""
        ...

    def barrier(self) -> None: ...

    def main_first(self) -> contextlib.AbstractContextManager[None]:
        """Rank 0 runs the block first (e.g. builds a cached model), then the others."""
        ...

    def prepare(self, model: Any, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        """The model and optimizer to train with (wrapped for DDP/FSDP)."""
        ...

    def grad_sync(self, model: Any, sync: bool) -> contextlib.AbstractContextManager[None]:
        """Around forward+backward: ``sync=False`` accumulates locally (no all-reduce)."""
        ...

    def backward(self, loss: torch.Tensor) -> None: ...

    def clip_grad_norm(self, params: list[torch.nn.Parameter], max_norm: float) -> float: ...

    def model_state(self, model: Any, lora: bool) -> dict[str, torch.Tensor]:
        """What a checkpoint holds of the policy, on CPU (complete on rank 0 at least)."""
        ...

    def optimizer_state(self, train_model: Any, optimizer: Any) -> dict[str, Any]:
        """The optimizer's state dict (complete on rank 0 at least)."""
        ...

    def state_loader(self, train_model: Any, optimizer: Any) -> StateLoader | None:
        """How to load a checkpoint's model/optimizer state; None: plain ``load_state_dict``."""
        ...

    def export_state(self, model: Any) -> dict[str, torch.Tensor] | None:
        """The full state dict for ``save_pretrained`` where parameters are sharded, else None."""
        ...


class LocalRuntime:
    """One process: every hook is the identity."""

    rank = 0
    world_size = 1
    replicates_params = True

    @property
    def is_main(self) -> bool:
        return True

    def broadcast(self, obj: T) -> T:
        return obj

    def all_gather(self, obj: T) -> list[T]:
        return [obj]

    def barrier(self) -> None:
        pass

    def main_first(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def prepare(self, model: Any, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        return model, optimizer

    def grad_sync(self, model: Any, sync: bool) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm(self, params: list[torch.nn.Parameter], max_norm: float) -> float:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def model_state(self, model: Any, lora: bool) -> dict[str, torch.Tensor]:
        return trainable_state(model, lora)

    def optimizer_state(self, train_model: Any, optimizer: Any) -> dict[str, Any]:
        return dict(optimizer.state_dict())

    def state_loader(self, train_model: Any, optimizer: Any) -> StateLoader | None:
        return None

    def export_state(self, model: Any) -> dict[str, torch.Tensor] | None:
        return None


# ----------------------------------------------------------------------------- sharding
def chunk_ranges(n: int, max_size: int, world: int) -> list[range]:
    """Cut ``n`` items into chunks of ``min(max_size, ceil(n / world))`` so every rank gets work.

    With ``world == 1`` the chunks are those of the one-process run (``max_size`` each).
    """
    if n <= 0:
        return []
    size = max(1, min(max(1, max_size), math.ceil(n / max(1, world))))
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def lockstep_shard(items: Sequence[T], rank: int, world: int) -> list[T | None]:
    """``items[rank::world]`` padded with ``None`` to ``ceil(len / world)``.

    Every rank gets a list of the same length, so all ranks run the same number of forward
    and backward passes (DDP's gradient all-reduce and FSDP's all-gathers are collectives).
    """
    mine: list[T | None] = list(items[rank::world])
    width = math.ceil(len(items) / world) if items else 0
    return mine + [None] * (width - len(mine))


def interleave(per_rank: Sequence[Sequence[T]], n: int) -> list[T]:
    """Undo strided sharding: item ``i`` came from rank ``i % world`` at position ``i // world``."""
    world = len(per_rank)
    return [per_rank[i % world][i // world] for i in range(n)]


def sharded_map(rt: Runtime, fn: Callable[[list[T]], list[Any]], items: Sequence[T]) -> list[Any]:
    """``fn`` over ``items`` split across ranks (in lockstep), results gathered in item order.

    ``fn`` gets this rank's share (padding repeats the first item; its results are dropped) and
    returns one result per item.
    """
    if rt.world_size == 1:
        return fn(list(items))
    if not items:
        return []
    share = lockstep_shard(items, rt.rank, rt.world_size)
    real = [x for x in share if x is not None]
    padded = real + [items[0]] * (len(share) - len(real))
    out = fn(padded)[: len(real)]
    return interleave(rt.all_gather(out), len(items))


def call_on_main(rt: Runtime, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and give its result (or its error) to every rank."""
    if rt.world_size == 1:
        return fn()
    payload: tuple[str, Any] = ("ok", None)
    error: BaseException | None = None
    if rt.is_main:
        try:
            payload = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - re-raised below on every rank
            error = exc
            payload = ("error", f"{type(exc).__name__}: {exc}")
    kind, value = rt.broadcast(payload)
    if error is not None:
        raise error
    if kind == "error":
        raise RuntimeError(f"rank 0 failed: {value}")
    return value


# ----------------------------------------------------------------------------- seeds
def draw_seed(rt: Runtime) -> int:
    """A fresh seed from rank 0's torch RNG (checkpointed), the same on every rank."""
    return rt.broadcast(int(torch.randint(0, 2**62, (1,)).item()))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Sample under ``seed`` without touching the global torch RNG stream."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# ----------------------------------------------------------------------------- metrics
def reduce_metrics(rt: Runtime, metrics: dict[str, float]) -> dict[str, float]:
    """Across ranks: ``time/*`` by its maximum (the step waits for the slowest rank), the rest
    by the mean. Self-play summaries and the update's statistics are already global, so the
    mean leaves them as they are."""
    if rt.world_size == 1:
        return metrics
    rows = rt.all_gather(metrics)
    out: dict[str, float] = {}
    for key in rows[0]:
        vals = [float(r[key]) for r in rows if key in r]
        out[key] = max(vals) if key.startswith("time/") else sum(vals) / len(vals)
    return out


# ----------------------------------------------------------------------------- replicas
def params_checksum(model: torch.nn.Module) -> str:
    """An exact fingerprint of the parameters' bits (computed on their device, cheap on GPU).

    Each tensor's bytes are read as int32 (or int16/uint8 for smaller dtypes) and summed, plain
    and weighted by position, in int64: any single changed bit changes the result.
    """
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        t = p.detach()
        if hasattr(t, "to_local"):  # a DTensor shard (FSDP2): only this rank's piece
            t = t.to_local()
        flat = t.contiguous().view(-1)
        nbytes = flat.numel() * flat.element_size()
        if nbytes % 4 == 0:
            bits = flat.view(torch.int32)
        elif nbytes % 2 == 0:
            bits = flat.view(torch.int16)
        else:
            bits = flat.view(torch.uint8)
        plain = weighted = 0
        for start in range(0, bits.numel(), _CHUNK):  # bounded scratch memory on big tensors
            b = bits[start : start + _CHUNK].to(torch.int64)
            pos = torch.arange(start + 1, start + b.numel() + 1, device=b.device, dtype=torch.int64)
            plain += int(b.sum())
            weighted += int((b * (pos % 65521)).sum())  # int64 wraps: still deterministic
        h.update(f"{name}:{plain}:{weighted};".encode())
    return h.hexdigest()[:16]


_CHUNK = 1 << 24


def state_checksum(buffers_state: dict[str, Any], rng_states: Sequence[Any]) -> str:
    """Fingerprint of the replicated self-play state (buffers and the trainer RNG state)."""
    h = hashlib.sha256(json.dumps(buffers_state, sort_keys=True, default=str).encode())
    for s in rng_states:
        if isinstance(s, torch.Tensor):
            h.update(s.cpu().numpy().tobytes())
        else:
            h.update(repr(s).encode())
    return h.hexdigest()[:16]


def check_replicas(
    rt: Runtime,
    out_dir: Path,
    step: int,
    model: torch.nn.Module,
    buffers: Any,
    trainer_rng: random.Random,
    compare_params: bool = True,
) -> list[dict[str, str]]:
    """Compare every rank's replicated state after ``step``; log it and stop on a mismatch.

    The buffers, the trainer's RNG (it drives every self-play decision) and, unless parameters
    are sharded, the parameters must be bit-identical on all ranks; rank 0 appends one row per
    step to ``replicas.jsonl``. torch's RNG is left out: sampling seeds come from rank 0's
    (``draw_seed``), and dropout, where a model has it, rightly differs per rank.
    """
    mine = {"state": state_checksum(buffers.state_dict(), [trainer_rng.getstate()])}
    if compare_params:
        mine["params"] = params_checksum(model)
    rows = rt.all_gather(mine)
    if rt.is_main:
        with open(Path(out_dir) / REPLICAS_LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, "ranks": rows}) + "\n")
    if any(r != rows[0] for r in rows):
        raise RuntimeError(f"ranks diverged after step {step}: {rows}")
    return rows
