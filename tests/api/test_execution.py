"""Which validate payloads run on the event loop (`is_small`) and which go to a worker thread."""

from __future__ import annotations

from api.services.execution import (
    SMALL_PAYLOAD_CHARS,
    SMALL_PAYLOAD_INPUTS,
    is_small,
    validate_payload,
    verify_payload,
)


def _task(program: str = "def f(a):\n    return a", inputs: int = 1) -> dict[str, object]:
    return {"id": "t", "program": program, "inputs": ["1"] * inputs}


def test_a_single_task_is_small() -> None:
    assert is_small(validate_payload([_task()], 2, None))


def test_too_many_inputs_or_characters_are_not_small() -> None:
    assert not is_small(validate_payload([_task(inputs=SMALL_PAYLOAD_INPUTS + 1)], 2, None))
    assert is_small(validate_payload([_task(inputs=SMALL_PAYLOAD_INPUTS)], 2, None))
    long_program = "def f(a):\n    return a\n" + "#" * SMALL_PAYLOAD_CHARS
    assert not is_small(validate_payload([_task(long_program)], 2, None))


def test_verify_payloads_always_use_a_worker_thread() -> None:
    answer = {"id": "a", "task_type": "deduction", "answer": "1", "program": "def f(a):\n    return a"}
    assert not is_small(verify_payload([answer], None))


def test_a_big_program_is_never_checked_on_the_event_loop() -> None:
    bomb = "def f(x):\n    return " + "lambda:" * 2800 + "eval"
    assert not is_small(validate_payload([_task(bomb)], 2, None))
    assert SMALL_PAYLOAD_CHARS <= 4_000
