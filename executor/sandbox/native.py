"""Build the zygote's C loop (``runtime/spawn.c``) for the sandbox interpreter, once per machine.

The C loop is required: it makes every child's report, so that no program code can
change how a result is reported. Without a C compiler or ``Python.h`` for the sandbox
interpreter (``scripts/bootstrap.sh`` installs both) the zygote refuses to start and
says why.

The build lands in the settings' ``sandbox.build_dir`` (``AZR_CACHE_DIR``; default ``~/.cache/azr-exec``) under a name that
hashes the source and the interpreter, so an edit of ``spawn.c`` or another
interpreter builds anew; concurrent builds write to a temporary file and rename it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "runtime" / "spawn.c"
MODULE = "_azr_spawn"
# -z now: every symbol resolved when the zygote loads the helper, so no child pays for
# lazy binding (a dynamic-linker lookup and its page faults) on its first libc call.
CFLAGS = ("-O2", "-shared", "-fPIC", "-Wall", "-Wl,-z,now")

_PROBE = (
    "import sys, sysconfig; "
    "print(sysconfig.get_paths()['include']); "
    "print(sysconfig.get_config_var('EXT_SUFFIX') or '.so'); "
    "print('%d.%d' % sys.version_info[:2]); "
    "print(sys.version)"
)


def cache_dir(configured: str = "") -> Path:
    """Where the C loop is built: `configured` (AZR_CACHE_DIR), else ~/.cache/azr-exec."""
    return Path(configured) if configured else Path.home() / ".cache" / "azr-exec"


def _interpreter_facts(python: str) -> tuple[str, str, str, str] | None:
    try:
        done = subprocess.run(
            [python, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("spawn helper: cannot ask %s for its build facts (%s)", python, exc)
        return None
    lines = done.stdout.splitlines()
    if len(lines) < 4:
        return None
    return lines[0], lines[1], lines[2], lines[3]


def _include_dir(python_include: str, version: str) -> str | None:
    """``Python.h`` for the sandbox interpreter: its own headers, else this interpreter's
    if it is the same major.minor (the extension ABI is fixed within a minor release)."""
    candidates = [python_include]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.append(sysconfig.get_paths()["include"])
    for candidate in candidates:
        if candidate and (Path(candidate) / "Python.h").is_file():
            return candidate
    return None


@lru_cache(maxsize=8)
def spawn_helper(python: str, build_dir: str = "") -> str | None:
    """Path of the built helper for ``python`` (building it if needed, in ``build_dir``), or None."""
    if not sys.platform.startswith("linux"):
        return None
    facts = _interpreter_facts(python)
    if facts is None:
        return None
    python_include, suffix, version, full_version = facts
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    include = _include_dir(python_include, version)
    if compiler is None or include is None:
        log.warning(
            "the C loop (runtime/spawn.c) was not built (%s): the sandbox will refuse to start",
            "no C compiler" if compiler is None else f"no Python.h for {python} {version}",
        )
        return None
    source = SOURCE.read_bytes()
    recipe = "\0".join((full_version, include, *CFLAGS)).encode()
    digest = hashlib.sha256(source + recipe).hexdigest()[:16]
    target = cache_dir(build_dir) / f"{MODULE}-{digest}{suffix}"
    if target.is_file():
        try:
            target.parent.chmod(0o700)  # service state: not for the sandbox uids
        except OSError:
            pass
        built = target.stat()
        if built.st_uid != os.getuid() or built.st_mode & 0o022:
            # Someone else could have planted it (a shared AZR_CACHE_DIR): build anew.
            log.warning(
                "the cached C loop %s is not ours alone (owner %d, mode %o): rebuilding",
                target,
                built.st_uid,
                built.st_mode & 0o777,
            )
            target.unlink()
        else:
            return str(target)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.parent.chmod(0o700)  # service state: not for the sandbox uids
        handle, temporary = tempfile.mkstemp(prefix=f".{MODULE}-", suffix=suffix, dir=target.parent)
    except OSError as exc:
        log.warning("spawn helper not built (cannot write to %s: %s); set AZR_CACHE_DIR", target.parent, exc)
        return None
    os.close(handle)
    command = [compiler, *CFLAGS, f"-I{include}", "-o", temporary, str(SOURCE)]
    try:
        subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        log.error(
            "the C loop (runtime/spawn.c) did not build, the sandbox will refuse to start: %s",
            detail.strip()[:500],
        )
        Path(temporary).unlink(missing_ok=True)
        return None
    log.info("spawn helper built for %s: %s", python, target)
    return str(target)
