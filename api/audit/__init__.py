"""The audit trail of unsafe and non-deterministic programs.

`record(payload, results)` is called once by `api.services.execution.execute`, the one
code path that produces verdicts (in the API process in embedded mode, in RQ workers in
queue mode). It never raises and never blocks on disk:

* embedded mode: records go to a background writer that batches them into SQLite
  (`AZR_AUDIT_DIR/audit-v<schema>.sqlite3`);
* queue mode: the worker appends them to a capped Redis stream (`AZR_AUDIT_STREAM`) in
  one pipelined round trip before the job returns, so a worker killed earlier has not
  acknowledged the job either and RQ re-runs it; the API process mirrors the stream
  into a local SQLite index for queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from api.audit import metrics as audit_metrics
from api.audit.records import AuditPolicy, build_records
from api.audit.store import SCHEMA_VERSION, BackgroundWriter, RedisMirror, RedisStreamWriter, SqliteStore
from executor.settings import Settings, get_settings

log = logging.getLogger(__name__)

STATIC_DIR = str(Path(__file__).parent / "static")


class AuditService:
    def __init__(self, settings: Settings, serve_reads: bool = False) -> None:
        self.settings = settings
        config = settings.audit
        self.enabled = config.enabled
        self.policy = AuditPolicy(
            sample_ok=config.sample_ok,
            sample_wrong=config.sample_wrong,
            max_program_chars=config.max_program_chars,
            max_input_chars=config.max_input_chars,
        )
        self.max_records = config.max_records
        self.max_age_s = config.retention_days * 86400
        self.stream = config.stream
        directory = Path(config.dir)
        self.redis_url: str | None = settings.queue.redis_url
        self.mirror: RedisMirror | None = None
        self.writer: BackgroundWriter | None = None
        self.stream_writer: RedisStreamWriter | None = None
        self.store: SqliteStore | None = None
        if self.redis_url:
            from redis import Redis

            self.stream_writer = RedisStreamWriter(
                Redis.from_url(self.redis_url, health_check_interval=10),
                self.stream,
                self.max_records,
                self.max_age_s,
            )
            if serve_reads:
                tag = "".join(c if c.isalnum() else "_" for c in f"{self.redis_url}_{self.stream}")[-80:]
                self.store = SqliteStore(directory / f"mirror-{tag}-v{SCHEMA_VERSION}.sqlite3")
                self.mirror = RedisMirror(self.redis_url, self.stream, self.store)
                self.mirror.start()
        else:
            self.store = SqliteStore(directory / f"audit-v{SCHEMA_VERSION}.sqlite3")
            self.writer = BackgroundWriter(self.store, self.max_records, self.max_age_s)

    @property
    def mode(self) -> str:
        return "redis" if self.redis_url else "local"

    def record(self, payload: dict[str, Any], results: list[dict[str, Any]]) -> int:
        meta = payload.get("meta") or {}
        kind = str(payload.get("kind", ""))
        run = audit_metrics.run_label(meta.get("run"))
        for verdict, n in Counter(str(r.get("verdict")) for r in results).items():
            audit_metrics.RUN_VERDICTS.labels(run, kind, verdict).inc(n)
        if not self.enabled:
            return 0
        records = build_records(payload, results, self.policy)
        if not records:
            return 0
        if self.stream_writer is not None:
            self.stream_writer.add_many(records)
        elif self.writer is not None:
            self.writer.add_many(records)
        for record in records:
            audit_metrics.RECORDS.labels(kind, record["verdict"]).inc()
        return len(records)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until written records are queryable (tests and shutdown)."""
        if self.writer is not None:
            self.writer.flush(timeout)
        if self.mirror is not None:
            self.mirror.wait_caught_up(timeout)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.mirror is not None:
            self.mirror.close()


_service: AuditService | None = None
_lock = threading.Lock()


def configure(settings: Settings, serve_reads: bool = True) -> AuditService:
    """Install the audit service of this process (the API calls this at start-up)."""
    global _service
    with _lock:
        old, _service = _service, AuditService(settings, serve_reads=serve_reads)
    if old is not None:
        old.close()
    return _service


def current() -> AuditService:
    """This process's audit service; workers get a write-only one from their settings."""
    global _service
    if _service is None:
        with _lock:
            if _service is None:
                _service = AuditService(get_settings(), serve_reads=False)
    return _service


def shutdown() -> None:
    global _service
    with _lock:
        old, _service = _service, None
    if old is not None:
        old.close()


def record(payload: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Record the audit entries of one executed payload. Never raises."""
    try:
        current().record(payload, results)
    except Exception as exc:  # noqa: BLE001 - the verdict path must never fail on auditing
        audit_metrics.WRITE_ERRORS.inc()
        log.warning("audit: could not record %d result(s): %s", len(results), exc)


__all__ = ["AuditService", "configure", "current", "record", "shutdown", "time"]
