"""Forbidden modules refused at run time (runtime/guards.py), in children of the sandbox
interpreter: the guards and the audit hook installed in the "zygote" before it forks,
the hook armed in each child, and the violations collected afterwards.

Issue: `time`, `random`, `datetime` and the rest of the policy, reached through another
module's attributes (`typing.sys.modules['time']`, `statistics.random`), raise inside
the sandbox and give `forbidden`; everyday modules keep working."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from executor.policy import AZR_FORBIDDEN_MODULES, Policy
from executor.sandbox.runtime import guards

sys.path.insert(0, str(Path(__file__).resolve().parent))
from confine_helper import REPO_ROOT, run_confined, sandbox_python_available  # noqa: E402

pytestmark = pytest.mark.skipif(not sandbox_python_available(), reason="no /usr/bin/python3")

# time, datetime, gc are loaded before install (wrapped by install); random, statistics,
# threading are imported later, in the child (wrapped by the meta-path finder).
SETUP = """
import sys, time, datetime, gc, collections, functools, re, typing, copy, _decimal
from executor.sandbox.runtime import audit, guards, landlock
sys.path.remove(REPO_ROOT)  # like the zygote: only readable directories on the import path
LOADED_BEFORE = set(sys.modules)
paths = landlock.stdlib_paths()
sys.addaudithook(audit.make_hook(paths))
guards.install(FORBIDDEN, paths)
"""
ARM = "import sys\nsys.audit('azr.sandbox.arm')\n"
REACH = "import typing\nmodules = typing.sys.modules\n"

FORBIDDEN_USES = {
    "typing.sys.modules['time'].time()": (REACH + "result = modules['time'].time()", "time.time"),
    "time.monotonic": (REACH + "result = modules['time'].monotonic()", "time.monotonic"),
    "statistics.random.random()": ("import statistics\nresult = statistics.random.random()", "random.random"),
    "statistics.random.choice": (
        "import statistics\nresult = statistics.random.choice([1, 2])",
        "random.choice",
    ),
    "random._inst.random()": ("import statistics\nresult = statistics.random._inst.random()", "random._inst"),
    "random.Random(1)": ("import statistics\nresult = statistics.random.Random(1).random()", "random.Random"),
    "random.SystemRandom()": (
        "import statistics\nresult = statistics.random.SystemRandom()",
        "random.SystemRandom",
    ),
    "a subclass of random.Random": (
        "import statistics\nclass R(statistics.random.Random):\n    pass\nresult = R(1).random()",
        "random.Random",
    ),
    "datetime.datetime.now()": (
        REACH + "result = modules['datetime'].datetime.now()",
        "datetime.datetime.now",
    ),
    "datetime.datetime.utcnow()": (
        REACH + "result = modules['datetime'].datetime.utcnow()",
        "datetime.datetime.utcnow",
    ),
    "datetime.datetime.fromtimestamp": (
        REACH + "result = modules['datetime'].datetime.fromtimestamp(0)",
        "datetime.datetime.fromtimestamp",
    ),
    "datetime.date.today()": (REACH + "result = modules['datetime'].date.today()", "datetime.date.today"),
    "datetime.datetime(2020, 1, 1)": (
        REACH + "result = modules['datetime'].datetime(2020, 1, 1)",
        "datetime.datetime",
    ),
    "os.getpid()": (REACH + "result = modules['os'].getpid()", "os.getpid"),
    "os.urandom": (REACH + "result = modules['os'].urandom(4)", "os.urandom"),
    "os.environ": (REACH + "result = modules['os'].environ['PATH']", "os.environ"),
    "posix.environ": (REACH + "result = dict(modules['posix'].environ)", "posix.environ"),
    "os.stat of /proc": (REACH + "result = modules['os'].stat('/proc/self').st_ctime", "os.stat"),
    "os.path.exists": (REACH + "result = modules['os'].path.exists('/etc')", "posixpath.exists"),
    "os.listdir of /": (REACH + "result = modules['os'].listdir('/')", "os.listdir"),
    "sys.exit": (REACH + "typing.sys.exit(3)", "sys.exit"),
    "sys.settrace": (REACH + "typing.sys.settrace(None)", "sys.settrace"),
    "gc.get_objects": (REACH + "result = len(modules['gc'].get_objects())", "gc.get_objects"),
    "gc.collect": (REACH + "result = modules['gc'].collect()", "gc.collect"),
    "_thread.start_new_thread": (
        REACH + "modules['_thread'].start_new_thread(print, ())",
        "_thread.start_new_thread",
    ),
    "threading.Thread": (
        "import typing, dataclasses\nresult = __import__('threading').Thread()",
        "threading.Thread",
    ),
    "io.open": (REACH + "result = modules['io'].open('/usr/lib/python3.11/os.py').read(1)", "io.open"),
}

ORDINARY = {
    "statistics.mean": ("import statistics\nresult = statistics.mean([1, 2])", "1.5"),
    "statistics more": (
        "import statistics\nresult = statistics.median([3, 1, 2]), statistics.mode('aab'), statistics.stdev([1, 2, 3, 4])",
        "(2, 'a', 1.2909944487358056)",
    ),
    "collections.Counter": (
        "import collections\nresult = collections.Counter('abca').most_common(1)",
        "[('a', 2)]",
    ),
    "re": ("import re\nresult = re.sub(r'(a)', r'<\\1>', 'banana')", "'b<a>n<a>n<a>'"),
    "typing": (
        "import typing\nresult = typing.List[int], typing.Optional[str]",
        "(typing.List[int], typing.Optional[str])",
    ),
    "typing.NamedTuple": ("import typing\nclass P(typing.NamedTuple):\n    x: int\nresult = P(1)", "P(x=1)"),
    "dataclasses": (
        "import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\n"
        "    y: list = dataclasses.field(default_factory=list)\nresult = repr(P(1)), dataclasses.asdict(P(2))",
        "('P(x=1, y=[])', {'x': 2, 'y': []})",
    ),
    "dataclass without __init__": (
        "import dataclasses\n@dataclasses.dataclass(init=False)\nclass Q:\n    pass\nresult = Q.__doc__",
        "'Q()'",
    ),
    "enum": (
        "import enum\nclass C(enum.Enum):\n    A = 1\n    B = enum.auto()\nresult = list(C)",
        "[<C.A: 1>, <C.B: 2>]",
    ),
    "json": (
        "import json\nresult = json.dumps(json.loads('{\"a\": [1, 2.5, null]}'), sort_keys=True)",
        "'{\"a\": [1, 2.5, null]}'",
    ),
    "fractions": (
        "import fractions\nresult = fractions.Fraction(3, 4) + fractions.Fraction('1/3')",
        "Fraction(13, 12)",
    ),
    "decimal": ("import decimal\nresult = decimal.Decimal('1.1') * 3", "Decimal('3.3')"),
    "copy.deepcopy": (
        "import copy\nclass A:\n    def __init__(self):\n        self.x = [1]\nresult = copy.deepcopy(A()).x",
        "[1]",
    ),
    "functools": (
        "import functools\n@functools.singledispatch\ndef g(x):\n    return 'obj'\n@g.register\ndef _(x: int):\n"
        "    return 'int'\n@functools.lru_cache(None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
        "class A:\n    @functools.cached_property\n    def v(self):\n        return 3\nresult = g(1), g('a'), fib(50), A().v",
        "('int', 'obj', 12586269025, 3)",
    ),
    "pprint": ("import pprint\nresult = pprint.pformat({'a': [1, 2]})", "\"{'a': [1, 2]}\""),
    "textwrap": ("import textwrap\nresult = textwrap.wrap('a b c d', 3)", "['a b', 'c d']"),
    "warnings": ("import warnings\nwarnings.warn('careful')\nresult = 'warned'", "'warned'"),
    "heapq, bisect, itertools": (
        "import heapq, bisect, itertools\nresult = heapq.nsmallest(2, [5, 1, 3]), bisect.bisect([1, 3], 2), list(itertools.accumulate([1, 2]))",
        "([1, 3], 1, [1, 3])",
    ),
    "os.path.join (kept)": (REACH + "result = modules['os'].path.join('a', 'b')", "'a/b'"),
    "sys.getrecursionlimit (kept)": (REACH + "result = typing.sys.getrecursionlimit() > 0", "True"),
    "exceptions": ("try:\n    {}['x']\nexcept KeyError as exc:\n    result = repr(exc)", "\"KeyError('x')\""),
}


def _run(forbidden: list[str], scenarios: dict[str, str], armed: bool = True) -> dict:
    config = {
        "zygote_setup": SETUP,
        "child_setup": ARM if armed else "",
        "collect": True,
        "variables": {"FORBIDDEN": forbidden},
    }
    return run_confined(config, scenarios)


DEFAULT_POLICY = Policy().forbidden_modules


def test_forbidden_modules_reached_through_other_modules_are_refused() -> None:
    scenarios = {label: source for label, (source, _) in FORBIDDEN_USES.items()}
    caught = "import statistics\ntry:\n    statistics.random.random()\nexcept Exception as exc:\n    result = type(exc).__name__"
    scenarios["caught by the program"] = caught
    scenarios["loaded before install?"] = (
        "result = sorted(m for m in ('time', 'datetime', 'random', 'statistics') if m in LOADED_BEFORE)"
    )
    results = _run(DEFAULT_POLICY, scenarios)
    for label, (_, attribute) in FORBIDDEN_USES.items():
        message = f"use of {attribute} is forbidden in the sandbox"
        result = results[label]
        assert result["status"] == "error" and result["type"] == "Violation", (label, result)
        assert result["violations"] and result["violations"][0] == message, (label, result)
    assert results["caught by the program"] == {
        "status": "ok",
        "value": "'Violation'",
        "violations": ["use of random.random is forbidden in the sandbox"],
    }
    # time and datetime were wrapped by install; random by the finder, in the child
    assert results["loaded before install?"]["value"] == "['datetime', 'time']"


def test_everyday_modules_keep_working_with_no_violation() -> None:
    results = _run(DEFAULT_POLICY, {label: source for label, (source, _) in ORDINARY.items()})
    for label, (_, expected) in ORDINARY.items():
        assert results[label] == {"status": "ok", "value": expected, "violations": []}, label


def test_the_same_uses_pass_while_unarmed() -> None:
    """Control, and what the zygote relies on: installed but not armed, nothing is refused."""
    labels = [
        "typing.sys.modules['time'].time()",
        "statistics.random.random()",
        "datetime.datetime.now()",
        "os.getpid()",
    ]
    results = _run(DEFAULT_POLICY, {label: FORBIDDEN_USES[label][0] for label in labels}, armed=False)
    for label in labels:
        assert results[label]["status"] == "ok" and results[label]["violations"] == [], (
            label,
            results[label],
        )


def test_dotted_entries_guard_attributes_of_allowed_modules() -> None:
    """AZR's own list bans os.environ, os.path, os.sys and sys.exit, not os or sys."""
    scenarios = {
        "os.getpid (os allowed)": REACH + "result = modules['os'].getpid() > 0",
        "os.environ": FORBIDDEN_USES["os.environ"][0],
        "os.path.exists": FORBIDDEN_USES["os.path.exists"][0],
        "os.path.join (kept)": ORDINARY["os.path.join (kept)"][0],
        "sys.exit": FORBIDDEN_USES["sys.exit"][0],
        "os.sys.exit": REACH + "modules['os'].sys.exit(3)",
        "sys.getrecursionlimit": ORDINARY["sys.getrecursionlimit (kept)"][0],
        "time": FORBIDDEN_USES["typing.sys.modules['time'].time()"][0],
        "statistics.random": FORBIDDEN_USES["statistics.random.random()"][0],
    }
    results = _run(list(AZR_FORBIDDEN_MODULES), scenarios)
    for label in ("os.getpid (os allowed)", "os.path.join (kept)", "sys.getrecursionlimit"):
        assert results[label]["status"] == "ok" and results[label]["violations"] == [], (
            label,
            results[label],
        )
    for label in ("os.environ", "os.path.exists", "sys.exit", "os.sys.exit", "time", "statistics.random"):
        assert results[label]["type"] == "Violation" and results[label]["violations"], (label, results[label])


def test_install_twice_wraps_once_and_puts_its_finder_first() -> None:
    scenarios = {
        "finder first": "import sys\nresult = type(sys.meta_path[0]).__name__",
        "single wrapper": (
            "guards.install(FORBIDDEN, paths)\nimport time\n"
            "inner = time.time.__closure__[[c for c in time.time.__code__.co_freevars].index('function')].cell_contents\n"
            "result = type(inner).__name__"
        ),
    }
    results = _run(DEFAULT_POLICY, scenarios, armed=False)
    assert results["finder first"]["value"] == "'_GuardFinder'"
    assert results["single wrapper"]["value"] == "'builtin_function_or_method'"


def test_runtime_modules_load_no_ctypes() -> None:
    source = "import sys\nresult = sorted(m for m in sys.modules if 'ctypes' in m)"
    results = run_confined(
        {"zygote_setup": SETUP, "variables": {"FORBIDDEN": DEFAULT_POLICY}}, {"ctypes": source}
    )
    assert results["ctypes"] == {"status": "ok", "value": "[]"}
    for name in ("seccomp", "landlock", "audit", "guards"):
        text = (Path(REPO_ROOT) / "executor/sandbox/runtime" / f"{name}.py").read_text()
        assert "import ctypes" not in text and "from ctypes" not in text, name


def test_tables_are_consistent() -> None:
    assert set(guards.KEEP).isdisjoint(guards.GUARDED_ONLY)
    assert set(guards.UNGUARDED_MODULES).isdisjoint(guards.GUARDED_ONLY)
    assert set(guards.UNGUARDED_MODULES).isdisjoint(guards.KEEP)
    assert all(reason for reason in guards.UNGUARDED_MODULES.values())
    for name in ("time", "random", "datetime", "os", "sys"):
        assert name not in guards.UNGUARDED_MODULES


def test_all_layers_together() -> None:
    """The real arrangement: Landlock and the zygote's seccomp stage in the zygote, the
    audit hook and the guards installed there, the child allowlist and the arming in
    each child. Ordinary programs run clean; forbidden ones are refused."""
    ordinary = ["statistics.mean", "dataclasses", "fractions", "functools", "json", "warnings", "enum"]
    forbidden = ["typing.sys.modules['time'].time()", "statistics.random.random()", "datetime.datetime.now()"]
    scenarios = {label: ORDINARY[label][0] for label in ordinary}
    scenarios |= {label: FORBIDDEN_USES[label][0] for label in forbidden}
    scenarios["kernel: open for writing"] = "open('/tmp/azr-all-layers', 'w')"
    scenarios["kernel: socket"] = "import _socket\n_socket.socket()"
    config = {
        "zygote_setup": SETUP,
        "child_setup": ARM,
        "collect": True,
        "variables": {"FORBIDDEN": DEFAULT_POLICY},
        "landlock": {},
        "zygote_seccomp": True,
        "child_seccomp": True,
        "rlimit_as": 1 << 31,
    }
    results = run_confined(config, scenarios)
    for label in ordinary:
        assert results[label] == {"status": "ok", "value": ORDINARY[label][1], "violations": []}, label
    for label in forbidden:
        assert results[label]["type"] == "Violation" and results[label]["violations"], (label, results[label])
    # refused by the audit hook first (a Violation), the kernel standing behind it
    assert results["kernel: open for writing"]["type"] == "Violation"
    assert results["kernel: socket"]["type"] == "Violation"  # _socket is guarded (socket's accelerator)
