#!/usr/bin/env python3
"""Stop Redis in the middle of a load and start it again; print what happened.

    .venv/bin/python scripts/redis_outage.py --outage 30            # SIGTERM, restart from AOF
    .venv/bin/python scripts/redis_outage.py --outage 30 --signal kill

Needs `redis-server` on PATH; starts its own on a free loopback port (see bench/endurance/outage.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.endurance.outage import run_outage  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outage", type=float, default=30.0, help="seconds Redis stays down (default 30)")
    parser.add_argument("--signal", choices=["term", "kill"], default="term", help="how Redis is stopped")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="client threads in a closed loop")
    parser.add_argument("--batch", type=int, default=12, help="tasks per request")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of load before the outage")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of load after Redis is back")
    parser.add_argument("--json", dest="json_out", help="also write the report to this file")
    args = parser.parse_args()
    report = run_outage(
        outage_s=args.outage,
        workers=args.workers,
        clients=args.clients,
        batch=args.batch,
        before_s=args.before,
        after_s=args.after,
        stop_signal=args.signal,
    )
    print("\n" + report.table())
    for problem in report.problems:
        print("  problem:", problem)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(asdict(report), indent=2))
    healthy = report.lost == 0 and report.server_errors == 0 and report.workers_alive == report.workers
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
