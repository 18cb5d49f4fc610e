"""The result cache: keys cover everything that decides a verdict; repeats cost a lookup."""

from __future__ import annotations

from executor.cache import MemoryCache, NoCache, cache_key
from executor.engine import Engine
from executor.verdicts import Answer, ValidateTask

PROGRAM = "def f(a):\n    return sorted(a)[::-1]  # cache test"


def test_cache_key_depends_on_every_part() -> None:
    base = cache_key("validate", "p", "i", 2, {"timeout_s": 5}, {"policy": "x"})
    assert base == cache_key("validate", "p", "i", 2, {"timeout_s": 5}, {"policy": "x"})
    for changed in [
        cache_key("validate", "p2", "i", 2, {"timeout_s": 5}, {"policy": "x"}),
        cache_key("validate", "p", "i2", 2, {"timeout_s": 5}, {"policy": "x"}),
        cache_key("validate", "p", "i", 3, {"timeout_s": 5}, {"policy": "x"}),
        cache_key("validate", "p", "i", 2, {"timeout_s": 6}, {"policy": "x"}),
        cache_key("validate", "p", "i", 2, {"timeout_s": 5}, {"policy": "y"}),
    ]:
        assert changed != base


def test_memory_cache_is_an_lru() -> None:
    cache = MemoryCache(max_entries=2)
    cache.set_many({"a": {"v": 1}, "b": {"v": 2}})
    assert cache.get_many(["a"]) == [{"v": 1}]  # a is now the newest
    cache.set_many({"c": {"v": 3}})
    assert cache.get_many(["a", "b", "c"]) == [{"v": 1}, None, {"v": 3}]
    assert cache.hits == 3 and cache.misses == 1
    assert NoCache().get_many(["a"]) == [None]


def test_second_identical_validate_is_served_from_the_cache(engine: Engine) -> None:
    task = ValidateTask("c1", PROGRAM, ["[3, 1, 2]", "'cab'"])
    first = engine.validate([task])
    assert first[0].valid and not first[0].cached
    executions, hits = engine.pool.executions, engine.cache.hits  # type: ignore[attr-defined]
    second = engine.validate([task])
    assert second[0].cached and second[0].outputs == first[0].outputs == ["[3, 2, 1]", "['c', 'b', 'a']"]
    assert engine.pool.executions == executions, "a cached validation must not execute anything"
    assert engine.cache.hits == hits + 2  # type: ignore[attr-defined]


def test_other_repeats_or_timeout_is_another_cache_entry(engine: Engine) -> None:
    task = ValidateTask("c2", PROGRAM, ["[5, 4]"])
    engine.validate([task])
    assert not engine.validate([task], repeats=1)[0].cached
    assert not engine.validate([task], timeout_s=4.0)[0].cached
    assert engine.validate([task])[0].cached


def test_identical_answers_are_served_from_the_cache(engine: Engine) -> None:
    answer = Answer("v", "abduction", "[1, 2, 3]", PROGRAM, None, "[3, 2, 1]")
    first = engine.verify([answer])[0]
    assert first.correct and not first.cached
    executions = engine.pool.executions
    second = engine.verify([answer, answer])
    assert all(r.cached and r.correct for r in second)
    assert engine.pool.executions == executions


def test_duplicates_within_one_batch_run_once(engine: Engine) -> None:
    executions = engine.pool.executions
    task = ValidateTask("dup", PROGRAM.replace("cache test", "dup test"), ["[9, 8]"])
    results = engine.validate([task, task, task], repeats=2)
    assert all(r.valid for r in results)
    assert engine.pool.executions - executions == 2  # one input x two repeats
