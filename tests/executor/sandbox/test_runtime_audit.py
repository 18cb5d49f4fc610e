"""The audit hook (runtime/audit.py): an early filter whose checks use nothing a program
can rebind. Called directly here (never installed in the test process), and installed
and armed in children of the sandbox interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from executor.sandbox.runtime import audit, guards

sys.path.insert(0, str(Path(__file__).resolve().parent))
from confine_helper import run_confined, sandbox_python_available  # noqa: E402

STDLIB = "/usr/lib/python3.11"


def armed_hook() -> tuple:
    hook = audit.make_hook([STDLIB, "/dev/null"])
    hook(audit.ARM_EVENT, ())
    return hook, lambda: collect(hook)


def collect(hook) -> list[str]:  # type: ignore[no-untyped-def]
    found: list[str] = []
    hook(audit.COLLECT_EVENT, (found,))
    return found


def test_unarmed_hook_lets_everything_through() -> None:
    hook = audit.make_hook([STDLIB])
    hook("open", ("/etc/passwd", "w", 0o1))
    hook("socket.connect", ())
    hook(audit.MODULE_EVENT, ("time", "time"))
    assert collect(hook) == []  # not armed: not even collected


def test_opens_inside_the_allowed_directories_pass() -> None:
    hook, violations = armed_hook()
    hook("open", (STDLIB + "/json/__init__.py", "r", 0o2000000))
    hook("open", (STDLIB + "/json/__init__.py", None, 0))
    hook("open", (STDLIB.encode() + b"/os.py", "rb", 0))
    hook("open", ("/dev/null", "r", 0))
    hook("os.listdir", (STDLIB,))
    hook("os.scandir", (STDLIB + "/json",))
    assert violations() == []


@pytest.mark.parametrize(
    "event,args",
    [
        ("open", ("/etc/passwd", "r", 0)),
        ("open", ("etc/passwd", "r", 0)),  # relative
        ("open", (STDLIB + "/../../../etc/passwd", "r", 0)),  # '..' component
        ("open", (STDLIB + "x/evil.py", "r", 0)),  # a sibling that shares the prefix
        ("open", (STDLIB.encode() + b"/../../etc/shadow", "rb", 0)),
        ("open", (STDLIB + "/os.py", "w", 0)),  # writing
        ("open", (STDLIB + "/os.py", "r+", 0)),
        ("open", (STDLIB + "/os.py", None, 0o1 | 0o100)),  # os.open with O_WRONLY|O_CREAT
        ("open", (3, "r", 0)),  # an fd
        ("open", (Path(STDLIB + "/os.py"), "r", 0)),  # a PathLike may answer differently later
        ("os.listdir", (None,)),  # the cwd
        ("os.listdir", ("/",)),
        ("os.scandir", ("/proc",)),
    ],
)
def test_opens_elsewhere_are_refused_and_recorded(event: str, args: tuple) -> None:
    hook, violations = armed_hook()
    with pytest.raises(audit.Violation):
        hook(event, args)
    assert len(violations()) == 1


def test_refused_events_and_module_guards() -> None:
    hook, violations = armed_hook()
    for event in (
        "socket.connect",
        "subprocess.Popen",
        "os.system",
        "ctypes.dlopen",
        "os.setxattr",
        "os.remove",
    ):
        with pytest.raises(audit.Violation):
            hook(event, ())
    with pytest.raises(audit.Violation, match="use of time.time is forbidden"):
        hook(audit.MODULE_EVENT, ("time", "time"))
    with pytest.raises(audit.Violation):
        hook("object.__getattr__", (object(), "tb_frame"))
    hook("object.__getattr__", (object(), "f_lineno"))
    hook("import", ("json", None, [], [], []))
    hook("exec", (None,))
    recorded = violations()
    assert len(recorded) == 8 and recorded[6] == "use of time.time is forbidden in the sandbox"


def test_getframe_is_refused_as_a_value_error_and_not_recorded() -> None:
    hook, violations = armed_hook()
    with pytest.raises(ValueError):
        hook("sys._getframe", (None,))
    assert violations() == []


def test_violations_are_capped() -> None:
    hook, violations = armed_hook()
    for _ in range(50):
        with pytest.raises(audit.Violation):
            hook("socket.socket", ())
    assert len(violations()) == audit.MAX_VIOLATIONS


def test_the_hook_looks_up_no_global_name() -> None:
    """Every name the hook and its helper use is a closure cell bound at creation: no
    module global, no builtin looked up at call time, no attribute a program could
    rebind on a module (the old hook called os.path.realpath)."""
    hook = audit.make_hook([STDLIB])
    assert hook.__code__.co_names == ()
    refuse = next(
        cell.cell_contents
        for cell in hook.__closure__
        if getattr(cell.cell_contents, "__name__", "") == "refuse"
    )
    assert refuse.__code__.co_names == ()


def test_allowed_directories_must_be_normalized() -> None:
    for bad in ("relative", "/usr/lib/", "/usr/./lib", "/usr/../etc"):
        with pytest.raises(ValueError):
            audit.make_hook([bad])


def test_module_event_names_agree() -> None:
    assert guards.MODULE_EVENT == audit.MODULE_EVENT


def test_capped_writer_counts_and_floods() -> None:
    writer = audit.CappedWriter(10)
    assert writer.write("hello") == 5 and writer.written == 5 and not writer.flooded
    assert writer.flush() is None and writer.isatty() is False
    with pytest.raises(audit.Violation):
        writer.write("world!")
    assert writer.flooded and writer.written == 11
    writer.written, writer.flooded = 0, False
    print("abc", file=writer)  # print() needs nothing more than write
    assert writer.written == 4


# ------------------------------------------------------------------ installed and armed

needs_sandbox_python = pytest.mark.skipif(not sandbox_python_available(), reason="no /usr/bin/python3")

SETUP = """
import sys
from executor.sandbox.runtime import audit, landlock
paths = landlock.stdlib_paths()
sys.addaudithook(audit.make_hook(paths + ['/dev/null']))
audit.cap_recursion_limit()
"""
ARM = "import sys\nsys.audit('azr.sandbox.arm')\n"


@needs_sandbox_python
def test_installed_hook_refuses_even_when_the_program_catches_and_rebinds(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    rebinding = (
        "import os, posixpath, builtins\n"
        "os.path.realpath = posixpath.realpath = lambda path, **kw: '/usr/lib/python3.11/os.py'\n"
        "os.fsdecode = lambda path: '/usr/lib/python3.11/os.py'\n"
        "builtins.any = lambda *a: False\n"
        "builtins.isinstance = lambda *a: False\n"
        "builtins.len = lambda *a: 0\n"
    )
    scenarios = {
        "caught": f"try:\n    open({str(secret)!r}).read()\nexcept Exception as exc:\n    result = type(exc).__name__",
        "rebound helpers": rebinding + f"result = open({str(secret)!r}).read()",
        "rebound, stdlib still readable": rebinding
        + "result = open('/usr/lib/python3.11/os.py').read(2) == 'r\"'",
        "dot-dot": "result = open('/usr/lib/python3.11/../../../etc/passwd').read()",
        "print and exceptions": "print('hello')\ntry:\n    1 / 0\nexcept ZeroDivisionError as exc:\n    result = str(exc)",
        "imports": "import json, fractions\nresult = json.dumps(str(fractions.Fraction(1, 2)))",
        "recursion limit capped": "import typing\ntyping.sys.setrecursionlimit(10 ** 6)\nresult = typing.sys.getrecursionlimit()",
    }
    results = run_confined(
        {"zygote_setup": SETUP + "import _decimal\n", "child_setup": ARM, "collect": True}, scenarios
    )
    refused = f"open({str(secret)!r}) is not allowed in the sandbox"
    assert results["caught"] == {"status": "ok", "value": "'Violation'", "violations": [refused]}
    assert results["rebound helpers"]["type"] == "Violation" and results["rebound helpers"]["violations"] == [
        refused
    ]
    assert results["rebound, stdlib still readable"] == {"status": "ok", "value": "True", "violations": []}
    assert results["dot-dot"]["type"] == "Violation"
    assert results["print and exceptions"] == {
        "status": "ok",
        "value": "'division by zero'",
        "violations": [],
    }
    assert results["imports"] == {"status": "ok", "value": "'\"1/2\"'", "violations": []}
    assert results["recursion limit capped"] == {
        "status": "ok",
        "value": str(audit.MAX_RECURSION_LIMIT),
        "violations": [],
    }


@needs_sandbox_python
def test_unarmed_zygote_is_not_hindered() -> None:
    """Installed but not armed (the zygote after start-up): nothing is refused."""
    scenarios = {"open": "result = open('/etc/hostname').read() is not None"}
    results = run_confined({"zygote_setup": SETUP, "collect": True}, scenarios)
    assert results["open"] == {"status": "ok", "value": "True", "violations": []}
