"""deploy/k8s, validated offline: every YAML document parses and holds together (kinds, names,
labels, selectors, ports, the Redis URLs, the queue's noeviction Redis apart from the result
cache's LRU Redis), the kustomizations build (`kubectl kustomize`), the result validates against
the Kubernetes schemas (`kubernetes-validate --strict`), and checkov finds nothing that is not
skipped with a reason. `kubectl apply --dry-run=client` is not used: it needs a cluster to
discover its resource types, even on the client side.

The tools come from `.tools/` (scripts/bootstrap.sh test installs them there, pinned) or PATH;
a test whose tool is missing skips and says so."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
KUSTOMIZATIONS = [K8S, K8S / "overlays" / "prometheus-operator"]
WORKLOADS = {"Deployment", "StatefulSet"}
NAME_LABEL = ("app.kubernetes.io/name", "azr-verification")
NAMESPACE = "azr"
QUEUE_NAME = "azr-verify"  # executor/settings.py: QueueSettings.queue_name


def tool(name: str) -> str:
    for candidate in (ROOT / ".tools" / "bin" / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.skip(f"LOUD SKIP: {name} is not installed (scripts/bootstrap.sh test installs it into .tools/)")


def documents(directory: Path = K8S) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(directory.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                yield path, document


def base_resources() -> list[dict[str, Any]]:
    return [d for p, d in documents(BASE) if d["kind"] != "Kustomization"]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in base_resources() if d["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: dict[str, Any]) -> dict[str, Any]:
    [only] = pod_spec(workload)["containers"]
    return dict(only)


def env(workload: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload).get("env", [])}


def arg(workload: dict[str, Any], flag: str) -> str:
    args: list[str] = container(workload)["args"]
    assert args.count(flag) == 1, f"{workload['metadata']['name']}: {flag} given {args.count(flag)} times"
    return args[args.index(flag) + 1]


def redis_bytes(size: str) -> int:
    """Redis' memory units: 1gb = 1024**3 bytes, 1g = 10**9 (redis.conf)."""
    units = {"b": 1, "k": 10**3, "kb": 2**10, "m": 10**6, "mb": 2**20, "g": 10**9, "gb": 2**30}
    number = size.rstrip("bBkKmMgG")
    return int(number) * units[size[len(number) :].lower() or "b"]


def k8s_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


# ----------------------------------------------------------------------------- structure


def test_every_document_parses_and_names_itself() -> None:
    found = list(documents())
    assert found, "no manifests under deploy/k8s"
    for path, document in found:
        where = f"{path.relative_to(ROOT)}: {document.get('kind')}"
        assert document.get("apiVersion") and document.get("kind"), where
        if document["kind"] in ("Kustomization", "Component"):
            for entry in document.get("resources", []) + document.get("components", []):
                assert (path.parent / entry).exists(), f"{where} names {entry}, which does not exist"
            continue
        metadata = document["metadata"]
        assert metadata.get("name"), where
        labels = metadata.get("labels", {})
        assert labels.get(NAME_LABEL[0]) == NAME_LABEL[1], f"{where} lacks the {NAME_LABEL[0]} label"
        if document["kind"] != "Namespace":
            assert metadata.get("namespace") == NAMESPACE, f"{where} is not in namespace {NAMESPACE}"


def test_base_kustomization_lists_every_base_file() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_selectors_match_pod_labels_and_services_find_their_pods() -> None:
    workloads = {(d["kind"], d["metadata"]["name"]): d for d in base_resources() if d["kind"] in WORKLOADS}
    assert {name for _, name in workloads} == {"api", "worker", "redis", "redis-cache"}
    for (kind, name), workload in workloads.items():
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"{kind}/{name}: the selector misses its pods"
        assert labels.get("app.kubernetes.io/component") == name
    for name, service in by_kind("Service").items():
        selector = service["spec"]["selector"]
        matched = [
            w
            for w in workloads.values()
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, f"Service {name} selects {len(matched)} workloads"
        ports = {p["name"]: p["containerPort"] for p in container(matched[0])["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: no container port {port['targetPort']}"
            assert ports[port["targetPort"]] == port["port"]
    for name, budget in by_kind("PodDisruptionBudget").items():
        assert (
            budget["spec"]["selector"]["matchLabels"]
            == workloads[("Deployment", name)]["spec"]["selector"]["matchLabels"]
        )


def test_every_container_is_bounded_probed_and_locked_down() -> None:
    accounts = by_kind("ServiceAccount")
    for workload in (d for d in base_resources() if d["kind"] in WORKLOADS):
        name = workload["metadata"]["name"]
        spec, main = pod_spec(workload), container(workload)
        resources = main["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources[
            "limits"
        ].keys()
        assert "livenessProbe" in main and "readinessProbe" in main, name
        assert spec["automountServiceAccountToken"] is False and spec["serviceAccountName"] in accounts, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        context = main["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        mounted = {m["name"] for m in main.get("volumeMounts", [])}
        declared = {v["name"] for v in spec.get("volumes", [])} | {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        assert mounted <= declared, f"{name} mounts volumes it does not declare: {mounted - declared}"
        if name != "worker":  # the api and both Redis meet the `restricted` standard
            assert (
                spec["securityContext"]["runAsNonRoot"] is True
                and spec["securityContext"]["runAsUser"] >= 10000
            )
            assert "add" not in context["capabilities"], name


def test_worker_gets_exactly_what_the_sandbox_needs() -> None:
    worker = by_kind("Deployment")["worker"]
    context = container(worker)["securityContext"]
    # uid 0 in the container: each child setuid()s to its own uid; KILL: deadline kills
    assert context["runAsUser"] == 0
    assert sorted(context["capabilities"]["add"]) == ["KILL", "SETGID", "SETUID"]
    variables = env(worker)
    assert variables["AZR_SANDBOX_BACKEND"] == "local"  # no Docker socket in a pod
    assert (
        worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
        == variables["AZR_WORKER_METRICS_PORT"]
    )
    assert "volumes" in pod_spec(worker) and not any("hostPath" in v for v in pod_spec(worker)["volumes"])
    namespace = next(d for d in base_resources() if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_redis_is_persistent_and_everyone_finds_it() -> None:
    redis = by_kind("StatefulSet")["redis"]
    args = container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    [claim] = redis["spec"]["volumeClaimTemplates"]
    assert {m["name"]: m["mountPath"] for m in container(redis)["volumeMounts"]}[
        claim["metadata"]["name"]
    ] == "/data"
    assert args[args.index("--dir") + 1] == "/data"
    service = by_kind("Service")["redis"]
    assert redis["spec"]["serviceName"] == "redis" and service["spec"]["ports"][0]["port"] == 6379
    for name in ("api", "worker"):
        assert env(by_kind("Deployment")[name])["AZR_REDIS_URL"] == "redis://redis:6379/0"


def test_the_result_cache_has_a_bounded_lru_redis_of_its_own() -> None:
    """The queue's Redis must not evict (a lost job), so it must not hold the result cache,
    which grows with every new program: the workers put it in redis-cache, an LRU Redis whose
    `maxmemory` sits well below its container's memory limit, with nothing persisted."""
    cache = by_kind("Deployment")["redis-cache"]
    assert cache["spec"]["replicas"] == 1
    assert arg(cache, "--maxmemory-policy") == "allkeys-lru"
    assert arg(cache, "--appendonly") == "no" and arg(cache, "--save") == ""
    maxmemory = redis_bytes(arg(cache, "--maxmemory"))
    limit = k8s_bytes(container(cache)["resources"]["limits"]["memory"])
    assert 0 < maxmemory <= 0.8 * limit, (maxmemory, limit)  # room for fragmentation and buffers
    assert "volumes" not in pod_spec(cache) and "volumeMounts" not in container(cache)
    service = by_kind("Service")["redis-cache"]
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(6379, "redis")]
    deployments = by_kind("Deployment")
    assert env(deployments["worker"])["AZR_CACHE_REDIS_URL"] == "redis://redis-cache:6379/0"
    assert "AZR_CACHE_REDIS_URL" not in env(deployments["api"])  # the API keeps no result cache
    # The queue's Redis is still the one that refuses writes rather than lose a job.
    queue = by_kind("StatefulSet")["redis"]
    assert arg(queue, "--maxmemory-policy") == "noeviction"
    assert "--maxmemory" not in container(queue)["args"]


def test_workers_scale_on_the_rq_queue() -> None:
    [scaled] = by_kind("ScaledObject").values()
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "worker")
    assert "worker" in by_kind("Deployment")
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"rq:queue:{QUEUE_NAME}"  # RQ's list of waiting jobs
    host, port = trigger["metadata"]["address"].rsplit(":", 1)
    assert host == f"redis.{NAMESPACE}.svc.cluster.local" and port == "6379"
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]


def test_network_policies_wall_off_redis_and_the_workers() -> None:
    policies = by_kind("NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    redis_from = [peer for rule in policies["redis"]["spec"]["ingress"] for peer in rule["from"]]
    components = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for p in redis_from
        if "podSelector" in p
    }
    assert components == {"api", "worker"}
    worker_egress = policies["worker"]["spec"]["egress"]
    assert {port["port"] for rule in worker_egress for port in rule["ports"]} == {6379, 53}

    # The result cache's Redis: workers in, nothing else (no namespace or address peers).
    cache = policies["redis-cache"]["spec"]
    assert cache["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis-cache"
    assert cache["policyTypes"] == ["Ingress"]
    [rule] = cache["ingress"]
    assert rule["from"] == [
        {
            "podSelector": {
                "matchLabels": {NAME_LABEL[0]: NAME_LABEL[1], "app.kubernetes.io/component": "worker"}
            }
        }
    ]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]

    def egress_to(policy: str) -> set[tuple[str, int]]:
        return {
            (peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"], port["port"])
            for rule in policies[policy]["spec"]["egress"]
            for peer in rule.get("to", [])
            for port in rule["ports"]
        }

    assert egress_to("worker") == {("redis", 6379), ("redis-cache", 6379)}
    assert egress_to("api") == {("redis", 6379)}


# ----------------------------------------------------------------------------- tools


def built(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)) or "k8s")
def test_kustomizations_build_and_validate_against_the_schemas(directory: Path, tmp_path: Path) -> None:
    resources = built(directory)
    kinds = sorted(d["kind"] for d in resources)
    assert kinds.count("Deployment") == 3 and "StatefulSet" in kinds and "ScaledObject" in kinds
    assert all(d["metadata"].get("namespace") == NAMESPACE for d in resources if d["kind"] != "Namespace")
    images = {c["image"] for d in resources if d["kind"] in WORKLOADS for c in pod_spec(d)["containers"]}
    assert images == {"azr/service:0.1.0", "azr/redis:0.1.0"}
    workloads = {d["metadata"]["name"]: d for d in resources if d["kind"] in WORKLOADS}
    assert arg(workloads["redis"], "--maxmemory-policy") == "noeviction"
    assert arg(workloads["redis-cache"], "--maxmemory-policy") == "allkeys-lru"
    assert env(workloads["worker"])["AZR_CACHE_REDIS_URL"] == "redis://redis-cache:6379/0"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(resources))
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", str(rendered)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_validation_catches_a_broken_manifest(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: a replica count that is not an integer fails."""
    worker = by_kind("Deployment")["worker"]
    broken = json.loads(json.dumps(worker))
    broken["spec"]["replicas"] = "two"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "replicas" in done.stdout + done.stderr


def test_checkov_finds_nothing_unexplained(tmp_path: Path) -> None:
    report = tmp_path / "checkov"
    done = subprocess.run(
        [
            tool("checkov"),
            "--directory",
            str(K8S),
            "--framework",
            "kubernetes",
            "--skip-download",  # offline: no policy or guideline downloads
            "--output",
            "json",
            "--output-file-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    results = json.loads((report / "results_json.json").read_text())
    results = results if isinstance(results, list) else [results]
    failed = [c for r in results for c in r["results"]["failed_checks"]]
    skipped = [c for r in results for c in r["results"]["skipped_checks"]]
    passed = [c for r in results for c in r["results"]["passed_checks"]]
    assert passed, done.stdout[-2000:] + done.stderr[-2000:]
    assert not failed, [(c["check_id"], c["resource"], c["check_name"]) for c in failed]
    assert len(skipped) == sum(r["summary"]["skipped"] for r in results)
    assert not any(r["summary"]["parsing_errors"] for r in results), results
    for check in skipped:  # every skip carries its reason
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert len(reason) > 20 and reason != "No comment provided", (check["check_id"], check["resource"])
