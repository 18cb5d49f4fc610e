"""sandbox_images/debian-mirror: the image build's Debian mirror comes from the host's apt
configuration (one-line and deb822 sources) or from AZR_DEBIAN_MIRROR, never from a
hard-coded host; with neither, it stops with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "sandbox_images" / "debian-mirror"
DEBIAN_SOURCES = """\
Types: deb
# a comment inside the stanza
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example.org/debian-security
Suites: bookworm-security
Components: main
"""


def mirror(apt: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AZR_DEBIAN")}
    return subprocess.run(
        [str(SCRIPT), "--apt-dir", str(apt), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=30,
        check=False,
    )


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_deb822_sources(tmp_path: Path) -> None:
    apt = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEBIAN_SOURCES})
    assert mirror(apt).stdout == "http://mirror.example.org/debian\n"
    assert mirror(apt, "--security").stdout == "http://mirror.example.org/debian-security\n"


def test_one_line_sources_with_options_comments_and_other_repositories(tmp_path: Path) -> None:
    apt = apt_dir(
        tmp_path,
        {
            "sources.list": "# deb http://commented.example/debian bookworm main\n"
            "deb-src http://source-only.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] https://mirror.example.net/debian/ bookworm main # trailing\n"
            "deb http://security.example.net/debian-security bookworm-security main\n",
            "sources.list.d/docker.list": "deb https://download.docker.com/linux/debian bookworm stable\n",
        },
    )
    # The first entry for the suite itself wins; the Docker repository comes later.
    assert mirror(apt).stdout == "https://mirror.example.net/debian\n"
    assert mirror(apt, "--security").stdout == "http://security.example.net/debian-security\n"


def test_third_party_entries_alone_are_not_a_debian_mirror(tmp_path: Path) -> None:
    apt = apt_dir(
        tmp_path,
        {
            "sources.list.d/nodesource.sources": "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\n"
            "Suites: nodistro\nComponents: main\n",
            "sources.list.d/cloud.list": "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n",
        },
    )
    done = mirror(apt)
    assert done.returncode == 1 and done.stdout == ""
    assert "AZR_DEBIAN_MIRROR" in done.stderr and "sources.list.d/*.sources" in done.stderr


def test_disabled_stanzas_and_other_files_are_ignored(tmp_path: Path) -> None:
    apt = apt_dir(
        tmp_path,
        {
            "sources.list.d/off.sources": "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\n"
            "Suites: bookworm\n",
            "sources.list.d/old.list.disabled": "deb http://disabled.example/debian bookworm main\n",
            "sources.list.d/trixie.sources": "Types: deb deb-src\nURIs: http://trixie.example/debian\n"
            "Suites: trixie\n",
        },
    )
    # Another release on a Debian mirror still serves bookworm.
    assert mirror(apt).stdout == "http://trixie.example/debian\n"
    security = mirror(apt, "--security")
    assert security.returncode == 1 and "AZR_DEBIAN_SECURITY_MIRROR" in security.stderr


@pytest.mark.parametrize(
    ("args", "variable"), [((), "AZR_DEBIAN_MIRROR"), (("--security",), "AZR_DEBIAN_SECURITY_MIRROR")]
)
def test_the_variable_wins_over_apt(tmp_path: Path, args: tuple[str, ...], variable: str) -> None:
    apt = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEBIAN_SOURCES})
    assert mirror(apt, *args, **{variable: "http://local.mirror:3142/debian/"}).stdout == (
        "http://local.mirror:3142/debian\n"
    )
    empty = apt_dir(tmp_path / "empty", {})
    assert mirror(empty, *args, **{variable: "http://x/debian"}).returncode == 0


def test_missing_apt_directory_is_a_clear_error(tmp_path: Path) -> None:
    done = mirror(tmp_path / "nowhere")
    assert done.returncode == 1
    assert "found no Debian mirror for bookworm" in done.stderr and "AZR_DEBIAN_MIRROR=" in done.stderr


def test_the_build_has_no_hard_coded_mirror() -> None:
    build = (SCRIPT.parent / "build").read_text()
    assert "deb.debian.org" not in build and "debian-mirror" in build
