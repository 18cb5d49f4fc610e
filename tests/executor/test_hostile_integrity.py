"""Verdict integrity: every attack class of issue 11, with the layers above the wall removed.

Programs go straight to a zygote (no static checks). The kernel-wall tests use a zygote
started with ``python_layers=False``: no audit hook, no module guards, so what stops each
attack is the kernel (Landlock, seccomp, uid, rlimits), the C runner, or the trusted
judge, never a filter inside the judged interpreter.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_UID_BASE
from executor_helpers import REPO_ROOT

from executor import aggregate
from executor.engine import Engine
from executor.sandbox import native
from executor.sandbox.pool import PoolConfig, SandboxPool
from executor.sandbox.protocol import ChildResult, SandboxJob
from executor.settings import load_settings
from executor.verdicts import Answer, Case, ValidateTask, Verdict

CANARY = "CANARY" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def kernel_only() -> Iterator[SandboxPool]:
    """One lane of zygotes with the kernel layers and no Python layers."""
    pool = SandboxPool(
        PoolConfig(lanes=1, zygotes_per_lane=1, sandbox_uid_base=TEST_UID_BASE + 100, python_layers=False)
    )
    pool.start()
    yield pool
    pool.close()


def run(pool: SandboxPool, program: str, argument: str = "", timeout_s: float = 5.0) -> ChildResult:
    job = SandboxJob(program=program, input=argument, calls=1, timeout_s=timeout_s, cpu_s=int(timeout_s) + 1)
    return pool.submit(job, 0, "hostile").result(timeout=60)


def blocked(result: ChildResult) -> bool:
    """The attempt failed: an error verdict, or f reported that it was refused."""
    if result.status != "ok":
        return True
    return bool(result.outputs) and result.outputs[0][1:].startswith("blocked")


def attempt(body: str) -> str:
    """A program whose f tries `body` and returns 'ESCAPED ...' or 'blocked: <error>'."""
    lines = "\n".join("        " + line for line in body.strip().splitlines())
    return (
        "def f():\n"
        "    try:\n"
        f"{lines}\n"
        "        return 'ESCAPED'\n"
        "    except BaseException as exc:\n"
        "        return 'blocked: ' + type(exc).__name__ + ': ' + str(exc)\n"
    )


def test_the_kernel_only_zygote_really_has_no_python_layers(kernel_only: SandboxPool) -> None:
    info = kernel_only.zygote_info()[0]
    assert info["layers"]["python"].startswith("off")
    assert not info["missing"], info
    # Without the audit hook, a forbidden import simply works: what follows is the kernel's doing.
    result = run(kernel_only, "import socket, subprocess, gc\ndef f():\n    return 1\n")
    assert result.status == "ok", result


# ---------------------------------------------------------------------------- 1. the judge


def test_patched_builtins_do_not_change_the_report(kernel_only: SandboxPool) -> None:
    program = (
        "import builtins, sys\n"
        "builtins.repr = lambda value: \"'forged'\"\n"
        "builtins.str = lambda value='': 'forged'\n"
        "sys.modules.clear()\n"
        "def f():\n"
        "    return 5\n"
    )
    result = run(kernel_only, program)
    assert result.status == "ok" and result.outputs[0] == "5", result


def test_a_report_forged_on_every_descriptor_is_not_accepted(kernel_only: SandboxPool) -> None:
    program = (
        "import os\n"
        "def f():\n"
        "    fake = b'\\x00\\x01\\x00\\x00\\x00\\x01' + b'5' + b'\\x00' * 4\n"
        "    for fd in range(0, 1024):\n"
        "        try:\n"
        "            os.write(fd, fake * 100)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n"
    )
    result = run(kernel_only, program)
    assert result.status == "runtime_error" and not result.outputs, result


def test_a_raising_f_is_never_ok_whatever_it_patched(kernel_only: SandboxPool) -> None:
    program = (
        "import builtins, sys, gc\n"
        "def f():\n"
        "    builtins.BaseException = object\n"
        "    sys.excepthook = lambda *a: None\n"
        "    gc.collect()\n"
        "    raise ValueError('no')\n"
    )
    result = run(kernel_only, program)
    assert result.status == "runtime_error" and "ValueError" in result.detail, result


def test_randomness_is_unavailable_to_the_child(kernel_only: SandboxPool) -> None:
    result = run(kernel_only, attempt("import os\nos.urandom(8)"))
    assert blocked(result), result
    result = run(kernel_only, attempt("open('/dev/urandom', 'rb').read(8)"))
    assert blocked(result), result


def test_induction_an_always_equal_object_is_wrong(engine: Engine) -> None:
    candidate = (
        "class X:\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    def __hash__(self):\n"
        "        return 0\n"
        "    def __repr__(self):\n"
        "        return 'X()'\n"
        "def f(a):\n"
        "    return X()\n"
    )
    answer = Answer("i", "induction", candidate, cases=(Case("1", "2"), Case("2", "3")))
    result = engine.verify([answer])[0]
    assert result.verdict is Verdict.WRONG and not result.correct, result


@pytest.mark.parametrize(
    "text",
    [
        "f('stressed')",
        "type('X', (), {'__eq__': lambda s, o: True, '__module__': 'builtins'})()",
        "__import__('os')",
        "x",
        "1 + 1",
        "True or 0",
        "[i for i in range(3)]",
        "'cba'.upper()",
        "(lambda: 'cba')()",
    ],
)
def test_a_deduction_answer_that_is_no_literal_is_invalid(engine: Engine, text: str) -> None:
    answer = Answer("d", "deduction", text, "def f(a):\n    return a[::-1]", "'abc'", "'cba'")
    result = engine.verify([answer])[0]
    assert result.verdict is Verdict.INVALID_INPUT and not result.correct, result


def test_deduction_equality_is_value_equality(engine: Engine) -> None:
    cases = [("(1, )", "(1,)"), ("{2: 0, 1: 0}", "{1: 0, 2: 0}"), ("1", "1.0"), ("{'b', 'a'}", "{'a', 'b'}")]
    answers = [Answer(str(i), "deduction", a, None, None, gold) for i, (a, gold) in enumerate(cases)]
    assert all(r.correct for r in engine.verify(answers))
    assert not engine.verify([Answer("w", "deduction", "[1, 2]", None, None, "[2, 1]")])[0].correct


@pytest.mark.parametrize("text", ["'abc'), (1", "1, 2) or (3", "sorted([1])", "*[1]", "x=f"])
def test_an_abduction_answer_that_is_no_literal_argument_list_is_invalid(engine: Engine, text: str) -> None:
    answer = Answer("a", "abduction", text, "def f(*a, **k):\n    return 1", None, "1")
    result = engine.verify([answer])[0]
    assert result.verdict is Verdict.INVALID_INPUT, result


def test_a_non_literal_output_cannot_become_a_gold_output(engine: Engine) -> None:
    program = "class P:\n    def __repr__(self):\n        return 'P()'\ndef f(a):\n    return P()\n"
    result = engine.validate([ValidateTask("t", program, ["1"])])[0]
    assert result.verdict is Verdict.BAD_FORM and not result.valid, result
    assert "not a literal" in result.detail


# ---------------------------------------------------------------------------- 2. other jobs


SEARCH = (
    "import gc, sys\n"
    "def f(needle):\n"
    "    seen = 0\n"
    "    def has(obj):\n"
    "        if obj is needle:\n"
    "            return False\n"
    "        try:\n"
    "            if isinstance(obj, (str, bytes)):\n"
    "                return needle in (obj if isinstance(obj, str) else obj.decode('latin-1'))\n"
    "            if isinstance(obj, dict):\n"
    "                return any(has(k) or has(v) for k, v in list(obj.items())[:10000])\n"
    "            if isinstance(obj, (list, tuple, set, frozenset)):\n"
    "                return any(has(x) for x in list(obj)[:10000])\n"
    "            code = getattr(obj, 'co_consts', None)\n"
    "            if code is not None:\n"
    "                return has(code)\n"
    "        except Exception:\n"
    "            pass\n"
    "        return False\n"
    "    for obj in gc.get_objects():\n"
    "        if obj is needle:\n"
    "            continue\n"
    "        if has(obj):\n"
    "            return 'FOUND in ' + type(obj).__name__\n"
    "    frame = sys._getframe()\n"
    "    while frame is not None:\n"
    "        if has(frame.f_locals) or has(frame.f_globals):\n"
    "            return 'FOUND in a frame'\n"
    "        frame = frame.f_back\n"
    "    for module in list(sys.modules.values()):\n"
    "        if has(getattr(module, '__dict__', {})):\n"
    "            return 'FOUND in ' + getattr(module, '__name__', '?')\n"
    "    return 'not found'\n"
)


def test_a_child_cannot_find_a_concurrent_jobs_input(kernel_only: SandboxPool) -> None:
    """A long job carries the canary in its program and input; searches run beside it in
    the same zygote and look everywhere Python can reach."""
    holder = f"SECRET = {CANARY!r}\ndef f(x):\n    n = 0\n    for i in range(30_000_000):\n        n += i\n    return x\n"
    long_job = SandboxJob(program=holder, input=repr(CANARY), calls=1, timeout_s=5, cpu_s=6)
    held = kernel_only.submit(long_job, 0, "victim")
    time.sleep(0.1)
    # The needle is built at run time so the search's own program text does not contain it.
    split = len(CANARY) // 2
    needle = f"{CANARY[:split]!r} + {CANARY[split:]!r}"
    searches = [
        kernel_only.submit(
            SandboxJob(program=SEARCH, input=needle, calls=1, timeout_s=5, cpu_s=6), 0, "thief"
        )
        for _ in range(4)
    ]
    results = [future.result(timeout=60) for future in searches]
    assert not held.done() or held.result().status in ("ok", "timeout")
    for result in results:
        assert result.status == "ok", result
        assert result.outputs[0] == "'not found'", result


def test_an_induction_candidate_cannot_read_the_hidden_outputs(engine: Engine) -> None:
    candidate = SEARCH.replace("def f(needle):", "def f(x, needle=" + repr(CANARY[:12]) + "):").replace(
        "return 'FOUND in ' + type(obj).__name__", "return " + repr(CANARY)
    )
    # The static checks would refuse gc/sys: go around them as an attacker would, straight to a
    # zygote, then judge exactly as the engine does.
    run_result = engine.pool.submit(SandboxJob(program=candidate, input="1"), 0, "thief").result(timeout=60)
    verdict, _ = aggregate.judge_call(run_result, CANARY, repr(CANARY))
    assert verdict is not Verdict.OK, run_result


# ---------------------------------------------------------------------------- 4. the host


@pytest.fixture(scope="module")
def host_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("host")
    folder.chmod(0o777)
    secret = folder / "secret.txt"
    secret.write_text("top secret")
    secret.chmod(0o644)
    xattr_target = folder / "xattr.txt"
    xattr_target.write_text("x")
    xattr_target.chmod(0o666)
    return {"folder": folder, "secret": secret, "xattr": xattr_target}


@pytest.mark.parametrize(
    "name, body",
    [
        ("read /etc/passwd", "open('/etc/passwd').read()"),
        ("read a world-readable secret", "open({secret!r}).read()"),
        ("read the repository", "open({repo!r}).read()"),
        ("read /proc/self/mem", "open('/proc/self/mem', 'rb')"),
        ("read another process's environment", "open('/proc/1/environ', 'rb').read()"),
        ("list a host directory", "import os\nos.listdir({folder!r})"),
        ("write into a world-writable directory", "open({folder!r} + '/new', 'w').write('x')"),
        ("set an xattr on a host file", "import os\nos.setxattr({xattr!r}, 'user.azr', b'x')"),
        ("open a socket", "import socket\nsocket.socket()"),
        ("fork", "import os\nos.fork()"),
        ("load ctypes", "import ctypes\nctypes.CDLL(None)"),
        ("signal the zygote", "import os\nos.kill(os.getppid(), 0)"),
        ("map executable memory", "import mmap\nmmap.mmap(-1, 4096, prot=7)"),
    ],
)
def test_the_host_holds_without_python_layers(
    kernel_only: SandboxPool, host_files: dict[str, Path], name: str, body: str
) -> None:
    text = body.format(
        secret=str(host_files["secret"]),
        repo=str(REPO_ROOT / "pyproject.toml"),
        folder=str(host_files["folder"]),
        xattr=str(host_files["xattr"]),
    )
    result = run(kernel_only, attempt(text))
    assert blocked(result), f"{name}: {result}"
    assert not (host_files["folder"] / "new").exists()
    assert not os.listxattr(host_files["xattr"])


def test_service_files_are_unreadable_to_sandbox_uids() -> None:
    """Service state is 0600/0700 (the audit store's own tests check its modes): a child's uid
    cannot read it even where Landlock is downgraded."""
    cache = native.cache_dir(load_settings().sandbox.build_dir)
    if cache.exists():
        assert cache.stat().st_mode & 0o077 == 0 or not any(cache.iterdir())


# ---------------------------------------------------------------------------- 5. hidden nondeterminism


@pytest.mark.parametrize(
    "program",
    [
        "import typing\ndef f():\n    return typing.sys.modules['time'].time() > 0\n",
        "import statistics\ndef f():\n    return statistics.random.random() < 2\n",
        "import datetime\ndef f():\n    return datetime.datetime.now().hour\n",
        "import os\ndef f():\n    return os.times()[4]\n",
        "import statistics\ndef f():\n    return statistics.mean([1, 2, 3])\n",
    ],
)
def test_forbidden_modules_reached_through_others_are_refused_at_run_time(
    engine: Engine, program: str
) -> None:
    result = engine.pool.submit(SandboxJob(program=program, input=""), 0, "nd").result(timeout=60)
    if "mean" in program:
        assert result.status == "ok" and result.outputs[0] == "2", result
    else:
        assert result.status in ("forbidden", "runtime_error"), result
        assert result.status == "forbidden" or "forbidden" in result.detail, result


# ---------------------------------------------------------------------------- 6. other clients


def test_a_flood_of_spinners_does_not_hold_up_another_client(engine: Engine) -> None:
    tag = uuid.uuid4().hex[:8]
    spinners = [
        ValidateTask(f"s{i}", f"def f(a):\n    while True:\n        a += 1  # {tag} {i}", ["1"])
        for i in range(16)
    ]
    done: list[Verdict] = []
    flood = threading.Thread(
        target=lambda: done.extend(
            r.verdict for r in engine.validate(spinners, timeout_s=3.0, client="flood")
        )
    )
    flood.start()
    time.sleep(0.4)
    latencies = []
    for i in range(5):
        task = ValidateTask(f"c{i}", f"def f(a):\n    return a * 2  # {tag} control {i}", ["21"])
        started = time.perf_counter()
        result = engine.validate([task], client="control")[0]
        latencies.append(time.perf_counter() - started)
        assert result.valid and result.outputs == ["42"], result
    flood.join()
    assert done == [Verdict.TIMEOUT] * 16
    assert sorted(latencies)[2] < 1.0, latencies  # the bench's flood section gives the real figure
