"""Use the verification service as a reward function from other RL libraries.

- TRL: :func:`make_reward_fn` (``GRPOTrainer(reward_funcs=[...])``); an ``async def`` when
  given the async client.
- verl: :func:`make_verl_compute_score` (one sample; verl's reward loop) and
  :func:`make_verl_batch_compute_score` (a batch; ``BatchRewardManager``).

A completion's answer is taken from the last fenced block inside ``<answer>…</answer>``
(or the whole text if there is none). Answers the service could not check in time score
``unverified_reward`` (0.0 by default) rather than raising. Gold data of the wrong shape
raises :class:`RewardInputError` naming the field. See client/README.md for examples.
"""

from azr_client.rewards._gold import TASK_TYPES, RewardInputError
from azr_client.rewards._scoring import AsyncVerifier, Rewards, SyncVerifier, extract_answer, score_answers
from azr_client.rewards._trl import TRL_KWARGS, make_reward_fn
from azr_client.rewards._verl import (
    IGNORED_KWARGS,
    USED_KWARGS,
    make_verl_batch_compute_score,
    make_verl_compute_score,
)

__all__ = [
    "IGNORED_KWARGS",
    "TASK_TYPES",
    "TRL_KWARGS",
    "USED_KWARGS",
    "AsyncVerifier",
    "RewardInputError",
    "Rewards",
    "SyncVerifier",
    "extract_answer",
    "make_reward_fn",
    "make_verl_batch_compute_score",
    "make_verl_compute_score",
    "score_answers",
]
