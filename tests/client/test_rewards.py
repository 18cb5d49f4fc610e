"""Reward entry points called the way TRL and verl call them, against the scripted server.

(The same entry points inside TRL's GRPOTrainer and verl's reward managers, against the real
service: test_rewards_trl.py and test_rewards_verl.py.)"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging

import pytest
from azr_client import AsyncVerificationClient, RetryPolicy, VerificationClient
from azr_client.rewards import (
    RewardInputError,
    extract_answer,
    make_reward_fn,
    make_verl_batch_compute_score,
    make_verl_compute_score,
)

FAST = RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02, jitter=0.0)
PROGRAM = "def f(a):\n    return a"


def answer(text: str) -> str:
    return f"<think>x</think><answer>```output\n{text}\n```</answer>"


def verify_bodies(server) -> list[dict]:
    return [
        r["body"] for r in server.requests if r["method"] == "POST" and r["path"].startswith("/v1/verify")
    ]


def test_extract_answer() -> None:
    assert extract_answer("<think>x</think><answer>```output\n'cba'\n```</answer>") == "'cba'"
    assert extract_answer("<answer> 42 </answer>") == "42"
    assert extract_answer("no tags, just 7") == "no tags, just 7"
    assert extract_answer("<answer>```python\nA\n```\n```python\nB\n```") == "B"


# ----------------------------------------------------------------------------- TRL
def test_trl_reward_fn(scripted_server) -> None:
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        reward = make_reward_fn(c, task_type="deduction")
        scores = reward(
            prompts=["p1", "p2"],
            completions=[answer("3"), [{"role": "assistant", "content": answer("5")}]],
            completion_ids=[[1, 2], [3]],
            program=[PROGRAM, PROGRAM],
            input=["3", "4"],
            output=["3", "4"],
            trainer_state=object(),
            log_metric=print,
        )
    assert scores == [1.0, 0.0]
    [body] = verify_bodies(scripted_server)
    assert body["answers"][1] == {
        "id": "r1",
        "task_type": "deduction",
        "output": "4",
        "answer": "5",
        "program": PROGRAM,
        "input": "4",
    }
    assert "run" not in body


def test_trl_cruxeval_code_column_and_run_tag(scripted_server) -> None:
    class State:
        global_step = 7

    with VerificationClient(scripted_server.url, retry=FAST) as c:
        reward = make_reward_fn(c, run="grpo-1")
        scores = reward(
            prompts=["p"],
            completions=[answer("1")],
            task_type=["abduction"],
            code=[PROGRAM],
            input=["1"],
            output=["1"],
            trainer_state=State(),
        )
    assert scores == [1.0]
    [body] = verify_bodies(scripted_server)
    assert body["answers"][0]["program"] == PROGRAM
    assert (body["run"], body["step"]) == ("grpo-1", 7)


def test_trl_missing_task_type_column_is_a_clear_error() -> None:
    with VerificationClient("http://127.0.0.1:9", retry=FAST) as c:
        reward = make_reward_fn(c)
        with pytest.raises(RewardInputError, match=r"no 'task_type' column.*task_type="):
            reward(prompts=["p"], completions=["1"], output=["1"])
        with pytest.raises(RewardInputError, match=r"abduction task needs the 'program' or 'code' column"):
            reward(prompts=["p"], completions=["1"], task_type=["abduction"], output=["1"])
        with pytest.raises(RewardInputError, match=r"batch row 0: task_type must be one of"):
            reward(prompts=["p"], completions=["1"], task_type=["math"], output=["1"])
        with pytest.raises(RewardInputError, match=r"make_reward_fn\(task_type=...\)"):
            make_reward_fn(c, task_type="Deduction")


def test_trl_reward_unverified_scores_neutral(scripted_server) -> None:
    scripted_server.script_replies(503, body={}, times=5)
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        reward = make_reward_fn(c, unverified_reward=-0.25)
        assert reward(completions=["1"], task_type=["deduction"], output=["1"]) == [-0.25]


def test_trl_async_reward_fn_is_awaited(scripted_server) -> None:
    async def main() -> list[float]:
        async with AsyncVerificationClient(scripted_server.url, retry=FAST) as c:
            reward = make_reward_fn(c, task_type="induction")
            assert inspect.iscoroutinefunction(reward)  # what TRL checks (test_rewards_trl.py)
            return await reward(
                prompts=["p", "q"],
                completions=[answer("def g(): pass"), answer("nope")],
                cases=[[{"input": "1", "output": "def g(): pass"}]] * 2,
            )

    assert asyncio.run(main()) == [1.0, 0.0]
    assert len(verify_bodies(scripted_server)) == 1


# ----------------------------------------------------------------------------- verl
def test_verl_compute_score(scripted_server) -> None:
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        score = make_verl_compute_score(c)
        gt = {"task_type": "induction", "cases": [{"input": "1", "output": "def g(): pass"}]}
        ok = score("azr", "<answer>```python\ndef g(): pass\n```</answer>", json.dumps(gt))
        bad = score("azr", "<answer>```python\nnope\n```</answer>", gt)
        from_extra = score("azr", answer("1"), {"output": "1"}, {"task_type": "deduction"})
    assert (ok, bad, from_extra) == (1.0, 0.0, 1.0)


def test_verl_kwargs_used_and_ignored(scripted_server, caplog) -> None:
    gt = {"task_type": "deduction", "output": "1"}
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        score = make_verl_compute_score(c)
        # what verl passes with a reward model configured, and reward_kwargs from the config
        kw = {"reward_router_address": "127.0.0.1:1", "reward_model_tokenizer": object()}
        assert score("azr", answer("2"), gt, {}, wrong_reward=-1.0, run="exp", **kw) == -1.0
        assert score(data_source="azr", solution_str=answer("1"), ground_truth=gt, correct_reward=2) == 2.0
        with caplog.at_level(logging.WARNING, logger="azr_client.rewards"):
            score("azr", answer("1"), gt, None, some_new_verl_kwarg=1)
            score("azr", answer("1"), gt, None, some_new_verl_kwarg=1)
    bodies = verify_bodies(scripted_server)
    assert bodies[0]["run"] == "exp" and "run" not in bodies[1]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "some_new_verl_kwarg" in warned[0]


@pytest.mark.parametrize(
    ("ground_truth", "message"),
    [
        ("3", r"must be a dict, or its JSON text, with 'task_type'.*got int 3 \(the JSON text '3'\)"),
        ("abc", r"reward_model\.ground_truth\) must be a dict.*got str 'abc'"),
        (["x"], r"must be a dict.*got list"),
        ({"output": "1"}, r"no task_type: put 'task_type'"),
        (
            {"task_type": "abduction", "output": "1"},
            r"needs the 'program' or 'code' key; keys given: 'task_type', 'output'",
        ),
        ({"task_type": "induction", "cases": "[1]"}, r"cases\[0\] must be \{'input': ..., 'output': ...\}"),
    ],
)
def test_verl_bad_ground_truth_is_a_clear_error(ground_truth, message) -> None:
    with VerificationClient("http://127.0.0.1:9", retry=FAST) as c:
        with pytest.raises(RewardInputError, match=message):
            make_verl_compute_score(c)("azr", "1", ground_truth)


def test_verl_batch_compute_score_one_request(scripted_server) -> None:
    np = pytest.importorskip("numpy", reason="numpy is not installed (verl hands over numpy arrays)")
    gts = [
        {"task_type": "deduction", "output": "1", "program": PROGRAM, "input": "1"},
        json.dumps({"task_type": "abduction", "code": PROGRAM, "output": "2"}),
        {"task_type": "induction", "cases": np.array([{"input": "1", "output": "x"}], dtype=object)},
    ]
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        batch = make_verl_batch_compute_score(c)
        scores = batch(
            data_sources=np.array(["azr"] * 3, dtype=object),
            solution_strs=[answer("1"), answer("2"), answer("y")],
            ground_truths=gts,
            extra_infos=[{"rollout_reward_scores": {}}] * 3,
            reward_router_address=None,
            unverified_reward=-0.5,
        )
        assert batch(data_sources=[], solution_strs=[], ground_truths=[], extra_infos=[]) == []
        with pytest.raises(RewardInputError, match="2 solution_strs but"):
            batch(data_sources=["a"], solution_strs=["1", "2"], ground_truths=gts[:2])
    assert scores == [1.0, 1.0, 0.0]
    [body] = verify_bodies(scripted_server)
    assert [a["task_type"] for a in body["answers"]] == ["deduction", "abduction", "induction"]


def test_verl_async_single_and_batch_refuses_async(scripted_server) -> None:
    async def main() -> float:
        async with AsyncVerificationClient(scripted_server.url, retry=FAST) as c:
            score = make_verl_compute_score(c)
            assert inspect.iscoroutinefunction(score)
            with pytest.raises(TypeError, match="BatchRewardManager calls compute_score without awaiting"):
                make_verl_batch_compute_score(c)  # type: ignore[arg-type]
            return await score("azr", answer("1"), {"task_type": "deduction", "output": "1"}, {}, run="r")

    assert asyncio.run(main()) == 1.0
