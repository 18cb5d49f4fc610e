"""A hostile-program corpus for the Docker backend: (name, program, input, acceptable verdicts).

Each program tries to break out of, exhaust, or confuse the sandbox.  The verdicts are the
ones the engine may legitimately give; ``ok`` is never acceptable for an escape attempt
(the static checks or the run-time layers must refuse it).  If the engine's own corpus
(tests/executor/hostile_corpus.py) exists, test_docker_backend.py runs that one too.
"""

from __future__ import annotations

REFUSED = {"forbidden", "runtime_error"}

HOSTILE: list[tuple[str, str, str, set[str]]] = [
    ("fork bomb", "import os\ndef f(x):\n    while True:\n        os.fork()\n", "1", REFUSED),
    (
        "subprocess shell",
        "import subprocess\ndef f(x):\n    return subprocess.check_output(['id'])\n",
        "1",
        REFUSED,
    ),
    ("os.system", "import os\ndef f(x):\n    return os.system('touch /tmp/pwned')\n", "1", REFUSED),
    (
        "socket connect",
        "import socket\ndef f(x):\n    s = socket.create_connection(('127.0.0.1', 9), 1)\n    return 1\n",
        "1",
        REFUSED,
    ),
    ("write a file", "def f(x):\n    open('/tmp/pwned', 'w').write('x')\n    return x\n", "1", REFUSED),
    ("read /etc/shadow", "def f(x):\n    return open('/etc/shadow').read()\n", "1", REFUSED),
    (
        "read /proc/self/environ",
        "def f(x):\n    return open('/proc/self/environ', 'rb').read()\n",
        "1",
        REFUSED,
    ),
    ("dunder escape", "def f(x):\n    return ().__class__.__base__.__subclasses__()\n", "1", REFUSED),
    (
        "builtins __import__",
        "def f(x):\n    return __builtins__['__import__']('os').getcwd()\n",
        "1",
        REFUSED,
    ),
    ("eval of import", "def f(x):\n    return eval(\"__import__('os').listdir('/')\")\n", "1", REFUSED),
    ("ctypes", "import ctypes\ndef f(x):\n    return ctypes.CDLL(None).getpid()\n", "1", REFUSED),
    (
        "kill parent",
        "import os, signal\ndef f(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 1\n",
        "1",
        REFUSED,
    ),
    ("infinite loop", "def f(x):\n    while True:\n        x += 1\n", "1", {"timeout"}),
    (
        "sleep past the deadline",
        "import time\ndef f(x):\n    time.sleep(60)\n    return x\n",
        "1",
        {"timeout", "forbidden"},
    ),
    (
        "memory bomb",
        "def f(x):\n    a = []\n    while True:\n        a.append(bytearray(50 * 1024 * 1024))\n",
        "1",
        {"memory_limit"},
    ),
    ("one huge allocation", "def f(x):\n    return len(bytearray(8 * 1024 ** 3))\n", "1", {"memory_limit"}),
    (
        "print flood",
        "def f(x):\n    while True:\n        print('x' * 10000)\n",
        "1",
        {"output_limit", "timeout"},
    ),
    ("huge output", "def f(x):\n    return 'x' * 10 ** 7\n", "1", {"output_limit"}),
    ("recursion bomb", "def f(x):\n    return f(x + 1)\n", "1", {"runtime_error"}),
    ("os._exit(0)", "import os\ndef f(x):\n    os._exit(0)\n", "1", {"runtime_error", "forbidden"}),
    ("SystemExit", "def f(x):\n    raise SystemExit(0)\n", "1", {"runtime_error"}),
    (
        "threads",
        "import threading\ndef f(x):\n    t = threading.Thread(target=lambda: None)\n    t.start()\n    t.join()\n    return x\n",
        "1",
        {"ok", "forbidden", "runtime_error"},
    ),
    ("id() nondeterminism", "def f(x):\n    return id(object()) % 1000\n", "1", {"nondeterministic", "ok"}),
    ("hash seed nondeterminism", "def f(x):\n    return hash('abc') % 1000\n", "1", {"nondeterministic"}),
    (
        "mutable default",
        "def f(x, seen=[]):\n    seen.append(x)\n    return len(seen)\n",
        "1",
        {"nondeterministic"},
    ),
    (
        "object that equals everything",
        "class A:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return A()\n",
        "1",
        {"ok", "nondeterministic"},
    ),
]

# Entries that only the static checks refuse: run straight in the sandbox they do nothing
# harmful (introspection, reading the working directory's name), so any verdict but
# sandbox_error is fine there.
STATIC_ONLY = {"dunder escape", "builtins __import__"}

# Programs that must keep working (a sandbox that refuses everything is not a sandbox).
BENIGN: list[tuple[str, str, str, str]] = [
    ("reverse", "def f(a):\n    return a[::-1]", "'abc'", "'cba'"),
    ("sort", "def f(x):\n    return sorted(x)[::-1]", "[3, 1, 2]", "[3, 2, 1]"),
    (
        "collections",
        "from collections import Counter\ndef f(s):\n    return sorted(Counter(s).items())",
        "'abca'",
        "[('a', 2), ('b', 1), ('c', 1)]",
    ),
    ("math", "import math\ndef f(n):\n    return math.factorial(n)", "10", "3628800"),
    ("re", "import re\ndef f(s):\n    return re.findall(r'\\d+', s)", "'a1b22c333'", "['1', '22', '333']"),
]
