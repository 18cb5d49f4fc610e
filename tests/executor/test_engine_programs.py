"""Ordinary programs that use the standard library keep working under the audit hook."""

from __future__ import annotations

import pytest

from executor.engine import Engine
from executor.verdicts import ValidateTask, Verdict

PROGRAMS = {
    "namedtuple": (
        "from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef f(a):\n    return P(a, 2)",
        "1",
        "P(x=1, y=2)",
    ),
    "typing-namedtuple": (
        "from typing import NamedTuple\nclass P(NamedTuple):\n    x: int\ndef f(a):\n    return P(a)",
        "1",
        "P(x=1)",
    ),
    "enum-functional": (
        "from enum import Enum\nColor = Enum('Color', 'RED GREEN')\ndef f(a):\n    return Color.RED.value + a",
        "1",
        "2",
    ),
    "dataclass": (
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\ndef f(a):\n    return P(a)",
        "1",
        "P(x=1)",
    ),
    "json": ("import json\ndef f(a):\n    return json.dumps(a)", "[1]", "'[1]'"),
    "fractions": (
        "from fractions import Fraction\ndef f(a):\n    return Fraction(a, 3)",
        "1",
        "Fraction(1, 3)",
    ),
    "decimal": ("from decimal import Decimal\ndef f(a):\n    return Decimal(a) / 4", "1", "Decimal('0.25')"),
    "statistics": ("import statistics\ndef f(a):\n    return statistics.median(a)", "[1, 2, 3]", "2"),
    "lru-cache": (
        "from functools import lru_cache\n@lru_cache(None)\ndef g(n):\n    return n if n < 2 else g(n - 1) + g(n - 2)\ndef f(a):\n    return g(a)",
        "20",
        "6765",
    ),
    "re": ("import re\ndef f(a):\n    return re.findall(r'\\d+', a)", "'a12b3'", "['12', '3']"),
    "warnings": ("import warnings\ndef f(a):\n    warnings.warn('x')\n    return a", "1", "1"),
    "abc": (
        "from abc import ABC, abstractmethod\nclass B(ABC):\n    @abstractmethod\n    def g(self): ...\nclass C(B):\n    def g(self):\n        return 1\ndef f(a):\n    return C().g() + a",
        "1",
        "2",
    ),
    "struct": ("import struct\ndef f(a):\n    return struct.pack('>I', a)", "1", "b'\\x00\\x00\\x00\\x01'"),
    "difflib": (
        "import difflib\ndef f(a):\n    return difflib.SequenceMatcher(None, a, a[::-1]).ratio()",
        "'abc'",
        "0.3333333333333333",
    ),
    "deep-but-fine-recursion": ("def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)", "900", "900"),
    "prints-a-little": ("def f(a):\n    print('hello', a)\n    return a", "1", "1"),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_standard_library_program_is_ok(engine: Engine, name: str) -> None:
    program, text, expected = PROGRAMS[name]
    [result] = engine.validate([ValidateTask(name, program, [text])])
    assert result.verdict is Verdict.OK, result
    assert result.outputs == [expected]
