"""Command lines that start ``azr-train train`` (pure): under ``accelerate launch`` or alone."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def train_args(preset: str, sets: Sequence[str]) -> list[str]:
    """``azr_trainer.cli train --preset P --set K=V ...`` (the module part of a command)."""
    args = ["-m", "azr_trainer.cli", "train", "--preset", preset]
    for s in sets:
        args += ["--set", s]
    return args


def accelerate_command(
    config_file: Path, num_processes: int, port: int, preset: str, sets: Sequence[str]
) -> list[str]:
    """``accelerate launch`` of the trainer with the accelerate beside this interpreter."""
    return [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--config_file",
        str(config_file),
        "--num_processes",
        str(num_processes),
        "--main_process_port",
        str(port),
        *train_args(preset, sets),
    ]
