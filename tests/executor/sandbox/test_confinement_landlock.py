"""The Landlock plan (runtime/landlock.py), and what the kernel does with it.

The plan is applied in the sandbox interpreter by the ctypes helper (the same calls as
``_azr_spawn.landlock_restrict``), with no seccomp filter and no audit hook: every
refusal below is Landlock's. Each is shown next to a control run without Landlock in
which the same operation succeeds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.sandbox.runtime import landlock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from confine_helper import REPO_ROOT, SANDBOX_PYTHON, run_confined, sandbox_python_available  # noqa: E402

EVERY_FS_RIGHT = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}


# ------------------------------------------------------------------ the plan


@pytest.mark.parametrize("abi", [1, 2, 3, 4, 5, 6, 7, 8])
def test_plan_handles_every_right_the_abi_knows(abi: int) -> None:
    plan = landlock.plan(["/usr/lib/python3.11"], abi)
    assert plan.handled_access_fs == EVERY_FS_RIGHT.get(abi, (1 << 16) - 1)
    assert plan.handled_access_net == (0 if abi < 4 else 3)
    assert plan.scoped == (0 if abi < 6 else 3)
    assert plan.rules == [("/usr/lib/python3.11", landlock.READ_ACCESS)]
    assert plan.abi == abi
    assert plan.arguments() == (plan.handled_access_fs, plan.handled_access_net, plan.scoped, plan.rules)


def test_rules_only_read() -> None:
    assert (
        landlock.READ_ACCESS == landlock.LANDLOCK_ACCESS_FS_READ_FILE | landlock.LANDLOCK_ACCESS_FS_READ_DIR
    )
    plan = landlock.plan(["/a", "/b/c"], 7)
    for _, access in plan.rules:
        assert access & ~landlock.READ_ACCESS == 0
        assert not access & (landlock.LANDLOCK_ACCESS_FS_EXECUTE | landlock.LANDLOCK_ACCESS_FS_WRITE_FILE)
    assert plan.handled_access_fs & ~landlock.READ_ACCESS  # writes are handled, never granted


def test_plan_normalizes_and_drops_nested_paths() -> None:
    plan = landlock.plan(
        ["/usr/lib/python3.11/", "/usr/lib/python3.11/lib-dynload", "/usr//lib/./python3.11"], 7
    )
    assert plan.rules == [("/usr/lib/python3.11", landlock.READ_ACCESS)]
    assert landlock.plan([], 7).rules == []
    for bad in ("relative/path", "/usr/../etc", "", "/a\x00b"):
        with pytest.raises(ValueError):
            landlock.plan([bad], 7)
    for bad_abi in (0, -95, "7"):
        with pytest.raises(ValueError):
            landlock.plan(["/usr"], bad_abi)  # type: ignore[arg-type]


def test_ruleset_attr_bytes_per_abi() -> None:
    assert len(landlock.plan([], 3).ruleset_attr()) == 8
    assert len(landlock.plan([], 5).ruleset_attr()) == 16
    attr = landlock.plan([], 7).ruleset_attr()
    assert attr == (0xFFFF).to_bytes(8, "little") + (3).to_bytes(8, "little") + (3).to_bytes(8, "little")


def test_child_plan_scopes_only() -> None:
    assert landlock.child_plan(5) is None
    plan = landlock.child_plan(6)
    assert plan is not None and plan.arguments() == (0, 0, 3, [])


@pytest.mark.skipif(not sandbox_python_available(), reason="no /usr/bin/python3")
def test_stdlib_paths_of_the_sandbox_interpreter() -> None:
    output = subprocess.check_output(
        [
            SANDBOX_PYTHON,
            "-s",
            "-S",
            "-c",
            "from executor.sandbox.runtime import landlock; print(landlock.stdlib_paths())",
        ],
        cwd=REPO_ROOT,
        text=True,
    )
    paths = eval(output)  # a list literal
    assert paths[0] == "/usr/lib/python3.11"
    assert all(path.startswith("/usr/lib/python3.11") for path in paths)
    assert landlock.plan(paths, 7).rules == [("/usr/lib/python3.11", landlock.READ_ACCESS)]


# ------------------------------------------------------------------ in the kernel


def _landlock_abi() -> int:
    if not sandbox_python_available():
        return -1
    results = run_confined({"kernel": True}, {"abi": "result = kernel.landlock_abi()"})
    return int(results["abi"]["value"])


ABI = _landlock_abi()
needs_landlock = pytest.mark.skipif(ABI < 1, reason="Landlock is not available here")
needs_scopes = pytest.mark.skipif(ABI < 6, reason="Landlock ABI < 6: no scopes")


@pytest.fixture()
def outside(tmp_path: Path) -> Iterator[dict[str, object]]:
    """Files, a TCP listener and an abstract unix socket outside the sandbox's domain."""
    directory = tmp_path / "plain"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    readable = directory / "world-readable.txt"
    readable.write_text("secret")
    os.chmod(readable, 0o644)
    for name in ("victim", "rename-me", "truncate-me"):
        (directory / name).write_text("x")
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"\0azr-landlock-test-{os.getpid()}"
    abstract.bind(name)
    abstract.listen(16)
    yield {
        "DIR": str(directory),
        "READABLE": str(readable),
        "PORT": tcp.getsockname()[1],
        "ABSTRACT": name,
        "OUTSIDE_PID": os.getpid(),
        "REPO_FILE": str(Path(REPO_ROOT) / "pyproject.toml"),
    }
    tcp.close()
    abstract.close()


PRELOAD = "import collections, re, typing\n"
READS = {
    "/etc/passwd": "result = open('/etc/passwd').read(10)",
    "the repository": "result = open(REPO_FILE).read(10)",
    "/proc/self/mem": "result = open('/proc/self/mem', 'rb')",
    "/proc/self/environ": "result = open('/proc/self/environ', 'rb').read()",
    "a 0644 file in a temp dir": "result = open(READABLE).read()",
    "list /": "import os\nresult = os.listdir('/')",
    "list the temp dir": "import os\nresult = os.listdir(DIR)",
}
WRITES = {
    "create a file": "open(DIR + '/new.txt', 'w')",
    "write a file": "open(READABLE, 'a')",
    "mkdir": "import os\nos.mkdir(DIR + '/sub')",
    "unlink": "import os\nos.unlink(DIR + '/victim')",
    "rename": "import os\nos.rename(DIR + '/rename-me', DIR + '/renamed')",
    "symlink": "import os\nos.symlink('/etc/passwd', DIR + '/link')",
    "truncate": "import os\nos.truncate(DIR + '/truncate-me', 0)",
    "mkfifo": "import os\nos.mkfifo(DIR + '/fifo')",
    # (cleans up after itself should Landlock ever let it through)
    "write under the stdlib": (
        "import os\nprobe = '/usr/lib/python3.11/azr-landlock-probe'\nopen(probe, 'w').close()\nos.unlink(probe)"
    ),
}
NETWORK = {
    "tcp connect": "import socket\ns = socket.create_connection(('127.0.0.1', PORT))\nresult = 'connected'",
    "tcp bind": "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\nresult = 'bound'",
}
SCOPES = {
    "signal a process outside": "import os\nos.kill(OUTSIDE_PID, 0)\nresult = 'signalled'",
    "abstract unix socket outside": (
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(ABSTRACT)\nresult = 'connected'"
    ),
}
WORKS = {
    "import json": "import json\nresult = json.dumps({'a': [1, 2]})",
    "import fractions": "import fractions\nresult = str(fractions.Fraction(1, 3) * 3)",
    "import statistics": "import statistics\nresult = statistics.median([3, 1, 2])",
    "import dataclasses": "import dataclasses\nresult = dataclasses.is_dataclass(1)",
    "read a stdlib file": "import json\nresult = len(open(json.__file__).read()) > 0",
    "list the stdlib": "import os\nresult = 'json' in os.listdir('/usr/lib/python3.11')",
    "print to the open /dev/null": "print('hello' * 1000)\nresult = 'printed'",
}


def _run(
    outside: dict[str, object], scenarios: dict[str, str], landlocked: bool, child_scope: bool = False
) -> dict:
    config: dict[str, object] = {"zygote_setup": PRELOAD, "variables": outside}
    if landlocked:
        config["landlock"] = {"child_scope": child_scope}
    return run_confined(config, scenarios)


@needs_landlock
def test_landlock_refuses_reads_outside_the_stdlib(outside: dict[str, object]) -> None:
    confined = _run(outside, READS, landlocked=True)
    control = _run(outside, READS, landlocked=False)
    for label in READS:
        assert confined[label]["status"] == "error" and confined[label]["errno"] == 13, (
            label,
            confined[label],
        )
        assert control[label]["status"] == "ok", (label, control[label])


@needs_landlock
def test_landlock_refuses_every_write(outside: dict[str, object]) -> None:
    confined = _run(outside, WRITES, landlocked=True)
    for label in WRITES:
        result = confined[label]
        assert result["status"] == "error" and result["errno"] in (13, 18), (label, result)  # EACCES, EXDEV
    control = _run(
        outside, {k: v for k, v in WRITES.items() if k != "write under the stdlib"}, landlocked=False
    )
    for label, result in control.items():
        assert result["status"] == "ok", (label, result)
    assert {p.name for p in Path(str(outside["DIR"])).iterdir()} >= {
        "new.txt",
        "sub",
        "renamed",
        "link",
        "fifo",
    }


@needs_landlock
def test_landlock_refuses_exec(outside: dict[str, object]) -> None:
    source = {"exec": "import os\nos.execv('/bin/true', ['true'])"}
    confined = _run(outside, source, landlocked=True)
    assert confined["exec"]["status"] == "error" and confined["exec"]["errno"] == 13
    control = _run(outside, source, landlocked=False)
    assert control["exec"] == {"status": "died", "exit": 0}  # it became /bin/true


@needs_landlock
def test_stdlib_imports_and_open_fds_keep_working(outside: dict[str, object]) -> None:
    results = _run(outside, WORKS, landlocked=True)
    for label, result in results.items():
        assert result["status"] == "ok", (label, result)
    assert results["import fractions"]["value"] == "'1'"


@pytest.mark.skipif(ABI < 4, reason="Landlock ABI < 4: no network rights")
def test_landlock_refuses_tcp(outside: dict[str, object]) -> None:
    confined = _run(outside, NETWORK, landlocked=True)
    control = _run(outside, NETWORK, landlocked=False)
    for label in NETWORK:
        assert confined[label]["status"] == "error" and confined[label]["errno"] == 13, (
            label,
            confined[label],
        )
        assert control[label]["status"] == "ok", (label, control[label])


@needs_scopes
def test_scopes_refuse_signals_and_abstract_sockets_outside_the_domain(outside: dict[str, object]) -> None:
    confined = _run(outside, SCOPES, landlocked=True)
    control = _run(outside, SCOPES, landlocked=False)
    for label in SCOPES:
        assert confined[label]["status"] == "error" and confined[label]["errno"] == 1, (
            label,
            confined[label],
        )
        assert control[label]["status"] == "ok", (label, control[label])


@needs_scopes
def test_children_share_the_zygotes_domain_unless_they_nest_one(outside: dict[str, object]) -> None:
    """The zygote's domain holds the zygote and all its children: scoping alone does not
    keep a child from signalling the zygote. A nested per-child domain (child_plan) does."""
    source = {"signal the zygote": "import os\nos.kill(os.getppid(), 0)\nresult = 'signalled'"}
    shared = _run(outside, source, landlocked=True)
    assert shared["signal the zygote"]["status"] == "ok"
    nested = _run(outside, source, landlocked=True, child_scope=True)
    assert nested["signal the zygote"]["status"] == "error" and nested["signal the zygote"]["errno"] == 1
