"""Runs inside vLLM's worker: the methods vLLM mixes into its worker class.

``LLM(worker_extension_cls="azr_trainer.backends.vllm_worker.WeightSyncExtension")`` makes vLLM
add these methods to its worker (vLLM >= 0.8.2 for the V1 engine), and
``LLM.collective_rpc("azr_load_weights", args=(batch,))`` calls them on every worker. ``self``
is then vLLM's worker, whose ``model_runner.model`` is the engine's model. This module imports
nothing from vLLM, so it loads (and is tested) without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class WeightSyncExtension:
    """Loads the trainer's weights into the engine's model, by their Hugging Face names."""

    model_runner: Any  # provided by the vLLM worker this class is mixed into

    def azr_load_weights(self, weights: Sequence[tuple[str, torch.Tensor]]) -> int:
        """Copy ``weights`` (HF checkpoint names) into the model; vLLM maps them onto its fused
        layers (qkv_proj, gate_up_proj). Returns how many tensors were given."""
        model = self.model_runner.model
        device = next(model.parameters()).device
        model.load_weights(weights=[(name, t.to(device, non_blocking=True)) for name, t in weights])
        return len(weights)
