"""Generation with Hugging Face ``model.generate`` (CPU or GPU), sharing weights with the policy."""

from __future__ import annotations

from typing import Any

import torch

from azr_trainer.backends.base import Generation
from azr_trainer.config import GenerationConfig
from azr_trainer.precision import autocast


class HFBackend:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        cfg: GenerationConfig,
        device: torch.device,
        compute_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = model
        self.tok = tokenizer
        self.cfg = cfg
        self.device = device
        #: generation runs under autocast in this dtype (the weights may be fp32 masters)
        self.compute_dtype = compute_dtype
        self.eos_ids = self._stop_ids()

    def _stop_ids(self) -> list[int]:
        """The tokenizer's EOS plus any the model's generation config lists (chat models)."""
        ids: list[int] = []
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for cand in [self.tok.eos_token_id, *(gen_eos if isinstance(gen_eos, list) else [gen_eos])]:
            if cand is not None and cand not in ids:
                ids.append(int(cand))
        return ids

    def sync_weights(self) -> int:
        """Nothing to copy: generation runs on the policy itself."""
        return 0

    def encode_prompt(self, prompt: str) -> list[int]:
        ids = self.tok(prompt, add_special_tokens=True)["input_ids"]  # BOS where the model uses one
        return ids[-self.cfg.max_prompt_tokens :]  # keep the end: it holds "Assistant: <think>"

    @torch.no_grad()
    def generate(
        self, prompts: list[str], greedy: bool = False, max_new_tokens: int | None = None
    ) -> list[Generation]:
        max_new = max_new_tokens or self.cfg.max_response_tokens
        encoded = [self.encode_prompt(p) for p in prompts]
        out: list[Generation] = []
        was_training = self.model.training
        self.model.eval()
        try:
            bs = max(1, self.cfg.batch_size)
            for start in range(0, len(encoded), bs):
                out.extend(self._generate_batch(encoded[start : start + bs], greedy, max_new))
        finally:
            if was_training:
                self.model.train()
        return out

    def _generate_batch(self, batch: list[list[int]], greedy: bool, max_new: int) -> list[Generation]:
        pad = self.tok.pad_token_id
        eos_ids = self.eos_ids
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attn = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attn[row, width - len(ids) :] = 1
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "pad_token_id": pad,
            "eos_token_id": eos_ids,
        }
        if greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=self.cfg.temperature, top_p=self.cfg.top_p, top_k=0)
        with autocast(self.device, self.compute_dtype):
            seqs = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attn.to(self.device), **kwargs
            )
        results = []
        for row, ids in enumerate(batch):
            gen = seqs[row, width:].tolist()
            truncated = True
            stop = next((j for j, t in enumerate(gen) if t in eos_ids), None)
            if stop is not None:
                gen = gen[: stop + 1]
                truncated = False
            else:
                while gen and gen[-1] == pad:
                    gen.pop()
            text = self.tok.decode(gen, skip_special_tokens=True)
            results.append(Generation(list(ids), gen, text, truncated))
        return results
