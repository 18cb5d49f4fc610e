"""Every setting of the engine, the service and the workers: one tree, one default per value.

``Settings`` holds one section per concern (``limits``, ``sizes``, ``engine``, ``cache``,
``sandbox``, ``docker``, ``api``, ``queue``, ``worker``, ``audit``, ``data``, and ``policy``,
which is set in code only). Every other field is read from one ``AZR_*`` environment
variable (or a ``.env`` file in the working directory; the environment wins): by default
``AZR_`` + the section's prefix + the field's name in capitals, with the exceptions listed
in ``_ENV_NAMES`` (the names the service has always used). ``env_settings()`` lists them
all; the README's settings table is generated from it (``azr-exec settings --markdown``) and
a test keeps the two equal.

An empty variable counts as unset (``AZR_API_KEYS=`` means no keys). A list is given as
JSON (``AZR_API_KEYS='["key-1", "key-2"]'``). A malformed value stops start-up with a
one-line ``SettingsError`` that names the variable.

This module imports only the two leaf models it holds (``executor.limits``,
``executor.policy``), so every layer above may import it.
"""

from __future__ import annotations

import functools
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from executor.limits import Limits, SizeLimits
from executor.policy import Policy

# The data sets the tests and the benchmark use (CRUXEval, AZR seeds) ship here.
REPOSITORY_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
ConfinementLayer = Literal["landlock", "seccomp", "uid"]


class SettingsError(ValueError):
    """A setting that cannot be used; the message names its variable and says why, on one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Section):
    """What a call gets when it does not say."""

    repeats: int = Field(
        2,
        ge=1,
        le=16,
        description="Determinism runs per input when a request does not say (the contract's 2).",
    )
    max_timeout_s: float = Field(30.0, gt=0, description="Most a request may ask for as its timeout_s.")


class CacheSettings(_Section):
    """The result cache (in memory when embedded; in Redis, shared by all workers, in queue mode)."""

    entries: int = Field(100_000, ge=0, description="In-memory cache entries (0: no cache).")
    max_mb: float = Field(
        256.0,
        ge=0,
        description="In-memory cache: most megabytes its entries hold (estimated; the oldest go first).",
    )
    ttl_s: int = Field(7 * 86400, ge=1, description="Queue mode: how long Redis keeps a cached result.")
    redis_url: str | None = Field(
        None,
        description="Queue mode: the Redis of the result cache, best one with `maxmemory` and `allkeys-lru`; "
        "unset: the queue's Redis, where nothing bounds the cache but `AZR_CACHE_TTL_S`.",
    )


class SandboxSettings(_Section):
    """The sandbox pool: lanes of warm zygotes, the children they fork, their confinement."""

    backend: Literal["local", "docker"] = Field(
        "local", description="`local`: zygotes in this host's process tree; `docker`: in sandbox containers."
    )
    lanes: int = Field(
        2,
        ge=1,
        le=64,
        description="Distinct hash-seed lanes, at least `AZR_MAX_REPEATS`: a valid output holds under "
        "every hash seed in use, so every later run reproduces it.",
    )
    zygotes_per_lane: int = Field(2, ge=1, le=64, description="Warm zygotes per lane.")
    uid_base: int | None = Field(
        61000, ge=1, description="First uid of the children (one uid per zygote) when running as root."
    )
    fast_slots: int = Field(2, ge=1, le=64, description="Children per zygote at full priority.")
    max_live: int = Field(24, ge=1, le=1024, description="Children alive per zygote, demoted ones included.")
    demote_after_ms: float = Field(
        50.0, gt=0, description="A child running longer drops to the lowest priority and frees its fast slot."
    )
    allow_missing: tuple[ConfinementLayer, ...] = Field(
        (),
        description="Confinement layers the sandbox may start without, e.g. `'[\"landlock\"]'` on an old "
        "kernel (an explicit downgrade, shown in `/readyz`); empty: a missing layer stops the service.",
    )
    python: str = Field(
        "", description="The sandbox interpreter; empty: `/usr/bin/python3`, else the service's own."
    )
    build_dir: str = Field(
        "", description="Where the zygote's C loop is built (0700); empty: `~/.cache/azr-exec`."
    )
    retries: int = Field(1, ge=0, le=5, description="Re-runs of a job that ended in `sandbox_error`.")

    @model_validator(mode="after")
    def _slots_fit(self) -> SandboxSettings:
        if self.fast_slots > self.max_live:
            raise ValueError(f"fast_slots ({self.fast_slots}) must not exceed max_live ({self.max_live})")
        return self


class DockerSettings(_Section):
    """Sandbox containers (`AZR_SANDBOX_BACKEND=docker`); see docs/docker.md."""

    image: str = Field("azr/sandbox:latest", description="The sandbox image (`sandbox_images/build`).")
    image_mismatch: Literal["refuse", "warn"] = Field(
        "refuse", description="An image built from another runtime: refuse to start, or only warn."
    )
    owner: str = Field(
        "", description="Labels this worker's containers; empty: host, pid and a random suffix."
    )
    socket_dir: str = Field(
        "",
        description="Where the containers' socket directories are made; empty: `/run/azr-sandboxes`, "
        "else `/tmp/azr-sandboxes`.",
    )
    socket_host_dir: str = Field(
        "",
        description="The same directory as the Docker host sees it (a worker in a container); empty: the same.",
    )
    memory_mb: int | None = Field(
        None,
        ge=64,
        description="Memory of one container; empty: every child's own limit fits "
        "(`AZR_MEMORY_MB` x `AZR_SANDBOX_MAX_LIVE` + 256).",
    )
    pids_limit: int | None = Field(
        None,
        ge=16,
        description="Processes of one container; empty: 2 x `AZR_SANDBOX_MAX_LIVE` + 16, at least 64.",
    )
    cpus: float = Field(1.0, gt=0, description="CPUs of one container.")
    tmpfs_mb: int = Field(16, ge=1, description="The container's /tmp (noexec).")
    runtime: str | None = Field(None, description='The container runtime, e.g. "runsc" for gVisor.')
    cgroup_parent: str | None = Field(None, description="A cgroup to start the containers under.")
    start_timeout_s: float = Field(30.0, gt=0, description="Longest a container may take to open its socket.")
    watchdog_s: float = Field(
        2.0, gt=0, description="How often a channel waiting on a busy container checks that it runs."
    )
    recycle_after: int = Field(
        50_000, ge=0, description="Replace a container after this many jobs (0: never)."
    )
    docker_url: str | None = Field(
        None, description="The Docker engine; empty: `DOCKER_HOST` or the default socket."
    )
    reap_orphans: bool = Field(True, description="Remove containers of dead workers when a pool starts.")


class ApiSettings(_Section):
    """The HTTP service."""

    api_keys: list[str] = Field(
        default_factory=list, description="JSON list of Bearer keys; empty: no authentication."
    )
    max_tasks_per_request: int = Field(4096, ge=1, description="Tasks or answers per request (413 above).")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Request body (413 above).")
    request_deadline_s: float = Field(300.0, gt=0, description="Longest a synchronous request waits.")
    max_inflight_executions: int = Field(
        100_000, ge=1, description="Embedded mode: tasks in flight above which requests get 429."
    )
    log_level: Literal["", "DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "", description="Log level of `azr-exec`; empty: INFO for serve and worker, else WARNING."
    )


class QueueSettings(_Section):
    """Queue mode: Redis + RQ workers on any number of hosts."""

    redis_url: str | None = Field(None, description="Set: queue mode; unset: embedded mode.")
    queue_name: str = Field("azr-verify", min_length=1, description="The RQ queue.")
    chunk_min_tasks: int = Field(8, ge=1, description="Fewest tasks in one RQ job.")
    chunk_max_tasks: int = Field(256, ge=1, description="Most tasks in one RQ job.")
    max_queue_depth: int = Field(2000, ge=1, description="Queued chunks above which requests get 429.")
    job_result_ttl_s: int = Field(3600, ge=1, description="How long a finished job's results are kept.")
    job_failure_ttl_s: int = Field(86400, ge=1, description="How long a failed job is kept.")
    job_retries: int = Field(3, ge=0, description="Re-runs of a job whose worker died.")

    @model_validator(mode="after")
    def _chunks_fit(self) -> QueueSettings:
        if self.chunk_min_tasks > self.chunk_max_tasks:
            raise ValueError(
                f"chunk_min_tasks ({self.chunk_min_tasks}) must not exceed chunk_max_tasks ({self.chunk_max_tasks})"
            )
        return self


class WorkerSettings(_Section):
    """`azr-exec worker`."""

    heartbeat_grace_s: int = Field(10, ge=1, description="A dead worker's job is re-queued after this.")
    maintenance_s: int = Field(5, ge=1, description="How often a worker runs RQ's registry maintenance.")
    metrics_port: int = Field(
        9100, ge=0, le=65535, description="The worker's /metrics (the next free one of 20); 0: none."
    )
    metrics_addr: str = Field("0.0.0.0", description="The address the worker's /metrics listens on.")


class AuditSettings(_Section):
    """The audit trail of unsafe and non-deterministic programs (api/audit)."""

    enabled: bool = Field(True, description="Record verdicts at all.")
    dir: str = Field(".azr-audit", description="Embedded mode's audit store and queue mode's query index.")
    sample_ok: float = Field(0.01, ge=0, le=1, description="Fraction of ok verdicts recorded.")
    sample_wrong: float = Field(0.0, ge=0, le=1, description="Fraction of wrong verdicts recorded.")
    max_records: int = Field(
        200_000,
        ge=1,
        description="Retention by count (queue mode keeps them in the queue's Redis: up to ~10 KB each, ~1.4 KB typical).",
    )
    retention_days: float = Field(14.0, gt=0, description="Retention by age.")
    stream: str = Field("azr:audit", min_length=1, description="Queue mode: the Redis stream of records.")
    max_program_chars: int = Field(8000, ge=100, description="Longest program text kept in a record.")
    max_input_chars: int = Field(2000, ge=100, description="Longest input text kept in a record.")


class DataSettings(_Section):
    """Workloads for the tests and the benchmark."""

    dir: Path = Field(
        REPOSITORY_DATA_DIR,
        description="CRUXEval and the AZR seeds; default: the repository's `data/` ([data/README.md](data/README.md)).",
    )


class Settings(BaseSettings):
    """The whole tree. `Settings()` reads the environment; keyword arguments win over it."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    limits: Limits = Field(default_factory=Limits)
    sizes: SizeLimits = Field(default_factory=SizeLimits)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    docker: DockerSettings = Field(default_factory=DockerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    policy: Policy = Field(default_factory=Policy)

    @model_validator(mode="after")
    def _a_lane_per_repeat(self) -> Settings:
        """As many hash-seed lanes as the most repeats a request may ask for."""
        if self.sandbox.lanes < self.sizes.max_repeats:
            lanes = self.sandbox.model_copy(update={"lanes": self.sizes.max_repeats})
            object.__setattr__(self, "sandbox", lanes)
        return self

    def updated(self, **sections: Mapping[str, Any]) -> Settings:
        """A validated copy with some fields changed, e.g. `updated(sandbox={"lanes": 1})`
        (the environment is not read again)."""
        data = self.model_dump()
        for section, fields in sections.items():
            if section not in data:
                raise SettingsError(f"no settings section {section!r}; there are {', '.join(data)}")
            data[section].update(fields)
        return type(self).model_validate(data)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, EnvironmentSource(settings_cls))


# --------------------------------------------------------------------------- variables

# Section -> the prefix of its variables after AZR_ (None: set in code only).
_SECTION_PREFIX: dict[str, str | None] = {
    "limits": "",
    "sizes": "",
    "engine": "",
    "cache": "CACHE_",
    "sandbox": "SANDBOX_",
    "docker": "SANDBOX_",
    "api": "",
    "queue": "",
    "worker": "WORKER_",
    "audit": "AUDIT_",
    "data": "DATA_",
    "policy": None,
}
# Fields set in code only: the contract fixes the default repeats (2), so the HTTP schema
# shows it, and a variable could not change it there.
_CODE_ONLY = {("engine", "repeats")}
# Variables that do not follow the rule: the names the service has always read.
_ENV_NAMES: dict[tuple[str, str], str] = {
    ("limits", "timeout_s"): "AZR_DEFAULT_TIMEOUT_S",
    ("sandbox", "build_dir"): "AZR_CACHE_DIR",
    ("docker", "owner"): "AZR_WORKER_ID",
    ("docker", "docker_url"): "AZR_DOCKER_URL",
}


@dataclass(frozen=True)
class EnvSetting:
    """One leaf of the tree and the variable that sets it."""

    variable: str
    section: str
    name: str
    field: FieldInfo

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    def default(self) -> Any:
        return self.field.get_default(call_default_factory=True)

    def parse(self, raw: str) -> Any:
        """The value of `raw` for this field; a SettingsError names the variable if it is not one."""
        text = raw.strip()
        if _is_collection(self.field.annotation):
            try:
                value: Any = json.loads(text)
            except json.JSONDecodeError as exc:
                raise SettingsError(
                    f"{self.variable}={_quoted(raw)}: not a JSON list ({exc.msg}); write it as "
                    f'\'["a", "b"]\', or leave it empty for none'
                ) from None
        else:
            value = text
        annotation: Any = self.field.annotation
        if self.field.metadata:  # the field's constraints (ge, le, ...)
            annotation = Annotated[annotation, *self.field.metadata]
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = "".join(f"[{part}]" for part in problem["loc"])
            raise SettingsError(
                f"{self.variable}={_quoted(raw)}: {problem['msg']}{' at ' + where if where else ''}"
            ) from None


def _is_collection(annotation: Any) -> bool:
    """A list, tuple, set or dict (alone or in a union with None): given as JSON."""
    arms = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else ()
    )
    return any(typing.get_origin(arm) in _COLLECTIONS for arm in (*arms, annotation))


_COLLECTIONS = (list, tuple, set, frozenset, dict)


def _quoted(raw: str) -> str:
    return repr(raw if len(raw) <= 60 else raw[:57] + "...")


@functools.cache
def env_settings() -> tuple[EnvSetting, ...]:
    """Every setting that a variable sets, in the tree's order."""
    found: list[EnvSetting] = []
    for section, section_field in Settings.model_fields.items():
        prefix = _SECTION_PREFIX[section]
        model = section_field.annotation
        if prefix is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for name, field in model.model_fields.items():
            if (section, name) in _CODE_ONLY:
                continue
            variable = _ENV_NAMES.get((section, name), f"AZR_{prefix}{name.upper()}")
            found.append(EnvSetting(variable, section, name, field))
    return tuple(found)


def variable(path: str) -> str:
    """The variable that sets `path` ("section.field"), for messages that name it."""
    return _variables()[path]


@functools.cache
def _variables() -> dict[str, str]:
    return {setting.path: setting.variable for setting in env_settings()}


class EnvironmentSource(PydanticBaseSettingsSource):
    """The tree's values from AZR_* variables (a `.env` file in the working directory below them)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # whole sections are built in __call__

    def __call__(self) -> dict[str, Any]:
        environ = self.environ if self.environ is not None else {**_dotenv(), **os.environ}
        values: dict[str, dict[str, Any]] = {}
        for setting in env_settings():
            raw = environ.get(setting.variable)
            if raw is None or not raw.strip():
                continue
            values.setdefault(setting.section, {})[setting.name] = setting.parse(raw)
        return values


def _dotenv(path: str = ".env") -> dict[str, str]:
    if not os.path.isfile(path):
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def load_settings(**overrides: Any) -> Settings:
    """`Settings(**overrides)` read from the environment, with any problem as one SettingsError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problem = exc.errors()[0]
        path = ".".join(str(part) for part in problem["loc"])
        message = str(problem["msg"]).removeprefix("Value error, ")
        settings = env_settings()
        exact = [s.variable for s in settings if s.path == path]
        # A section's own check (two fields that must agree): the variables its message names.
        named = exact or [s.variable for s in settings if s.section == path and s.name in message]
        where = ", ".join(named) or f"settings.{path}"
        raise SettingsError(f"{where}: {message}") from None


@functools.lru_cache
def get_settings() -> Settings:
    """This process's settings, read from the environment once."""
    return load_settings()


# --------------------------------------------------------------------------- documentation


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, Path):
        root = REPOSITORY_DATA_DIR.parent
        return f"`{value.relative_to(root)}/`" if value.is_relative_to(root) else f"`{value}`"
    if isinstance(value, list | tuple):
        return f"`{json.dumps(list(value))}`"
    if isinstance(value, str):
        return f"`{value}`" if value else "empty"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_table() -> str:
    """The README's settings table: every variable, the setting it sets, its default, its meaning."""
    lines = ["| variable | setting | default | meaning |", "|---|---|---|---|"]
    for setting in env_settings():
        meaning = (setting.field.description or "").replace("|", "\\|")
        lines.append(f"| `{setting.variable}` | `{setting.path}` | {_shown(setting.default())} | {meaning} |")
    return "\n".join(lines) + "\n"
