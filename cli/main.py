"""`azr-exec`: the verification engine and service from the shell.

Examples:
  azr-exec check prog.py --input "'abc'" --input "[1, 2]"
  azr-exec check prog.py --input "'abc'" --answer "'cba'"      # a deduction answer
  azr-exec bench --quick
  azr-exec serve --port 8000                                   # embedded default
  AZR_REDIS_URL=redis://127.0.0.1:6379/0 azr-exec worker
  azr-exec settings                                            # the settings in effect (AZR_* variables)
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from bench.sections import SECTIONS, run_benchmark
from executor.settings import SettingsError, get_settings


def _read_program(path: str) -> str:
    raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SystemExit(f"error: {path} is not UTF-8 text ({exc}); save it as UTF-8") from exc


def cmd_check(args: argparse.Namespace) -> int:
    from executor.engine import Engine
    from executor.verdicts import Answer, ValidateTask

    program = _read_program(args.program)
    with Engine(get_settings()) as engine:
        if args.answer is not None:
            if len(args.input) != 1:
                raise SystemExit("error: --answer needs exactly one --input (the deduction task's input)")
            [validation] = engine.validate([ValidateTask("check", program, args.input)], repeats=args.repeats)
            if not validation.valid:
                print(json.dumps(_plain(validation), indent=2))
                return 1
            answer = Answer("check", "deduction", args.answer, program, args.input[0], validation.outputs[0])
            [judged] = engine.verify([answer])
            print(json.dumps(_plain(judged), indent=2))
            return 0 if judged.correct else 1
        [result] = engine.validate(
            [ValidateTask("check", program, args.input or [""])],
            repeats=args.repeats,
            timeout_s=args.timeout,
        )
        print(json.dumps(_plain(result), indent=2))
        return 0 if result.valid else 1


def _plain(result: object) -> dict:
    from dataclasses import asdict

    return {k: v for k, v in asdict(result).items() if k not in ("input_details", "line", "cached") or v}  # type: ignore[call-overload]


def cmd_bench(args: argparse.Namespace) -> int:
    return run_benchmark(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from api.server import serve

    serve(host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from api.queue.worker import run_worker

    return run_worker(burst=args.burst, name=args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azr-exec",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser(
        "check",
        help="validate one program (and optionally a deduction answer) from the shell",
        description="Run the static checks, then run f(<input>) in the sandbox `--repeats` times "
        "(different hash seeds) and print the verdict and the gold outputs as JSON. "
        "Exit code 0 when valid/correct, 1 otherwise.",
    )
    check.add_argument("program", help="file with Python source defining f ('-' reads stdin)")
    check.add_argument(
        "--input",
        action="append",
        default=[],
        help='argument list for one call, e.g. "\'abc\'" or "[1, 2], key=3" (repeatable; with none, f() is called with no arguments)',
    )
    check.add_argument("--answer", help="a predicted output to judge as a deduction answer")
    check.add_argument("--repeats", type=int, default=None, help="runs per input (default 2)")
    check.add_argument("--timeout", type=float, default=None, help="seconds per execution")
    check.set_defaults(func=cmd_check)

    bench = sub.add_parser(
        "bench",
        help="throughput/latency benchmark against a fresh-subprocess baseline",
        description="Replays the AZR seed workload through validate and verify and prints executions/s, "
        "p50/p99 latency and cache-hit throughput next to a baseline measured in the same run.",
    )
    bench.add_argument("--quick", action="store_true", help="smaller workload (about a minute)")
    bench.add_argument(
        "--baseline-runs", type=int, default=300, help="executions for the subprocess baseline"
    )
    bench.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")
    bench.add_argument(
        "--sections",
        default="engine",
        help=f"comma-separated, of: {', '.join(SECTIONS)} (default: engine)",
    )
    bench.set_defaults(func=cmd_bench)

    serve = sub.add_parser(
        "serve",
        help="run the HTTP API (embedded sandbox pool, or RQ queue when AZR_REDIS_URL is set)",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run an RQ worker that executes queued verification jobs")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--name", default=None, help="worker name (default: host and pid)")
    worker.set_defaults(func=cmd_worker)

    settings = sub.add_parser(
        "settings",
        help="print the settings in effect (from AZR_* variables), or the table of all of them",
    )
    settings.add_argument(
        "--markdown", action="store_true", help="the table of every variable (the README's settings table)"
    )
    settings.set_defaults(func=cmd_settings)
    return parser


def cmd_settings(args: argparse.Namespace) -> int:
    from executor.settings import markdown_table

    if args.markdown:
        print(markdown_table(), end="")
        return 0
    shown = get_settings().model_dump(mode="json")
    shown["api"]["api_keys"] = [f"<{len(key)} characters>" for key in shown["api"]["api_keys"]]
    if shown["queue"]["redis_url"]:
        shown["queue"]["redis_url"] = re.sub(r"//[^@/]*@", "//<credentials>@", shown["queue"]["redis_url"])
    print(json.dumps(shown, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()  # read once, here: a malformed variable is one line, not a traceback
    except SettingsError as exc:
        print(f"azr-exec: {exc}", file=sys.stderr)
        return 2
    default = "INFO" if args.verbose or args.command in ("serve", "worker") else "WARNING"
    logging.basicConfig(
        level=settings.api.log_level or default,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
