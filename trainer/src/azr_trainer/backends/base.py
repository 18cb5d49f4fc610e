"""The interface every generation backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Generation:
    prompt_ids: list[int]
    #: Generated token ids, ending with EOS when the model stopped on its own.
    response_ids: list[int]
    text: str
    #: True when generation hit the length limit.
    truncated: bool = False


class GenerationBackend(Protocol):
    def generate(
        self, prompts: list[str], greedy: bool = False, max_new_tokens: int | None = None
    ) -> list[Generation]:
        """One response per prompt, in order."""
        ...

    def sync_weights(self) -> int:
        """Make the next generations use the policy's current weights; returns how many tensors
        were copied to a separate engine (0 for a backend that generates with the policy itself)."""
        ...
