"""Our verl entry points loaded and called by verl's own code, against the real service.

The reward module is the README's ``azr_reward.py``, as written (only the URL points at the
test service); the configs are the README's YAML. verl loads it with ``get_custom_reward_fn``
/ ``load_reward_manager`` and its reward managers call it on a real ``DataProto``, decoding
responses with a tokenizer as in training.
"""

from __future__ import annotations

import json

import pytest

verl = pytest.importorskip("verl", reason="verl is not installed (scripts/bootstrap.sh test installs it)")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from azr_client.rewards import RewardInputError  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager  # noqa: E402

from tests.client.conftest import readme_blocks, readme_module  # noqa: E402

REVERSE = "def f(a):\n    return a[::-1]"
DOUBLE = "def f(a):\n    return a * 2"


def fenced(kind: str, text: str) -> str:
    return f"<think>easy</think><answer>```{kind}\n{text}\n```</answer>"


#: (response, ground truth, expected score) - ground truths in the shapes a parquet row gives.
SAMPLES = [
    (
        fenced("output", "'cba'"),
        {"task_type": "deduction", "program": REVERSE, "input": "'abc'", "output": "'cba'"},
        1.0,
    ),
    (
        fenced("output", "'abc'"),
        {"task_type": "deduction", "program": REVERSE, "input": "'abc'", "output": "'cba'"},
        0.0,
    ),
    (fenced("input", "3"), json.dumps({"task_type": "abduction", "code": DOUBLE, "output": "6"}), 1.0),
    (
        fenced("python", DOUBLE),
        {
            "task_type": "induction",
            "cases": np.array([{"input": "2", "output": "4"}, {"input": "5", "output": "10"}]),
        },
        1.0,
    ),
    (fenced("python", REVERSE), {"task_type": "induction", "cases": [{"input": "2", "output": "4"}]}, 0.0),
]


def dataproto(tokenizer, samples) -> DataProto:
    """A batch as verl's rollout leaves it: left-padded prompts, right-padded responses."""
    prompts = [tokenizer.encode(f"Task {i}: solve it.") for i in range(len(samples))]
    responses = [tokenizer.encode(response) + [tokenizer.eos_token_id] for response, _, _ in samples]
    p_len, r_len = max(map(len, prompts)), max(map(len, responses))
    pad = tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (p_len - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (r_len - len(r)) for r in responses])
    mask = torch.tensor(
        [
            [0] * (p_len - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (r_len - len(r))
            for p, r in zip(prompts, responses, strict=True)
        ]
    )
    n = len(samples)
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": mask,
        },
        non_tensors={
            "data_source": np.array(["azr"] * n, dtype=object),
            "reward_model": np.array(
                [{"ground_truth": gt, "style": "rule"} for _, gt, _ in samples], dtype=object
            ),
            "extra_info": np.array([{"index": i} for i in range(n)], dtype=object),
        },
    )


def scores_at_last_token(reward_tensor: torch.Tensor, data: DataProto) -> list[float]:
    p_len = data.batch["prompts"].shape[-1]
    lengths = data.batch["attention_mask"][:, p_len:].sum(-1)
    return [float(reward_tensor[i, lengths[i] - 1]) for i in range(len(data))]


def readme_yaml(marker: str):
    [text] = [b for b in readme_blocks("yaml") if marker in b]
    return OmegaConf.create(text)


def test_batch_reward_manager_scores_a_dataproto(real_service, tiny_tokenizer, tmp_path) -> None:
    """Legacy path: top-level custom_reward_function + reward_model.reward_manager=batch."""
    from verl.workers.reward_manager import get_reward_manager_cls

    module = readme_module("# azr_reward.py", real_service.url, tmp_path)
    config = readme_yaml("reward_manager: batch")
    assert config.custom_reward_function.name == "compute_score_batch"
    config.custom_reward_function.path = str(module)
    config.custom_reward_function.reward_kwargs = {"unverified_reward": -0.5}
    # verl 0.9 reads the function's section under `reward:`; the legacy config has it at the top
    compute_score = get_custom_reward_fn(OmegaConf.create({"reward": config}))
    manager_cls = get_reward_manager_cls(config.reward_model.reward_manager)
    # the legacy loader passes reward_model.reward_kwargs to the manager, which passes them on
    manager = manager_cls(
        tokenizer=tiny_tokenizer, num_examine=1, compute_score=compute_score, wrong_reward=-1.0
    )

    before = real_service.counter("azr_requests_total", endpoint="/v1/verify", status="200")
    data = dataproto(tiny_tokenizer, SAMPLES)
    out = manager(data, return_dict=True)
    expected = [s if s else -1.0 for _, _, s in SAMPLES]
    assert scores_at_last_token(out["reward_tensor"], data) == expected
    assert data.batch["acc"].tolist() == expected
    # the whole batch went to the service in one request
    assert real_service.counter("azr_requests_total", endpoint="/v1/verify", status="200") - before == 1


def test_batch_reward_manager_plain_string_ground_truth_is_a_clear_error(
    real_service, tiny_tokenizer, tmp_path
):
    from verl.workers.reward_manager import get_reward_manager_cls

    module = readme_module("# azr_reward.py", real_service.url, tmp_path)
    config = OmegaConf.create(
        {"reward": {"custom_reward_function": {"path": str(module), "name": "compute_score_batch"}}}
    )
    manager = get_reward_manager_cls("batch")(
        tokenizer=tiny_tokenizer, num_examine=0, compute_score=get_custom_reward_fn(config)
    )
    data = dataproto(tiny_tokenizer, [(fenced("output", "3"), "3", 0.0)])
    with pytest.raises(
        RewardInputError,
        match=r"sample 0: ground_truth \(the dataset's reward_model.ground_truth\) must be a dict",
    ):
        manager(data)


@pytest.mark.parametrize("module_name", ["# azr_reward.py", "# azr_reward_async.py"])
def test_reward_loop_naive_manager_with_reward_model_kwargs(
    real_service, tiny_tokenizer, tmp_path, module_name
) -> None:
    """verl 0.9's path: load_reward_manager -> NaiveRewardManager.run_single, one sample per call,
    with reward_router_address/reward_model_tokenizer passed as when a reward model is configured."""
    module = readme_module(module_name, real_service.url, tmp_path)
    config = readme_yaml("name: naive")
    config.reward.custom_reward_function.path = str(module)
    config.reward.reward_manager.source = "register"
    manager = load_reward_manager(
        config, tiny_tokenizer, reward_router_address="127.0.0.1:1", reward_model_tokenizer=tiny_tokenizer
    )
    assert type(manager).__name__ == "NaiveRewardManager"
    assert manager.is_async_reward_score == module_name.endswith("_async.py")

    data = dataproto(tiny_tokenizer, SAMPLES)
    results = [manager.loop.run_until_complete(manager.run_single(data[i : i + 1])) for i in range(len(data))]
    assert [r["reward_score"] for r in results] == [s for _, _, s in SAMPLES]
