"""One bad audit record never costs the others (a real SQLite store, a real Redis stream).

Once, a single record with text UTF-8 cannot encode (a lone surrogate in a program or an
exception message) failed the writer's whole transaction: every record of that batch was
lost, other requests' included. In queue mode the mirror retried that batch for ever and
indexed nothing after it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from api.audit.store import AuditQuery, BackgroundWriter, RedisMirror, RedisStreamWriter, SqliteStore

SURROGATE = "\udcff"
ESCAPED = "\\udcff"


def record(item: str, **fields: Any) -> dict[str, Any]:
    return {
        "time": time.time(),
        "verdict": "runtime_error",
        "reason": "ValueError",
        "detail": "ValueError: boom",
        "program": f"def f(a):\n    return a  # {item}",
        "run": "isolation",
        "step": 1,
        "kind": "validate",
        "item_id": item,
        **fields,
    }


def unencodable(item: str) -> dict[str, Any]:
    return record(item, program=f"def f(a):\n    return '{SURROGATE}'", detail=f"ValueError: {SURROGATE}")


def write_errors() -> float:
    return REGISTRY.get_sample_value("azr_audit_write_errors_total") or 0.0


def stored(store: SqliteStore) -> dict[str, dict[str, Any]]:
    records, _ = store.query(AuditQuery(limit=1000), full=True)
    return {r["item_id"]: r for r in records}


def test_unencodable_text_is_stored_escaped_beside_the_other_records(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "audit.sqlite3")
    ids = store.add_many([record("before"), unencodable("bad"), record("after")])
    assert len(ids) == 3
    found = stored(store)
    assert set(found) == {"before", "bad", "after"}
    assert ESCAPED in found["bad"]["program"] and ESCAPED in found["bad"]["detail"]
    json.dumps(found["bad"], ensure_ascii=False).encode("utf-8")  # encodable now
    assert store.query(AuditQuery(q=ESCAPED))[0][0]["item_id"] == "bad"  # the program column too


def test_a_record_nothing_can_store_is_left_out_and_counted(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "audit.sqlite3")
    before = write_errors()
    ids = store.add_many(
        [
            record("good"),
            record("bad-id", id="not-an-id"),
            record("not-json", outputs=[object()]),
            record("huge-step", step=2**70),  # SQLite has no such integer; the document keeps it
            record("nan", cpu_ms=float("nan")),
        ]
    )
    assert len(ids) == 3
    found = stored(store)
    assert set(found) == {"good", "huge-step", "nan"}
    assert found["huge-step"]["step"] == 2**70 and found["nan"]["cpu_ms"] is None
    assert write_errors() == before + 2


def test_a_row_the_database_refuses_does_not_fail_its_batch(tmp_path: Path) -> None:
    """SQLite itself refuses one row (a trigger here, a full disk or a constraint elsewhere):
    the batch is written again row by row, and only that row is lost."""
    store = SqliteStore(tmp_path / "audit.sqlite3")
    with store._conn() as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit WHEN NEW.program LIKE '%poison%' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    before = write_errors()
    ids = store.add_many([record("one"), record("poison"), unencodable("two"), record("three")])
    assert len(ids) == 3
    assert set(stored(store)) == {"one", "two", "three"}
    assert write_errors() == before + 1


def test_the_writer_keeps_every_concurrent_requests_records(tmp_path: Path) -> None:
    """Requests record at once, some with unencodable text, some with a broken record."""
    store = SqliteStore(tmp_path / "audit.sqlite3")
    writer = BackgroundWriter(store, max_records=100_000, max_age_s=86400, interval_s=0.01)

    def request(n: int) -> None:
        for i in range(20):
            batch = [record(f"r{n}-{i}"), unencodable(f"u{n}-{i}")]
            if i % 5 == 0:
                batch.append(record(f"x{n}-{i}", id="broken"))
            writer.add_many(batch)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert store.count() == 8 * 20 * 2
    assert not any(item.startswith("x") for item in stored(store))


@pytest.fixture
def redis_db() -> Any:
    from redis import Redis

    redis = Redis.from_url("redis://127.0.0.1:6379/15")
    try:
        redis.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"LOUD SKIP: no Redis on 127.0.0.1:6379: {exc}")
    return redis


@pytest.mark.redis
def test_the_queue_mode_mirror_indexes_past_a_bad_entry(redis_db: Any, tmp_path: Path) -> None:
    stream = f"azr-test:audit:{uuid.uuid4().hex}"
    store = SqliteStore(tmp_path / "mirror.sqlite3")
    mirror = RedisMirror("redis://127.0.0.1:6379/15", stream, store, block_ms=100)
    try:
        writer = RedisStreamWriter(redis_db, stream, max_records=1000, max_age_s=3600)
        writer.add_many([record("first"), unencodable("unencodable"), record("huge-step", step=2**70)])
        redis_db.xadd(stream, {"r": b"\xff not json"})  # what an old or foreign writer might leave
        writer.add_many([record("last")])
        mirror.start()
        assert mirror.wait_caught_up(timeout=20)
        found = stored(store)
        assert set(found) == {"first", "unencodable", "huge-step", "last"}
        assert ESCAPED in found["unencodable"]["program"]
        raw = json.loads(redis_db.xrange(stream, count=2)[1][1][b"r"])
        assert raw["program"] == f"def f(a):\n    return '{ESCAPED}'"  # the stream holds it escaped
    finally:
        mirror.close()
        redis_db.delete(stream)
