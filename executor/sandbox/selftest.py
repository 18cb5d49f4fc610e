"""The start-up self-test: proves every kernel layer before a service or worker serves.

It starts one extra zygote with the same confinement as the pool's but WITHOUT the
Python layers (no audit hook, no module guards), and runs escape probes in it: each
probe tries one way out and returns a text starting with ``ESCAPED`` only if the
attempt worked. So every probe that passes was stopped by the kernel (Landlock,
seccomp, uid, rlimits) or the C runner, not by a filter in the judged interpreter.
A control program must give the right answer, so a broken sandbox (every verdict
``sandbox_error``) cannot pass as a safe one. A zygote that cannot apply a layer
refuses to start at all, unless the pool's ``allow_missing`` downgrades that layer.

    failures = self_test(pool)   # [] when all is well
"""

from __future__ import annotations

import dataclasses
import os
import re

from executor import literals
from executor.sandbox.pool import SandboxPool
from executor.sandbox.protocol import SandboxJob

# (name, program) - f() takes no argument.
PROBES: list[tuple[str, str]] = [
    (
        "network: create a TCP socket (no traffic is ever sent)",
        "def f():\n"
        "    import socket\n"
        "    try:\n"
        "        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "        s.close()\n"
        "        return 'ESCAPED: created a TCP socket'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "network: raw _socket, UDP socket on loopback",
        "def f():\n"
        "    import _socket\n"
        "    try:\n"
        "        s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)\n"
        "        s.bind(('127.0.0.1', 0))\n"
        "        s.close()\n"
        "        return 'ESCAPED: bound a UDP socket'\n"
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
        "filesystem: read a world-readable host file (/etc/passwd)",
        "def f():\n"
        "    try:\n"
        "        with open('/etc/passwd') as handle:\n"
        "            return 'ESCAPED: read /etc/passwd: ' + handle.read(40)\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "filesystem: read this process's memory (/proc/self/mem)",
        "def f():\n"
        "    try:\n"
        "        with open('/proc/self/mem', 'rb') as handle:\n"
        "            return 'ESCAPED: opened /proc/self/mem'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "filesystem: set an extended attribute on a host file",
        "def f():\n"
        "    import os\n"
        "    try:\n"
        "        os.setxattr('/tmp', 'user.azr', b'x')\n"
        "        return 'ESCAPED: set an xattr on /tmp'\n"
        "    except OSError as exc:\n"
        "        return 'blocked: ' + str(exc)\n",
    ),
    (
        "memory: load ctypes (native code that writes memory)",
        "def f():\n"
        "    try:\n"
        "        import ctypes\n"
        "        return 'ESCAPED: ctypes loaded: ' + repr(ctypes.c_int)\n"
        "    except BaseException as exc:\n"
        "        return 'blocked: ' + type(exc).__name__\n",
    ),
    (
        "nondeterminism: read the kernel's randomness (os.urandom)",
        "def f():\n"
        "    import os\n"
        "    try:\n"
        "        return 'ESCAPED: os.urandom gave ' + os.urandom(8).hex()\n"
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
    "LD_BIND_NOW",
}
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|REDIS|CREDENTIAL|AWS_|DOCKER_|AZR_", re.IGNORECASE)


def _job(program: str, argument: str = "") -> SandboxJob:
    return SandboxJob(program=program, input=argument, calls=1, memory_mb=256)


def self_test(served: SandboxPool) -> list[str]:
    """Run the escape suite in a zygote confined like `served`'s, minus its Python layers,
    with a uid of its own; one line per failure ([] = every layer holds)."""
    config = served.config
    base = config.sandbox_uid_base
    probe_config = dataclasses.replace(
        config,
        lanes=1,
        zygotes_per_lane=1,
        python_layers=False,
        sandbox_uid_base=None if base is None else base + served.size,
    )
    pool = served.sibling(probe_config)
    try:
        pool.start()
        jobs = [_job(program) for _, program in PROBES] + [_job(_ENV_PROBE), _job(_CONTROL, "[3, 1, 2]")]
        results = [future.result() for future in [pool.submit(job, 0, "self-test") for job in jobs]]
    except Exception as exc:  # noqa: BLE001 - a sandbox that cannot run the suite is not safe
        return [f"the self-test could not run: {type(exc).__name__}: {exc}"]
    finally:
        pool.close()

    failures: list[str] = []
    for (name, _), result in zip(PROBES, results, strict=False):
        output = result.outputs[0] if result.outputs else ""
        if result.status == "sandbox_error":
            failures.append(f"{name}: the sandbox failed ({result.detail})")
        elif result.status == "ok" and "ESCAPED" in output:
            failures.append(f"{name}: {output[:200]}")

    env_result = results[len(PROBES)]
    if env_result.status == "ok" and env_result.outputs:
        try:
            seen = literals.parse_value(env_result.outputs[0])
        except literals.LiteralError:
            seen = {}
        if isinstance(seen, dict):
            ours = dict(os.environ)
            leaked = sorted(
                str(key)
                for key, value in seen.items()
                if key not in _ALLOWED_ENV and (ours.get(str(key)) == value or _SECRET_NAME.search(str(key)))
            )
            if leaked:
                failures.append(f"secrets: the worker's environment is visible in the sandbox: {leaked[:10]}")
    elif env_result.status == "sandbox_error":
        failures.append(f"environment probe: the sandbox failed ({env_result.detail})")

    control = results[-1]
    if control.status != "ok" or control.outputs[:1] != ("[3, 2, 1]",):
        failures.append(
            f"control program: expected ok '[3, 2, 1]', got {control.status} {control.outputs!r} {control.detail}"
        )
    return failures
