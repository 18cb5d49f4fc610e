"""The sharding, gathering and fingerprint helpers of parallel.py.

``ThreadGroup`` runs each "rank" in a thread and implements broadcast/all_gather with a barrier:
it stands in for the process group only, to pin down how work is split and reassembled.
Real processes (accelerate, gloo, DDP) run in test_distributed.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch
from azr_trainer import parallel
from azr_trainer.parallel import LocalRuntime


class ThreadRank(LocalRuntime):
    def __init__(self, group: ThreadGroup, rank: int) -> None:
        self.group = group
        self.rank = rank
        self.world_size = group.world

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_gather(self, obj: Any) -> list[Any]:
        g = self.group
        g.slots[self.rank] = obj
        g.barrier.wait()
        out = list(g.slots)
        g.barrier.wait()
        return out

    def broadcast(self, obj: Any) -> Any:
        return self.all_gather(obj)[0]


class ThreadGroup:
    def __init__(self, world: int) -> None:
        self.world = world
        self.slots: list[Any] = [None] * world
        self.barrier = threading.Barrier(world, timeout=30)

    def run(self, fn: Callable[[ThreadRank], Any]) -> list[Any]:
        results: list[Any] = [None] * self.world
        errors: list[BaseException | None] = [None] * self.world

        def body(r: int) -> None:
            try:
                results[r] = fn(ThreadRank(self, r))
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                errors[r] = exc

        threads = [threading.Thread(target=body, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.errors = errors
        return results


def test_chunks_give_every_rank_work_and_match_one_process_at_batch_size_one() -> None:
    assert [len(r) for r in parallel.chunk_ranges(12, 32, 1)] == [12]
    assert [len(r) for r in parallel.chunk_ranges(12, 32, 2)] == [6, 6]
    assert [len(r) for r in parallel.chunk_ranges(13, 4, 2)] == [4, 4, 4, 1]
    assert (
        parallel.chunk_ranges(5, 1, 1)
        == parallel.chunk_ranges(5, 1, 2)
        == [range(i, i + 1) for i in range(5)]
    )
    assert parallel.chunk_ranges(0, 8, 2) == []


def test_lockstep_shards_are_equal_length_and_interleave_back() -> None:
    items = list(range(7))
    shards = [parallel.lockstep_shard(items, r, 2) for r in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5, None]]
    assert parallel.lockstep_shard([], 1, 2) == []
    real = [[x for x in s if x is not None] for s in shards]
    assert parallel.interleave(real, 7) == items
    three = [parallel.lockstep_shard(items, r, 3) for r in range(3)]
    assert {len(s) for s in three} == {3}


def test_sharded_map_splits_work_and_returns_item_order() -> None:
    seen: list[list[int]] = [[], []]

    def work(rt: ThreadRank) -> list[int]:
        def fn(part: list[int]) -> list[int]:
            seen[rt.rank].append(len(part))
            return [x * 10 for x in part]

        return parallel.sharded_map(rt, fn, list(range(5)))

    out = ThreadGroup(2).run(work)
    assert out[0] == out[1] == [0, 10, 20, 30, 40]
    assert seen == [[3], [3]]  # rank 1 got 2 items + 1 padding: the same number of passes


def test_verdicts_are_fetched_by_rank_zero_only_and_errors_reach_every_rank() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def ask(rt: ThreadRank) -> str:
        def fn() -> str:
            with lock:
                calls.append(rt.rank)
            return "verdicts"

        return parallel.call_on_main(rt, fn)

    assert ThreadGroup(2).run(ask) == ["verdicts", "verdicts"] and calls == [0]

    def fail(rt: ThreadRank) -> None:
        def fn() -> None:
            raise ValueError("service said no")

        parallel.call_on_main(rt, fn)

    group = ThreadGroup(2)
    group.run(fail)
    assert isinstance(group.errors[0], ValueError)
    assert isinstance(group.errors[1], RuntimeError) and "service said no" in str(group.errors[1])


def test_metrics_reduce_time_by_max_and_the_rest_by_mean() -> None:
    def reduce(rt: ThreadRank) -> dict[str, float]:
        m = {"time/generation": 1.0 + rt.rank, "reward/x": 0.5, "train/loss": float(rt.rank)}
        return parallel.reduce_metrics(rt, m)

    a, b = ThreadGroup(2).run(reduce)
    assert a == b == {"time/generation": 2.0, "reward/x": 0.5, "train/loss": 0.5}


def test_seed_draw_is_rank_zeros_and_seeded_leaves_the_global_stream_alone() -> None:
    def draw(rt: ThreadRank) -> int:
        return parallel.draw_seed(rt)

    a, b = ThreadGroup(2).run(draw)
    assert a == b
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    with parallel.seeded(123):
        first = torch.rand(3)
    with parallel.seeded(123):
        assert torch.equal(torch.rand(3), first)
    assert torch.equal(torch.rand(3), expected)


def test_params_checksum_sees_a_single_bit() -> None:
    torch.manual_seed(0)
    a = torch.nn.Linear(8, 4)
    b = torch.nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    assert parallel.params_checksum(a) == parallel.params_checksum(b)
    with torch.no_grad():
        bits = b.weight.view(-1).view(torch.int32)
        bits[5] ^= 1  # flip the lowest mantissa bit of one weight
    assert parallel.params_checksum(a) != parallel.params_checksum(b)
    assert parallel.params_checksum(torch.nn.Linear(3, 3, dtype=torch.bfloat16))  # 2-byte dtypes


def test_replica_check_raises_when_ranks_differ(tmp_path) -> None:
    import random

    from azr_trainer.buffers import Buffers

    def check(rt: ThreadRank) -> Any:
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 2)
        if rt.rank == 1:
            with torch.no_grad():
                model.bias.add_(1.0)
        return parallel.check_replicas(rt, tmp_path, 0, model, Buffers(4), random.Random(0))

    group = ThreadGroup(2)
    group.run(check)
    assert all(isinstance(e, RuntimeError) and "diverged" in str(e) for e in group.errors)
    assert "params" in (tmp_path / parallel.REPLICAS_LOG).read_text()


def test_local_runtime_is_the_identity() -> None:
    rt = LocalRuntime()
    assert rt.world_size == 1 and rt.is_main and rt.broadcast(3) == 3 and rt.all_gather(4) == [4]
    assert parallel.sharded_map(rt, lambda p: [x + 1 for x in p], [1, 2]) == [2, 3]


def test_multi_gpu_preset_and_accelerate_configs() -> None:
    from pathlib import Path

    import yaml
    from azr_trainer.config import PRESETS, ConfigError, load_config

    cfg = load_config(preset="multi-gpu")
    assert "multi-gpu" in PRESETS and cfg.generation.backend == "vllm" and cfg.model.lora.enabled
    assert cfg.selfplay.batch_size == 64 and cfg.optim.mini_batch_size == 128
    root = Path(__file__).resolve().parents[2] / "trainer" / "accelerate"
    kinds = {p.stem: yaml.safe_load(p.read_text()) for p in root.glob("*.yaml")}
    assert kinds["ddp"]["distributed_type"] == "MULTI_GPU"
    assert kinds["fsdp"]["distributed_type"] == "FSDP" and kinds["fsdp"]["fsdp_config"]["fsdp_version"] == 2
    assert kinds["cpu-2proc"]["use_cpu"] is True and kinds["cpu-2proc"]["num_processes"] == 2
    with pytest.raises(ConfigError, match="train.distributed"):
        load_config(preset="tiny-cpu", overrides=["train.distributed=on"])  # YAML reads `on` as true
