"""Red team: the per-client cap is per *call*, and the API never names a client.

`Engine.validate/verify` default to a fresh client per call and api/services/execution.py
passes none, so N concurrent requests are N clients: together they fill every live slot of
every zygote with spinning children (each held up to max_timeout_s = 30 s), and another
client's one-line job waits for a timeout to free a slot.
"""

from __future__ import annotations

import threading
import time

from executor.engine import Engine
from executor.settings import Settings
from executor.verdicts import ValidateTask

SPINNER = "def f(x):\n    while True:\n        pass"


def test_concurrent_requests_cannot_hold_up_another_client() -> None:
    engine = Engine(
        Settings(
            sandbox={"uid_base": 63200, "lanes": 1, "max_live": 6, "fast_slots": 2},
            sizes={"max_repeats": 1},
            cache={"entries": 0},
        )
    )
    engine.start()
    try:

        def flood(k: int) -> None:
            # Three concurrent requests of one tenant (the API names the client by its key).
            engine.validate(
                [ValidateTask("s", SPINNER, [str(k * 100 + i) for i in range(4)])], 1, 3, client="key:flood"
            )

        threads = [threading.Thread(target=flood, args=(k,)) for k in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.8)
        started = time.monotonic()
        result = engine.validate(
            [ValidateTask("b", "def f(x):\n    return x", ["1"])], 1, client="key:other"
        )[0]
        waited = time.monotonic() - started
        for thread in threads:
            thread.join()
    finally:
        engine.close()
    assert result.valid
    assert waited < 1.0, f"a one-line job waited {waited:.2f} s behind three other requests"
