"""Rewards and TRR++ checked against numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from azr_trainer import trrpp
from azr_trainer.rewards import composite_reward, learnability_reward, solve_reward


# ----------------------------------------------------------------------------- rewards
def test_solve_reward() -> None:
    assert solve_reward(True) == 1.0 and solve_reward(False) == 0.0


@pytest.mark.parametrize(
    ("accs", "expected"),
    [
        ([0, 0, 0, 0, 0, 0, 0, 0], 0.0),  # never solved: too hard
        ([1, 1, 1, 1, 1, 1, 1, 1], 0.0),  # always solved: too easy
        ([1, 0, 0, 0, 0, 0, 0, 0], 0.875),  # 1 − 1/8
        ([1, 1, 1, 1, 0, 0, 0, 0], 0.5),
        ([1, 1, 1, 1, 1, 1, 1, 0], 0.125),
        ([], 0.0),
    ],
)
def test_learnability_reward(accs: list[int], expected: float) -> None:
    assert learnability_reward([float(a) for a in accs]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("well_formed", "passed", "role_reward", "expected"),
    [
        (False, False, 0.0, -1.0),  # format error
        (False, True, 1.0, -1.0),  # format error wins over anything else
        (True, False, 0.0, -0.5),  # solver: well formed but wrong
        (True, False, 0.875, -0.5),  # proposer: well formed but invalid
        (True, True, 1.0, 1.0),  # solver correct
        (True, True, 0.0, 0.0),  # valid proposal, learnability 0 (too easy/hard)
        (True, True, 0.625, 0.625),  # valid proposal, learnability
    ],
)
def test_composite_reward(well_formed: bool, passed: bool, role_reward: float, expected: float) -> None:
    assert composite_reward(well_formed, passed, role_reward) == expected


# ----------------------------------------------------------------------------- advantages
def test_group_advantages_per_sample_by_hand() -> None:
    # group A: [1, 0] → mean .5, std .5 → [+1, −1]; group B: [−.5, 1] → mean .25, std .75 → [−1, +1]
    # group C has one sample → 0 ; groups are independent of order
    rewards = [1.0, -0.5, 0.0, 1.0, 0.3]
    groups = [("ded", "solve"), ("abd", "solve"), ("ded", "solve"), ("abd", "solve"), ("ind", "propose")]
    adv = trrpp.group_advantages(rewards, groups, eps=0.0)
    assert adv == pytest.approx([1.0, -1.0, -1.0, 1.0, 0.0])
    # eps keeps constant groups finite
    assert trrpp.group_advantages([0.5, 0.5], ["g", "g"]) == [0.0, 0.0]


def test_group_advantages_three_values_by_hand() -> None:
    # [−1, −0.5, 1]: mean = −1/6, var = ((5/6)²+(1/3)²+(7/6)²)/3 = (25+4+49)/108 = 78/108
    std = math.sqrt(78 / 108)
    adv = trrpp.group_advantages([-1.0, -0.5, 1.0], [0, 0, 0], eps=0.0)
    assert adv == pytest.approx([(-1 + 1 / 6) / std, (-0.5 + 1 / 6) / std, (1 + 1 / 6) / std])


def test_group_advantages_token_weighted_by_hand() -> None:
    # rewards [1, 0] with lengths [3, 1]: mean = 3/4, var = (3·(1/4)² + 1·(3/4)²)/4 = 3/16
    adv = trrpp.group_advantages([1.0, 0.0], ["g", "g"], lengths=[3, 1], mode="token", eps=0.0)
    std = math.sqrt(3 / 16)
    assert adv == pytest.approx([0.25 / std, -0.75 / std])
    assert adv == pytest.approx([0.57735027, -1.73205081])
    with pytest.raises(ValueError):
        trrpp.group_advantages([1.0], ["g"], mode="token")


# ----------------------------------------------------------------------------- loss
def _two_tokens(ratios: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # a third position is padding with junk values that the mask must hide
    logp = torch.tensor([[math.log(ratios[0]), math.log(ratios[1]), 5.0]])
    old = torch.zeros(1, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    return logp, old, mask


def test_policy_loss_clipping_positive_advantage_by_hand() -> None:
    # ρ = [1.5, 0.5], A = +2: ρA = [3, 1]; clip(ρ)A = [2.4, 1.6]; min = [2.4, 1]; loss = −(2.4+1)/2
    logp, old, mask = _two_tokens([1.5, 0.5])
    adv = trrpp.broadcast_advantages(torch.tensor([2.0]), mask)
    loss, st = trrpp.policy_loss(logp, old, adv, mask, clip_ratio=0.2)
    assert float(loss) == pytest.approx(-1.7)
    assert st.clip_frac == pytest.approx(1.0)  # both tokens outside [0.8, 1.2]


def test_policy_loss_clipping_negative_advantage_by_hand() -> None:
    # A = −2: ρA = [−3, −1]; clip(ρ)A = [−2.4, −1.6]; min = [−3, −1.6]; loss = (3+1.6)/2 = 2.3
    logp, old, mask = _two_tokens([1.5, 0.5])
    adv = trrpp.broadcast_advantages(torch.tensor([-2.0]), mask)
    loss, _ = trrpp.policy_loss(logp, old, adv, mask, clip_ratio=0.2)
    assert float(loss) == pytest.approx(2.3)


def test_token_level_mean_across_samples() -> None:
    # sample 1: 1 token, A=+1; sample 2: 3 tokens, A=−1; ratio 1 → loss = (−1 + 3)/4 = 0.5
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    adv = trrpp.broadcast_advantages(torch.tensor([1.0, -1.0]), mask)
    loss, _ = trrpp.policy_loss(logp, logp.clone(), adv, mask)
    assert float(loss) == pytest.approx(0.5)
    # explicit denominator (micro-batching) divides by it instead
    loss8, _ = trrpp.policy_loss(logp, logp.clone(), adv, mask, num_tokens=8.0)
    assert float(loss8) == pytest.approx(0.25)


def test_entropy_and_kl_terms_by_hand() -> None:
    logits = torch.zeros(1, 2, 4)  # uniform over 4 → entropy ln 4
    ent = trrpp.entropy_from_logits(logits)
    assert ent == pytest.approx(torch.full((1, 2), math.log(4)))
    logp = torch.zeros(1, 2)
    mask = torch.ones(1, 2)
    adv = torch.zeros(1, 2)
    loss, st = trrpp.policy_loss(logp, logp, adv, mask, entropy=ent, entropy_coef=0.1)
    assert float(loss) == pytest.approx(-0.1 * math.log(4))
    ref = torch.full((1, 2), math.log(2.0))  # Δ = ln 2 → k3 = 2 − ln 2 − 1
    loss, st = trrpp.policy_loss(logp, logp, adv, mask, ref_logp=ref, kl_coef=0.5)
    assert st.kl == pytest.approx(1 - math.log(2))
    assert float(loss) == pytest.approx(0.5 * (1 - math.log(2)))


def test_gradient_sign_raises_probability_of_rewarded_token() -> None:
    """The defect to avoid: a surrogate minimised without its minus sign."""
    for advantage, direction in ((1.0, +1), (-1.0, -1)):
        logits = torch.zeros(3, requires_grad=True)
        opt = torch.optim.SGD([logits], lr=0.5)
        before = torch.softmax(logits.detach(), -1)[0].item()
        logp = torch.log_softmax(logits, -1)[0].view(1, 1)
        mask = torch.ones(1, 1)
        adv = trrpp.broadcast_advantages(torch.tensor([advantage]), mask)
        loss, _ = trrpp.policy_loss(logp, logp.detach(), adv, mask)
        loss.backward()
        # at ρ = 1 the gradient wrt log π is exactly −A / N
        assert logits.grad is not None
        opt.step()
        after = torch.softmax(logits.detach(), -1)[0].item()
        assert (after - before) * direction > 0


def test_clipped_side_has_no_gradient() -> None:
    # ρ = 1.5 > 1.2 with A > 0: the clipped term is the minimum, so no gradient flows
    logp = torch.tensor([[math.log(1.5)]], requires_grad=True)
    mask = torch.ones(1, 1)
    loss, _ = trrpp.policy_loss(logp, torch.zeros(1, 1), torch.ones(1, 1), mask)
    loss.backward()
    assert logp.grad is not None and float(logp.grad) == 0.0
    # ρ = 0.5 < 0.8 with A > 0: unclipped term is the minimum, gradient −ρA
    logp2 = torch.tensor([[math.log(0.5)]], requires_grad=True)
    loss2, _ = trrpp.policy_loss(logp2, torch.zeros(1, 1), torch.ones(1, 1), mask)
    loss2.backward()
    assert float(logp2.grad) == pytest.approx(-0.5)


# ----------------------------------------------------------------------------- proposer ladder
@pytest.mark.parametrize(
    ("ladder", "well_formed", "valid", "accs", "expected"),
    [
        ("official", False, False, [], -1.0),  # format error
        ("official", True, False, [], -1.0),  # invalid program: as bad as a format error
        ("official", True, True, [0.0, 0.0], -0.5),  # never solved
        ("official", True, True, [1.0, 1.0], -0.5),  # always solved
        ("official", True, True, [1.0, 0.0, 0.0, 0.0], 0.75),
        ("paper", False, False, [], -1.0),
        ("paper", True, False, [], -0.5),
        ("paper", True, True, [0.0, 0.0], 0.0),
        ("paper", True, True, [1.0, 1.0], 0.0),
        ("paper", True, True, [1.0, 0.0, 0.0, 0.0], 0.75),
    ],
)
def test_proposer_reward_ladders(
    ladder: str, well_formed: bool, valid: bool, accs: list[float], expected: float
) -> None:
    from azr_trainer.rewards import proposer_ladder, proposer_reward

    assert proposer_reward(proposer_ladder(ladder), well_formed, valid, accs) == expected


def test_proposer_ladder_errors() -> None:
    from azr_trainer.rewards import proposer_ladder, proposer_reward

    with pytest.raises(ValueError, match="choose from official, paper"):
        proposer_ladder("kind")
    with pytest.raises(ValueError, match="at least one verified"):
        proposer_reward(proposer_ladder("paper"), True, True, [])
    assert "invalid -1" in proposer_ladder("official").describe()
