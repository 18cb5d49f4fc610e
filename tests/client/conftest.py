"""A scripted HTTP server on loopback for exercising the client's retry/deadline logic.

This is not a verification service: it answers from a script (status codes, delays) and
otherwise echoes trivially (an output equals its input; an answer is correct when it equals
the gold output). The client's behaviour against the real service is covered by the trainer's
end-to-end test.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
