"""The vLLM backend's weight sync and generation plumbing, run without vLLM.

vLLM needs a GPU and cannot be installed on this machine. ``StandInLLM`` is therefore a test
double for vLLM ONLY (everything else here is the real code): it offers the three calls the
backend makes (``collective_rpc``, ``reset_prefix_cache``, ``generate``) and builds its worker the
way vLLM does with ``worker_extension_cls``: our real ``WeightSyncExtension`` mixed into a worker
whose ``model_runner.model.load_weights`` receives the tensors. That model was "loaded" from the
Hugging Face checkpoint on disk, as vLLM loads it, and it rejects any tensor whose name, shape
or dtype is not that checkpoint's (in the engine's dtype). What vLLM itself does with the
tensors (mapping q/k/v onto its fused qkv_proj, CUDA kernels) is outside what can run here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from azr_trainer.backends.vllm_backend import (
    WORKER_EXTENSION,
    VLLMBackend,
    check_batch,
    policy_weights,
    weight_batches,
)
from azr_trainer.backends.vllm_worker import WeightSyncExtension
from azr_trainer.config import load_config
from azr_trainer.tiny import build_tiny_model
from safetensors.torch import load_file


class StandInModel(torch.nn.Module):
    """The engine's model: the checkpoint's tensors, in the engine dtype, and vLLM's
    ``load_weights(weights=...)`` entry point (tied ``lm_head`` skipped, as vLLM does)."""

    def __init__(self, checkpoint: Path, dtype: torch.dtype, tied: bool) -> None:
        super().__init__()
        self.weights = {k: v.to(dtype) for k, v in load_file(str(checkpoint / "model.safetensors")).items()}
        self.anchor = torch.nn.Parameter(torch.zeros(1, dtype=dtype))  # gives the model a device
        self.tied = tied
        self.loads: list[list[str]] = []

    def load_weights(self, weights: list[tuple[str, torch.Tensor]]) -> set[str]:
        names = []
        for name, t in weights:
            if self.tied and name.startswith("lm_head."):
                continue
            assert name in self.weights, f"unknown weight {name}"
            have = self.weights[name]
            assert t.shape == have.shape, (name, t.shape, have.shape)
            assert t.dtype == have.dtype, (name, t.dtype, have.dtype)
            have.copy_(t)
            names.append(name)
        self.loads.append(names)
        return set(names)


@dataclass
class StandInLLM:
    model: StandInModel
    prefix_resets: int = 0
    rpc_calls: list[str] = field(default_factory=list)
    requests: list[tuple[list[int], Any]] = field(default_factory=list)
    replies: list[tuple[list[int], str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # vLLM puts worker_extension_cls among its worker's bases; so do we
        worker_cls = type("Worker", (WeightSyncExtension,), {})
        self.worker = worker_cls()
        self.worker.model_runner = SimpleNamespace(model=self.model)

    def collective_rpc(self, method: str, args: tuple[Any, ...] = ()) -> list[Any]:
        self.rpc_calls.append(method)
        return [getattr(self.worker, method)(*args)]  # one result per worker

    def reset_prefix_cache(self) -> bool:
        self.prefix_resets += 1
        return True

    def generate(
        self, prompts: list[dict[str, list[int]]], params: list[Any], use_tqdm: bool = True
    ) -> list[Any]:
        assert len(prompts) == len(params)
        out = []
        for p, sp in zip(prompts, params, strict=True):
            self.requests.append((p["prompt_token_ids"], sp))
            ids, text, reason = self.replies.pop(0)
            out.append(
                SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, text=text, finish_reason=reason)])
            )
        return out


@dataclass
class StandInSamplingParams:
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int


@pytest.fixture()
def policy(tiny_tokenizer, tmp_path: Path) -> tuple[Any, Any, Path]:
    cfg = load_config(preset="tiny-cpu")
    model = build_tiny_model(cfg.model.tiny, tiny_tokenizer, seed=0)
    ckpt = tmp_path / "policy"
    model.save_pretrained(ckpt)
    tiny_tokenizer.save_pretrained(ckpt)
    return model, tiny_tokenizer, ckpt


def _backend(policy: tuple[Any, Any, Path], **sets: str) -> tuple[VLLMBackend, StandInLLM]:
    model, tok, ckpt = policy
    overrides = [
        "generation.backend=vllm",
        f"model.name_or_path={ckpt}",
        "generation.vllm_dtype=bfloat16",
        "generation.vllm_sync_bucket_mb=0.1",  # several collective_rpc calls for the tiny model
        "generation.max_prompt_tokens=6",
    ]
    cfg = load_config(preset="tiny-cpu", overrides=overrides + [f"{k}={v}" for k, v in sets.items()])
    llm = StandInLLM(StandInModel(ckpt, torch.bfloat16, tied=model.config.tie_word_embeddings))
    return VLLMBackend(cfg, model, tok, llm=llm, sampling_params=StandInSamplingParams), llm


def _engine_matches(model: Any, llm: StandInLLM) -> None:
    names = set()
    for name, t in policy_weights(model):
        names.add(name)
        assert torch.equal(llm.model.weights[name], t.to(torch.bfloat16)), name
    assert names == set(llm.model.weights)  # every checkpoint tensor, nothing else


def test_worker_extension_is_importable_by_the_name_vllm_is_given() -> None:
    import importlib

    module, cls = WORKER_EXTENSION.rsplit(".", 1)
    assert getattr(importlib.import_module(module), cls) is WeightSyncExtension


def test_sync_sends_every_weight_with_checkpoint_names_shapes_dtypes(policy) -> None:
    model, _, _ = policy
    backend, llm = _backend(policy)
    assert backend.sync_weights() == len(llm.model.weights)
    _engine_matches(model, llm)
    assert len(llm.rpc_calls) > 1 and set(llm.rpc_calls) == {"azr_load_weights"}  # batched
    assert llm.prefix_resets == 1

    # a training step changes the policy; the next sync carries the new values
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor([[1, 2, 3, 4]])
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    assert not torch.equal(
        llm.model.weights["model.embed_tokens.weight"],
        model.model.embed_tokens.weight.detach().to(torch.bfloat16),
    )
    backend.sync_weights()
    _engine_matches(model, llm)
    assert llm.prefix_resets == 2


def test_sync_refuses_a_tensor_the_engine_does_not_have(policy) -> None:
    model, _, _ = policy
    backend, llm = _backend(policy)
    good = dict(policy_weights(model))
    name = "model.layers.0.mlp.up_proj.weight"
    with pytest.raises(RuntimeError, match="not a weight"):
        check_batch([("model.layers.9.mlp.up_proj.weight", good[name].bfloat16())], backend.spec)
    with pytest.raises(RuntimeError, match="engine has"):
        check_batch([(name, good[name][:3].bfloat16())], backend.spec)
    with pytest.raises(RuntimeError, match="engine has"):
        check_batch([(name, good[name].float())], backend.spec)  # not cast to the engine dtype
    # a policy that grew a weight the engine was not built with is caught before sending
    model.register_parameter("extra", torch.nn.Parameter(torch.zeros(2)))
    with pytest.raises(RuntimeError, match="not a weight"):
        backend.sync_weights()


def test_weight_batches_respect_the_bucket() -> None:
    named = [(f"w{i}", torch.zeros(256)) for i in range(10)]  # 1 KiB each
    batches = list(weight_batches(named, 3 * 1024))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [n for b in batches for n, _ in b] == [n for n, _ in named]
    assert [len(b) for b in weight_batches([("big", torch.zeros(4096))], 1024)] == [1]


def test_generate_builds_generations_with_seeded_per_prompt_sampling(policy) -> None:
    _, tok, _ = policy
    backend, llm = _backend(policy)
    eos = tok.eos_token_id
    llm.replies = [([5, 6], "ab", "stop"), ([7, eos], "c", "stop"), ([8, 9, 10], "xyz", "length")]
    torch.manual_seed(3)
    gens = backend.generate(["hello world, this is long", "b", "c"])
    assert [g.response_ids for g in gens] == [[5, 6, eos], [7, eos], [8, 9, 10]]
    assert [g.truncated for g in gens] == [False, False, True]
    assert [g.text for g in gens] == ["ab", "c", "xyz"]
    assert len(llm.requests[0][0]) == 6  # the prompt keeps its last max_prompt_tokens tokens
    seeds = [sp.seed for _, sp in llm.requests]
    assert len(set(seeds)) == 3
    llm.replies = [([1], "", "stop")] * 3
    torch.manual_seed(3)
    backend.generate(["a", "b", "c"])
    assert [sp.seed for _, sp in llm.requests[3:]] == seeds  # the trainer's seed decides them
    llm.replies = [([1], "", "stop")]
    (g,) = backend.generate(["a"], greedy=True, max_new_tokens=4)
    assert llm.requests[-1][1].temperature == 0.0 and llm.requests[-1][1].max_tokens == 4


def test_lora_policy_syncs_merged_weights_under_base_names(policy) -> None:
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model

    model, tok, ckpt = policy
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for n, p in lora.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)  # a trained adapter: merged weights differ from base
    backend, llm = _backend((lora, tok, ckpt))
    backend.sync_weights()
    merged = lora.merge_and_unload()
    for name, t in merged.state_dict().items():
        if name in llm.model.weights:
            assert torch.equal(llm.model.weights[name], t.to(torch.bfloat16)), name
