"""What a program may import, call and touch: a configurable policy with a safe default."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field

# AZR's own ban list (the official executor's), dotted names included.
AZR_FORBIDDEN_MODULES = (
    "logging",
    "random",
    "multiprocessing",
    "pebble",
    "subprocess",
    "threading",
    "datetime",
    "time",
    "hashlib",
    "hmac",
    "bcrypt",
    "os.sys",
    "os.path",
    "sys.exit",
    "os.environ",
    "calendar",
)

# Everything that reaches the operating system, the network or the interpreter's guts.
SYSTEM_FORBIDDEN_MODULES = (
    "os",
    "sys",
    "posix",
    "nt",
    "shutil",
    "socket",
    "socketserver",
    "ssl",
    "select",
    "selectors",
    "asyncio",
    "ctypes",
    "cffi",
    "importlib",
    "imp",
    "pkgutil",
    "runpy",
    "zipimport",
    "signal",
    "gc",
    "inspect",
    "builtins",
    "__builtin__",
    "io",
    "_io",
    "pathlib",
    "tempfile",
    "glob",
    "fnmatch",
    "fileinput",
    "filecmp",
    "pickle",
    "_pickle",
    "cPickle",
    "shelve",
    "dbm",
    "marshal",
    "copyreg",
    "code",
    "codeop",
    "dis",
    "traceback",
    "types",
    "weakref",
    "resource",
    "pty",
    "tty",
    "termios",
    "fcntl",
    "mmap",
    "sysconfig",
    "platform",
    "getpass",
    "pwd",
    "grp",
    "crypt",
    "http",
    "urllib",
    "urllib2",
    "requests",
    "httpx",
    "ftplib",
    "smtplib",
    "telnetlib",
    "xmlrpc",
    "webbrowser",
    "sqlite3",
    "concurrent",
    "_thread",
    "thread",
    "queue",
    "sched",
    "secrets",
    "uuid",
    "numpy.random",
    "faulthandler",
    "tracemalloc",
    "atexit",
    "site",
    "zipfile",
    "tarfile",
    "gzip",
    "bz2",
    "lzma",
    "shlex",
    "ast",
    "symtable",
    "compileall",
    "py_compile",
    "_posixsubprocess",
    "_socket",
    "_signal",
    "_ctypes",
    "posixpath",
    "ntpath",
    "genericpath",
    "linecache",
    "tokenize",
    "readline",
    "rlcompleter",
    "cProfile",
    "profile",
    "pdb",
    "bdb",
    "trace",
    "timeit",
    "unittest",
    "doctest",
    "email",
    "mailbox",
    "wave",
    "sunau",
    "aifc",
    "zoneinfo",
    "locale",
    "gettext",
)

FORBIDDEN_NAMES = (
    "__import__",
    "eval",
    "exec",
    "compile",
    "open",
    "input",
    "breakpoint",
    "globals",
    "locals",
    "vars",
    "exit",
    "quit",
    "help",
    "copyright",
    "credits",
    "license",
    "__builtins__",
    "__loader__",
    "__spec__",
    "__file__",
    "__cached__",
)

FORBIDDEN_ATTRIBUTES = (
    "__subclasses__",
    "__globals__",
    "__builtins__",
    "__code__",
    "__closure__",
    "__bases__",
    "__base__",
    "__mro__",
    "mro",
    "__loader__",
    "__spec__",
    "__import__",
    "__reduce__",
    "__reduce_ex__",
    "__getattribute__",
    "__self__",
    "__func__",
    "__traceback__",
    "__frame__",
    "f_back",
    "f_locals",
    "f_globals",
    "f_builtins",
    "f_code",
    "gi_frame",
    "gi_code",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "tb_frame",
    "tb_next",
    "co_code",
)

# getattr & co. may only name an attribute with a plain, non-dunder string literal.
ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "delattr", "hasattr")


class Policy(BaseModel):
    """The forbidden-import and forbidden-call policy. Dotted names match by prefix."""

    forbidden_modules: list[str] = Field(
        default_factory=lambda: sorted(set(AZR_FORBIDDEN_MODULES) | set(SYSTEM_FORBIDDEN_MODULES)),
        description="Modules a program may not import; 'os' also bans 'os.path', "
        "and 'numpy.random' bans only that submodule.",
    )
    forbidden_names: list[str] = Field(
        default_factory=lambda: list(FORBIDDEN_NAMES),
        description="Names a program may not reference (builtins such as eval, open).",
    )
    forbidden_attributes: list[str] = Field(
        default_factory=lambda: list(FORBIDDEN_ATTRIBUTES),
        description="Attribute names a program may not read or write (introspection escapes).",
    )
    allow_relative_imports: bool = False

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def banned_module(self, dotted: str) -> str | None:
        """The policy entry that bans `dotted` (the module or one of its parents), if any."""
        parts = dotted.split(".")
        banned = set(self.forbidden_modules)
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in banned:
                return prefix
        return None
