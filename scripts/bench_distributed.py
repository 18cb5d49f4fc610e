"""Step time of the trainer on 1 and 2 processes (tiny model, same global batch), interleaved.

    azr-exec serve --port 8000 &
    python scripts/bench_distributed.py --url http://127.0.0.1:8000 --steps 6 --rounds 2

Each round runs the ``tiny-cpu`` preset once on one process and once on two (accelerate launch
with trainer/accelerate/cpu-2proc.yaml), one torch thread per process, and reads
``metrics.jsonl``. Step 0 is left out (warm-up). Prints the median seconds per step and phase.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
from pathlib import Path

from azr_trainer.launch import accelerate_command

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("time/step", "time/generation", "time/service", "time/update")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(procs: int, url: str, steps: int, out: Path, extra: list[str]) -> list[dict[str, float]]:
    sets = [
        f"service.url={url}",
        f"train.output_dir={out}",
        f"train.steps={steps}",
        "train.save_every=0",
        "train.progress=false",
        "train.tensorboard=false",
        "train.num_threads=1",
        "train.distributed=always",
        *extra,
    ]
    cmd = accelerate_command(
        ROOT / "trainer/accelerate/cpu-2proc.yaml", procs, _free_port(), "tiny-cpu", sets
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return rows[1:]  # step 0 warms up


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="a running azr-exec serve")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--set", dest="extra", action="append", default=[], help="extra config override")
    args = ap.parse_args()
    rows: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for procs in (1, 2):
                out = Path(tmp) / f"r{r}p{procs}"
                rows[procs] += run(procs, args.url, args.steps, out, args.extra)
    print(f"{'processes':>9} {'steps':>5} " + " ".join(f"{p:>16}" for p in PHASES))
    for procs, got in rows.items():
        med = [statistics.median(x[p] for x in got) for p in PHASES]
        print(f"{procs:>9} {len(got):>5} " + " ".join(f"{m:>16.2f}" for m in med))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
