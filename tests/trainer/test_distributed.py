"""Two processes under ``accelerate launch`` (CPU, gloo) train the tiny model for 3 steps against
a real ``azr-exec serve`` on loopback, and the run is checked against one process:

* after every step the parameters, buffers and trainer RNG are bit-identical on both ranks;
* each step's rollouts, loss and update equal those of a one-process run of the same global
  batch and seed started from the same state (the two-process run's checkpoint);
* every verdict request reached the service exactly once (a counting proxy sits between the
  trainer and the service, cross-checked with the service's own /metrics);
* the two-process run resumes from its checkpoint to the identical state.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from azr_trainer.config import load_config
from azr_trainer.launch import accelerate_command
from azr_trainer.trainer import Trainer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ACCELERATE_CONFIG = ROOT / "trainer" / "accelerate" / "cpu-2proc.yaml"
STEPS = 3
#: Losses and statistics: the two-process sums differ from one process's only in float order.
STAT_RTOL = 1e-4
#: Parameters after a step. AdamW moves each weight by about lr·sign(gradient); where the
#: gradient of a weight is ~0 up to float noise the sign may differ, so a few weights may differ
#: by up to 2·lr (lr = 1e-4 in tiny-cpu); all others agree to float precision.
PARAM_ATOL = 2.5e-4
PARAM_CLOSE = 1e-6
PARAM_FAR_FRACTION = 1e-3

# One prompt per generation call (generation.batch_size=1) makes the chunks, and so the
# sampling seeds, the same for 1 and 2 processes; mini-batches of 7 samples split 4/3 over two
# ranks, so the padded share and gradient accumulation (micro-batches of 2) are exercised.
RUN = [
    "train.steps=3",
    "train.save_every=1",
    "train.keep_checkpoints=0",
    "train.progress=false",
    "train.num_threads=1",
    "train.tensorboard=false",
    "generation.batch_size=1",
    "optim.mini_batch_size=7",
    "optim.micro_batch_size=2",
]


# ----------------------------------------------------------------------------- the proxy
class CountingProxy:
    """Forwards HTTP to the service and records every verdict request's item ids."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

            def _forward(self, body: bytes | None) -> None:
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")
                }
                resp = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=120
                )
                if body and self.path.split("?")[0] in ("/v1/validate", "/v1/verify"):
                    data = json.loads(body)
                    items = data.get("tasks") or data.get("answers") or []
                    with proxy.lock:
                        proxy.records.append(
                            {
                                "path": self.path,
                                "run": data.get("run"),
                                "step": data.get("step"),
                                "ids": [it["id"] for it in items],
                                "status": resp.status_code,
                            }
                        )
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def items(self, run: str) -> list[tuple[str, int | None, str]]:
        """(endpoint, step, id) of every item the run sent, one entry per time it was sent."""
        with self.lock:
            return [(r["path"], r["step"], i) for r in self.records if r["run"] == run for i in r["ids"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def proxy(azr_service: str) -> Iterator[CountingProxy]:
    p = CountingProxy(azr_service)
    yield p
    p.close()


def _served_requests(url: str) -> int:
    """Verdict requests the service has answered so far (its Prometheus counter)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"azr_requests_total\{([^}]*)\}\s+([0-9.e+]+)", line)
        if m and re.search(r'endpoint="/v1/(validate|verify)"', m.group(1)):
            total += float(m.group(2))
    return int(total)


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def warm_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from azr_trainer.modeling import build_or_load_tiny

    out = tmp_path_factory.mktemp("dist-base")
    build_or_load_tiny(load_config(preset="tiny-cpu", overrides=[f"train.output_dir={out}"]))
    return out / "base_model"


def _run_dir(root: Path, name: str, base: Path) -> Path:
    out = root / name
    shutil.copytree(base, out / "base_model")
    return out


def _launch(url: str, out: Path, run: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``accelerate launch`` with the repository's CPU config: 2 processes on gloo."""
    sets = [f"service.url={url}", f"train.output_dir={out}", f"train.run_name={run}", *RUN, *extra]
    cmd = accelerate_command(ACCELERATE_CONFIG, 2, _free_port(), "tiny-cpu", sets)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, f"accelerate launch failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _ckpt(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step_{step:06d}"


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "model.pt", map_location="cpu", weights_only=True)


ROLLOUT_KEYS = ("count/", "reward/", "format_ok/", "validity/", "accuracy/", "response_len/", "unverified/")
STAT_KEYS = ("train/loss", "train/pg_loss", "train/entropy", "train/grad_norm", "train/num_tokens")


# ----------------------------------------------------------------------------- the test
def test_two_processes_match_one_and_resume(
    azr_service: str, proxy: CountingProxy, tmp_path: Path, warm_base: Path
) -> None:
    served_before = _served_requests(azr_service)
    run2 = _run_dir(tmp_path, "two", warm_base)
    _launch(proxy.url, run2, "two")

    # --- both ranks hold identical state after every step (rank 0 logged every rank's digest)
    rows = [json.loads(line) for line in (run2 / "replicas.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(STEPS))
    for r in rows:
        assert len(r["ranks"]) == 2 and r["ranks"][0] == r["ranks"][1], r
        assert set(r["ranks"][0]) == {"state", "params"}
    m2 = _metrics(run2)
    assert [m["step"] for m in m2] == list(range(STEPS))  # logged once (rank 0), not per rank
    assert len((run2 / "samples.jsonl").read_text().splitlines()) == STEPS * 6
    assert all(m["train/num_samples"] > 7 for m in m2)  # several mini-batches per update

    # --- every verdict request went to the service exactly once
    sent2 = proxy.items("two")
    dupes = [k for k, n in Counter(sent2).items() if n > 1]
    assert not dupes, dupes[:5]
    assert {s for _, s, _ in sent2} == {None, 0, 1, 2}  # seed revalidation + 3 steps

    # --- one process from the same state gives the same rollouts, loss and update
    for k in range(STEPS):
        ref_out = _run_dir(tmp_path, f"ref{k}", warm_base)
        sets = [f"service.url={proxy.url}", f"train.output_dir={ref_out}", "train.run_name=ref", *RUN]
        if k:
            sets.append(f"train.resume={_ckpt(run2, k)}")
        ref = Trainer(load_config(preset="tiny-cpu", overrides=sets))
        (m1,) = ref.train(steps=k + 1)
        two = m2[k]
        for key, val in m1.items():
            if key.startswith(ROLLOUT_KEYS):
                assert two[key] == val, (k, key, two[key], val)
        for key in STAT_KEYS:
            assert two[key] == pytest.approx(m1[key], rel=STAT_RTOL, abs=1e-7), (k, key)
        after2 = _params(_ckpt(run2, k + 1))
        for name, p1 in ref.model.state_dict().items():
            diff = (after2[name] - p1.detach()).abs()
            assert float(diff.max()) <= PARAM_ATOL, (k, name, float(diff.max()))
            far = float((diff > PARAM_CLOSE).float().mean())
            assert far <= PARAM_FAR_FRACTION, (k, name, far)
        # the same requests (ids) as the two-process run sent for this step
        sent1 = [x for x in proxy.items("ref") if x[1] == k]
        assert Counter(sent1) == Counter(x for x in sent2 if x[1] == k), k
    assert Counter(x for x in proxy.items("ref") if x[1] is None) == Counter(x for x in sent2 if x[1] is None)

    # --- the two-process run resumes from its step-2 checkpoint to the identical step-3 state
    resumed = _run_dir(tmp_path, "resumed", warm_base)
    _launch(proxy.url, resumed, "resumed", f"train.resume={_ckpt(run2, 2)}")
    a, b = _ckpt(run2, 3), _ckpt(resumed, 3)
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys() and all(torch.equal(pa[n], pb[n]) for n in pa)
    oa = torch.load(a / "optimizer.pt", weights_only=False)["state"]
    ob = torch.load(b / "optimizer.pt", weights_only=False)["state"]
    assert all(torch.equal(oa[i]["exp_avg"], ob[i]["exp_avg"]) for i in oa)
    assert json.loads((a / "buffers.json").read_text()) == json.loads((b / "buffers.json").read_text())
    (mr,) = _metrics(resumed)
    assert mr["step"] == 2 and all(mr[k] == m2[2][k] for k in m2[2] if not k.startswith("time/"))
    assert not [k for k, n in Counter(proxy.items("resumed")).items() if n > 1]

    # --- the proxy saw every verdict request the service answered in this test
    with proxy.lock:
        forwarded = len(proxy.records)
    assert _served_requests(azr_service) - served_before == forwarded


def test_two_processes_with_lora_and_a_kl_reference(
    azr_service: str, proxy: CountingProxy, tmp_path: Path, warm_base: Path
) -> None:
    """LoRA under DDP (only the adapter trains, the KL reference is the base with the adapter
    off): the ranks stay identical, requests go once, checkpoints hold only the adapter."""
    pytest.importorskip("peft")
    out = _run_dir(tmp_path, "lora", warm_base)
    _launch(
        proxy.url,
        out,
        "lora",
        "train.steps=2",
        "model.lora.enabled=true",
        "model.lora.r=4",
        "optim.kl_coef=0.05",
    )
    rows = [json.loads(line) for line in (out / "replicas.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1] and all(r["ranks"][0] == r["ranks"][1] for r in rows)
    assert not [k for k, n in Counter(proxy.items("lora")).items() if n > 1]
    m = _metrics(out)
    assert all(torch.isfinite(torch.tensor(r["train/loss"])) and r["train/kl"] >= 0 for r in m)
    state = _params(_ckpt(out, 2))
    assert state and all("lora_" in name for name in state)
    assert (out / "final" / "config.json").exists()  # merged export by rank 0
