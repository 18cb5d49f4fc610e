"""Red team: a program whose output depends on the hash seed.

validate runs its repeats in distinct hash-seed lanes; verify (abduction, induction) may run on
any zygote. The default pool has exactly as many lanes as repeats (2), so a `valid` output holds
under every seed the service uses: whatever zygote a later run lands on reproduces the gold.
"""

from __future__ import annotations

from executor.engine import Engine
from executor.sandbox.protocol import SandboxJob
from executor.verdicts import ValidateTask


def test_a_valid_output_is_reproduced_on_every_zygote(engine: Engine) -> None:
    assert (
        engine.settings.sandbox.lanes == engine.settings.sizes.max_repeats
        or engine.settings.sandbox.lanes == 2
    )
    # Each salt's program is valid when its bit agrees under the two lanes' seeds: about one
    # in two. Sixty-four salts leave 2**-64 odds of a sample with nothing valid in it.
    checked = 0
    for salt in range(64):
        if checked >= 6:
            break
        program = f"def f(x):\n    return x + (hash('azr{salt}') & 1)"
        for attempt in range(3):  # distinct inputs: no cache hit
            argument = str(1000 * salt + attempt)
            result = engine.validate([ValidateTask("t", program, [argument])], repeats=2)[0]
            if not result.valid:
                continue
            checked += 1
            for zygote in range(engine.pool.size):
                job = SandboxJob(program, argument)
                run = engine.pool.submit(job, zygote % engine.settings.sandbox.lanes, "rt").result(timeout=60)
                assert run.outputs[:1] == (result.outputs[0],), (salt, attempt, result.outputs, run)
    assert checked, "no program of the sample was valid: the test checked nothing"
