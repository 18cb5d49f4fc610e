"""Ordinary programs that use the standard library keep working under the audit hook and the
module guards. Each returns a literal of builtin types built from the module's objects (a
repr such as ``P(x=1)`` or ``Decimal('0.25')`` is not a literal, so validate would call it
bad_form): the output shows that the module really worked inside the sandbox."""

from __future__ import annotations

import pytest

from executor.engine import Engine
from executor.verdicts import ValidateTask, Verdict

PROGRAMS = {
    "namedtuple": (
        "from collections import namedtuple\nP = namedtuple('P', 'x y')\n"
        "def f(a):\n    p = P(a, 2)\n    return (tuple(p), p.y, p._asdict(), type(p).__name__)",
        "1",
        "((1, 2), 2, {'x': 1, 'y': 2}, 'P')",
    ),
    "typing-namedtuple": (
        "from typing import NamedTuple\nclass P(NamedTuple):\n    x: int\n    y: str = 'b'\n"
        "def f(a):\n    p = P(a)\n    return (tuple(p), p.x, P._fields)",
        "1",
        "((1, 'b'), 1, ('x', 'y'))",
    ),
    "enum-functional": (
        "from enum import Enum\nColor = Enum('Color', 'RED GREEN')\ndef f(a):\n    return Color.RED.value + a",
        "1",
        "2",
    ),
    "dataclass": (
        "import dataclasses\nfrom dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int = 2\n"
        "def f(a):\n    p = P(a)\n    return (dataclasses.astuple(p), dataclasses.asdict(p), p == P(1), repr(p))",
        "1",
        "((1, 2), {'x': 1, 'y': 2}, True, 'P(x=1, y=2)')",
    ),
    "json": ("import json\ndef f(a):\n    return json.dumps(a)", "[1]", "'[1]'"),
    "fractions": (
        "from fractions import Fraction\ndef f(a):\n    fr = Fraction(a, 3) + Fraction(1, 6)\n"
        "    return (fr.numerator, fr.denominator, str(fr))",
        "1",
        "(1, 2, '1/2')",
    ),
    "decimal": (
        "from decimal import Decimal\ndef f(a):\n    return str(Decimal(a) / 4 + Decimal('0.1'))",
        "1",
        "'0.35'",
    ),
    "statistics": (
        "import statistics\ndef f(a):\n    return (statistics.median(a), float(statistics.mean(a)), statistics.mode(a))",
        "[1, 2, 2, 7]",
        "(2.0, 3.0, 2)",
    ),
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
