from __future__ import annotations

import json

from azr_client import RetryPolicy, VerificationClient
from azr_client.rewards import extract_answer, make_reward_fn, make_verl_compute_score

FAST = RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02, jitter=0.0)


def test_extract_answer() -> None:
    assert extract_answer("<think>x</think><answer>```output\n'cba'\n```</answer>") == "'cba'"
    assert extract_answer("<answer> 42 </answer>") == "42"
    assert extract_answer("no tags, just 7") == "no tags, just 7"
    assert extract_answer("<answer>```python\nA\n```\n```python\nB\n```") == "B"


def test_trl_reward_fn(scripted_server) -> None:
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        reward = make_reward_fn(c, task_type="deduction")
        scores = reward(
            prompts=["p1", "p2"],
            completions=[
                "<answer>```output\n3\n```</answer>",
                [{"role": "assistant", "content": "<answer>```output\n5\n```</answer>"}],
            ],
            program=["def f(a): return a", "def f(a): return a"],
            input=["3", "4"],
            output=["3", "4"],
        )
    assert scores == [1.0, 0.0]
    sent = scripted_server.requests[0]["body"]["answers"]
    assert sent[1]["input"] == "4" and sent[1]["task_type"] == "deduction"


def test_trl_reward_unverified_scores_neutral(scripted_server) -> None:
    scripted_server.script_replies(503, body={}, times=5)
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        reward = make_reward_fn(c, unverified_reward=-0.25)
        assert reward(completions=["1"], task_type=["deduction"], output=["1"]) == [-0.25]


def test_verl_compute_score(scripted_server) -> None:
    with VerificationClient(scripted_server.url, retry=FAST) as c:
        score = make_verl_compute_score(c)
        gt = {"task_type": "induction", "cases": [{"input": "1", "output": "def g(): pass"}]}
        ok = score("azr", "<answer>```python\ndef g(): pass\n```</answer>", json.dumps(gt))
        bad = score("azr", "<answer>```python\nnope\n```</answer>", gt)
    assert (ok, bad) == (1.0, 0.0)
