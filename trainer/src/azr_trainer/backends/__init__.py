"""Generation backends: Hugging Face ``generate`` (CPU/GPU) and vLLM (optional, GPU)."""

from azr_trainer.backends.base import Generation, GenerationBackend

__all__ = ["Generation", "GenerationBackend", "make_backend"]


def make_backend(cfg, model, tokenizer, device) -> GenerationBackend:
    if cfg.generation.backend == "vllm":
        from azr_trainer.backends.vllm_backend import VLLMBackend

        return VLLMBackend(cfg, model, tokenizer)
    from azr_trainer.backends.hf import HFBackend
    from azr_trainer.precision import to_dtype

    return HFBackend(model, tokenizer, cfg.generation, device, compute_dtype=to_dtype(cfg.model.dtype))
