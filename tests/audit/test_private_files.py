"""The audit store is readable by the service's own user only (it holds other requests'
programs, and sandboxes run programs under other uids on the same host): its directory
0700, the database and SQLite's -wal/-shm/-journal files 0600, whatever the umask."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.audit.store import SqliteStore
from tests.audit.test_bad_records import record
from tests.servers import running_service

SANDBOX_UID = 61000  # the first sandbox uid (AZR_SANDBOX_UID_BASE)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual 022: files would be 0644 and directories 0755 unless made otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A directory anyone may enter (tmp_path is 0700, which would hide what is tested)."""
    base = Path(tempfile.mkdtemp(prefix="azr-private-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def database_files(database: Path) -> list[Path]:
    return [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]


def test_a_new_store_is_private(open_umask: None, open_base: Path) -> None:
    database = open_base / "audit" / "nested" / "audit.sqlite3"
    store = SqliteStore(database)
    store.add_many([record(f"r{i}") for i in range(10)])  # the write-ahead log is in use
    assert mode(database.parent) == 0o700
    for path in database_files(database):
        assert path.exists() and mode(path) == 0o600, (path, oct(mode(path)))


def test_an_existing_store_left_readable_is_tightened_when_opened(open_umask: None, open_base: Path) -> None:
    directory = open_base / "audit"
    database = directory / "audit.sqlite3"
    SqliteStore(database).add_many([record("old")])
    directory.chmod(0o755)
    for path in database_files(database):
        path.chmod(0o644)  # what an older version left
    SqliteStore(database)
    assert mode(directory) == 0o700
    assert all(mode(path) == 0o600 for path in database_files(database))


def test_a_shared_sticky_directory_is_left_alone_but_the_files_are_private(
    open_umask: None, open_base: Path
) -> None:
    shared = open_base / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    database = shared / "audit.sqlite3"
    SqliteStore(database).add_many([record("r")])
    assert mode(shared) == 0o1777
    assert all(mode(path) == 0o600 for path in database_files(database))


def test_a_symlink_in_the_stores_place_is_refused(open_base: Path) -> None:
    target = open_base / "elsewhere"
    target.write_text("not ours")
    directory = open_base / "audit"
    directory.mkdir(mode=0o700)
    (directory / "audit.sqlite3").symlink_to(target)
    with pytest.raises(OSError):
        SqliteStore(directory / "audit.sqlite3")
    assert target.read_text() == "not ours"


@pytest.mark.skipif(os.geteuid() != 0, reason="reading as a sandbox uid needs root to switch uid")
def test_a_sandbox_uid_cannot_read_the_store(open_base: Path) -> None:
    directory = open_base / "audit"
    database = directory / "audit.sqlite3"
    store = SqliteStore(database)  # open: its -wal and -shm files exist
    store.add_many([record("secret")])
    directory.chmod(0o755)  # even where the directory is open (someone else's, say), the files are not
    for path in database_files(database):
        done = subprocess.run(
            [shutil.which("cat") or "/bin/cat", str(path)],
            user=SANDBOX_UID,
            group=SANDBOX_UID,
            extra_groups=[],
            capture_output=True,
            text=True,
        )
        assert done.returncode != 0 and "Permission denied" in done.stderr, (path, done.stderr)


def test_the_service_keeps_its_audit_store_private(open_base: Path) -> None:
    directory = open_base / "service-audit"  # not there yet: the service creates it
    task = {"id": "t", "program": "def f(a):\n    return a / 0", "inputs": ["1"]}
    with running_service(AZR_AUDIT_DIR=str(directory)) as service:
        response = httpx.post(service.url + "/v1/validate", json={"tasks": [task]}, timeout=60)
        assert response.json()["results"][0]["verdict"] == "runtime_error"  # recorded
        deadline = time.monotonic() + 20
        while not httpx.get(service.url + "/v1/audit", timeout=10).json()["records"]:
            assert time.monotonic() < deadline, "the record never reached the store"
            time.sleep(0.1)
        assert mode(directory) == 0o700
        files = sorted(directory.iterdir())
        assert files and all(mode(path) == 0o600 for path in files), [(p.name, oct(mode(p))) for p in files]
