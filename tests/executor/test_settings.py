"""The settings tree (executor/settings.py): one default per value, the AZR_* variables the
service has always read, empty = unset, and a malformed value named in one line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from api.schemas import ValidateRequest
from executor.limits import Limits
from executor.sandbox.backends import pool_config
from executor.sandbox.pool import PoolConfig
from executor.sandbox.protocol import SandboxJob
from executor.settings import (
    REPOSITORY_DATA_DIR,
    EngineSettings,
    EnvironmentSource,
    SandboxSettings,
    Settings,
    SettingsError,
    env_settings,
    load_settings,
    markdown_table,
    variable,
)

REPO = Path(__file__).resolve().parents[2]
# Every variable the service, the workers and the engine read before the tree existed: each
# must still set the same thing.
VARIABLES_BEFORE = {
    "AZR_REDIS_URL": "queue.redis_url",
    "AZR_QUEUE_NAME": "queue.queue_name",
    "AZR_SANDBOX_BACKEND": "sandbox.backend",
    "AZR_API_KEYS": "api.api_keys",
    "AZR_MAX_TASKS_PER_REQUEST": "api.max_tasks_per_request",
    "AZR_MAX_BODY_BYTES": "api.max_body_bytes",
    "AZR_MAX_PROGRAM_CHARS": "sizes.max_program_chars",
    "AZR_MAX_INPUT_CHARS": "sizes.max_input_chars",
    "AZR_MAX_ANSWER_CHARS": "sizes.max_answer_chars",
    "AZR_MAX_INPUTS_PER_TASK": "sizes.max_inputs_per_task",
    "AZR_MAX_CASES_PER_ANSWER": "sizes.max_cases_per_answer",
    "AZR_MAX_REPEATS": "sizes.max_repeats",
    "AZR_DEFAULT_TIMEOUT_S": "limits.timeout_s",
    "AZR_MAX_TIMEOUT_S": "engine.max_timeout_s",
    "AZR_MEMORY_MB": "limits.memory_mb",
    "AZR_MAX_OUTPUT_CHARS": "limits.max_output_chars",
    "AZR_REQUEST_DEADLINE_S": "api.request_deadline_s",
    "AZR_SANDBOX_LANES": "sandbox.lanes",
    "AZR_SANDBOX_ZYGOTES_PER_LANE": "sandbox.zygotes_per_lane",
    "AZR_SANDBOX_UID_BASE": "sandbox.uid_base",
    "AZR_SANDBOX_FAST_SLOTS": "sandbox.fast_slots",
    "AZR_SANDBOX_MAX_LIVE": "sandbox.max_live",
    "AZR_SANDBOX_DEMOTE_AFTER_MS": "sandbox.demote_after_ms",
    "AZR_SANDBOX_ALLOW_MISSING": "sandbox.allow_missing",
    "AZR_SANDBOX_PYTHON": "sandbox.python",
    "AZR_CACHE_DIR": "sandbox.build_dir",
    "AZR_CACHE_ENTRIES": "cache.entries",
    "AZR_CACHE_TTL_S": "cache.ttl_s",
    "AZR_CHUNK_MIN_TASKS": "queue.chunk_min_tasks",
    "AZR_CHUNK_MAX_TASKS": "queue.chunk_max_tasks",
    "AZR_MAX_QUEUE_DEPTH": "queue.max_queue_depth",
    "AZR_MAX_INFLIGHT_EXECUTIONS": "api.max_inflight_executions",
    "AZR_JOB_RESULT_TTL_S": "queue.job_result_ttl_s",
    "AZR_JOB_FAILURE_TTL_S": "queue.job_failure_ttl_s",
    "AZR_JOB_RETRIES": "queue.job_retries",
    "AZR_WORKER_HEARTBEAT_GRACE_S": "worker.heartbeat_grace_s",
    "AZR_WORKER_MAINTENANCE_S": "worker.maintenance_s",
    "AZR_WORKER_METRICS_PORT": "worker.metrics_port",
    "AZR_WORKER_METRICS_ADDR": "worker.metrics_addr",
    "AZR_WORKER_ID": "docker.owner",
    "AZR_AUDIT_ENABLED": "audit.enabled",
    "AZR_AUDIT_DIR": "audit.dir",
    "AZR_AUDIT_SAMPLE_OK": "audit.sample_ok",
    "AZR_AUDIT_SAMPLE_WRONG": "audit.sample_wrong",
    "AZR_AUDIT_MAX_RECORDS": "audit.max_records",
    "AZR_AUDIT_RETENTION_DAYS": "audit.retention_days",
    "AZR_AUDIT_STREAM": "audit.stream",
    "AZR_AUDIT_MAX_PROGRAM_CHARS": "audit.max_program_chars",
    "AZR_AUDIT_MAX_INPUT_CHARS": "audit.max_input_chars",
    "AZR_SANDBOX_IMAGE": "docker.image",
    "AZR_SANDBOX_IMAGE_MISMATCH": "docker.image_mismatch",
    "AZR_SANDBOX_SOCKET_DIR": "docker.socket_dir",
    "AZR_SANDBOX_SOCKET_HOST_DIR": "docker.socket_host_dir",
    "AZR_SANDBOX_MEMORY_MB": "docker.memory_mb",
    "AZR_SANDBOX_PIDS_LIMIT": "docker.pids_limit",
    "AZR_SANDBOX_CPUS": "docker.cpus",
    "AZR_SANDBOX_TMPFS_MB": "docker.tmpfs_mb",
    "AZR_SANDBOX_RUNTIME": "docker.runtime",
    "AZR_SANDBOX_CGROUP_PARENT": "docker.cgroup_parent",
    "AZR_SANDBOX_RECYCLE_AFTER": "docker.recycle_after",
    "AZR_DOCKER_URL": "docker.docker_url",
    "AZR_DATA_DIR": "data.dir",
    "AZR_LOG_LEVEL": "api.log_level",  # docker-compose.yml set it; now it is read
}


_ENVIRON: dict[str, str] = {}


class Isolated(Settings):
    """Settings read from `_ENVIRON` instead of this process's environment."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_: object):  # type: ignore[override]
        return (init_settings, EnvironmentSource(settings_cls, _ENVIRON))


def from_environ(environ: dict[str, str], **overrides: object) -> Settings:
    """Settings from exactly `environ` (not this process's environment)."""
    _ENVIRON.clear()
    _ENVIRON.update(environ)
    return Isolated(**overrides)  # type: ignore[arg-type]


def test_every_variable_read_before_still_sets_the_same_setting() -> None:
    now = {setting.variable: setting.path for setting in env_settings()}
    for name, path in VARIABLES_BEFORE.items():
        assert now.get(name) == path, name


def test_variables_are_unique_and_follow_the_prefix() -> None:
    names = [setting.variable for setting in env_settings()]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"AZR_[A-Z0-9_]+", name) for name in names)


def test_the_environment_sets_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_environ(
        {
            "AZR_SANDBOX_LANES": "3",
            "AZR_MEMORY_MB": "256",
            "AZR_API_KEYS": '["k1", "k2"]',
            "AZR_SANDBOX_ALLOW_MISSING": '["landlock"]',
            "AZR_AUDIT_ENABLED": "false",
            "AZR_REDIS_URL": "redis://127.0.0.1:6379/0",
            "AZR_DATA_DIR": "/srv/data",
            "AZR_SANDBOX_MEMORY_MB": "4096",
        }
    )
    assert settings.sandbox.lanes == 3
    assert settings.limits.memory_mb == 256
    assert settings.api.api_keys == ["k1", "k2"]
    assert settings.sandbox.allow_missing == ("landlock",)
    assert settings.audit.enabled is False
    assert settings.queue.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.data.dir == Path("/srv/data")
    assert settings.docker.memory_mb == 4096


def test_the_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZR_MAX_QUEUE_DEPTH", "17")
    assert Settings().queue.max_queue_depth == 17
    assert load_settings().queue.max_queue_depth == 17


def test_a_dotenv_file_in_the_working_directory_is_read_below_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("AZR_MAX_QUEUE_DEPTH=11\nAZR_CHUNK_MIN_TASKS=4\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZR_CHUNK_MIN_TASKS", "5")
    settings = Settings()
    assert settings.queue.max_queue_depth == 11 and settings.queue.chunk_min_tasks == 5


@pytest.mark.parametrize(
    "name", ["AZR_API_KEYS", "AZR_SANDBOX_LANES", "AZR_REDIS_URL", "AZR_SANDBOX_MEMORY_MB"]
)
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_variable_is_unset(name: str, empty: str) -> None:
    assert from_environ({name: empty}) == from_environ({})


def test_empty_api_keys_mean_no_keys() -> None:
    assert from_environ({"AZR_API_KEYS": ""}).api.api_keys == []


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("AZR_API_KEYS", "key-1", "not a JSON list"),
        ("AZR_API_KEYS", "[", "not a JSON list"),
        ("AZR_API_KEYS", "[1]", "valid string"),
        ("AZR_SANDBOX_LANES", "two", "valid integer"),
        ("AZR_SANDBOX_LANES", "0", "greater than or equal to 1"),
        ("AZR_SANDBOX_BACKEND", "podman", "'local' or 'docker'"),
        ("AZR_SANDBOX_ALLOW_MISSING", '["selinux"]', "'landlock', 'seccomp' or 'uid'"),
        ("AZR_AUDIT_ENABLED", "maybe", "valid boolean"),
        ("AZR_DEFAULT_TIMEOUT_S", "-1", "greater than 0"),
    ],
)
def test_a_malformed_variable_is_one_line_that_names_it(name: str, raw: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        from_environ({name: raw})
    message = str(caught.value)
    assert message.startswith(f"{name}={raw!r}: ") and says in message, message
    assert "\n" not in message


def test_a_check_across_two_fields_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZR_SANDBOX_FAST_SLOTS", "30")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("AZR_SANDBOX_FAST_SLOTS, AZR_SANDBOX_MAX_LIVE: fast_slots (30)")


def test_keyword_arguments_win_over_the_environment() -> None:
    settings = from_environ({"AZR_SANDBOX_LANES": "5", "AZR_SANDBOX_MAX_LIVE": "8"}, sandbox={"lanes": 3})
    assert settings.sandbox.lanes == 3 and settings.sandbox.max_live == 8


def test_a_lane_per_repeat() -> None:
    assert from_environ({"AZR_MAX_REPEATS": "4", "AZR_SANDBOX_LANES": "2"}).sandbox.lanes == 4
    assert from_environ({"AZR_MAX_REPEATS": "1", "AZR_SANDBOX_LANES": "1"}).sandbox.lanes == 1


def test_updated_validates_and_does_not_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    base = from_environ({})
    monkeypatch.setenv("AZR_SANDBOX_MAX_LIVE", "9")
    changed = base.updated(sandbox={"backend": "docker"})
    assert changed.sandbox.backend == "docker" and changed.sandbox.max_live == base.sandbox.max_live
    with pytest.raises(Exception, match="local"):
        base.updated(sandbox={"backend": "podman"})
    with pytest.raises(SettingsError, match="no settings section"):
        base.updated(sandboxes={"lanes": 1})


def test_one_default_per_value() -> None:
    """What a pool, a job and a request get without settings is the tree's default."""
    defaults = from_environ({})
    built = pool_config(defaults)
    bare = PoolConfig()
    for field in dataclasses.fields(PoolConfig):
        if field.name not in ("python", "forbidden_modules"):  # the policy's, and the host's
            assert getattr(bare, field.name) == getattr(built, field.name), field.name
    job = SandboxJob("def f():\n    return 1", "")
    assert (job.timeout_s, job.memory_mb, job.cpu_s) == (
        defaults.limits.timeout_s,
        defaults.limits.memory_mb,
        Limits().cpu_seconds(),
    )
    assert ValidateRequest.model_fields["repeats"].default == EngineSettings().repeats == 2
    assert SandboxSettings().lanes == defaults.sandbox.lanes
    assert defaults.data.dir == REPOSITORY_DATA_DIR == REPO / "data"
    assert (REPOSITORY_DATA_DIR / "cruxeval" / "cruxeval.jsonl").is_file()


def test_the_names_in_messages_come_from_the_tree() -> None:
    assert variable("sizes.max_repeats") == "AZR_MAX_REPEATS"
    assert variable("limits.timeout_s") == "AZR_DEFAULT_TIMEOUT_S"
    with pytest.raises(KeyError):
        variable("engine.repeats")  # set in code only: the contract fixes it


def test_the_readme_table_is_the_trees() -> None:
    readme = (REPO / "README.md").read_text()
    begin, end = "<!-- settings-table: begin -->\n", "<!-- settings-table: end -->"
    assert begin in readme and end in readme, "README.md lost its settings-table markers"
    table = readme.split(begin, 1)[1].split(end, 1)[0]
    assert table == markdown_table(), "regenerate it: azr-exec settings --markdown"
