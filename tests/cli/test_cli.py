"""`azr-exec check` from the shell: verdicts as JSON and an exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, running_service


def run_check(tmp_path: Path, source: str, *args: str) -> tuple[int, dict]:
    program = tmp_path / "prog.py"
    program.write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "check", str(program), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


def test_check_prints_gold_outputs(tmp_path: Path) -> None:
    code, result = run_check(
        tmp_path, "def f(a):\n    return a[::-1]\n", "--input", "'abc'", "--input", "[1, 2]"
    )
    assert code == 0
    assert result["outputs"] == ["'cba'", "[2, 1]"]


def test_check_without_input_calls_f_with_no_arguments(tmp_path: Path) -> None:
    code, result = run_check(tmp_path, "def f():\n    return 42\n")
    assert code == 0 and result["outputs"] == ["42"]


def test_check_judges_a_deduction_answer(tmp_path: Path) -> None:
    code, result = run_check(tmp_path, "def f(a):\n    return (a,)\n", "--input", "1", "--answer", "(1, )")
    assert code == 0 and result["correct"] is True
    code, result = run_check(tmp_path, "def f(a):\n    return (a,)\n", "--input", "1", "--answer", "(2,)")
    assert code == 1 and result["verdict"] == "wrong"


def test_check_reports_a_forbidden_import(tmp_path: Path) -> None:
    code, result = run_check(tmp_path, "import os.path\ndef f(a):\n    return a\n", "--input", "1")
    assert code == 1 and result["verdict"] == "forbidden" and "os.path" in result["detail"]


def test_check_refuses_non_utf8_files_clearly(tmp_path: Path) -> None:
    program = tmp_path / "latin1.py"
    program.write_bytes(b"def f(a):\n    return '\xe9'\n")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "check", str(program)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "UTF-8" in done.stderr


@pytest.mark.parametrize(
    ("name", "raw"),
    [("AZR_API_KEYS", "key-1"), ("AZR_API_KEYS", '["a", '), ("AZR_SANDBOX_LANES", "two")],
)
def test_serve_stops_on_a_malformed_variable_with_one_line_naming_it(name: str, raw: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZR_")}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, name: raw},
    )
    assert done.returncode == 2, done
    assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"azr-exec: {name}={raw!r}: ") and "Traceback" not in done.stderr


def test_serve_with_empty_api_keys_serves_without_keys() -> None:
    """`AZR_API_KEYS=` (as `docker-compose` writes an unset key list) means no keys."""
    with running_service(AZR_API_KEYS="") as service:
        reply = httpx.post(
            service.url + "/v1/validate",
            json={"tasks": [{"id": "t", "program": "def f(a):\n    return a", "inputs": ["1"]}]},
            timeout=30,
        )
        assert reply.status_code == 200 and reply.json()["results"][0]["outputs"] == ["1"]
