"""A one-minute soak (scripts/soak.py runs the 30-minute one) in queue mode and in embedded
mode: the service under full load with the realistic mix (AZR seeds, repeats, verify, ~5% hostile programs, cache
misses every 20 s). Every verdict must come back right, and no process, open file or
container may be left over. A minute is too short for a memory slope (the allocators are
still settling); it only bounds the growth, and the long soak measures the slope."""

from __future__ import annotations

import shutil

import pytest

from bench.endurance.soak import run_soak

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


@pytest.mark.parametrize("workers", [2, 0], ids=["queue", "embedded"])
def test_one_minute_soak_loses_nothing_and_leaks_nothing(workers: int) -> None:
    report = run_soak(
        minutes=1,
        sample_s=15,
        workers=workers,
        clients=3,
        batch=12,
        warmup_s=10,
        miss_every_s=20,
        service_env={"AZR_CACHE_MAX_MB": "16"},
    )
    summary = report.table()
    assert report.requests >= 20 and len(report.samples) >= 4, summary
    assert report.lost == 0 and report.server_errors == 0, (summary, report.problems)
    first, last = report.samples[0], report.samples[-1]
    # the API, the workers and their zygotes (embedded: the API's own zygotes)
    assert first.processes == last.processes > 1 + workers, summary
    assert first.containers == last.containers, summary
    assert all(growth <= 2 for growth in report.fd_growth().values()), summary
    for key, stat in last.stats.items():
        if key in first.stats:
            assert stat.rss_mb - first.stats[key].rss_mb < 64, (key, summary)
