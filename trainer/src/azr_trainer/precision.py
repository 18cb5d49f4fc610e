"""Numeric precision of the policy: fp32 master weights, low-precision compute.

``model.dtype`` is the *compute* dtype: forward passes (generation with the HF backend, the
log-prob passes of the update) run under ``torch.autocast`` in that dtype. ``model.param_dtype``
is the dtype the trainable parameters, their gradients and the AdamW state are held in. Holding
bfloat16 parameters and stepping AdamW on them loses small updates: bfloat16 keeps 8 bits of
mantissa, so at lr 1e-6 a step moves only weights smaller than about 2.6e-4 in magnitude; the
rest round back to their old value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def to_dtype(name: str) -> torch.dtype:
    """``"bfloat16"`` → ``torch.bfloat16``; a clear error for anything else."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}") from None


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Run the enclosed forward passes in ``dtype`` (nothing to do for float32)."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def check_trainable(compute: str, params: str) -> None:
    """Reject precision settings the trainer cannot train with correctly."""
    to_dtype(compute)
    to_dtype(params)
    if compute == "float16":
        raise ValueError(
            "model.dtype=float16 needs loss scaling, which the trainer does not do; use bfloat16 (or float32)"
        )
