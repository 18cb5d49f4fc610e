"""A start-up escape suite: run before a worker takes jobs; any failure means "do not serve".

Each probe is a program that tries one way out of the sandbox and returns a string
starting with ``ESCAPED`` only if the attempt worked.  A probe passes when the sandbox
answers with a non-``ok`` verdict (the audit hook, seccomp, rlimits or the container
refused) or with ``ok`` and an output that does not report an escape.  A control
program must give ``ok`` with the right answer on every lane, so a broken sandbox
(every verdict ``sandbox_error``) cannot pass as a safe one.

    failures = self_test(pool)   # [] when all is well
"""

from __future__ import annotations

import ast
import os
import re
from typing import Any

from executor.sandbox.pool import SandboxPool

_LIMITS = {"timeout_s": 5.0, "cpu_s": 6, "memory_mb": 256}

# (name, program) - f() takes no argument.
PROBES: list[tuple[str, str]] = [
    (
        "network: TCP connect to a public address",
        "def f():\n"
        "    import socket\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "    s.settimeout(2)\n"
        "    try:\n"
        "        s.connect(('1.1.1.1', 53))\n"
        "        return 'ESCAPED: connected to 1.1.1.1:53'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "network: raw _socket, UDP to the default gateway",
        "def f():\n"
        "    import _socket\n"
        "    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)\n"
        "    try:\n"
        "        s.sendto(b'x', ('172.17.0.1', 53))\n"
        "        return 'ESCAPED: sent a UDP datagram'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "network: unix socket to the Docker engine",
        "def f():\n"
        "    import socket\n"
        "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    try:\n"
        "        s.connect('/var/run/docker.sock')\n"
        "        return 'ESCAPED: reached the Docker socket'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "filesystem: write a file in /tmp",
        "def f():\n"
        "    try:\n"
        "        with open('/tmp/azr-selftest', 'w') as handle:\n"
        "            handle.write('x')\n"
        "        return 'ESCAPED: wrote /tmp/azr-selftest'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "filesystem: os.open O_CREAT in the working directory",
        "def f():\n"
        "    import os\n"
        "    try:\n"
        "        fd = os.open('azr-selftest', os.O_WRONLY | os.O_CREAT, 0o644)\n"
        "        os.write(fd, b'x')\n"
        "        return 'ESCAPED: created ./azr-selftest'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "filesystem: append to the runtime's own source",
        "def f():\n"
        "    import sys\n"
        "    path = sys.modules['__main__'].__file__ if hasattr(sys.modules['__main__'], '__file__') else '/opt/azr/runtime.py'\n"
        "    try:\n"
        "        with open(path, 'a') as handle:\n"
        "            handle.write('#')\n"
        "        return 'ESCAPED: appended to ' + path\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "process: os.fork",
        "def f():\n"
        "    import os\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n"
        "    if pid == 0:\n"
        "        os._exit(0)\n"
        "    return 'ESCAPED: forked ' + str(pid)\n",
    ),
    (
        "process: subprocess / exec",
        "def f():\n"
        "    import subprocess\n"
        "    try:\n"
        "        out = subprocess.run(['/bin/sh', '-c', 'id'], capture_output=True).stdout\n"
        "        return 'ESCAPED: ran a shell: ' + repr(out)\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "process: signal the zygote / pid 1",
        "def f():\n"
        "    import os\n"
        "    for pid in (os.getppid(), 1):\n"
        "        try:\n"
        "            os.kill(pid, 0)\n"
        "            return 'ESCAPED: may signal pid ' + str(pid)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 'blocked'\n",
    ),
    (
        "secrets: read /etc/shadow",
        "def f():\n"
        "    try:\n"
        "        with open('/etc/shadow') as handle:\n"
        "            return 'ESCAPED: read /etc/shadow: ' + handle.read(40)\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "secrets: read another process's environment (/proc/1/environ)",
        "def f():\n"
        "    try:\n"
        "        with open('/proc/1/environ', 'rb') as handle:\n"
        "            return 'ESCAPED: read /proc/1/environ: ' + repr(handle.read(40))\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "privilege: the program runs as root",
        "def f():\n"
        "    import os\n"
        "    if os.getuid() == 0 or os.geteuid() == 0:\n"
        "        return 'ESCAPED: running as uid 0'\n"
        "    return 'uid ' + str(os.getuid())\n",
    ),
]

_ENV_PROBE = "def f():\n    import os\n    return dict(os.environ)\n"
_CONTROL = "def f(x):\n    return sorted(x)[::-1]\n"
# Variables a sandboxed program may see; anything else from the worker's env is a leak.
_ALLOWED_ENV = {
    "PATH",
    "LANG",
    "LC_ALL",
    "PYTHONHASHSEED",
    "PYTHONDONTWRITEBYTECODE",
    "HOSTNAME",
    "HOME",
    "TERM",
}
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|REDIS|CREDENTIAL|AWS_|DOCKER_|AZR_", re.IGNORECASE)


def _job(program: str, argument: str = "") -> dict[str, Any]:
    return {"mode": "run", "program": program, "input": argument, "calls": 1, "limits": dict(_LIMITS)}


def self_test(pool: SandboxPool) -> list[str]:
    """Run the escape suite in `pool`'s sandboxes; return one line per failure ([] = safe)."""
    failures: list[str] = []
    lanes = max(1, pool.config.lanes)
    jobs: list[tuple[dict[str, Any], int]] = []
    for index, (_, program) in enumerate(PROBES):
        jobs.append((_job(program), index % lanes))
    jobs.append((_job(_ENV_PROBE), 0))
    controls = [(_job(_CONTROL, "[3, 1, 2]"), lane) for lane in range(lanes)]
    try:
        results = pool.run(jobs + controls)
    except Exception as exc:  # noqa: BLE001 - a pool that cannot run the suite is not safe
        return [f"the self-test could not run: {type(exc).__name__}: {exc}"]

    for (name, _), result in zip(PROBES, results, strict=False):
        status = result.get("status")
        output = str(result.get("output", ""))
        if status == "sandbox_error":
            failures.append(f"{name}: the sandbox failed ({result.get('detail', '')})")
        elif status == "ok" and "ESCAPED" in output:
            failures.append(f"{name}: {output[:200]}")

    env_result = results[len(PROBES)]
    if env_result.get("status") == "ok":
        try:
            seen = ast.literal_eval(env_result.get("output", "{}"))
        except (ValueError, SyntaxError):
            seen = {}
        if isinstance(seen, dict):
            ours = dict(os.environ)
            leaked = sorted(
                key
                for key, value in seen.items()
                if key not in _ALLOWED_ENV and (ours.get(key) == value or _SECRET_NAME.search(str(key)))
            )
            if leaked:
                failures.append(f"secrets: the worker's environment is visible in the sandbox: {leaked[:10]}")
    elif env_result.get("status") == "sandbox_error":
        failures.append(f"environment probe: the sandbox failed ({env_result.get('detail', '')})")

    for lane, result in enumerate(results[len(PROBES) + 1 :]):
        if result.get("status") != "ok" or result.get("output") != "[3, 2, 1]":
            failures.append(
                f"control program on lane {lane}: expected ok '[3, 2, 1]', got {result.get('status')} "
                f"{result.get('output', '')!r} {result.get('detail', '')}"
            )
    return failures
