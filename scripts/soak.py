#!/usr/bin/env python3
"""Drive the service at full load for a while and watch its resources (bench/endurance/soak.py).

    .venv/bin/python scripts/soak.py --minutes 30                 # the full soak, queue mode
    .venv/bin/python scripts/soak.py --minutes 30 --mode embedded # the same, embedded mode
    .venv/bin/python scripts/soak.py --minutes 3 --sample 20      # a short one

Prints a row per sample as it goes, then the slopes and whether the targets were met
(memory slope < 5 MB/h per process, no growth in processes, open files or containers, no
lost or 5xx verdicts); exit code 1 when one was not. Needs `redis-server` on PATH.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.endurance.soak import Sample, run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument(
        "--mode",
        choices=["queue", "embedded"],
        default="queue",
        help="queue: a private Redis, the API and --workers RQ workers; embedded: the API alone (default queue)",
    )
    parser.add_argument("--workers", type=int, default=2, help="queue mode's workers (default 2)")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop client threads")
    parser.add_argument("--batch", type=int, default=16, help="items per request")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of load before the first sample")
    parser.add_argument(
        "--backend",
        choices=["local", "docker"],
        default="local",
        help="where the sandboxes run (default local)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="AZR_NAME=VALUE",
        help="a service setting for the API and the workers, repeatable (e.g. AZR_CACHE_MAX_MB=32)",
    )
    parser.add_argument(
        "--cache-redis-mb",
        type=int,
        default=64,
        help="queue mode: the result cache in a second Redis with this maxmemory and allkeys-lru, "
        "as the shipped deployments run it; 0: in the queue's Redis (default 64)",
    )
    parser.add_argument("--json", dest="json_out", help="also write the report to this file")
    args = parser.parse_args()

    def progress(sample: Sample) -> None:
        api = sample.stats.get("api")
        print(
            f"[soak] t={sample.t_s / 60:5.1f} min  requests {sample.requests:4d}  p50 {sample.p50_ms:7.1f} ms  "
            f"p99 {sample.p99_ms:7.1f} ms  API {api.rss_mb if api else 0:6.1f} MB  processes {sample.processes}",
            flush=True,
        )

    settings = dict(item.split("=", 1) for item in args.settings if "=" in item)
    bad = [item for item in args.settings if "=" not in item or not item.startswith("AZR_")]
    if bad:
        parser.error(f"--set takes AZR_NAME=VALUE, not {bad[0]!r}")
    report = run_soak(
        service_env=settings,
        cache_redis_mb=args.cache_redis_mb or None,
        minutes=args.minutes,
        sample_s=args.sample,
        workers=args.workers if args.mode == "queue" else 0,
        clients=args.clients,
        batch=args.batch,
        warmup_s=args.warmup,
        backend=args.backend,
        on_sample=progress,
    )
    print("\n" + report.table())
    for problem in report.problems:
        print("  problem:", problem)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(asdict(report), indent=2, default=str))
    return 1 if report.misses() else 0


if __name__ == "__main__":
    sys.exit(main())
