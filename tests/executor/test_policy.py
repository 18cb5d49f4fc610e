"""The default policy covers AZR's list and the OS/interpreter modules, and is configurable."""

from __future__ import annotations

import pytest

from executor.policy import AZR_FORBIDDEN_MODULES, Policy

DEFAULT = Policy()


@pytest.mark.parametrize("module", AZR_FORBIDDEN_MODULES)
def test_azr_list_is_covered(module: str) -> None:
    assert DEFAULT.banned_module(module) is not None


@pytest.mark.parametrize(
    "module",
    [
        "os",
        "sys",
        "shutil",
        "socket",
        "ctypes",
        "importlib",
        "signal",
        "gc",
        "inspect",
        "builtins",
        "io",
        "pathlib",
        "pickle",
        "marshal",
        "code",
        "subprocess",
        "_posixsubprocess",
        "posix",
        "resource",
        "mmap",
    ],
)
def test_system_modules_are_covered(module: str) -> None:
    assert DEFAULT.banned_module(module) == module


@pytest.mark.parametrize(
    "name", ["__import__", "eval", "exec", "compile", "open", "input", "breakpoint", "globals"]
)
def test_forbidden_names(name: str) -> None:
    assert name in DEFAULT.forbidden_names


def test_fingerprint_is_stable_and_changes_with_the_policy() -> None:
    assert Policy().fingerprint() == DEFAULT.fingerprint()
    assert Policy(allow_relative_imports=True).fingerprint() != DEFAULT.fingerprint()
