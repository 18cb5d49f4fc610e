"""Multi-process training under ``accelerate launch``: the :class:`parallel.Runtime` on accelerate.

Launch with one of the configs in ``trainer/accelerate/`` (docs/trainer/README.md):

    accelerate launch --config_file trainer/accelerate/ddp.yaml -m azr_trainer.cli --preset multi-gpu

* DDP (``distributed_type: MULTI_GPU`` / ``MULTI_CPU``): every rank holds the whole model; the
  gradient of each mini-batch is averaged over ranks. Works with both generation backends and
  with LoRA. Checkpoints have the one-process format (a DDP checkpoint resumes in one process
  and the other way round).
* FSDP2 (``distributed_type: FSDP``, ``fsdp_version: 2``): parameters, gradients and Adam states
  are sharded. Generation must then use vLLM (its own full copy of the weights, refreshed from
  the gathered parameters); HF ``generate`` on sharded parameters would need every rank to run
  the same number of decoding steps. Checkpoints gather full state dicts on rank 0.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import warnings
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from azr_trainer.config import Config, ConfigError
from azr_trainer.modeling import trainable_state
from azr_trainer.parallel import StateLoader

log = logging.getLogger(__name__)
T = TypeVar("T")


def wanted(cfg: Config) -> bool:
    """Run under accelerate? ``train.distributed``: ``always``, or ``auto`` (= launched with >1 process)."""
    if cfg.train.distributed == "always":
        return True
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


class AccelerateRuntime:
    """The runtime hooks on an ``accelerate.Accelerator`` (DDP, FSDP2; CPU/gloo or GPU/NCCL)."""

    def __init__(self, cfg: Config) -> None:
        from accelerate import Accelerator, DistributedType
        from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

        handlers: list[Any] = [
            # buffers (rotary tables) are never trained: no broadcast in every forward, so ranks
            # may run different numbers of no-grad forwards (log-probs) without a collective
            DistributedDataParallelKwargs(broadcast_buffers=False),
            InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=cfg.train.distributed_timeout_s)),
        ]
        # without CUDA (or with model.device: cpu) each process runs on the CPU with gloo; accelerate
        # must be told, or it falls back to one process per launch
        cpu = cfg.model.device == "cpu" or not torch.cuda.is_available()
        self.acc = Accelerator(cpu=cpu, kwargs_handlers=handlers)
        self.gradient_checkpointing = cfg.model.gradient_checkpointing
        self.rank = int(self.acc.process_index)
        self.world_size = int(self.acc.num_processes)
        self.device = self.acc.device
        self.fsdp = self.acc.distributed_type == DistributedType.FSDP
        self.replicates_params = not self.fsdp
        self._check(cfg)

    def _check(self, cfg: Config) -> None:
        if not self.fsdp:
            return
        if not self.acc.is_fsdp2:
            raise ConfigError("FSDP needs fsdp_version: 2 in the accelerate config (see trainer/accelerate)")
        if cfg.generation.backend != "vllm":
            raise ConfigError(
                "FSDP shards the parameters: use generation.backend=vllm, or DDP for the hf backend"
            )
        if cfg.model.lora.enabled:
            raise ConfigError("LoRA is trained with DDP (trainer/accelerate/ddp.yaml), not FSDP")

    # ------------------------------------------------------------------ collectives
    @property
    def is_main(self) -> bool:
        return bool(self.acc.is_main_process)

    def broadcast(self, obj: T) -> T:
        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self._comm_device())
        return box[0]

    def all_gather(self, obj: T) -> list[T]:
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def _comm_device(self) -> torch.device | None:
        return self.device if self.device.type == "cuda" else None

    def barrier(self) -> None:
        self.acc.wait_for_everyone()

    def main_first(self) -> contextlib.AbstractContextManager[None]:
        return self.acc.main_process_first()

    # ------------------------------------------------------------------ training
    def prepare(self, model: Any, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        if self.world_size > 1 and self.gradient_checkpointing:
            # re-entrant checkpointing runs a second forward inside backward, which DDP's reducer
            # does not expect; the non-reentrant form is equivalent and DDP-safe
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        with warnings.catch_warnings():
            # torch >= 2.12 renames broadcast_buffers (accelerate passes the old name); same effect
            warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
            train_model, opt = self.acc.prepare(model, optimizer)
        return train_model, opt

    def grad_sync(self, model: Any, sync: bool) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if sync else self.acc.no_sync(model)

    def backward(self, loss: torch.Tensor) -> None:
        self.acc.backward(loss)

    def clip_grad_norm(self, params: list[torch.nn.Parameter], max_norm: float) -> float:
        return float(self.acc.clip_grad_norm_(params, max_norm))

    # ------------------------------------------------------------------ checkpoints
    def model_state(self, model: Any, lora: bool) -> dict[str, torch.Tensor]:
        if self.fsdp:
            return _full_model_state(model)
        return trainable_state(model, lora) if self.is_main else {}

    def optimizer_state(self, train_model: Any, optimizer: Any) -> dict[str, Any]:
        if self.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return dict(get_optimizer_state_dict(train_model, _inner(optimizer), options=opts))
        return dict(optimizer.state_dict()) if self.is_main else {}

    def state_loader(self, train_model: Any, optimizer: Any) -> StateLoader | None:
        if not self.fsdp:
            return None  # every rank loads the same files into its replica

        def load(model_state: dict[str, torch.Tensor], optim_state: dict[str, Any]) -> None:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                ValueType,
                set_model_state_dict,
                set_optimizer_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True)
            state: dict[str, ValueType] = dict(model_state)  # shallow copy, typed as torch wants
            set_model_state_dict(train_model, state, options=opts)
            set_optimizer_state_dict(train_model, _inner(optimizer), optim_state, options=opts)

        return load

    def export_state(self, model: Any) -> dict[str, torch.Tensor] | None:
        return _full_model_state(model) if self.fsdp else None

    def close(self) -> None:
        self.acc.wait_for_everyone()
        self.acc.end_training()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _inner(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's wrapper."""
    return getattr(optimizer, "optimizer", optimizer)


def _full_model_state(model: Any) -> dict[str, torch.Tensor]:
    """All parameters gathered to rank 0 on CPU (a collective: every rank calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state: dict[str, torch.Tensor] = {}
    for name, value in get_model_state_dict(model, options=opts).items():
        if not isinstance(value, torch.Tensor):  # parameters and buffers: always tensors
            raise TypeError(f"model state {name!r} is a {type(value).__name__}, not a tensor")
        state[name] = value
    return state


def make_trainer(cfg: Config, verifier: Any | None = None, runtime: AccelerateRuntime | None = None) -> Any:
    """A :class:`~azr_trainer.trainer.Trainer` on this process's rank and device."""
    from azr_trainer.trainer import Trainer

    rt = runtime if runtime is not None else AccelerateRuntime(cfg)
    cfg.model.device = str(rt.device)
    log.info("rank %d of %d on %s (fsdp=%s)", rt.rank, rt.world_size, rt.device, rt.fsdp)
    return Trainer(cfg, verifier=verifier, runtime=rt)
