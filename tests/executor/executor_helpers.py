"""Helpers shared by the executor tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from executor.engine import Engine
from executor.verdicts import Answer, Case, ValidateResult, ValidateTask, VerifyResult

REPO_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_UID_BASE = 61000


def validate_one(
    engine: Engine, program: str, *inputs: str, repeats: int = 2, timeout_s: float | None = None
) -> ValidateResult:
    [result] = engine.validate(
        [ValidateTask("t", program, list(inputs))], repeats=repeats, timeout_s=timeout_s
    )
    return result


def deduction(
    engine: Engine, answer: str, output: str, program: str | None = None, input: str | None = None
) -> VerifyResult:
    [result] = engine.verify([Answer("d", "deduction", answer, program, input, output)])
    return result


def abduction(engine: Engine, program: str, answer: str, output: str) -> VerifyResult:
    [result] = engine.verify([Answer("a", "abduction", answer, program, None, output)])
    return result


def induction(engine: Engine, program: str, cases: list[tuple[str, str]]) -> VerifyResult:
    [result] = engine.verify([Answer("i", "induction", program, cases=tuple(Case(i, o) for i, o in cases))])
    return result


def sandbox_processes(
    uid_base: int = SANDBOX_UID_BASE, count: int = 1000
) -> list[tuple[int, int, str, str, int, str]]:
    """(pid, uid, name, state, parent pid, command line) of every process whose real or effective
    uid is a sandbox uid (state and parent say, when one is found, whether it was still running
    or a zombie, and whose)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uids = [int(u) for u in fields.get("Uid", "0").split()]
        if any(uid_base <= uid < uid_base + count for uid in uids[:2]):
            try:
                command = (
                    Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                command = ""
            found.append(
                (
                    int(entry),
                    uids[0],
                    fields.get("Name", "").strip(),
                    fields.get("State", "").strip(),
                    int(fields.get("PPid", "0").strip() or 0),
                    command[:200],
                )
            )
    return found


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (from /proc/PID/task/*/children)."""
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for task in tasks:
        try:
            children += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return children
