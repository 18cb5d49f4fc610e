"""AZR's rewards (pure)."""

from __future__ import annotations

from collections.abc import Sequence

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
