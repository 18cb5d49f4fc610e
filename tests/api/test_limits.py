"""Bad input gets a clear 4xx naming the field and the limit; auth."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Service, running_service

PROGRAM = "def f(a):\n    return a"


@pytest.fixture(scope="module")
def small_limits() -> Iterator[Service]:
    with running_service(
        AZR_MAX_TASKS_PER_REQUEST="3",
        AZR_MAX_PROGRAM_CHARS="200",
        AZR_MAX_INPUT_CHARS="50",
        AZR_MAX_ANSWER_CHARS="60",
        AZR_MAX_INPUTS_PER_TASK="2",
        AZR_MAX_CASES_PER_ANSWER="2",
        AZR_MAX_BODY_BYTES="20000",
        AZR_MAX_REPEATS="3",
        AZR_MAX_TIMEOUT_S="5",
    ) as service:
        yield service


def task(**fields: object) -> dict[str, object]:
    return {"id": "t", "program": PROGRAM, "inputs": ["1"], **fields}


OVERSIZED_VALIDATE = [
    ({"tasks": [task(id=str(i)) for i in range(4)]}, 413, ["tasks", "3"]),
    ({"tasks": [task(program=PROGRAM + "#" * 300)]}, 413, ["tasks[0].program", "200"]),
    ({"tasks": [task(inputs=["1", "2", "3"])]}, 413, ["tasks[0].inputs", "2"]),
    ({"tasks": [task(inputs=["1" * 51])]}, 413, ["tasks[0].inputs[0]", "50"]),
    ({"tasks": [task()], "repeats": 4}, 422, ["repeats", "3"]),
    ({"tasks": [task()], "timeout_s": 6}, 422, ["timeout_s", "5"]),
    ({"tasks": [task(), task()]}, 422, ["tasks[1].id", "duplicate"]),
]

MALFORMED_VALIDATE = [
    ({}, "tasks"),
    ({"tasks": []}, "tasks"),
    ({"tasks": [{"id": "t", "inputs": ["1"]}]}, "program"),
    ({"tasks": [{"id": "t", "program": PROGRAM}]}, "inputs"),
    ({"tasks": [task(inputs=[])]}, "inputs"),
    ({"tasks": [task(inputs="1")]}, "inputs"),
    ({"tasks": [task(program=5)]}, "program"),
    ({"tasks": [task(id="")]}, "id"),
    ({"tasks": [task(extra=1)]}, "extra"),
    ({"tasks": [task()], "repeats": 0}, "repeats"),
    ({"tasks": [task()], "repeats": "two"}, "repeats"),
    ({"tasks": [task()], "timeout_s": -1}, "timeout_s"),
    ({"tasks": [task()], "step": -1}, "step"),
    ({"tasks": [task()], "run": "r" * 201}, "run"),
]


@pytest.mark.parametrize(("body", "code", "words"), OVERSIZED_VALIDATE)
def test_validate_limits_name_field_and_limit(
    small_limits: Service, body: dict, code: int, words: list[str]
) -> None:
    response = httpx.post(small_limits.url + "/v1/validate", json=body, timeout=30)
    assert response.status_code == code, response.text
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, (word, detail)


@pytest.mark.parametrize(("body", "field"), MALFORMED_VALIDATE)
def test_malformed_validate_is_422_naming_the_field(small_limits: Service, body: dict, field: str) -> None:
    response = httpx.post(small_limits.url + "/v1/validate", json=body, timeout=30)
    assert response.status_code == 422, response.text
    assert field in response.text


ANSWER = {"id": "a", "task_type": "deduction", "output": "1", "answer": "1"}
OVERSIZED_VERIFY = [
    ({"answers": [dict(ANSWER, id=str(i)) for i in range(4)]}, 413, "answers"),
    ({"answers": [dict(ANSWER, answer="1" * 61)]}, 413, "answers[0].answer"),
    ({"answers": [dict(ANSWER, output="1" * 61)]}, 413, "answers[0].output"),
    ({"answers": [dict(ANSWER, program=PROGRAM + "#" * 300)]}, 413, "answers[0].program"),
    (
        {
            "answers": [
                {
                    "id": "i",
                    "task_type": "induction",
                    "answer": PROGRAM,
                    "cases": [{"input": "1", "output": "1"}] * 3,
                }
            ]
        },
        413,
        "answers[0].cases",
    ),
    (
        {
            "answers": [
                {
                    "id": "i",
                    "task_type": "induction",
                    "answer": PROGRAM,
                    "cases": [{"input": "1" * 51, "output": "1"}],
                }
            ]
        },
        413,
        "answers[0].cases[0].input",
    ),
    ({"answers": [{"id": "d", "task_type": "deduction", "answer": "1"}]}, 422, "answers[0].output"),
    ({"answers": [{"id": "a", "task_type": "abduction", "answer": "1", "output": "1"}]}, 422, "answers[0]"),
    ({"answers": [{"id": "i", "task_type": "induction", "answer": PROGRAM}]}, 422, "answers[0].cases"),
]


@pytest.mark.parametrize(("body", "code", "field"), OVERSIZED_VERIFY)
def test_verify_limits(small_limits: Service, body: dict, code: int, field: str) -> None:
    response = httpx.post(small_limits.url + "/v1/verify", json=body, timeout=30)
    assert response.status_code == code, response.text
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"answers": []},
        {"answers": [dict(ANSWER, task_type="guess")]},
        {"answers": [dict(ANSWER, cases=[{"input": 1}])]},
    ],
)
def test_malformed_verify_is_422(small_limits: Service, body: dict) -> None:
    response = httpx.post(small_limits.url + "/v1/verify", json=body, timeout=30)
    assert response.status_code == 422, response.text


def test_body_too_large_is_413(small_limits: Service) -> None:
    body = {"tasks": [task(program="#" * 30000)]}
    response = httpx.post(small_limits.url + "/v1/validate", json=body, timeout=30)
    assert response.status_code == 413
    assert "AZR_MAX_BODY_BYTES" in response.json()["detail"]


def test_not_json_is_422(small_limits: Service) -> None:
    response = httpx.post(
        small_limits.url + "/v1/validate",
        content=b"\xff\xfenot json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"tasks": [{"id": "t", "program": "def f(a):', "not valid JSON"),  # truncated
        (b'{"tasks": [', "not valid JSON: Expecting value at character 11"),
        (b'{"tasks": [{"id": "t", "program": "\xff", "inputs": ["1"]}]}', "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nests too deeply"),
    ],
    ids=["truncated", "truncated-list", "not-utf8", "too-deep"],
)
@pytest.mark.parametrize("path", ["/v1/validate", "/v1/verify"])
def test_a_body_that_does_not_parse_is_422_naming_the_problem(
    small_limits: Service, path: str, body: bytes, problem: str
) -> None:
    response = httpx.post(
        small_limits.url + path, content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("body: ") and problem in detail, detail


def test_api_keys() -> None:
    with running_service(AZR_API_KEYS='["k-one", "k-two"]') as service:
        body = {"tasks": [task()]}
        missing = httpx.post(service.url + "/v1/validate", json=body, timeout=30)
        assert missing.status_code == 401 and "Bearer" in missing.json()["detail"]
        wrong = httpx.post(service.url + "/v1/validate", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.get(service.url + "/v1/jobs/x").status_code == 401
        ok = httpx.post(
            service.url + "/v1/validate", json=body, headers={"Authorization": "Bearer k-two"}, timeout=30
        )
        assert ok.status_code == 200 and ok.json()["results"][0]["valid"]
        assert httpx.get(service.url + "/healthz").status_code == 200


def test_chunked_body_over_the_limit_is_413(small_limits: Service) -> None:
    """A body sent without Content-Length is counted as it streams in."""

    def chunks():  # noqa: ANN202
        yield b'{"tasks": [{"id": "t", "program": "'
        for _ in range(30):
            yield b"#" * 1000
        yield b'", "inputs": ["1"]}]}'

    response = httpx.post(
        small_limits.url + "/v1/validate",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert "AZR_MAX_BODY_BYTES" in response.json()["detail"]
