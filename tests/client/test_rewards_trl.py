"""Our reward function inside TRL's real GRPOTrainer: a tiny random Llama trains 2 steps on CPU
and every reward comes from the real verification service on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

trl = pytest.importorskip("trl", reason="trl is not installed (scripts/bootstrap.sh test installs it)")
torch = pytest.importorskip("torch", reason="torch is not installed (scripts/bootstrap.sh test installs it)")

from azr_client import AsyncVerificationClient, VerificationClient  # noqa: E402
from azr_client.rewards import make_reward_fn  # noqa: E402

STEPS, BATCH, GENERATIONS = 2, 4, 2


def tiny_model(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def cruxeval_style_rows(n: int):
    """Columns named as CRUXEval names them (``code``), with a ``task_type`` column."""
    from datasets import Dataset

    rows = []
    for i in range(n):
        kind = ("deduction", "abduction")[i % 2]
        rows.append(
            {
                "prompt": f"Task {i}: predict. <answer>",
                "task_type": kind,
                "code": "def f(a):\n    return a[::-1]",
                "input": repr(f"ab{i}"),
                "output": repr(f"{i}ba"),
            }
        )
    return Dataset.from_list(rows)


def train(tmp_path, tokenizer, reward) -> list[dict]:
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        num_generations=GENERATIONS,
        max_completion_length=8,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=tiny_model(tokenizer),
        reward_funcs=[reward],
        args=args,
        train_dataset=cruxeval_style_rows(8),
        processing_class=tokenizer,
    )
    trainer.train()
    assert trainer.state.global_step == STEPS
    return trainer.state.log_history


def run_and_count(real_service, tmp_path, tokenizer, reward) -> list[dict]:
    before = real_service.counter("azr_tasks_total", kind="verify")
    t0 = time.monotonic()
    history = train(tmp_path, tokenizer, reward)
    assert time.monotonic() - t0 < 60
    judged = real_service.counter("azr_tasks_total", kind="verify") - before
    # every completion of every step was judged by the service, none scored client-side
    assert judged == STEPS * BATCH
    means = [h["rewards/azr_mixed_reward/mean"] for h in history if "rewards/azr_mixed_reward/mean" in h]
    assert len(means) == STEPS and all(0.0 <= m <= 1.0 for m in means)
    return history


def test_grpo_trainer_with_sync_reward(real_service, tmp_path, tiny_tokenizer) -> None:
    with VerificationClient(real_service.url, deadline_s=60) as client:
        run_and_count(real_service, tmp_path, tiny_tokenizer, make_reward_fn(client, run="trl-sync"))
    assert real_service.counter("azr_requests_total", endpoint="/v1/verify", status="200") >= STEPS


def test_grpo_trainer_awaits_async_reward(real_service, tmp_path, tiny_tokenizer) -> None:
    from trl.trainer.utils import is_async_callable

    client = AsyncVerificationClient(real_service.url, deadline_s=60)
    reward = make_reward_fn(client)
    assert is_async_callable(reward)  # how GRPOTrainer decides to await it
    try:
        run_and_count(real_service, tmp_path, tiny_tokenizer, reward)
    finally:
        asyncio.run(client.aclose())
