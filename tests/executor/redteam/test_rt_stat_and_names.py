"""Red team: kernel-layer gaps with the Python layers off, and names inside 'literal' answers."""

from __future__ import annotations

import pytest

from executor.sandbox.pool import PoolConfig, SandboxPool
from executor.sandbox.protocol import SandboxJob
from executor.verdicts import Answer


@pytest.fixture(scope="module")
def bare_pool():
    pool = SandboxPool(PoolConfig(lanes=1, zygotes_per_lane=1, sandbox_uid_base=63300, python_layers=False))
    pool.start()
    yield pool
    pool.close()


def test_stat_shows_metadata_but_never_contents(bare_pool) -> None:
    """A documented limit (docs/security.md, "File metadata"): Landlock does not mediate stat,
    so with the Python layers off a path's size and owner are visible; its contents are not,
    and the module guards refuse os.stat outside the standard library when the layers are on."""
    program = (
        "import os\n"
        "def f():\n"
        "    s = os.stat('/etc/shadow')\n"
        "    try:\n"
        "        open('/etc/shadow', 'rb').read(1)\n"
        "        return 'READ'\n"
        "    except OSError:\n"
        "        return (s.st_size > 0, s.st_uid)\n"
    )
    result = bare_pool.submit(SandboxJob(program, ""), 0, "rt").result()
    assert result.status == "ok" and result.outputs[0] == "(True, 0)", result


def test_stat_outside_the_stdlib_is_forbidden_with_the_python_layers(engine) -> None:
    program = "import os\ndef f():\n    return os.stat('/etc/shadow').st_size > 0"
    result = engine.pool.submit(SandboxJob(program, ""), 0, "rt").result()
    assert result.status == "forbidden", result


def test_environment_is_empty(bare_pool) -> None:
    result = bare_pool.submit(
        SandboxJob("import os\ndef f():\n    return dict(os.environ)", ""), 0, "rt"
    ).result()
    assert result.status != "ok" or result.outputs[0] == "{}", result.outputs[:1]


def test_abduction_answer_inf_means_inf(engine) -> None:
    # The literal parser accepts `inf`/`nan`, but the child evaluates the answer as Python in the
    # program's namespace: NameError (invalid_input) for a correct answer...
    r = engine.verify([Answer("a", "abduction", "inf", "def f(x):\n    return x", None, "inf")])[0]
    assert r.verdict.value == "ok", (r.verdict, r.detail)


def test_abduction_answer_inf_cannot_be_redefined_by_the_program(engine) -> None:
    # ...and a program that defines `inf` decides what the accepted "literal" means.
    r = engine.verify([Answer("a", "abduction", "inf", "inf = 7\ndef f(x):\n    return x", None, "7")])[0]
    assert r.verdict.value != "ok"
