"""The result cache: keys cover everything that decides a verdict; repeats cost a lookup."""

from __future__ import annotations

from executor.cache import MemoryCache, NoCache, cache_key, entry_bytes, memoize
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


def test_memory_cache_is_bounded_in_bytes_as_well_as_entries() -> None:
    value = {"verdict": "ok", "output": "x" * 10_000, "outputs_seen": ["x" * 10_000]}
    size = entry_bytes("k0", value)
    assert size > 20_000
    cache = MemoryCache(max_entries=1_000, max_bytes=3 * size + 10)
    for index in range(10):
        cache.set_many({f"k{index}": value})
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 3  # the three newest, though 1,000 entries would be allowed
    assert cache.get_many(["k6", "k7", "k8", "k9"]) == [None, value, value, value]
    cache.set_many({"k9": value})  # replacing an entry does not count it twice
    assert cache.bytes == 3 * size and len(cache) == 3
    cache.set_many({"huge": {"output": "y" * (4 * size)}})  # larger than the whole cache
    assert cache.get_many(["huge"]) == [None] and len(cache) == 3


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


def test_memoize_keeps_none_and_stays_under_its_byte_bound() -> None:
    calls: list[str] = []

    def size(key: str, _value: int | None) -> int:
        return len(key)

    @memoize(max_entries=100, max_bytes=1_000, size=size)
    def work(key: str) -> int | None:
        calls.append(key)
        return None if key.startswith("n") else len(key)

    assert work("n1") is None and work("n1") is None and calls == ["n1"]  # a None is remembered
    for index in range(20):
        work(f"{index:03d}" * 100)  # 300 bytes each: three fit in 1,000
    table = work.table  # type: ignore[attr-defined]
    assert table.bytes <= 1_000 and len(table) == 3
    work("019" * 100)
    assert calls.count("019" * 100) == 1  # the newest is still held
    work("n1")
    assert calls.count("n1") == 2  # evicted by the large ones: computed again


def test_the_engines_memos_are_bounded_in_bytes() -> None:
    from executor import engine as engine_module

    table = engine_module.compiled_program.table  # type: ignore[attr-defined]
    assert table.max_bytes == engine_module.COMPILED_MEMO_BYTES <= 64 * 2**20
    big = "def f(x):\n    return x\n" + "# padding\n" * 1_500
    engine_module.compiled_program(big)
    assert table.bytes >= len(big)
