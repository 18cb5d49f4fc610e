"""Load the policy (HF model id/path, GGUF, or the built-in tiny model), optionally with LoRA."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from azr_trainer.config import Config
from azr_trainer.precision import to_dtype

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def tiny_base_dir(cfg: Config) -> Path:
    return Path(cfg.train.output_dir) / "base_model"


def tiny_cache_dir(cfg: Config) -> Path | None:
    """Where a warmed-up tiny model is cached between runs (``AZR_TINY_CACHE``; ``off``: none).

    The build is deterministic, so the key is a hash of everything that goes into it, the
    warm-up corpus included.
    """
    root = os.environ.get("AZR_TINY_CACHE", str(Path.home() / ".cache" / "azr-trainer"))
    if root.lower() in ("", "0", "off", "none"):
        return None
    import azr_trainer
    from azr_trainer import warmup

    corpus = warmup.tokenizer_corpus(cfg.selfplay.induction_num_inputs)
    key = json.dumps(
        {
            "corpus": hashlib.sha256("\x00".join(corpus).encode()).hexdigest(),
            "tiny": dataclasses.asdict(cfg.model.tiny),
            "toy": dataclasses.asdict(cfg.toy) if cfg.model.tiny.demos == "toy" else None,
            "refs": cfg.selfplay.num_references,
            "prompt_style": cfg.generation.prompt_style,
            "inputs": cfg.selfplay.induction_num_inputs,
            "seed": cfg.train.seed,
            "version": azr_trainer.__version__,
            "torch": torch.__version__,
        },
        sort_keys=True,
    )
    return Path(root) / f"tiny-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _load_tiny(path: Path) -> tuple[Any, Any]:
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, tok


def build_or_load_tiny(cfg: Config) -> tuple[Any, Any]:
    """The tiny model of a run: built (and warmed up) once, then saved to reload on resume."""
    from azr_trainer import tiny, warmup

    base = tiny_base_dir(cfg)
    if (base / "config.json").exists():
        return _load_tiny(base)
    cache = tiny_cache_dir(cfg)
    if cache is not None and (cache / "config.json").exists():
        shutil.copytree(cache, base, dirs_exist_ok=True)
        log.info("tiny model from cache %s", cache)
        return _load_tiny(base)
    tcfg = cfg.model.tiny
    sp = cfg.selfplay
    pairs: list[tuple[str, str]] | None = None
    if tcfg.demos == "toy":
        import random

        from azr_trainer import toy

        family = toy.family_from_config(cfg.toy)
        style = cfg.generation.prompt_style
        corpus = toy.tokenizer_corpus(family, sp.num_references, sp.induction_num_inputs, style)
        n_pairs = max(600, tcfg.warmup_steps * tcfg.warmup_batch_size)
        rng = random.Random(cfg.train.seed + 1)
        pairs = toy.demonstrations(
            family, n_pairs, rng, sp.num_references, sp.induction_num_inputs, style, cfg.toy.demo_answers
        )
    else:
        corpus = warmup.tokenizer_corpus(sp.induction_num_inputs)
    tok = tiny.train_tokenizer(corpus, tcfg.vocab_size)
    model = tiny.build_tiny_model(tcfg, tok, seed=cfg.train.seed)
    if tcfg.warmup_steps:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.train.seed)
            losses = warmup.supervised_warmup(
                model,
                tok,
                steps=tcfg.warmup_steps,
                lr=tcfg.warmup_lr,
                num_references=sp.num_references,
                num_inputs=sp.induction_num_inputs,
                seed=cfg.train.seed,
                batch_size=tcfg.warmup_batch_size,
                pairs=pairs,
            )
        log.info("tiny model warm-up: loss %.3f -> %.3f", losses[0], losses[-1])
    base.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(base)
    tok.save_pretrained(base)
    if cache is not None:
        try:
            tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
            shutil.copytree(base, tmp, dirs_exist_ok=True)
            tmp.rename(cache)
        except OSError:  # another process won the race, or no write access: fine
            shutil.rmtree(tmp, ignore_errors=True)
    return _load_tiny(base)


def load_pretrained(name_or_path: str, gguf_file: str | None, dtype: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    tok = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    # Any: transformers types PreTrainedModel.to as the unbound nn.Module.to (functools.wraps)
    model: Any = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=to_dtype(dtype), **kwargs)
    if model.dtype != to_dtype(dtype):
        model = model.to(to_dtype(dtype))
    return model, tok


def apply_lora(model: Any, cfg: Config) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("model.lora.enabled needs peft: pip install 'azr-trainer[lora]'") from exc
    lc = cfg.model.lora
    peft_cfg = LoraConfig(
        r=lc.r,
        lora_alpha=lc.alpha,
        lora_dropout=lc.dropout,
        target_modules=list(lc.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, peft_cfg)


def load_policy(cfg: Config) -> tuple[Any, Any, torch.device]:
    """Model (trainable), tokenizer (left padding, pad token set) and device.

    The trainable parameters are held in ``model.param_dtype`` (fp32 master weights by
    default); ``model.dtype`` is only the compute dtype, applied with autocast by the backend
    and the update. With LoRA the frozen base stays in the compute dtype.
    """
    mc = cfg.model
    if mc.name_or_path == "tiny":
        model, tok = build_or_load_tiny(cfg)
    else:
        load_dtype = mc.dtype if mc.lora.enabled else mc.param_dtype
        model, tok = load_pretrained(mc.name_or_path, mc.gguf_file, load_dtype)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if cfg.model.lora.enabled:
        model = apply_lora(model, cfg)
    param_dtype = to_dtype(mc.param_dtype)
    for p in model.parameters():
        if p.requires_grad and p.is_floating_point() and p.dtype != param_dtype:
            p.data = p.data.to(param_dtype)
    if param_dtype != torch.float32:
        log.warning(
            "model.param_dtype=%s: AdamW steps on %s weights lose updates smaller than the "
            "weights' resolution (most of them at lr 1e-6); float32 is recommended",
            mc.param_dtype,
            mc.param_dtype,
        )
    device = resolve_device(cfg.model.device)
    model.to(device)
    return model, tok, device


def trainable_state(model: Any, lora: bool) -> dict[str, torch.Tensor]:
    """What a checkpoint must hold to restore the policy exactly."""
    state = model.state_dict()
    if lora:
        names = {n for n, p in model.named_parameters() if p.requires_grad}
        state = {k: v for k, v in state.items() if k in names}
    return {k: v.detach().cpu().clone() for k, v in state.items()}
