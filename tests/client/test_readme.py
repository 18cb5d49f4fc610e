"""client/README.md's Python examples run as written (only the service URL is the test's)."""

from __future__ import annotations

import pytest

from tests.client.conftest import readme_blocks

BLOCKS = readme_blocks("python")


def test_readme_has_the_examples() -> None:
    text = "\n".join(BLOCKS)
    for name in (
        "make_reward_fn",
        "make_verl_compute_score",
        "make_verl_batch_compute_score",
        "# azr_reward.py",
    ):
        assert name in text, name


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[b.splitlines()[0][:40] for b in BLOCKS])
def test_readme_python_example_runs(real_service, index: int) -> None:
    code = readme_blocks("python", real_service.url)[index]
    assert real_service.url in code, "every example talks to a service"
    exec(compile(code, f"client/README.md python block {index}", "exec"), {"__name__": "readme_example"})
