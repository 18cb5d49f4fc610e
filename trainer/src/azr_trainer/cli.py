"""``azr-train``: train (default), eval, show-config. ``azr-eval`` is ``azr-train eval``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from azr_trainer.config import PRESETS, ConfigError, load_config

EPILOG = """\
examples:
  azr-train --preset tiny-cpu                          # a few minutes on CPU, tiny model
  azr-train --preset tiny-cpu --set service.url=http://127.0.0.1:8000 --set train.steps=5
  azr-train --config my.yaml --set optim.lr=1e-6        # YAML may name `preset: paper-7b`
  azr-train --preset tiny-cpu --set train.resume=auto   # continue from the latest checkpoint
  azr-train eval --preset tiny-cpu --model runs/tiny-cpu/final --set eval.limit=20
  azr-train show-config --preset paper-7b
  azr-train demo --out runs/demo                         # toy self-play vs a control run (lr = 0)
"""


def _overrides_and_verbose(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--set",
        "-s",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override {what} (dotted key, YAML value); repeatable",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML config file")
    p.add_argument("--preset", choices=PRESETS, help="start from a preset")
    _overrides_and_verbose(p, "one config value")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azr-train",
        description="Absolute Zero Reasoner self-play trainer (TRR++). Every verdict comes from "
        "the verification service (service.url).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    tr = sub.add_parser("train", help="run self-play training (the default command)")
    _common(tr)
    tr.add_argument("--steps", type=int, help="stop after this many steps (≤ train.steps)")
    ev = sub.add_parser("eval", help="CRUXEval-I/O via the service and the math sets, greedy")
    _common(ev)
    ev.add_argument("--model", help="model path/id to evaluate (default: the config's model)")
    ev.add_argument("--gguf-file", help="GGUF file inside --model")
    ev.add_argument(
        "--benchmarks", help="comma-separated, e.g. cruxeval-o,cruxeval-i,math500 (default: config)"
    )
    ev.add_argument("--limit", type=int, help="at most this many problems per benchmark")
    de = sub.add_parser(
        "demo",
        help="the toy preset trained against a control run (lr = 0); writes learning.json/png",
        description="Train the toy preset and, side by side, the same run with optim.lr=0 (the "
        "control), from the same warmed-up model and seed. Held-out greedy accuracy is measured "
        "every train.eval_every steps through the service. Writes DIR/learning.json "
        '({"steps", "trained", "control"}), DIR/solve_rates.json, DIR/learning.png and '
        "DIR/summary.json; the runs themselves are in DIR/trained and DIR/control.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  azr-train demo --out runs/demo\n"
        "  azr-train demo --out runs/demo3 --task-types all --steps 120\n"
        "  azr-train demo --out runs/demo --service-url http://127.0.0.1:8000 --set optim.lr=5e-4",
    )
    de.add_argument("--out", required=True, type=Path, help="output directory (created)")
    de.add_argument(
        "--service-url", help="a running verification service (default: start an embedded one here)"
    )
    de.add_argument("--steps", type=int, help="training steps of each run (default: the toy preset's)")
    de.add_argument(
        "--task-types",
        default="deduction",
        help="deduction (default), all, or a comma-separated list of deduction,abduction,induction",
    )
    de.add_argument("--seed", type=int, default=0, help="seed of both runs (default 0)")
    de.add_argument("--no-progress", action="store_true", help="no progress bars")
    _overrides_and_verbose(de, "a toy-preset value in both runs")
    sc = sub.add_parser("show-config", help="print the resolved configuration as YAML")
    _common(sc)
    return parser


def _config(args: argparse.Namespace):
    return load_config(args.config, args.preset, args.overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from azr_trainer import distributed
    from azr_trainer.trainer import Trainer, make_client

    cfg = _config(args)
    if distributed.wanted(cfg):  # under `accelerate launch` (docs/trainer/README.md)
        return _train_distributed(cfg, args)
    client = make_client(cfg)
    if not client.healthz():
        logging.error("verification service not reachable at %s/healthz", cfg.service.url)
        return 2
    trainer = Trainer(cfg, verifier=client)
    history = trainer.train(steps=args.steps)
    final = Path(cfg.train.output_dir) / "final"
    trainer.export(final)
    _report(trainer, history, final)
    return 0


def _train_distributed(cfg: Any, args: argparse.Namespace) -> int:
    from azr_trainer import distributed, parallel
    from azr_trainer.trainer import make_client

    rt = distributed.AccelerateRuntime(cfg)
    if not rt.is_main:  # one copy of the log: rank 0's
        logging.getLogger().setLevel(logging.WARNING)
    client = make_client(cfg)
    if not parallel.call_on_main(rt, client.healthz):  # rank 0 talks to the service
        if rt.is_main:
            logging.error("verification service not reachable at %s/healthz", cfg.service.url)
        rt.close()
        return 2
    trainer = distributed.make_trainer(cfg, verifier=client, runtime=rt)
    history = trainer.train(steps=args.steps)  # an error on any rank ends the launch
    final = Path(cfg.train.output_dir) / "final"
    trainer.export(final)
    if rt.is_main:
        _report(trainer, history, final)
    rt.close()
    return 0


def _report(trainer: Any, history: list[dict[str, float]], final: Path) -> None:
    if history:
        last = history[-1]
        keys = ("time/step", "time/generation", "time/service", "time/update")
        print(json.dumps({k: round(last[k], 3) for k in keys if k in last}))
    print(f"finished at step {trainer.step}; policy saved to {final}")


def cmd_eval(args: argparse.Namespace) -> int:
    from azr_trainer.eval.runner import run_eval

    cfg = _config(args)
    if args.limit is not None:
        cfg.eval.limit = args.limit
    if args.benchmarks:
        cfg.eval.benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    run_eval(cfg, model_path=args.model, gguf_file=args.gguf_file)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from azr_trainer.config import TASK_TYPES
    from azr_trainer.demo import DemoOptions, run_demo
    from azr_trainer.service_process import ServiceError

    if args.task_types == "all":
        task_types = TASK_TYPES
    else:
        task_types = tuple(t.strip() for t in args.task_types.split(",") if t.strip())
        bad = [t for t in task_types if t not in TASK_TYPES]
        if bad or not task_types:
            print(f"--task-types: unknown {bad}; use all or {', '.join(TASK_TYPES)}", file=sys.stderr)
            return 2
    opts = DemoOptions(
        out=args.out,
        service_url=args.service_url,
        steps=args.steps,
        task_types=task_types,
        seed=args.seed,
        overrides=tuple(args.overrides),
        progress=not args.no_progress,
    )
    try:
        summary = run_demo(opts)
    except ServiceError as exc:
        print(f"service error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    print(
        f"held-out accuracy at step {summary['final_step']}: trained {summary['trained']:.3f}, "
        f"control {summary['control']:.3f} (gain {summary['gain']:+.3f}); "
        f"{summary['minutes_total']:.1f} min; plot: {args.out / 'learning.png'}"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    print(yaml.safe_dump(_config(args).to_dict(), sort_keys=False), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "eval", "demo", "show-config", "-h", "--help"):
        argv = ["train", *argv]
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for noisy in ("httpx", "httpcore", "matplotlib"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        commands = {"train": cmd_train, "eval": cmd_eval, "demo": cmd_demo, "show-config": cmd_show}
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2


def eval_main() -> int:
    return main(["eval", *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
