"""What the service's processes hold, read from /proc: RSS, open files, threads, descendants;
and how many sandbox containers run. For the soak's per-minute samples."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcStat:
    pid: int
    rss_mb: float
    fds: int
    threads: int


def stat(pid: int) -> ProcStat | None:
    """None when the process is gone (or a zombie)."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        if fields.get("State", "").strip().startswith("Z"):
            return None
        rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])
        threads = int(fields.get("Threads", "1"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None
    return ProcStat(pid, rss_kb / 1024, fds, threads)


def children(pid: int) -> list[int]:
    """Child processes of `pid` (each thread lists those it started; a thread may end while
    this reads, which loses nothing: its children are re-parented to the process)."""
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            found.update(int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except OSError:
            continue
    return sorted(found)


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = children(pid)
    while stack:
        child = stack.pop()
        out.append(child)
        stack += children(child)
    return out


def sandbox_containers(owner_pids: list[int]) -> int | None:
    """Running sandbox containers started by the workers with these pids on this host (other
    users of the Docker engine have theirs); None where there is no Docker."""
    if shutil.which("docker") is None:
        return None
    fields = '{{.Label "azr.owner.pid"}} {{.Label "azr.owner.host"}}'
    try:
        done = subprocess.run(
            ["docker", "ps", "--filter", "label=azr.sandbox=1", "--format", fields],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    ours = {(str(pid), socket.gethostname()) for pid in owner_pids}
    return sum(1 for line in done.stdout.splitlines() if tuple(line.split(" ", 1)) in ours)
