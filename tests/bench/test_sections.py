"""`azr-exec bench`'s sections: every name resolves to its function (the modules import), and an
unknown or unavailable section is skipped with a message, never a crash."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench import sections


@pytest.mark.parametrize("name", sorted(sections.SECTIONS))
def test_every_section_resolves(name: str) -> None:
    function = sections.resolve_section(name)
    assert callable(function) and function.__name__ == sections.SECTIONS[name].split(":")[1]


def test_unknown_and_unavailable_sections_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unavailable(args: argparse.Namespace) -> dict[str, object]:
        raise sections.SectionUnavailable("no such thing here")

    monkeypatch.setitem(sections.SECTIONS, "unavailable", "tests.bench.test_sections:unused")
    monkeypatch.setattr(sections, "resolve_section", _resolver(unavailable))
    out = tmp_path / "figures.json"
    args = argparse.Namespace(sections="nope,unavailable", json_out=str(out))
    assert sections.run_benchmark(args) == 1  # nothing ran
    report = json.loads(out.read_text())
    assert report["sections"] == {}
    assert "unknown section 'nope'" in report["skipped"]["nope"]
    assert report["skipped"]["unavailable"] == "no such thing here"
    assert "skipping" in capsys.readouterr().err


def _resolver(unavailable: sections.Section):  # type: ignore[no-untyped-def]
    real = sections.resolve_section

    def resolve(name: str) -> sections.Section | None:
        return unavailable if name == "unavailable" else real(name)

    return resolve
