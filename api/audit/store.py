"""Audit stores.

* `SqliteStore`: the local file store (embedded mode) and the query index (both modes).
  Rows are keyed by an integer made from the record id ('<ms>-<seq>'), so time ranges
  and cursors are primary-key ranges; verdict, reason and run have their own indexes.
* `RedisStreamWriter`: queue mode's durable store, a capped Redis stream written by the
  worker before it acknowledges a job (XADD … MAXLEN ~ N, XTRIM MINID ~ age cutoff).
* `RedisMirror`: tails that stream into a local `SqliteStore` in the API process, so
  queries never scan the stream.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.audit.metrics import WRITE_ERRORS
from api.audit.records import IDS, id_key, key_id
from api.core.text import encodable

log = logging.getLogger(__name__)

SUMMARY_FIELDS = (
    "id",
    "time",
    "verdict",
    "reason",
    "detail",
    "line",
    "run",
    "step",
    "kind",
    "task_type",
    "key_id",
    "item_id",
    "cpu_ms",
    "maxrss_kb",
    "sampled",
    "program_chars",
)


@dataclass
class AuditQuery:
    verdict: list[str] | None = None
    reason: str | None = None
    run: str | None = None
    kind: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    q: str | None = None  # substring of the program
    cursor: str | None = None  # id of the last record of the previous page
    limit: int = 50


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def summary(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: record.get(k) for k in SUMMARY_FIELDS}
    program = record.get("program") or ""
    head = next((line.strip() for line in program.splitlines() if line.strip()), "")
    out["program_head"] = head[:120]
    return out


# Bump when the tables change: the file name carries it, so an old store is left aside, not misread.
SCHEMA_VERSION = 2

# The audit store holds other requests' programs: only the service's own user may read it
# (the sandboxes run programs under other uids on the same host).
PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# SQLite's companions of a database file: its write-ahead log, shared memory and rollback journal
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> None:
    """Create ``path`` for this user only (0700); tighten an existing one this user owns.

    A directory someone else owns, or a shared sticky one such as /tmp, is left as it is,
    with a warning: the files in it are private all the same (`private_database_files`).
    """
    path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    info = path.stat()
    if not info.st_mode & 0o077:
        return
    if info.st_uid == os.geteuid() and not info.st_mode & stat.S_ISVTX:
        os.chmod(path, PRIVATE_DIRECTORY_MODE)
    else:
        log.warning(
            "audit: %s is open to other users (mode %o); its audit files are not", path, info.st_mode & 0o777
        )


def private_database_files(database: Path) -> None:
    """The database file and whichever of its SQLite companions exist: 0600.

    The file is created here, 0600, before SQLite opens it: SQLite gives its -wal, -shm and
    -journal files the database file's own mode, whatever the umask. Files an older
    version left readable are tightened. A symbolic link in their place is refused.
    """
    _private_file(database, create=True)
    for suffix in SQLITE_COMPANIONS:
        _private_file(database.with_name(database.name + suffix), create=False)


def _private_file(path: Path, create: bool) -> None:
    flags = os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(path, flags, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        return
    try:
        if stat.S_IMODE(os.fstat(descriptor).st_mode) != PRIVATE_FILE_MODE:
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class StoredRow:
    """One record as the two tables hold it."""

    record_id: str
    columns: tuple[int, str, str | None, str | None, int | None, str | None, str | None]
    doc: str


SQLITE_INTEGERS = range(-(2**63), 2**63)


def _text_column(value: Any) -> str | None:
    return None if value is None else str(value)


def _integer_column(value: Any) -> int | None:
    """An integer SQLite can hold, or None (the record's document keeps the value itself)."""
    return value if isinstance(value, int) and value in SQLITE_INTEGERS else None


def stored_row(record: dict[str, Any]) -> StoredRow:
    """The row of one record, its text made encodable (a lone surrogate written as
    `\\udcff`). Raises ValueError or TypeError for a record nothing makes storable (an id
    out of range, a value JSON cannot hold)."""
    clean = encodable(record)
    key = id_key(str(clean["id"]))
    columns = (
        key,
        str(clean.get("verdict")),
        _text_column(clean.get("reason")),
        _text_column(clean.get("run")),
        _integer_column(clean.get("step")),
        _text_column(clean.get("kind")),
        _text_column(clean.get("program")),
    )
    return StoredRow(str(clean["id"]), columns, json.dumps(clean, separators=(",", ":"), allow_nan=False))


def _lost(count: int, message: str) -> None:
    WRITE_ERRORS.inc(count)
    log.warning("audit: %s", message)


class SqliteStore:
    """Audit records in one SQLite file (WAL); thread-safe (one connection per thread)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS audit (
        k INTEGER PRIMARY KEY, verdict TEXT NOT NULL, reason TEXT, run TEXT, step INTEGER, kind TEXT, program TEXT);
    CREATE TABLE IF NOT EXISTS audit_doc (k INTEGER PRIMARY KEY, doc TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS audit_verdict ON audit (verdict, k);
    CREATE INDEX IF NOT EXISTS audit_reason ON audit (reason, k);
    CREATE INDEX IF NOT EXISTS audit_run ON audit (run, k);
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        on_disk = self.path != ":memory:"
        if on_disk:
            private_directory(Path(self.path).parent)
            private_database_files(Path(self.path))
        self._local = threading.local()
        self._write_lock = threading.Lock()
        conn = self._conn()
        conn.executescript(self.SCHEMA)
        conn.commit()
        if on_disk:
            private_database_files(Path(self.path))  # the -wal and -shm files now exist too

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    # ------------------------------------------------------------------ writes
    def add_many(self, records: list[dict[str, Any]]) -> list[str]:
        """Insert records (ids assigned where missing); duplicate ids are ignored. Returns
        the ids of the records written.

        One bad record never costs the others: text UTF-8 cannot encode is stored escaped,
        a record that cannot be stored at all is left out (logged, and counted in
        azr_audit_write_errors_total), and a batch that fails is written again row by row.
        """
        rows: list[StoredRow] = []
        for record in records:
            if not record.get("id"):
                record["id"] = IDS.next(float(record.get("time") or time.time()))
            try:
                rows.append(stored_row(record))
            except (ValueError, TypeError) as exc:
                _lost(1, f"record {str(record.get('id'))!r} cannot be stored: {exc}")
        if not rows:
            return []
        with self._write_lock:
            try:
                self._insert(rows)
                return [row.record_id for row in rows]
            except (sqlite3.Error, ValueError, OverflowError) as exc:
                if len(rows) == 1:
                    _lost(1, f"record {rows[0].record_id!r} was not written: {exc}")
                    return []
                log.warning(
                    "audit: a batch of %d records failed (%s); writing them one by one", len(rows), exc
                )
            return self._insert_each(rows)

    def _insert(self, rows: list[StoredRow]) -> None:
        conn = self._conn()
        with conn:
            conn.executemany("INSERT OR IGNORE INTO audit VALUES (?,?,?,?,?,?,?)", [r.columns for r in rows])
            conn.executemany(
                "INSERT OR IGNORE INTO audit_doc VALUES (?,?)", [(r.columns[0], r.doc) for r in rows]
            )

    def _insert_each(self, rows: list[StoredRow]) -> list[str]:
        written: list[str] = []
        failures: list[str] = []
        for row in rows:
            try:
                self._insert([row])
            except (sqlite3.Error, ValueError, OverflowError) as exc:
                failures.append(f"{row.record_id}: {exc}")
            else:
                written.append(row.record_id)
        if failures:
            _lost(len(failures), f"{len(failures)} of {len(rows)} records were not written ({failures[0]})")
        return written

    def _delete(self, conn: sqlite3.Connection, op: str, key: int) -> int:
        removed = conn.execute(f"DELETE FROM audit WHERE k {op} ?", (key,)).rowcount
        conn.execute(f"DELETE FROM audit_doc WHERE k {op} ?", (key,))
        return int(removed)

    def trim(self, max_records: int | None, max_age_s: float | None, now: float | None = None) -> int:
        """Delete records older than max_age_s and beyond the newest max_records."""
        now = time.time() if now is None else now
        removed = 0
        with self._write_lock:
            conn = self._conn()
            with conn:
                if max_age_s is not None and max_age_s > 0:
                    cutoff = int((now - max_age_s) * 1000) * 1_000_000
                    removed += self._delete(conn, "<", cutoff)
                if max_records is not None and max_records >= 0:
                    row = conn.execute(
                        "SELECT k FROM audit ORDER BY k DESC LIMIT 1 OFFSET ?", (max_records,)
                    ).fetchone()
                    if row is not None:
                        removed += self._delete(conn, "<=", row[0])
        return removed

    def delete_before(self, key: int) -> int:
        with self._write_lock:
            conn = self._conn()
            with conn:
                return self._delete(conn, "<", key)

    def last_key(self) -> int | None:
        row = self._conn().execute("SELECT MAX(k) FROM audit").fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ reads
    def _where(self, query: AuditQuery, use_cursor: bool = True) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if query.verdict:
            clauses.append("verdict IN ({})".format(",".join("?" * len(query.verdict))))
            args.extend(query.verdict)
        if query.reason:
            clauses.append("reason = ?")
            args.append(query.reason)
        if query.run is not None:
            clauses.append("run = ?")
            args.append(query.run)
        if query.kind:
            clauses.append("kind = ?")
            args.append(query.kind)
        if query.since is not None:
            clauses.append("k >= ?")
            args.append(int(query.since * 1000) * 1_000_000)
        if query.until is not None:
            clauses.append("k < ?")
            args.append(int(query.until * 1000) * 1_000_000)
        if use_cursor and query.cursor:
            clauses.append("k < ?")
            args.append(id_key(query.cursor))
        if query.q:
            clauses.append("program LIKE ? ESCAPE '\\'")
            args.append(_like(query.q))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def query(self, query: AuditQuery, full: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        """One page, newest first, and the cursor of the next page (None at the end)."""
        where, args = self._where(query)
        limit = max(1, min(int(query.limit), 1000))
        conn = self._conn()
        keys = [
            k
            for (k,) in conn.execute(
                f"SELECT k FROM audit{where} ORDER BY k DESC LIMIT ?", (*args, limit + 1)
            )
        ]
        page_keys = keys[:limit]
        docs: dict[int, str] = {}
        if page_keys:
            marks = ",".join("?" * len(page_keys))
            docs = dict(
                conn.execute(f"SELECT k, doc FROM audit_doc WHERE k IN ({marks})", page_keys).fetchall()
            )
        records = [json.loads(docs[k]) for k in page_keys if k in docs]
        next_cursor = key_id(page_keys[-1]) if len(keys) > limit else None
        return ([r if full else summary(r) for r in records], next_cursor)

    def iter_all(self, query: AuditQuery, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every matching record, newest first (for export)."""
        page = AuditQuery(**{**query.__dict__, "limit": batch})
        while True:
            records, cursor = self.query(page, full=True)
            yield from records
            if cursor is None:
                return
            page.cursor = cursor

    def get(self, record_id: str) -> dict[str, Any] | None:
        try:
            key = id_key(record_id)
        except ValueError:
            return None
        row = self._conn().execute("SELECT doc FROM audit_doc WHERE k = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def count(self, query: AuditQuery | None = None) -> int:
        where, args = self._where(query or AuditQuery(), use_cursor=False)
        return int(self._conn().execute(f"SELECT COUNT(*) FROM audit{where}", args).fetchone()[0])

    def stats(self, query: AuditQuery, buckets: int = 48) -> dict[str, Any]:
        """Counts by verdict over time (for the chart) and by verdict / reason overall, in one pass."""
        where, args = self._where(query, use_cursor=False)
        conn = self._conn()
        lo_row = conn.execute("SELECT MIN(k), MAX(k) FROM audit").fetchone()
        if not lo_row or lo_row[0] is None:
            return {"buckets": [], "bucket_s": 0, "by_verdict": {}, "by_reason": {}, "total": 0}
        lo_ms = int(query.since * 1000) if query.since is not None else lo_row[0] // 1_000_000
        hi_ms = int(query.until * 1000) if query.until is not None else lo_row[1] // 1_000_000 + 1
        lo_ms, hi_ms = min(lo_ms, hi_ms - 1), max(hi_ms, lo_ms + 1)
        width_ms = max(1000, -(-(hi_ms - lo_ms) // buckets))
        rows = conn.execute(
            f"SELECT (k / 1000000 - ?) / ? AS b, verdict, reason, COUNT(*) FROM audit{where} GROUP BY b, verdict, reason",
            (lo_ms, width_ms, *args),
        ).fetchall()
        series: dict[int, dict[str, int]] = {}
        by_verdict: dict[str, int] = {}
        by_reason: dict[str, int] = {}
        for bucket, verdict, reason, n in rows:
            counts = series.setdefault(int(bucket), {})
            counts[verdict] = counts.get(verdict, 0) + n
            by_verdict[verdict] = by_verdict.get(verdict, 0) + n
            by_reason[reason or ""] = by_reason.get(reason or "", 0) + n
        return {
            "bucket_s": width_ms / 1000,
            "from": lo_ms / 1000,
            "to": hi_ms / 1000,
            "buckets": [
                {"start": (lo_ms + b * width_ms) / 1000, "counts": series[b]} for b in sorted(series)
            ],
            "by_verdict": by_verdict,
            "by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])[:20]),
            "total": sum(by_verdict.values()),
        }

    def runs(self, limit: int = 200) -> list[dict[str, Any]]:
        """Per-run summary: records, by verdict, first/last time, last step."""
        rows = (
            self._conn()
            .execute(
                "SELECT run, verdict, COUNT(*), MIN(k), MAX(k), MAX(step) FROM audit "
                "WHERE run IS NOT NULL GROUP BY run, verdict"
            )
            .fetchall()
        )
        out: dict[str, dict[str, Any]] = {}
        for run, verdict, n, lo, hi, step in rows:
            entry = out.setdefault(
                run, {"run": run, "total": 0, "by_verdict": {}, "first": lo, "last": hi, "last_step": step}
            )
            entry["total"] += n
            entry["by_verdict"][verdict] = n
            entry["first"], entry["last"] = min(entry["first"], lo), max(entry["last"], hi)
            if step is not None and (entry["last_step"] is None or step > entry["last_step"]):
                entry["last_step"] = step
        result = sorted(out.values(), key=lambda e: -e["last"])[:limit]
        for entry in result:
            entry["first"] = (entry["first"] // 1_000_000) / 1000
            entry["last"] = (entry["last"] // 1_000_000) / 1000
        return result

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class BackgroundWriter:
    """Queues records and writes them to a SqliteStore from one thread, in batches.

    The verdict path only pays for building the records and a queue put. Records are
    flushed every `interval_s` (and on close); the store trims itself periodically.
    """

    def __init__(
        self, store: SqliteStore, max_records: int, max_age_s: float, interval_s: float = 0.05
    ) -> None:
        self.store = store
        self.max_records = max_records
        self.max_age_s = max_age_s
        self.interval_s = interval_s
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="audit-writer", daemon=True)
        self._last_trim = 0.0
        self._thread.start()

    def add_many(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        self._idle.clear()
        for record in records:
            if not record.get("id"):
                record["id"] = IDS.next(float(record.get("time") or time.time()))
            self._queue.put(record)

    def _drain(self) -> None:
        batch: list[dict[str, Any]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                batch.append(item)
        if batch:
            try:
                self.store.add_many(batch)  # a bad record is left out there, never the batch
            except Exception:  # noqa: BLE001
                WRITE_ERRORS.inc(len(batch))
                log.exception("audit: writing %d records failed", len(batch))
        now = time.monotonic()
        if now - self._last_trim > 10:
            self._last_trim = now
            try:
                self.store.trim(self.max_records, self.max_age_s)
            except Exception:  # noqa: BLE001
                log.exception("audit: trimming failed")

    def _loop(self) -> None:
        while not self._stop:
            time.sleep(self.interval_s)
            self._drain()
            if self._queue.empty():
                self._idle.set()

    def flush(self, timeout: float = 10.0) -> None:
        self._idle.wait(timeout)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        self._drain()


class RedisStreamWriter:
    """Appends records to a capped Redis stream, synchronously (before the job is acknowledged)."""

    def __init__(self, redis: Any, stream: str, max_records: int, max_age_s: float) -> None:
        self.redis = redis
        self.stream = stream
        self.max_records = max_records
        self.max_age_s = max_age_s
        self._last_trim = 0.0

    def add_many(self, records: list[dict[str, Any]]) -> list[str]:
        if not records:
            return []
        for record in records:
            record.pop("id", None)
        bodies = [json.dumps(encodable(record), separators=(",", ":")) for record in records]
        for attempt in range(4):  # ride out a short Redis restart; the job is not acknowledged meanwhile
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    for body in bodies:
                        pipe.xadd(self.stream, {"r": body}, maxlen=self.max_records, approximate=True)
                    ids = [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]
                break
            except Exception:
                if attempt == 3:
                    raise
                time.sleep(0.5 * 2**attempt)
        for record, record_id in zip(records, ids, strict=True):
            record["id"] = record_id
        if time.monotonic() - self._last_trim > 5:
            self._last_trim = time.monotonic()
            self.trim_age()
        return ids

    def trim_age(self, now: float | None = None, approximate: bool = True) -> int:
        now = time.time() if now is None else now
        cutoff = f"{int((now - self.max_age_s) * 1000)}-0"
        return int(self.redis.xtrim(self.stream, minid=cutoff, approximate=approximate))


def parse_entry(entry_id: Any, fields: dict[Any, Any]) -> dict[str, Any] | None:
    """The record of one stream entry; None (counted as a write error) for one that is not."""
    raw = fields.get(b"r") if b"r" in fields else fields.get("r")
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        _lost(1, f"stream entry {entry_id!r} is not a JSON record: {exc}")
        return None
    if not isinstance(record, dict):
        _lost(1, f"stream entry {entry_id!r} is not a JSON object")
        return None
    record["id"] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return record


class RedisMirror:
    """Tails the audit stream into a local SqliteStore (the query index of queue mode)."""

    def __init__(self, redis_url: str, stream: str, store: SqliteStore, block_ms: int = 500) -> None:
        self.redis_url = redis_url
        self.stream = stream
        self.store = store
        self.block_ms = block_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="audit-mirror", daemon=True)
        self.synced = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        from redis import Redis

        redis = Redis.from_url(self.redis_url, socket_timeout=self.block_ms / 1000 + 5)
        last = self.store.last_key()
        last_id = key_id(last) if last else "0-0"
        last_sync = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - last_sync > 5:
                    last_sync = time.monotonic()
                    self._sync_trim(redis)
                reply: Any = redis.xread({self.stream: last_id}, count=2000, block=self.block_ms)
                if not reply:
                    self.synced.set()
                    continue
                for _, entries in reply:
                    records = [r for r in (parse_entry(i, f) for i, f in entries) if r is not None]
                    self.store.add_many(records)
                    if entries:
                        raw = entries[-1][0]
                        last_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            except Exception as exc:  # noqa: BLE001 - Redis restarts must not kill the mirror
                log.warning("audit mirror: %s; retrying", exc)
                self._stop.wait(0.5)

    def _sync_trim(self, redis: Any) -> None:
        """Drop local rows the stream no longer holds (retention applied by the writers)."""
        first = redis.xrange(self.stream, count=1)
        if first:
            raw = first[0][0]
            self.store.delete_before(id_key(raw.decode() if isinstance(raw, bytes) else str(raw)))

    def wait_caught_up(self, timeout: float = 10.0) -> bool:
        """True once the mirror holds the stream's last entry."""
        from redis import Redis

        redis = Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = redis.xrevrange(self.stream, count=1)
            if not last:
                return True
            raw = last[0][0]
            want = id_key(raw.decode() if isinstance(raw, bytes) else str(raw))
            have = self.store.last_key()
            if have is not None and have >= want:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.block_ms / 1000 + 2)
