"""How SelfPlay turns responses and verdicts into rewards and buffer entries.

The backend returns scripted texts and the verifier is an in-process double returning
scripted verdicts, so each reward case is pinned down exactly. (Real verdicts from the real
service are exercised in test_e2e.py.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from azr_client import ValidateResult, VerifyResult
from azr_trainer.backends.base import Generation
from azr_trainer.buffers import Buffers
from azr_trainer.config import load_config
from azr_trainer.selfplay import SelfPlay
from azr_trainer.tasks import IDENTITY_INDUCTION, IDENTITY_TRIPLET, InductionTask


def code(program: str, inp: str) -> str:
    return f" t </think><answer>```python\n{program}\n```\n```input\n{inp}\n```</answer>"


def solve(label: str, body: str) -> str:
    return f" t </think><answer>```{label}\n{body}\n```</answer>"


@dataclass
class ScriptedBackend:
    replies: list[str]
    prompts: list[str] = field(default_factory=list)

    def generate(self, prompts, greedy=False, max_new_tokens=None):
        self.prompts.extend(prompts)
        out = []
        for _ in prompts:
            text = self.replies.pop(0)
            out.append(Generation([1, 2], [3, 4, 5], text))
        return out

    def sync_weights(self) -> int:
        return 0


@dataclass
class FakeVerifier:
    """Validates 'def f(a):\\n    return a + 1'-style programs by a lookup table."""

    outputs: dict[str, str]
    unreachable: bool = False
    #: answers / programs for which the SERVICE answers sandbox_error (not the client)
    sandbox_answers: set[str] = field(default_factory=set)
    sandbox_programs: set[str] = field(default_factory=set)
    validate_calls: list = field(default_factory=list)
    verify_calls: list = field(default_factory=list)

    def validate(self, tasks, repeats=None, timeout_s=None, run=None, step=None):
        self.validate_calls.append(list(tasks))
        res = []
        for t in tasks:
            if t.program in self.sandbox_programs:
                n = len(t.inputs)
                res.append(ValidateResult(t.id, False, "sandbox_error", [None] * n, ["sandbox_error"] * n))
                continue
            outs = [self.outputs.get(f"{t.program}|{i}") for i in t.inputs]
            verdicts = ["ok" if o is not None else "runtime_error" for o in outs]
            valid = all(v == "ok" for v in verdicts)
            res.append(ValidateResult(t.id, valid, "ok" if valid else "runtime_error", outs, verdicts))
        return res

    def verify(self, answers, run=None, step=None):
        self.verify_calls.append(list(answers))
        if self.unreachable:
            return [
                VerifyResult(a.id, False, "sandbox_error", "client: down", client_side=True) for a in answers
            ]
        res = []
        for a in answers:
            if a.answer in self.sandbox_answers:
                res.append(VerifyResult(a.id, False, "sandbox_error", "sandbox: could not start"))
                continue
            gold = a.output if a.task_type == "deduction" else None
            ok = a.answer == gold if gold is not None else a.answer == "GOOD"
            res.append(VerifyResult(a.id, ok, "ok" if ok else "wrong"))
        return res


def _selfplay(replies, verifier, task_types="deduction", batch=2, n=4, extra=()):
    cfg = load_config(
        preset="tiny-cpu",
        overrides=[
            f"selfplay.task_types={task_types}",
            f"selfplay.batch_size={batch}",
            f"selfplay.learnability_rollouts={n}",
            "train.progress=false",
            *extra,
        ],
    )
    bufs = Buffers(100)
    bufs.deduction.add(IDENTITY_TRIPLET)
    bufs.abduction.add(IDENTITY_TRIPLET)
    bufs.induction.add(IDENTITY_INDUCTION)
    backend = ScriptedBackend(list(replies))
    return SelfPlay(cfg, backend, verifier, bufs, random.Random(0)), bufs, backend


P1 = "def f(a):\n    return a + 1"


def test_propose_rewards_every_case() -> None:
    verifier = FakeVerifier({f"{P1}|1": "2"})
    replies = [
        code(P1, "1"),  # valid → learnability from 4 rollouts
        "garbage with no tags",  # format error → −1
        # learnability rollouts for the valid one: 1 of 4 correct → r = 0.75
        solve("output", "2"),
        solve("output", "3"),
        "bad format",
        solve("output", "9"),
    ]
    sp, bufs, _ = _selfplay(replies, verifier)
    rollouts = sp.propose(step=0)
    assert [r.reward for r in rollouts] == [0.75, -1.0]
    assert rollouts[0].learnability == 0.75 and rollouts[0].passed
    assert rollouts[1].verdict == "format_error" and not rollouts[1].well_formed
    newest = bufs.deduction.items()[-1]
    assert (newest.program, newest.input, newest.output, newest.step) == (P1, "1", "2", 0)
    # the format-error rollout was never sent; the valid proposal's 3 well-formed answers were
    assert len(verifier.validate_calls[0]) == 1 and len(verifier.verify_calls[0]) == 3


def test_invalid_and_duplicate_proposals_score_minus_half() -> None:
    verifier = FakeVerifier({f"{P1}|1": "2"})
    replies = [
        code(P1, "oops"),  # runs with an error → invalid
        code(IDENTITY_TRIPLET.program, IDENTITY_TRIPLET.input),  # same as a reference
    ]
    verifier.outputs[f"{IDENTITY_TRIPLET.program}|{IDENTITY_TRIPLET.input}"] = "'Hello world'"
    sp, bufs, _ = _selfplay(replies, verifier)
    rollouts = sp.propose(step=0)
    assert [r.reward for r in rollouts] == [-0.5, -0.5]
    assert rollouts[1].verdict == "duplicate"
    assert len(bufs.deduction) == 1 and verifier.verify_calls == []


def test_learnability_zero_when_always_or_never_solved() -> None:
    verifier = FakeVerifier({f"{P1}|1": "2", f"{P1}|2": "3"})
    replies = [code(P1, "1"), code(P1, "2")]
    replies += [solve("output", "2")] * 4  # always solved
    replies += [solve("output", "0")] * 4  # never solved
    sp, _, _ = _selfplay(replies, verifier)
    rollouts = sp.propose(step=0)
    assert [r.reward for r in rollouts] == [0.0, 0.0]
    assert [r.info["solve_rate"] for r in rollouts] == [1.0, 0.0]


def test_official_proposer_ladder(caplog) -> None:
    verifier = FakeVerifier({f"{P1}|1": "2", f"{P1}|2": "3"})
    replies = [code(P1, "1"), code(P1, "oops"), "no tags", code(P1, "2")]
    replies += [solve("output", "2")] * 2  # the first is always solved
    replies += [solve("output", "3"), solve("output", "0")]  # the last: half
    with caplog.at_level("INFO", logger="azr_trainer.selfplay"):
        sp, _, _ = _selfplay(replies, verifier, batch=4, n=2, extra=["selfplay.proposer_rewards=official"])
    assert "proposer rewards: official" in caplog.text
    rollouts = sp.propose(step=0)
    # trivial → −0.5, invalid → −1, format error → −1, learnable → 1 − 1/2
    assert [r.reward for r in rollouts] == [-0.5, -1.0, -1.0, 0.5]


def test_official_answer_parsing_setting_reaches_the_solver() -> None:
    bare = " t </think><answer>'Hello world'</answer>"
    sp, _, _ = _selfplay([bare], FakeVerifier({}), batch=1)
    assert sp.solve(step=0)[0].reward == -1.0  # strict: no ```output block
    sp, _, _ = _selfplay([bare], FakeVerifier({}), batch=1, extra=["selfplay.answer_parsing=official"])
    assert sp.solve(step=0)[0].reward == 1.0


def test_solve_rewards_and_newest_first() -> None:
    verifier = FakeVerifier({})
    sp, bufs, backend = _selfplay(
        [solve("output", "6"), solve("output", "'nope'"), "no tags"],
        verifier,
        batch=3,
    )
    from azr_trainer.tasks import Triplet

    bufs.deduction.add(Triplet(P1, "5", "6", step=3))
    rollouts = sp.solve(step=3)
    # the newest task (step 3) comes first, then the seed fills in
    assert "```input\n5\n```" in backend.prompts[0]
    # correct → 1, well formed but wrong → −0.5, format error → −1
    assert [r.reward for r in rollouts] == [1.0, -0.5, -1.0]
    assert [r.passed for r in rollouts] == [True, False, False]
    assert {r.role for r in rollouts} == {"solve"}


def test_unverifiable_answers_are_left_out_not_punished() -> None:
    verifier = FakeVerifier({}, unreachable=True)
    sp, _, _ = _selfplay([solve("output", "1"), "no tags"], verifier)
    rollouts = sp.solve(step=0)
    assert rollouts[0].reward is None and rollouts[0].verdict == "sandbox_error"
    assert rollouts[1].reward == -1.0  # a format error needs no service


def test_service_sandbox_error_is_unverified_not_punished() -> None:
    """A sandbox_error verdict from the service itself (client_side False) is no signal."""
    p2 = "def f(a):\n    return a - 1"
    verifier = FakeVerifier({f"{P1}|1": "2"}, sandbox_answers={"SANDBOX"}, sandbox_programs={p2})
    replies = [
        code(P1, "1"),  # valid
        code(p2, "1"),  # the service's sandbox failed on it
        # learnability of the valid one: 2 sandbox errors, 1 right, 1 wrong → rate 1/2 → 0.5
        solve("output", "SANDBOX"),
        solve("output", "2"),
        solve("output", "SANDBOX"),
        solve("output", "9"),
    ]
    sp, bufs, _ = _selfplay(replies, verifier)
    rollouts = sp.propose(step=0)
    assert rollouts[0].reward == 0.5 and rollouts[0].info["solve_rate"] == 0.5
    assert rollouts[1].reward is None and rollouts[1].verdict == "sandbox_error"
    assert [t.program for t in bufs.deduction.items()] == [IDENTITY_TRIPLET.program, P1]

    sp, _, _ = _selfplay([solve("output", "SANDBOX"), solve("output", "'Hello world'")], verifier)
    rollouts = sp.solve(step=0)
    assert [r.reward for r in rollouts] == [None, 1.0]
    assert rollouts[0].verdict == "sandbox_error"


def test_induction_proposal_keeps_inputs_that_ran() -> None:
    prog = IDENTITY_TRIPLET.program
    verifier = FakeVerifier({f"{prog}|1": "1", f"{prog}|2": "2", f"{prog}|3": "3"})
    blocks = "".join(f"```input\n{i}\n```\n" for i in ["1", "2", "bad", "3"])
    replies = [f" t </think><answer>{blocks}```message\nsame\n```</answer>"]
    replies += [solve("python", "GOOD"), solve("python", "BAD")]  # learnability: 1 of 2
    sp, bufs, _ = _selfplay(replies, verifier, task_types="induction", batch=1, n=2)
    rollouts = sp.propose(step=1)
    assert rollouts[0].reward == 0.5
    task = bufs.induction.items()[-1]
    assert task.inputs == ("1", "2", "3") and task.message == "same" and task.step == 1
    # the solver sees floor(3/2) = 1 pair and is checked on the 2 hidden ones only
    (answers,) = verifier.verify_calls
    assert [c.input for c in answers[0].cases] == ["2", "3"]


def _induction_reply(inputs: list[str]) -> str:
    blocks = "".join(f"```input\n{i}\n```\n" for i in inputs)
    return f" t </think><answer>{blocks}```message\nsame\n```</answer>"


def test_official_induction_rule_needs_exactly_n_inputs_that_all_run() -> None:
    prog = IDENTITY_TRIPLET.program
    verifier = FakeVerifier({f"{prog}|{i}": i for i in "1234"})
    replies = [
        _induction_reply(["1", "2", "3", "4"]),  # 4 of 4 run: valid
        _induction_reply(["1", "2", "3", "bad"]),  # one fails: invalid
        _induction_reply(["1", "2", "3"]),  # too few: invalid
    ]
    replies += [solve("python", "GOOD"), solve("python", "BAD")]  # learnability of the first
    sp, bufs, _ = _selfplay(
        replies,
        verifier,
        task_types="induction",
        batch=3,
        n=2,
        extra=["selfplay.induction_validity=official", "selfplay.proposer_rewards=official"],
    )
    rollouts = sp.propose(step=1)
    assert [r.reward for r in rollouts] == [0.5, -1.0, -1.0]
    assert rollouts[1].verdict == "runtime_error" and "1 of the 4 inputs did not run" in rollouts[1].detail
    assert rollouts[2].verdict == "invalid" and "3 inputs; exactly 4" in rollouts[2].detail
    assert bufs.induction.items()[-1].inputs == ("1", "2", "3", "4")
    (answers,) = verifier.verify_calls
    assert [c.input for c in answers[0].cases] == ["3", "4"]  # 2 shown, 2 hidden


def _untagged(program: str, inp: str) -> str:
    """What an untrained model often writes: the blocks, but no </think>/<answer> tags."""
    return f"Sure.\n```python\n{program}\n```\n```input\n{inp}\n```\n"


def test_seed_pass_takes_untagged_blocks_and_runs_until_the_buffers_are_full(caplog) -> None:
    progs = [f"def f(a):\n    return a + {k}" for k in range(1, 5)]
    verifier = FakeVerifier({f"{p}|1": "x" for p in progs})
    replies = [
        _untagged(progs[0], "1"),  # round 1
        "no code at all",
        _untagged(progs[0], "1"),  # round 2: a duplicate is not added again
        code(progs[1], "1"),
        _untagged(progs[2], "1"),  # round 3: the buffer reaches 4
        "still nothing",
    ]
    sp, bufs, backend = _selfplay(
        replies,
        verifier,
        extra=["selfplay.seed_buffer_factor=2", "selfplay.reject_duplicates=false"],
    )
    with caplog.at_level("INFO", logger="azr_trainer.selfplay"):
        sp.seed_pass()
    assert [t.program for t in bufs.deduction.items()] == [IDENTITY_TRIPLET.program, *progs[:3]]
    assert all(t.step == -1 for t in bufs.deduction.items())
    assert len(backend.prompts) == 6 and not backend.replies  # 3 rounds of 2, then it stopped
    assert "seed pass round 3" in caplog.text and "seed pass round 4" not in caplog.text
    # in training the tags are required again
    backend.replies = [_untagged(progs[3], "1"), code(progs[3], "1")]
    assert [r.verdict for r in sp.propose(step=0, learnability=False)] == ["format_error", "ok"]


def test_seed_pass_only_proposes_for_buffers_still_short() -> None:
    verifier = FakeVerifier({"def f(a):\n    return a + 1|1": "2"})
    replies = [_untagged("def f(a):\n    return a + 1", "1")]
    sp, bufs, backend = _selfplay(
        replies, verifier, task_types="deduction,induction", batch=1, extra=["selfplay.seed_buffer_factor=2"]
    )
    bufs.induction.add(InductionTask("def f(a):\n    return a", ("1", "2"), ("1", "2"), "m"))
    sp.seed_pass()  # induction already holds 2 tasks: only deduction proposes
    assert len(backend.prompts) == 1 and len(bufs.deduction) == 2


def test_seed_pass_gives_a_clear_error_when_the_buffers_cannot_be_filled() -> None:
    sp, bufs, backend = _selfplay(
        ["nothing"] * 6,
        FakeVerifier({}),
        extra=["selfplay.seed_buffer_factor=2", "selfplay.seed_pass_max_rounds=3"],
    )
    with pytest.raises(RuntimeError, match="after 3 rounds the deduction buffer"):
        sp.seed_pass()
    assert len(backend.prompts) == 6
