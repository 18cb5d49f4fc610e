"""The Kubernetes worker's securityContext (deploy/k8s/base/worker.yaml) is enough for the
sandbox, and each capability in it is needed: with no cluster at hand, the same context is
given to the service image by `docker run` (uid 0, drop ALL plus the manifest's additions,
no-new-privileges, read-only root with the manifest's emptyDirs as tmpfs, the runtime's
default seccomp profile, the manifest's environment), and inside it the worker's sandbox pool
starts with every layer (uid, Landlock, seccomp; no downgrade), passes the escape self-test,
and judges programs. Without SETUID the pool refuses to start; without KILL a child past its
deadline cannot be killed by its zygote (one that blocks without CPU lives on)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "deploy" / "k8s" / "base" / "worker.yaml"
IMAGE = os.environ.get("AZR_SERVICE_IMAGE", "azr/service:latest")  # sandbox_images/build's name

# What runs in the container: this checkout's code (mounted read-only over the image's: the
# image supplies Debian's python3 and the dependencies), the worker's engine from its settings
# (the manifest's environment), the start-up self-test, and a few verdicts.
PROBE = r"""
import concurrent.futures, json, os, time
from executor.settings import get_settings
from api.services.backends import make_engine
from executor.sandbox.protocol import SandboxJob
from executor.sandbox.selftest import self_test
from executor.verdicts import ValidateTask

out = {}
try:
    engine = make_engine(get_settings())
    engine.start()
except Exception as exc:
    print(json.dumps({"start_error": f"{type(exc).__name__}: {exc}"}))
    raise SystemExit(0)
info = engine.pool.zygote_info()
out["layers"] = sorted(
    {k for z in info for k, v in z.get("layers", {}).items() if v and not str(v).startswith("missing")}
)
out["downgraded"] = sorted({d for z in info for d in z.get("downgraded", ())})
out["self_test_failures"] = list(self_test(engine.pool))
tasks = [
    ValidateTask("ok", "def f(a):\n    return a[::-1]", ["'abc'"]),
    ValidateTask("passwd", "def f(a):\n    return open('/etc/passwd').read()", ["1"]),
    ValidateTask("spin", "def f(a):\n    while True:\n        a += 1", ["1"]),
]
out["verdicts"] = {r.id: str(r.verdict) for r in engine.validate(tasks, repeats=2, timeout_s=1)}
# A child that blocks without using CPU (a lock acquired twice; a raw pool job, so no static
# check refuses the import): only its zygote's SIGKILL at the deadline ends it.
blocked = "def f(a):\n    import _thread\n    l = _thread.allocate_lock()\n    l.acquire()\n    l.acquire()"
future = engine.pool.submit(SandboxJob(blocked, "1", calls=1, timeout_s=1, cpu_s=2), 0)
try:
    out["blocked"] = future.result(timeout=10).status
except concurrent.futures.TimeoutError:
    out["blocked"] = "no result in 10 s"
time.sleep(1)
out["leftover_children"] = sum(
    1 for pid in os.listdir("/proc") if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid != 0
)
print(json.dumps(out), flush=True)
os._exit(0)  # a zygote that cannot kill its child cannot be closed cleanly either
"""


def worker_manifest() -> dict[str, Any]:
    for document in yaml.safe_load_all(WORKER.read_text()):
        if document and document["kind"] == "Deployment":
            return dict(document)
    raise AssertionError("no Deployment in worker.yaml")


def docker_flags(manifest: dict[str, Any], drop: frozenset[str] = frozenset()) -> list[str]:
    """`docker run` flags for the worker container's securityContext, volumes and env."""
    spec = manifest["spec"]["template"]["spec"]
    [container] = spec["containers"]
    context = container["securityContext"]
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"  # = Docker's default
    flags = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}", "--network", "none"]
    flags += [f"--cap-drop={cap}" for cap in context["capabilities"]["drop"]]
    flags += [f"--cap-add={cap}" for cap in context["capabilities"].get("add", []) if cap not in drop]
    if context["allowPrivilegeEscalation"] is False:
        flags += ["--security-opt", "no-new-privileges"]
    if context["readOnlyRootFilesystem"]:
        flags.append("--read-only")
    assert context["privileged"] is False
    empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    for mount in container["volumeMounts"]:
        assert mount["name"] in empty_dirs, "only emptyDir volumes are emulated"
        flags += ["--tmpfs", f"{mount['mountPath']}:exec,mode=1777"]
    for variable in container["env"]:
        if "value" in variable and variable["name"] != "AZR_REDIS_URL":
            flags += ["--env", f"{variable['name']}={variable['value']}"]
    return flags


def run_probe(flags: list[str]) -> dict[str, Any]:
    code = [f"--volume={REPO / package}:/opt/checkout/{package}:ro" for package in ("executor", "api")]
    done = subprocess.run(
        ["docker", "run", "--rm", "--init", *flags, *code, "--env", "PYTHONPATH=/opt/checkout"]
        + [IMAGE, "python3", "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout[-2000:] + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@pytest.fixture(scope="module")
def service_image() -> None:
    if shutil.which("docker") is None:
        pytest.skip("LOUD SKIP: no docker CLI (sandbox_images/build installs docker.io)")
    probe = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"LOUD SKIP: no {IMAGE} image or no Docker engine (run sandbox_images/build)")


def test_the_manifests_context_runs_the_sandbox_with_every_layer(service_image: None) -> None:
    result = run_probe(docker_flags(worker_manifest()))
    assert "start_error" not in result, result
    assert {"uid", "landlock", "seccomp"} <= set(result["layers"]), result
    assert result["downgraded"] == [], result
    assert result["self_test_failures"] == [], result
    assert result["verdicts"]["ok"] == "ok", result
    assert result["verdicts"]["passwd"] in ("forbidden", "runtime_error"), result
    assert result["verdicts"]["spin"] == "timeout", result
    assert result["blocked"] == "timeout" and result["leftover_children"] == 0, result


def test_without_setuid_the_worker_refuses_to_serve(service_image: None) -> None:
    """Each child's setuid() fails: no program runs, and the start-up self-test (which a
    worker must pass before it takes jobs) says so."""
    result = run_probe(docker_flags(worker_manifest(), drop=frozenset({"SETUID"})))
    assert "start_error" in result or result["self_test_failures"], result


def test_without_kill_a_zygote_cannot_kill_its_children(service_image: None) -> None:
    """CAP_KILL is what lets the zygote (uid 0) SIGKILL a child under another uid at its
    deadline. Without it a spinner still ends at its CPU rlimit, but a child blocked without
    using CPU lives on, and its zygote gives no result for it."""
    result = run_probe(docker_flags(worker_manifest(), drop=frozenset({"KILL"})))
    assert "start_error" not in result, result
    assert result["blocked"] != "timeout" and result["leftover_children"] >= 1, result
