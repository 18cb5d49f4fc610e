"""Prometheus metrics of the audit trail."""

from __future__ import annotations

import re

from prometheus_client import Counter

RECORDS = Counter(
    "azr_audit_records_total", "Audit records written, by kind and verdict.", ["kind", "verdict"]
)
WRITE_ERRORS = Counter("azr_audit_write_errors_total", "Audit records that could not be written.")
RUN_VERDICTS = Counter(
    "azr_run_verdicts_total",
    "Verdicts by training run tag (the request's top-level 'run'), kind and verdict.",
    ["run", "kind", "verdict"],
)

_SAFE = re.compile(r"[^A-Za-z0-9_.:/@+-]")


def run_label(run: object) -> str:
    """Bounded, printable label value for a run tag ('' when untagged)."""
    if run is None:
        return ""
    return _SAFE.sub("_", str(run))[:64]
