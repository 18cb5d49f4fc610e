"""A corpus of hostile programs for the sandbox, each run with the static checks bypassed.

Every entry is (name, program, input, allowed verdicts, harmless-output check). The
programs use `{MARK}` where they name a file or key on the host; the test replaces it
with a unique token and afterwards checks that nothing with that token exists.
A case that allows "ok" must also pass its `harmless` check on the returned output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from executor_helpers import REPO_ROOT

NON_OK = frozenset(
    {
        "forbidden",
        "runtime_error",
        "timeout",
        "memory_limit",
        "output_limit",
        "invalid_input",
        "nondeterministic",
        "bad_form",
        "syntax_error",
        "wrong",
    }
)
REFUSED = frozenset({"forbidden", "runtime_error"})


def _never(output: str) -> bool:
    return False


@dataclass(frozen=True)
class Hostile:
    name: str
    program: str
    input: str = "0"
    allowed: frozenset[str] = REFUSED
    harmless: Callable[[str], bool] = field(default=_never)
    timeout_s: float = 2.0


def _no_secrets(output: str) -> bool:
    return "root:" not in output and "AZR_" not in output and "/root" not in output


def _is_small_int_or_bool(output: str) -> bool:
    return output in ("True", "False", "None") or output.lstrip("-").isdigit()


REPO = str(REPO_ROOT)

CORPUS: list[Hostile] = [
    # ---------------------------------------------------------------- processes
    Hostile("fork-bomb", "import os\ndef f(x):\n    while True:\n        os.fork()"),
    Hostile(
        "fork-bomb-caught",
        "import os\ndef f(x):\n    n = 0\n    for _ in range(1000):\n        try:\n            os.fork()\n            n += 1\n        except Exception:\n            pass\n    return n",
    ),
    Hostile(
        "multiprocessing",
        "import multiprocessing\ndef g():\n    pass\ndef f(x):\n    p = multiprocessing.Process(target=g)\n    p.start()\n    p.join()\n    return p.exitcode",
    ),
    Hostile(
        "subprocess-run",
        "import subprocess\ndef f(x):\n    return subprocess.run(['touch', '/tmp/azr_hostile_{MARK}_sub']).returncode",
    ),
    Hostile(
        "os-system", "import os\ndef f(x):\n    return os.system('touch /tmp/azr_hostile_{MARK}_system')"
    ),
    Hostile("os-popen", "import os\ndef f(x):\n    return os.popen('id').read()"),
    Hostile(
        "os-execv",
        "import os\ndef f(x):\n    os.execv('/bin/sh', ['sh', '-c', 'touch /tmp/azr_hostile_{MARK}_exec'])",
    ),
    Hostile(
        "posix-spawn",
        "import os\ndef f(x):\n    return os.posix_spawn('/usr/bin/touch', ['touch', '/tmp/azr_hostile_{MARK}_spawn'], {})",
    ),
    Hostile(
        "posixsubprocess-raw",
        "import _posixsubprocess, os\ndef f(x):\n    return _posixsubprocess.fork_exec(['/usr/bin/touch', '/tmp/azr_hostile_{MARK}_raw'], [b'/usr/bin/touch'], True, (), None, None, -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, None, None, None, -1, None, False)",
    ),
    Hostile(
        "import-via-builtins-bypass",
        "def f(x):\n    imp = getattr(__builtins__, '__imp' + 'ort__')\n    return imp('os').system('touch /tmp/azr_hostile_{MARK}_bypass')",
    ),
    Hostile(
        "exec-string",
        "def f(x):\n    exec(\"__import__('os').system('touch /tmp/azr_hostile_{MARK}_exec2')\")\n    return 1",
    ),
    # ---------------------------------------------------------------- memory and cpu
    Hostile(
        "memory-bomb-list", "def f(x):\n    return len([0] * (10 ** 10))", allowed=frozenset({"memory_limit"})
    ),
    Hostile(
        "memory-bomb-string",
        "def f(x):\n    return len('a' * (2 ** 40))",
        allowed=frozenset({"memory_limit"}),
    ),
    Hostile(
        "memory-bomb-growth",
        "def f(x):\n    keep = []\n    while True:\n        keep.append(bytearray(10 ** 7))",
        allowed=frozenset({"memory_limit"}),
    ),
    Hostile(
        "memory-bomb-bytearray",
        "def f(x):\n    return len(bytearray(2 ** 33))",
        allowed=frozenset({"memory_limit"}),
    ),
    Hostile(
        "memory-bomb-dict",
        "def f(x):\n    d = {}\n    i = 0\n    while True:\n        d[i] = str(i) * 50\n        i += 1",
        allowed=frozenset({"memory_limit", "timeout"}),
        timeout_s=6.0,
    ),
    Hostile("infinite-loop", "def f(x):\n    while True:\n        pass", allowed=frozenset({"timeout"})),
    Hostile(
        "sleep-forever", "import time\ndef f(x):\n    time.sleep(10 ** 6)", allowed=frozenset({"timeout"})
    ),
    Hostile(
        "sleep-after-closing-stdout",
        "import os, time\ndef f(x):\n    os.close(1)\n    os.close(2)\n    time.sleep(10 ** 6)",
        allowed=frozenset({"timeout"}),
    ),
    Hostile(
        "close-all-fds-then-sleep",
        "import os, time\ndef f(x):\n    os.closerange(0, 4096)\n    time.sleep(10 ** 6)",
        allowed=frozenset({"timeout", "runtime_error"}),
    ),
    Hostile(
        "huge-int",
        "def f(x):\n    return 10 ** (10 ** 8)",
        allowed=frozenset({"timeout", "memory_limit", "runtime_error", "output_limit"}),
    ),
    Hostile(
        "huge-int-str",
        "def f(x):\n    return str(7 ** 100000)",
        allowed=frozenset({"runtime_error", "output_limit"}),
    ),
    Hostile(
        "huge-string-return", "def f(x):\n    return 'x' * (10 ** 7)", allowed=frozenset({"output_limit"})
    ),
    Hostile(
        "huge-list-return", "def f(x):\n    return list(range(10 ** 6))", allowed=frozenset({"output_limit"})
    ),
    Hostile(
        "print-flood",
        "def f(x):\n    while True:\n        print('x' * 10000)",
        allowed=frozenset({"output_limit"}),
    ),
    Hostile(
        "print-flood-stderr",
        "import sys\ndef f(x):\n    while True:\n        sys.stderr.write('y' * 10000)",
        allowed=frozenset({"output_limit", "forbidden"}),
    ),
    Hostile("deep-recursion", "def f(x):\n    return f(x + 1)", allowed=frozenset({"runtime_error"})),
    Hostile(
        "deep-recursion-raised-limit",
        "import sys\ndef g(n):\n    return g(n + 1)\ndef f(x):\n    sys.setrecursionlimit(10 ** 7)\n    return g(0)",
    ),
    Hostile(
        "recursion-limit-bypass",
        "def g(n):\n    return g(n + 1)\ndef f(x):\n    getattr(__builtins__, '__imp' + 'ort__')('sys').setrecursionlimit(10 ** 7)\n    return g(0)",
    ),
    Hostile(
        "deeply-nested-repr",
        "def f(x):\n    v = []\n    for _ in range(10 ** 6):\n        v = [v]\n    return v",
        allowed=frozenset({"runtime_error", "output_limit", "timeout"}),
    ),
    # ---------------------------------------------------------------- files
    Hostile("read-etc-passwd", "def f(x):\n    return open('/etc/passwd').read()"),
    Hostile("read-etc-shadow", "def f(x):\n    return open('/etc/shadow').read()"),
    Hostile(
        "append-etc-passwd",
        "def f(x):\n    with open('/etc/passwd', 'a') as fh:\n        fh.write('azr:x:0:0::/:/bin/sh\\n')\n    return 1",
    ),
    Hostile(
        "write-tmp",
        "def f(x):\n    with open('/tmp/azr_hostile_{MARK}_tmp', 'w') as fh:\n        fh.write('pwned')\n    return 1",
    ),
    Hostile(
        "write-dev-shm",
        "def f(x):\n    with open('/dev/shm/azr_hostile_{MARK}_shm', 'w') as fh:\n        fh.write('pwned')\n    return 1",
    ),
    Hostile(
        "write-repo",
        f"def f(x):\n    with open('{REPO}/azr_hostile_{{MARK}}_repo', 'w') as fh:\n        fh.write('pwned')\n    return 1",
    ),
    Hostile(
        "overwrite-repo-file",
        f"def f(x):\n    with open('{REPO}/pyproject.toml', 'a') as fh:\n        fh.write('#pwned')\n    return 1",
    ),
    Hostile("read-repo-file", f"def f(x):\n    return open('{REPO}/pyproject.toml').read()"),
    Hostile(
        "os-open-create",
        "import os\ndef f(x):\n    fd = os.open('/tmp/azr_hostile_{MARK}_osopen', os.O_CREAT | os.O_WRONLY)\n    return os.write(fd, b'x')",
    ),
    Hostile("io-open-code", "import io\ndef f(x):\n    return io.open_code('/etc/passwd').read()"),
    Hostile("listdir-root", "import os\ndef f(x):\n    return os.listdir('/')"),
    Hostile(
        "proc-self-mem", "def f(x):\n    with open('/proc/self/mem', 'rb') as fh:\n        return fh.read(8)"
    ),
    Hostile(
        "proc-parent-environ",
        "import os\ndef f(x):\n    return open(f'/proc/{os.getppid()}/environ', 'rb').read()",
    ),
    Hostile(
        "mmap-file",
        "import mmap\ndef f(x):\n    fh = open('/etc/passwd', 'rb')\n    return mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)[:10]",
    ),
    Hostile(
        "mmap-anonymous-exec",
        "import mmap\ndef f(x):\n    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n    return len(m)",
    ),
    Hostile(
        "shutil-copy",
        f"import shutil\ndef f(x):\n    shutil.copy('/etc/hostname', '{REPO}/azr_hostile_{{MARK}}_copy')\n    return 1",
    ),
    Hostile("chdir", "import os\ndef f(x):\n    os.chdir('/tmp')\n    return os.getcwd()"),
    Hostile(
        "fd-exhaustion",
        "def f(x):\n    return len([open('/dev/null') for _ in range(10000)])",
        allowed=REFUSED | {"ok"},
        harmless=_is_small_int_or_bool,
    ),
    # ---------------------------------------------------------------- network
    Hostile(
        "socket-redis",
        "import socket\ndef f(x):\n    s = socket.create_connection(('127.0.0.1', 6379), timeout=1)\n    s.sendall(b'SET azr_hostile_{MARK} pwned\\r\\n')\n    return s.recv(100)",
    ),
    Hostile(
        "socket-raw-module",
        "import _socket\ndef f(x):\n    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n    s.connect(('127.0.0.1', 6379))\n    s.send(b'SET azr_hostile_{MARK} pwned\\r\\n')\n    return 1",
    ),
    Hostile(
        "socket-unix",
        "import socket\ndef f(x):\n    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n    s.connect('/var/run/redis/redis-server.sock')\n    return 1",
    ),
    Hostile("socketpair", "import socket\ndef f(x):\n    return len(socket.socketpair())"),
    Hostile(
        "urllib",
        "import urllib.request\ndef f(x):\n    return urllib.request.urlopen('http://127.0.0.1:6379/').read()",
    ),
    # ---------------------------------------------------------------- ctypes and interpreter guts
    Hostile(
        "ctypes-libc-system",
        "import ctypes\ndef f(x):\n    return ctypes.CDLL('libc.so.6').system(b'touch /tmp/azr_hostile_{MARK}_ctypes')",
    ),
    Hostile(
        "ctypes-syscall-kill",
        "import ctypes\ndef f(x):\n    libc = ctypes.CDLL(None)\n    return libc.syscall(62, -1, 9)",
    ),
    Hostile("ctypes-string-at", "import ctypes\ndef f(x):\n    return ctypes.string_at(id(x), 16)"),
    Hostile(
        "ctypes-pythonapi",
        "import ctypes\ndef f(x):\n    return ctypes.pythonapi.PyRun_SimpleString(b\"import os; os.system('touch /tmp/azr_hostile_{MARK}_capi')\")",
    ),
    Hostile(
        "subclasses-walk-os",
        "def f(x):\n    for c in ().__class__.__base__.__subclasses__():\n        if c.__name__ == '_wrap_close':\n            return c.__init__.__globals__['system']('touch /tmp/azr_hostile_{MARK}_walk')\n    return 'no os'",
        allowed=REFUSED | {"ok"},
        harmless=lambda o: o == "'no os'",
    ),
    Hostile(
        "subclasses-walk-loader",
        "def f(x):\n    for c in ().__class__.__base__.__subclasses__():\n        if c.__name__ == 'FileLoader':\n            return c.get_data(None, '/etc/passwd')\n    return 'no loader'",
        allowed=REFUSED | {"ok"},
        harmless=lambda o: o == "'no loader'",
    ),
    Hostile(
        "sys-modules-os",
        "import sys\ndef f(x):\n    return sys.modules['os'].system('touch /tmp/azr_hostile_{MARK}_sysmod')",
    ),
    Hostile(
        "sys-modules-disarm-runtime",
        "import sys\ndef f(x):\n    rt = sys.modules['__main__']\n    for name in dir(rt):\n        v = getattr(rt, name)\n        if isinstance(v, dict):\n            v.clear()\n        if isinstance(v, list):\n            v.clear()\n    return open('/etc/passwd').read()",
    ),
    Hostile(
        "frame-walk-traceback",
        "def f(x):\n    try:\n        1 / 0\n    except Exception as e:\n        fr = e.__traceback__.tb_frame\n    out = []\n    while fr is not None:\n        out.append(sorted(fr.f_locals))\n        fr = fr.f_back\n    return out",
    ),
    Hostile("frame-walk-getframe", "import sys\ndef f(x):\n    return sorted(sys._getframe(1).f_locals)"),
    Hostile(
        "frame-walk-generator",
        "def f(x):\n    g = (i for i in [1])\n    return sorted(g.gi_frame.f_back.f_locals) if g.gi_frame.f_back else 'none'",
    ),
    Hostile("gc-get-objects", "import gc\ndef f(x):\n    return len(gc.get_objects())"),
    Hostile("settrace", "import sys\ndef f(x):\n    sys.settrace(lambda *a: None)\n    return 1"),
    Hostile(
        "pickle-exploit",
        "import pickle\ndef f(x):\n    return pickle.loads(b\"cos\\nsystem\\n(S'touch /tmp/azr_hostile_{MARK}_pickle'\\ntR.\")",
    ),
    Hostile(
        "builtins-tampering",
        "import builtins\ndef f(x):\n    builtins.repr = lambda v: 'pwned'\n    builtins.len = lambda v: 0\n    return 5",
        allowed=frozenset({"ok", "runtime_error"}),
        harmless=lambda o: o in ("5", "'pwned'", "pwned"),
    ),
    Hostile("add-audit-hook", "import sys\ndef f(x):\n    sys.addaudithook(lambda *a: None)\n    return 1"),
    Hostile(
        "forge-result-frame",
        'import os\ndef f(x):\n    fake = b\'AZR-RESULT\\n{"status": "ok", "output": "1", "canon": "1", "detail": ""}\'\n    for fd in range(3, 64):\n        try:\n            os.write(fd, fake)\n        except OSError:\n            pass\n    os._exit(0)',
        allowed=frozenset({"runtime_error"}),
    ),
    Hostile(
        "forge-result-frame-and-return",
        'import os\ndef f(x):\n    fake = b\'AZR-RESULT\\n{"status": "ok", "output": "1", "canon": "1", "detail": ""}\'\n    for fd in range(3, 64):\n        try:\n            os.write(fd, fake)\n        except OSError:\n            pass\n    return 2',
        allowed=frozenset({"runtime_error"}),
    ),
    Hostile(
        "closerange-inherited-fds",
        "import os\ndef f(x):\n    os.closerange(3, 65536)\n    return 1",
        allowed=frozenset({"runtime_error"}),
    ),
    # ---------------------------------------------------------------- signals, exits, process groups
    Hostile(
        "kill-parent", "import os, signal\ndef f(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 1"
    ),
    Hostile("kill-pid-1", "import os\ndef f(x):\n    os.kill(1, 9)\n    return 1"),
    Hostile("kill-minus-1", "import os\ndef f(x):\n    os.kill(-1, 9)\n    return 1"),
    Hostile(
        "killpg-parent-group",
        "import os\ndef f(x):\n    os.killpg(os.getpgid(os.getppid()), 9)\n    return 1",
    ),
    Hostile(
        "signal-alarm-self",
        "import signal\ndef f(x):\n    signal.alarm(1)\n    while True:\n        pass",
        allowed=frozenset({"runtime_error", "timeout", "forbidden"}),
    ),
    Hostile(
        "sigkill-self",
        "import os\ndef f(x):\n    os.kill(os.getpid(), 9)\n    return 1",
        allowed=frozenset({"forbidden", "runtime_error", "memory_limit"}),
    ),
    Hostile("sys-exit", "import sys\ndef f(x):\n    sys.exit(0)"),
    Hostile("os-exit", "import os\ndef f(x):\n    os._exit(0)", allowed=frozenset({"runtime_error"})),
    Hostile("raise-systemexit", "def f(x):\n    raise SystemExit(0)", allowed=frozenset({"runtime_error"})),
    Hostile(
        "keyboard-interrupt", "def f(x):\n    raise KeyboardInterrupt", allowed=frozenset({"runtime_error"})
    ),
    Hostile(
        "setsid-then-sleep",
        "import os, time\ndef f(x):\n    try:\n        os.setsid()\n    except OSError:\n        return 'refused'\n    time.sleep(10 ** 6)",
        allowed=frozenset({"ok", "runtime_error", "timeout", "forbidden"}),
        harmless=lambda o: o == "'refused'",
    ),
    Hostile("setpgid-escape", "import os\ndef f(x):\n    os.setpgid(0, 0)\n    return os.getpgid(0)"),
    Hostile("setuid-root", "import os\ndef f(x):\n    os.setuid(0)\n    return os.getuid()"),
    Hostile(
        "rlimit-raise",
        "import resource\ndef f(x):\n    resource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n    return 1",
    ),
    Hostile("nice-negative", "import os\ndef f(x):\n    return os.nice(-20)"),
    Hostile(
        "environ-read",
        "import os\ndef f(x):\n    return dict(os.environ)",
        allowed=REFUSED | {"ok"},
        harmless=_no_secrets,
    ),
    # ---------------------------------------------------------------- threads
    Hostile(
        "thread-spawn",
        "import threading\ndef f(x):\n    t = threading.Thread(target=lambda: None)\n    t.start()\n    t.join()\n    return 1",
        allowed=REFUSED | {"ok"},
        harmless=lambda o: o == "1",
    ),
    Hostile(
        "thread-outlives-f",
        "import threading, time\ndef f(x):\n    threading.Thread(target=time.sleep, args=(10 ** 6,), daemon=False).start()\n    return 1",
        allowed=REFUSED | {"ok", "timeout"},
        harmless=lambda o: o == "1",
    ),
    Hostile(
        "thread-flood",
        "import threading, time\ndef f(x):\n    n = 0\n    for _ in range(10000):\n        threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n        n += 1\n    return n",
        allowed=REFUSED | {"ok", "memory_limit", "timeout"},
        harmless=_is_small_int_or_bool,
    ),
]
