"""AZR's rewards (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FORMAT_ERROR_REWARD = -1.0
WRONG_REWARD = -0.5


def solve_reward(correct: bool) -> float:
    """r_solve: 1 when the answer equals the gold by value, else 0."""
    return 1.0 if correct else 0.0


def learnability_reward(solve_accuracies: Sequence[float]) -> float:
    """r_propose = 1 − mean solve rate; 0 when the mean is 0 or 1 (too hard / too easy)."""
    if not solve_accuracies:
        return 0.0
    mean = sum(solve_accuracies) / len(solve_accuracies)
    if mean <= 0.0 or mean >= 1.0:
        return 0.0
    return 1.0 - mean


def composite_reward(well_formed: bool, passed: bool, role_reward: float) -> float:
    """−1 for a format error, −0.5 for well formed but wrong/invalid, else the role's reward.

    ``passed`` is "correct" for a solver and "valid" for a proposer.
    """
    if not well_formed:
        return FORMAT_ERROR_REWARD
    if not passed:
        return WRONG_REWARD
    return role_reward


@dataclass(frozen=True)
class ProposerLadder:
    """What a proposal earns when it is not a learnable task (``selfplay.proposer_rewards``)."""

    name: str
    #: the response breaks the tag/block format
    format_error: float
    #: well formed, but the program does not validate (or is a rejected duplicate)
    invalid: float
    #: valid, but the solver's mean solve rate is 0 or 1
    trivial: float

    def describe(self) -> str:
        return (
            f"{self.name} (format error {self.format_error:g}, invalid {self.invalid:g}, "
            f"solve rate 0 or 1 {self.trivial:g}, else 1 - solve rate)"
        )


#: ``official``: the public AZR code (an invalid proposal gets the format-error −1, a trivial
#: one −0.5). ``paper``: arXiv 2505.03335's composite reward (invalid −0.5, trivial r = 0).
PROPOSER_LADDERS: dict[str, ProposerLadder] = {
    "official": ProposerLadder("official", format_error=-1.0, invalid=-1.0, trivial=-0.5),
    "paper": ProposerLadder("paper", format_error=-1.0, invalid=-0.5, trivial=0.0),
}


def proposer_ladder(name: str) -> ProposerLadder:
    try:
        return PROPOSER_LADDERS[name]
    except KeyError:
        raise ValueError(
            f"unknown proposer reward ladder {name!r}; choose from {', '.join(PROPOSER_LADDERS)}"
        ) from None


def proposer_reward(
    ladder: ProposerLadder, well_formed: bool, valid: bool, solve_accuracies: Sequence[float]
) -> float:
    """A proposer's reward: the ladder's penalty, or 1 − mean solve rate for a learnable task."""
    if not well_formed:
        return ladder.format_error
    if not valid:
        return ladder.invalid
    if not solve_accuracies:
        raise ValueError("a valid proposal's reward needs at least one verified solve attempt")
    mean = sum(solve_accuracies) / len(solve_accuracies)
    if mean <= 0.0 or mean >= 1.0:
        return ladder.trivial
    return 1.0 - mean
