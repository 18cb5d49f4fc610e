"""Helpers shared by the executor tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


def _process_facts(pid: int) -> tuple[int, list[int], str] | None:
    """(session id, the pid in each pid namespace from the host's inward, command line), or None
    when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    session = int(stat.rsplit(")", 1)[1].split()[3])
    nspids = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [str(pid)])
    return session, [int(p) for p in nspids], command[:200]


def _pid_namespace(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def own_sandbox_processes(pool: Any) -> list[tuple[int, str]]:
    """(host pid, command line) of every process in this pool's sandboxes besides its zygotes
    (and a container's init): what a finished run must not leave behind.

    Only this pool's own processes count, whatever else runs on the machine (another service's
    sandboxes share the default uid range). A local zygote leads its own session (the pool
    starts it so) and its children cannot leave it (setsid is not in their seccomp allowlist);
    a Docker zygote's children cannot leave its container's pid namespace.
    """
    zygotes = {info["slot"]: info["pid"] for info in pool.zygote_info()}
    if not zygotes:
        raise AssertionError("the pool reports no zygotes")
    containers = getattr(pool, "containers", None)
    found: list[tuple[int, str]] = []
    if containers is None:  # local: the zygotes' sessions
        sessions = set(zygotes.values())
        for entry in filter(str.isdigit, os.listdir("/proc")):
            facts = _process_facts(int(entry))
            if facts and facts[0] in sessions and int(entry) not in sessions:
                found.append((int(entry), facts[2]))
        return found
    # Docker: each container's pid namespace, less its init (pid 1 inside) and its zygote.
    namespaces: dict[str, int] = {}
    for container in containers():
        slot = int(container.labels["azr.slot"])
        container.reload()
        init = container.attrs["State"]["Pid"]
        namespace = _pid_namespace(init)
        assert namespace and slot in zygotes, f"container {container.name} (slot {slot}) is not running"
        namespaces[namespace] = zygotes[slot]
    assert len(namespaces) == len(zygotes), f"{len(namespaces)} containers for {len(zygotes)} zygotes"
    for entry in filter(str.isdigit, os.listdir("/proc")):
        zygote = namespaces.get(_pid_namespace(int(entry)))
        facts = _process_facts(int(entry)) if zygote is not None else None
        if facts and facts[1][-1] not in (1, zygote):
            found.append((int(entry), facts[2]))
    return found
