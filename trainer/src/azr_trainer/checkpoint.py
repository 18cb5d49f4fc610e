"""Checkpoints with exact resume: policy, optimizer, buffers, every RNG state, step."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from azr_trainer.buffers import Buffers

STEP_PREFIX = "step_"


def rng_state(trainer_rng: random.Random) -> dict[str, Any]:
    state: dict[str, Any] = {
        "trainer": trainer_rng.getstate(),
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    return state


def set_rng_state(state: dict[str, Any], trainer_rng: random.Random) -> None:
    trainer_rng.setstate(state["trainer"])
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"{STEP_PREFIX}{step:06d}"


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | dict[str, Any],
    buffers: Buffers,
    trainer_rng: random.Random,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
    keep: int = 0,
) -> Path:
    """Write ``checkpoints/step_NNNNNN`` atomically (a temp dir renamed when complete).

    ``step`` is the number of finished steps: resuming starts at step ``step``. ``optimizer`` is
    the optimizer or its state dict (a multi-process run gathers it first).
    """
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    torch.save(model_state, tmp / "model.pt")
    optim_state = optimizer if isinstance(optimizer, dict) else optimizer.state_dict()
    torch.save(optim_state, tmp / "optimizer.pt")
    torch.save(rng_state(trainer_rng), tmp / "rng.pt")
    (tmp / "buffers.json").write_text(json.dumps(buffers.state_dict()))
    (tmp / "trainer_state.json").write_text(json.dumps({"step": step, **(extra or {})}))
    (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    if keep > 0:
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [
        p
        for p in root.iterdir()
        if p.is_dir() and p.name.startswith(STEP_PREFIX) and not p.name.endswith(".tmp")
    ]
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    buffers: Buffers,
    trainer_rng: random.Random,
    load_states: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Restore everything in place; returns the trainer state (``step`` = steps finished).

    ``load_states(model_state, optimizer_state)`` replaces the plain ``load_state_dict`` calls
    where the parameters are sharded (FSDP).
    """
    path = Path(path)
    state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    optim_state = torch.load(path / "optimizer.pt", weights_only=False)
    if load_states is not None:
        load_states(state, optim_state)
    else:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or (missing and len(missing) == len(list(model.state_dict()))):
            raise RuntimeError(f"checkpoint {path} does not match the model ({unexpected or missing})")
        optimizer.load_state_dict(optim_state)
    buffers.load_state_dict(json.loads((path / "buffers.json").read_text()))
    set_rng_state(torch.load(path / "rng.pt", weights_only=False), trainer_rng)
    return json.loads((path / "trainer_state.json").read_text())
