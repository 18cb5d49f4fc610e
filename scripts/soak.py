#!/usr/bin/env python3
"""Drive the service at full load for a while and watch its resources (bench/endurance/soak.py).

    .venv/bin/python scripts/soak.py --minutes 30                 # the full soak
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
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="closed-loop client threads")
    parser.add_argument("--batch", type=int, default=16, help="items per request")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of load before the first sample")
    parser.add_argument(
        "--backend", choices=["local", "docker"], default="local", help="the workers' sandboxes"
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

    report = run_soak(
        minutes=args.minutes,
        sample_s=args.sample,
        workers=args.workers,
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
