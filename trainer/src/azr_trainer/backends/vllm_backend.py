"""vLLM generation (GPU only, optional extra ``azr-trainer[vllm]``).

The policy stays a Hugging Face model (trained with torch); vLLM keeps its own copy of the
weights for fast sampling and receives the policy's weights after each update
(``sync_weights``). Not exercised by the CPU test-suite.
"""

from __future__ import annotations

from typing import Any

from azr_trainer.backends.base import Generation


class VLLMBackend:
    def __init__(self, cfg: Any, model: Any, tokenizer: Any) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise RuntimeError(
                "generation.backend=vllm needs vLLM on a GPU host: pip install 'azr-trainer[vllm]'"
            ) from exc
        if cfg.model.name_or_path == "tiny" or cfg.model.gguf_file:
            raise RuntimeError("the vLLM backend needs a Hugging Face model id/path")
        self._SamplingParams = SamplingParams
        self.cfg = cfg
        self.model = model
        self.tok = tokenizer
        self.llm = LLM(
            model=cfg.model.name_or_path,
            dtype=cfg.model.dtype,
            gpu_memory_utilization=cfg.generation.vllm_gpu_memory_utilization,
            max_model_len=cfg.generation.max_prompt_tokens + cfg.generation.max_response_tokens,
            enable_prefix_caching=True,
        )

    def sync_weights(self) -> None:
        """Copy the policy's weights into the vLLM engine (merged LoRA weights if any)."""
        model = self.model
        if hasattr(model, "merge_adapter"):  # peft: fold the adapter in, copy, fold it out
            model.merge_adapter()
            try:
                state = {
                    k.replace("base_model.model.", "").replace(".base_layer", ""): v.detach().clone()
                    for k, v in model.state_dict().items()
                    if "lora_" not in k
                }
            finally:
                model.unmerge_adapter()
        else:
            state = model.state_dict()
        engine = self.llm.llm_engine
        runner = engine.model_executor.driver_worker.model_runner  # vLLM < 0.8 layout
        runner.model.load_weights(state.items())
        if hasattr(engine, "reset_prefix_cache"):
            engine.reset_prefix_cache()

    def generate(
        self, prompts: list[str], greedy: bool = False, max_new_tokens: int | None = None
    ) -> list[Generation]:
        gcfg = self.cfg.generation
        params = self._SamplingParams(
            n=1,
            temperature=0.0 if greedy else gcfg.temperature,
            top_p=1.0 if greedy else gcfg.top_p,
            max_tokens=max_new_tokens or gcfg.max_response_tokens,
        )
        encoded = [
            self.tok(p, add_special_tokens=True)["input_ids"][-gcfg.max_prompt_tokens :] for p in prompts
        ]
        outs = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=False)
        eos = self.tok.eos_token_id
        results = []
        for ids, out in zip(encoded, outs, strict=False):
            comp = out.outputs[0]
            gen = list(comp.token_ids)
            truncated = comp.finish_reason == "length"
            if not truncated and (not gen or gen[-1] != eos):
                gen.append(eos)
            results.append(Generation(ids, gen, comp.text, truncated))
        return results
