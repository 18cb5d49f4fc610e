"""vLLM generation (GPU only, optional extra ``azr-trainer[vllm]``, vLLM >= 0.8.5).

The policy stays a Hugging Face model trained with torch; vLLM keeps its own copy of the
weights for fast sampling. After every update ``sync_weights`` sends the policy's tensors to the
engine:

* the engine is colocated and runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``; under
  ``accelerate launch`` each rank has its own engine with ``distributed_executor_backend=
  "external_launcher"``), so tensors are handed over by reference, not serialised;
* ``LLM(worker_extension_cls=WORKER_EXTENSION)`` adds ``azr_load_weights`` to vLLM's worker and
  ``LLM.collective_rpc("azr_load_weights", args=(batch,))`` runs it: the worker calls its
  model's ``load_weights`` with Hugging Face names, which vLLM maps onto its fused layers;
* tensors go in batches of at most ``generation.vllm_sync_bucket_mb``, each checked against the
  names, shapes and dtypes of the first sync (the checkpoint the engine was built from).

This replaces the pre-0.8 ``llm_engine.model_executor.driver_worker`` path, which does not
exist in the V1 engine (the default since vLLM 0.8, the only engine since 0.11).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from azr_trainer.backends.base import Generation

WORKER_EXTENSION = "azr_trainer.backends.vllm_worker.WeightSyncExtension"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

WeightSpec = dict[str, tuple[tuple[int, ...], torch.dtype]]


def policy_weights(model: Any, gather: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's tensors under the names of its Hugging Face checkpoint.

    LoRA (peft): the adapter is merged in while the tensors are read and unmerged after, names
    lose peft's ``base_model.model.`` prefix and ``.base_layer``, adapter tensors are skipped.
    FSDP2 shards (DTensor) are gathered with ``full_tensor()`` (a collective: every rank reads);
    ``gather=False`` leaves them as they are (their ``shape`` is already the full one).
    """
    peft = hasattr(model, "merge_adapter") and hasattr(model, "unmerge_adapter")
    if peft:
        model.merge_adapter()
    seen: set[int] = set()  # by object: the same on every rank (full_tensor is a collective)
    try:
        for name, value in model.state_dict(keep_vars=True).items():
            if id(value) in seen:
                continue  # a tied weight (lm_head = embed_tokens): the checkpoint holds it once
            seen.add(id(value))
            if peft:
                if "lora_" in name or "modules_to_save" in name:
                    continue
                name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            t = value.detach()
            if gather and hasattr(t, "full_tensor"):
                t = t.full_tensor()
            yield name, t
    finally:
        if peft:
            model.unmerge_adapter()


def weight_batches(
    named: Iterable[tuple[str, torch.Tensor]], max_bytes: int
) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """Group tensors into batches of at most ``max_bytes`` (a larger tensor goes alone)."""
    batch: list[tuple[str, torch.Tensor]] = []
    size = 0
    for name, t in named:
        nbytes = t.numel() * t.element_size()
        if batch and size + nbytes > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append((name, t))
        size += nbytes
    if batch:
        yield batch


def check_batch(batch: list[tuple[str, torch.Tensor]], spec: WeightSpec) -> None:
    """Every tensor must be one the engine has, with its shape and dtype."""
    for name, t in batch:
        if name not in spec:
            raise RuntimeError(f"weight sync: {name!r} is not a weight of the vLLM engine's checkpoint")
        shape, dtype = spec[name]
        if tuple(t.shape) != shape or t.dtype != dtype:
            raise RuntimeError(
                f"weight sync: {name} is {tuple(t.shape)} {t.dtype}, the engine has {shape} {dtype}"
            )


def engine_dtype(cfg: Any) -> str:
    return str(cfg.generation.vllm_dtype or cfg.model.dtype)


def make_llm(cfg: Any) -> Any:
    """A colocated vLLM engine in this process, with the weight-sync worker extension."""
    try:
        from vllm import LLM
    except ImportError as exc:
        raise RuntimeError(
            "generation.backend=vllm needs vLLM >= 0.8.5 on a GPU host: pip install 'azr-trainer[vllm]'"
        ) from exc
    # the engine core in this process: collective_rpc then passes tensors by reference
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    kwargs: dict[str, Any] = {
        "model": cfg.model.name_or_path,
        "dtype": engine_dtype(cfg),
        "gpu_memory_utilization": cfg.generation.vllm_gpu_memory_utilization,
        "max_model_len": cfg.generation.max_prompt_tokens + cfg.generation.max_response_tokens,
        "enable_prefix_caching": True,
        "worker_extension_cls": WORKER_EXTENSION,
        "seed": cfg.train.seed + rank,
    }
    if world > 1:  # one engine per rank (tensor parallel 1), in the ranks' own process group
        kwargs["distributed_executor_backend"] = "external_launcher"
    return LLM(**kwargs)


class VLLMBackend:
    def __init__(
        self, cfg: Any, model: Any, tokenizer: Any, llm: Any | None = None, sampling_params: Any = None
    ) -> None:
        """``llm``/``sampling_params``: an engine and vLLM's ``SamplingParams`` to use instead of
        vLLM's own (the tests pass stand-ins: vLLM cannot be installed without a GPU)."""
        if cfg.model.name_or_path == "tiny" or cfg.model.gguf_file:
            raise RuntimeError("the vLLM backend needs a Hugging Face model id/path")
        self.cfg = cfg
        self.model = model
        self.tok = tokenizer
        self.dtype = _DTYPES[engine_dtype(cfg)]
        self.bucket_bytes = int(cfg.generation.vllm_sync_bucket_mb * 2**20)
        self.llm = llm if llm is not None else make_llm(cfg)
        if sampling_params is None:
            from vllm import SamplingParams

            sampling_params = SamplingParams
        self._sampling_params = sampling_params
        #: names, shapes, dtypes the engine was built with (its checkpoint = the initial policy)
        self.spec: WeightSpec = {
            name: (tuple(t.shape), self.dtype)
            for name, t in policy_weights(model, gather=False)
            if t.is_floating_point()
        }

    def _engine_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, t in policy_weights(self.model):
            if t.is_floating_point():
                yield name, t.to(self.dtype)

    def sync_weights(self) -> int:
        """Copy the policy's weights into the engine; returns how many tensors were sent."""
        sent: set[str] = set()
        for batch in weight_batches(self._engine_tensors(), self.bucket_bytes):
            check_batch(batch, self.spec)
            self.llm.collective_rpc("azr_load_weights", args=(batch,))
            sent.update(name for name, _ in batch)
        missing = self.spec.keys() - sent
        if missing:
            raise RuntimeError(f"weight sync: {len(missing)} weights not sent, e.g. {sorted(missing)[:3]}")
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        return len(sent)

    def generate(
        self, prompts: list[str], greedy: bool = False, max_new_tokens: int | None = None
    ) -> list[Generation]:
        gcfg = self.cfg.generation
        # one seed per prompt from torch's RNG: the trainer seeds it per chunk (parallel.seeded)
        seeds = torch.randint(0, 2**31 - 1, (len(prompts),)).tolist()
        params = [
            self._sampling_params(
                n=1,
                temperature=0.0 if greedy else gcfg.temperature,
                top_p=1.0 if greedy else gcfg.top_p,
                max_tokens=max_new_tokens or gcfg.max_response_tokens,
                seed=int(seed),
            )
            for seed in seeds
        ]
        encoded = [
            self.tok(p, add_special_tokens=True)["input_ids"][-gcfg.max_prompt_tokens :] for p in prompts
        ]
        outs = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=False)
        eos = self.tok.eos_token_id
        results = []
        for ids, out in zip(encoded, outs, strict=True):
            comp = out.outputs[0]
            gen = list(comp.token_ids)
            truncated = comp.finish_reason == "length"
            if not truncated and (not gen or gen[-1] != eos):
                gen.append(eos)
            results.append(Generation(ids, gen, comp.text, truncated))
        return results
