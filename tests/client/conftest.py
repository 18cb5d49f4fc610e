"""Fixtures for the client tests.

``scripted_server``: a scripted HTTP server on loopback for exercising the client's retry and
deadline logic. It is not a verification service: it answers from a script (status codes,
delays) and otherwise echoes trivially (an output equals its input; an answer is correct when
it equals the gold output).

``real_service``: the real ``azr-exec serve`` on loopback, for the reward entry points inside
TRL and verl and for the README's examples. ``tiny_tokenizer``: a tokenizer trained here.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Step:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: the default echo answer
    delay_s: float = 0.0


@dataclass
class Scripted:
    url: str
    script: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def push(self, *steps: Step) -> None:
        self.script.extend(steps)

    def script_replies(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay_s: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue ``times`` scripted replies for the next POSTs (then the default echo)."""
        for _ in range(times):
            self.script.append(Step(status, dict(headers or {}), body, delay_s))


def _echo(path: str, body: dict[str, Any]) -> dict[str, Any]:
    if path.startswith("/v1/validate"):
        return {
            "results": [
                {
                    "id": t["id"],
                    "valid": True,
                    "verdict": "ok",
                    "outputs": list(t["inputs"]),
                    "input_verdicts": ["ok"] * len(t["inputs"]),
                    "detail": "",
                }
                for t in body["tasks"]
            ]
        }
    results = []
    for a in body["answers"]:
        gold = a.get("output") if a["task_type"] != "induction" else a["cases"][0]["output"]
        ok = a["answer"].strip() == str(gold).strip()
        results.append({"id": a["id"], "correct": ok, "verdict": "ok" if ok else "wrong", "detail": ""})
    return {"results": results}


def _handler(state: Scripted) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            with state.lock:
                state.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
            if self.path.startswith("/v1/jobs/"):
                job_id = self.path.rsplit("/", 1)[-1]
                job = state.jobs.get(job_id)
                if job is None:
                    self._reply(404, {"detail": "no such job"}, {})
                    return
                job["polls"] += 1
                if job["polls"] < 2:
                    self._reply(200, {"status": "running"}, {})
                else:
                    self._reply(200, {"status": "finished", "results": job["results"]}, {})
                return
            self._reply(200, {"status": "ok"}, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                )
                step = state.script.popleft() if state.script else Step()
            if step.delay_s:
                time.sleep(step.delay_s)
            if step.status == 200 and step.body is None:
                payload = _echo(self.path, body)
                if "wait=false" in self.path:
                    job_id = f"job{len(state.jobs)}"
                    state.jobs[job_id] = {"results": payload["results"], "polls": 0}
                    self._reply(202, {"job_id": job_id}, step.headers)
                    return
                self._reply(200, payload, step.headers)
                return
            self._reply(step.status, step.body if step.body is not None else {}, step.headers)

    return Handler


@pytest.fixture
def scripted_server():
    state = Scripted(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# ----------------------------------------------------------------------------- the real service
@dataclass
class RealService:
    """A real `azr-exec serve` (embedded mode) on loopback, with its Prometheus counters."""

    url: str

    def counter(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none yet)."""
        import httpx

        want = [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for line in httpx.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                head, _, value = line.rpartition(" ")
                if all(w in head for w in want):
                    total += float(value)
        return total


@pytest.fixture(scope="session")
def real_service():
    from tests.servers import running_service

    with running_service() as service:
        yield RealService(service.url)


# ----------------------------------------------------------------------------- client/README.md
README = Path(__file__).resolve().parents[2] / "client" / "README.md"
#: The service addresses the README's examples use, replaced by the test service's.
README_URLS = ("http://verifier:8000", "http://127.0.0.1:8000")
_BLOCK = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def readme_blocks(lang: str, url: str | None = None) -> list[str]:
    """The README's fenced ``lang`` blocks, dedented, with the example URLs pointed at ``url``."""
    blocks = []
    for match in _BLOCK.finditer(README.read_text()):
        if match.group(2) == lang:
            text = textwrap.dedent(match.group(3))
            for example in README_URLS:
                text = text.replace(example, url or example)
            blocks.append(text)
    return blocks


def readme_module(first_line: str, url: str, directory: Path) -> Path:
    """Write the README's python block that starts with ``first_line`` (e.g. ``# azr_reward.py``)."""
    [text] = [b for b in readme_blocks("python", url) if b.startswith(first_line + "\n")]
    path = directory / first_line.removeprefix("# ")
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- a tiny tokenizer
TOKENIZER_CORPUS = [
    "def f(a):\n    return a[::-1]\nf('abc') == 'cba'",
    "<answer>```output\n[1, 2]\n```</answer> 0123456789 (), [] {} '' \"\" + - * / = < >",
    "Predict the output of the program for the input.",
]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """Byte-level BPE trained here (no hub): any text round-trips through encode/decode."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<eos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TOKENIZER_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    tokenizer.padding_side = "left"
    return tokenizer
