"""`azr-exec bench`: sections of measurements, run by name, with their figures in one report.

A section is a function ``(args) -> dict`` that runs its measurements, prints its own table
and returns its figures (which end up in the ``--json`` file). Sections are named in
``SECTIONS`` and imported only when asked for, so a section whose dependencies are missing
(no Docker SDK, no Redis) is skipped with a message, never a crash.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

Section = Callable[[argparse.Namespace], dict[str, Any]]
# name -> "module:function", imported only when asked for.
SECTIONS: dict[str, str] = {
    "engine": "bench.engine:engine_section",
    "flood": "bench.engine:flood_section",
    "http": "bench.http_api:http_section",
    "docker": "bench.containers:docker_section",
}


class SectionUnavailable(RuntimeError):
    """Raised by a section that cannot run here (no Docker, no data, ...): it is skipped."""


def resolve_section(name: str) -> Section | None:
    target = SECTIONS.get(name)
    if target is None:
        return None
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    function: Section = getattr(module, attribute)
    return function


# ---------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def row(
    name: str, executions: int, seconds: float, latencies: Sequence[float], note: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "executions": executions,
        "seconds": round(seconds, 3),
        "executions_per_s": round(executions / seconds, 1) if seconds > 0 else float("nan"),
        "p50_ms": round(percentile(latencies, 0.50), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "note": note,
    }


def print_table(title: str, rows: list[dict[str, Any]], baseline_rate: float | None) -> None:
    header = f"{'':34s} {'executions':>10s} {'exec/s':>10s} {'p50 ms':>9s} {'p99 ms':>9s} {'x baseline':>11s}"
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    for row in rows:
        rate = row["executions_per_s"]
        ratio = f"{rate / baseline_rate:10.1f}x" if baseline_rate and rate == rate else f"{'':>11s}"
        print(
            f"{row['name']:34s} {row['executions']:>10,d} {rate:>10,.0f} {row['p50_ms']:>9.2f} "
            f"{row['p99_ms']:>9.2f} {ratio}" + (f"  {row['note']}" if row.get("note") else "")
        )


# ---------------------------------------------------------------------------- entry point


def run_benchmark(args: argparse.Namespace) -> int:
    names = [
        name.strip()
        for name in str(getattr(args, "sections", "engine") or "engine").split(",")
        if name.strip()
    ]
    report: dict[str, Any] = {"sections": {}, "skipped": {}}
    for name in names:
        try:
            section = resolve_section(name)
        except (ImportError, AttributeError) as exc:
            message = f"section '{name}' is not available here: {exc}"
            print(f"skipping {message}", file=sys.stderr)
            report["skipped"][name] = message
            continue
        if section is None:
            known = ", ".join(sorted(SECTIONS))
            message = f"unknown section '{name}' (known: {known})"
            print(f"skipping {message}", file=sys.stderr)
            report["skipped"][name] = message
            continue
        try:
            report["sections"][name] = section(args)
        except SectionUnavailable as exc:
            print(f"skipping section '{name}': {exc}", file=sys.stderr)
            report["skipped"][name] = str(exc)
    json_out = getattr(args, "json_out", None)
    if json_out:
        with open(json_out, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        print(f"\nfigures written to {json_out}")
    return 0 if report["sections"] else 1
