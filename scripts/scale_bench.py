#!/usr/bin/env python3
"""Executions/s for N = 1, 2, 3 workers of half a CPU each, and the efficiency against N x one
worker (bench/endurance/scaling.py; the stack is deploy/compose/scaling.yml).

    .venv/bin/python scripts/scale_bench.py                      # N = 1,2,3, 60 s each
    .venv/bin/python scripts/scale_bench.py --workers 1,2,4 --seconds 120

Needs Docker, docker-compose and the images (sandbox_images/build). AZR_SERVICE_IMAGE names
another service image; AZR_SCALE_WORKER_CPUS another share per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.endurance.scaling import run_scaling, table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,3", help="comma-separated worker counts")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per count")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of load before measuring")
    parser.add_argument("--batch", type=int, default=32, help="tasks per request")
    parser.add_argument("--port", type=int, default=18000, help="loopback port for the stack's API")
    parser.add_argument("--json", dest="json_out", help="also write the rounds to this file")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    rounds = run_scaling(counts, args.seconds, args.warmup, args.batch, args.port)
    print("\n" + table(rounds, os.environ.get("AZR_SCALE_WORKER_CPUS", "0.5")))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([asdict(r) for r in rounds], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
