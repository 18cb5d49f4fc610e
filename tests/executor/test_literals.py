"""Literal parsing on the trusted side: what is accepted, what is rejected and why, equality, canonical text."""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executor import datasets, literals
from executor.literals import (
    DEFAULT_LIMITS,
    NAN,
    LiteralError,
    LiteralLimits,
    canonical,
    canonical_text,
    is_literal,
    parse_arguments,
    parse_value,
    values_equal,
)

INF = float("inf")
REPO_ROOT = Path(__file__).resolve().parents[2]


def same_floats(a: float, b: float) -> bool:
    """Equal as IEEE values, sign of zero and nan included."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def rejected(text: str, *, arguments: bool = False) -> str:
    """The LiteralError message for a text that must be rejected."""
    with pytest.raises(LiteralError) as caught:
        parse_arguments(text) if arguments else parse_value(text)
    return str(caught.value)


# ------------------------------------------------------------------ repr round trips

ROUND_TRIP = [
    None,
    True,
    False,
    0,
    -1,
    12345678901234567890,
    10**4300 - 1,
    -(10**4300 - 1),
    1.5,
    -0.0,
    0.0,
    1e16,
    1e-05,
    5e-324,
    1.7976931348623157e308,
    INF,
    -INF,
    NAN,
    1j,
    complex(1, 2),
    complex(-0.0, -1.0),
    complex(0.0, -2.0),
    complex(0.0, -0.0),
    complex(-0.0, 0.0),
    complex(1e16, -1e-16),
    complex(INF, NAN),
    complex(0.0, INF),
    complex(0.0, NAN),
    complex(-INF, -INF),
    "",
    "abc",
    'it\'s "quoted"',
    "\n\t\r\x00\x7f\\",
    "é你😀\u2028",
    "\ud800",
    b"",
    b"\x00\xff'\"\\\n",
    (),
    (1,),
    (1, 2),
    [],
    [[[]]],
    {},
    set(),
    frozenset(),
    {1, 2, 3},
    frozenset({1}),
    frozenset({"a", "b"}),
    {frozenset({1, 2}): [set(), {3}]},
    {"a": {"b": {"c": ()}}},
    ((1, 2), [3, (4,)]),
    {1: None, 2: None},
    {(1, "a"): b"x", None: [NAN, INF]},
    [1, 2, "abc", {"x": (1, 2)}],
    {(1, (2, frozenset({3}))): {"k": [True, None, -0.0]}},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=lambda value: repr(value)[:40])
def test_repr_round_trip(value: object) -> None:
    parsed = parse_value(repr(value))
    assert type(parsed) is type(value)
    assert values_equal(value, parsed) and values_equal(parsed, value)
    assert canonical(parsed) == canonical(value)
    assert canonical_text(repr(value)) == canonical(value)
    assert is_literal(repr(value))


def test_nested_round_trip_keeps_types_inside() -> None:
    value = [(1,), [1.0], {True: frozenset({(1, 2)})}, {b"x"}, (complex(0, -0.0), -0.0)]
    parsed = parse_value(repr(value))
    assert canonical(parsed) == canonical(value)
    assert [type(item) for item in parsed] == [tuple, list, dict, set, tuple]  # type: ignore[attr-defined]


def test_complex_parts_are_what_repr_meant() -> None:
    for text, real, imag in [
        ("(-0-1j)", -0.0, -1.0),
        ("-2j", 0.0, -2.0),
        ("-0j", 0.0, -0.0),
        ("(1+2j)", 1.0, 2.0),
        ("1-2j", 1.0, -2.0),
        ("(1.5e+16-2.5e-05j)", 1.5e16, -2.5e-05),
        ("( -inf + nanj )", -INF, NAN),
        ("(nan-infj)", NAN, -INF),
        ("infj", 0.0, INF),
        ("-infj", 0.0, -INF),
        ("1e999j", 0.0, INF),
    ]:
        value = parse_value(text)
        assert isinstance(value, complex), text
        assert same_floats(value.real, real) and same_floats(value.imag, imag), (text, value)


def test_accepted_natural_forms() -> None:
    for text, expected in [
        ("  [1,\n 2,]  # a comment", [1, 2]),
        ("'a' 'b'", "ab"),
        ("'a' # one\n  \"b\" '''c'''", "abc"),
        ("b'a' rb'\\n'", b"a\\n"),
        ("u'x'", "x"),
        ("R'\\d'", "\\d"),
        ("0x1F", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("1_000_000", 1000000),
        ("0_0", 0),
        ("00", 0),
        ("09.5", 9.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("1E+3", 1000.0),
        ("+5", 5),
        ("- 5", -5),
        ("-0", 0),
        ("((1))", 1),
        ("(1,)", (1,)),
        ("( )", ()),
        ("{1: 2,}", {1: 2}),
        ("{1,}", {1}),
        ("set()", set()),
        ("set([1, 2])", {1, 2}),
        ("set((1,))", {1}),
        ("frozenset([1, 2])", frozenset({1, 2})),
        ("frozenset((1, 2),)", frozenset({1, 2})),
        ("frozenset(((1, 2)))", frozenset({1, 2})),
        ("frozenset ( {1} )", frozenset({1})),
        ("[1 -2j]", [complex(1, -2)]),  # as in Python: one complex number
        ("'\\N{BULLET}\\x41\\101\\u00e9\\U0001F600\\d\\\n!'", "•AAé😀\\d!"),
        ("'''a\r\nb'''", "a\nb"),
        ("b'\\777\\400\\x41\\u00e9'", b"\xff\x00A\\u00e9"),  # octal above \377 wraps in bytes, as in Python
        ("'\\777\\400'", "\u01ff\u0100"),
        ("b'\\N{\\777}\\u12\\x41'", b"\\N{\xff}\\u12A"),  # no \N, \u in bytes: escapes inside still count
        ("1e9999", INF),
        ("-1e9999", -INF),
        ("1e-9999", 0.0),
        ("1" * 10_000 + ".0", INF),
    ]:
        value = parse_value(text)
        assert type(value) is type(expected) and value == expected, (text, value)


def test_every_nan_is_the_one_shared_nan() -> None:
    parsed = parse_value("[nan, -nan, +nan, {nan: (nan,)}]")
    assert isinstance(parsed, list)
    assert parsed[0] is NAN and parsed[1] is NAN and parsed[2] is NAN
    (key, inner), *_ = parsed[3].items()
    assert key is NAN and inner[0] is NAN
    assert parsed == parse_value("[nan, nan, nan, {nan: (nan,)}]")  # plain == holds through identity


# ------------------------------------------------------------------ equality


@pytest.mark.parametrize(
    ("gold", "prediction", "equal"),
    [
        ("(1, )", "(1,)", True),
        ("{2: 0, 1: 0}", "{1: 0, 2: 0}", True),
        ("1", "1.0", True),
        ("True", "1", True),
        ("True", "1.0", True),
        ("False", "0", True),
        ("(1+0j)", "1", True),
        ("0.0", "-0.0", True),
        ("1e9999", "inf", True),
        ("{1, 2}", "frozenset({2, 1})", True),  # Python: a set equals the frozenset with the same members
        ("'a' 'b'", "'ab'", True),
        ("[1, [2, [3]]]", "[1, [2, [3]]]", True),
        ("nan", "nan", True),
        ("nan", "-nan", True),
        ("[nan]", "[nan]", True),
        ("{nan: 1}", "{nan: 1}", True),
        ("{(1, nan)}", "{(1, nan)}", True),
        ("(nan+1j)", "(nan+1j)", True),
        ("[(1+nanj)]", "[(1+nanj)]", True),
        ("{(nan+1j): 1}", "{(nan+1j): 1}", True),
        ("{frozenset({nanj})}", "{frozenset({nanj})}", True),
        ("(nan+1j)", "(nan+2j)", False),
        ("nan", "inf", False),
        ("[nan]", "[1]", False),
        ("1", "'1'", False),
        ("b'a'", "'a'", False),
        ("[1]", "(1,)", False),
        ("{'a': [1, 2]}", "{'a': [1, 3]}", False),
        ("None", "False", False),
        ("set()", "{}", False),
        ("()", "[]", False),
    ],
)
def test_values_equal_table(gold: str, prediction: str, equal: bool) -> None:
    assert values_equal(parse_value(gold), parse_value(prediction)) is equal
    assert values_equal(parse_value(prediction), parse_value(gold)) is equal


def test_values_equal_counts_foreign_nans_as_nan() -> None:
    """nan objects that are not the parser's (built elsewhere) still count as equal."""
    other = float("nan")
    assert values_equal([other, {"k": (other, 1)}], parse_value("[nan, {'k': (nan, 1)}]"))
    assert values_equal({other}, parse_value("{nan}"))
    assert values_equal({other: 1}, parse_value("{nan: 1}"))
    assert not values_equal({other: 1}, parse_value("{nan: 2}"))
    assert not values_equal([other, 1], parse_value("[nan, 2]"))


def test_values_equal_never_raises() -> None:
    class Hostile:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no")

        __hash__ = object.__hash__

    cyclic: list[object] = []
    cyclic.append(cyclic)
    other: list[object] = []
    other.append(other)
    assert values_equal(Hostile(), 1) is False
    assert values_equal([Hostile()], [1]) is False
    assert values_equal(cyclic, other) is False  # RecursionError inside ==: not equal
    assert values_equal(cyclic, cyclic) is True  # the same object
    assert values_equal([NAN, cyclic], [float("nan"), other]) is False
    assert values_equal(1, "1") is False
    deep_gold: object = 0
    deep_prediction: object = 0
    for _ in range(10_000):
        deep_gold, deep_prediction = [deep_gold], [deep_prediction]
    assert values_equal(deep_gold, deep_prediction) in (True, False)


# ------------------------------------------------------------------ canonical text


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("{'b', 'a'}", "{'a', 'b'}", True),
        ("{1: 2, 0: 3}", "{0: 3, 1: 2}", True),
        ("frozenset({3, 1, 2})", "frozenset({1, 2, 3})", True),
        (
            "{(2, 'b'): {frozenset({'y', 'x'})}, (1, 'a'): set()}",
            "{(1, 'a'): set(), (2, 'b'): {frozenset({'x', 'y'})}}",
            True,
        ),
        ("(1, )", "(1,)", True),
        ("'a' 'b'", "'ab'", True),
        ('"ab"', "'ab'", True),
        ("0x10", "16", True),
        ("1_000", "1000", True),
        ("nan", "-nan", True),
        ("1e9999", "inf", True),
        ("1", "1.0", False),
        ("True", "1", False),
        ("0.0", "-0.0", False),
        ("(0.0+0j)", "0j", True),
        ("(-0+0j)", "0j", False),
        ("{1}", "frozenset({1})", False),
        ("[1]", "(1,)", False),
        ("{}", "set()", False),
        ("b'a'", "'a'", False),
    ],
)
def test_canonical_table(first: str, second: str, same: bool) -> None:
    assert (canonical(parse_value(first)) == canonical(parse_value(second))) is same
    assert (canonical_text(first) == canonical_text(second)) is same


def test_canonical_of_non_literals_is_raw_text() -> None:
    assert canonical_text("<object at 0x7f>") == "\x00raw:<object at 0x7f>"
    assert canonical_text("f(1)") != canonical_text("f(1) ")
    assert canonical_text(" [1,2] ") == canonical_text("[1, 2]") == "[1, 2]"


def test_canonical_refuses_what_is_not_a_literal_value(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LiteralError, match="not a literal type"):
        canonical(object())
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(LiteralError, match="nested more than"):
        canonical(cyclic)
    assert canonical(10**5000) == hex(10**5000)  # past int/str conversion: hex, still deterministic
    shared: list[object] = []
    for _ in range(64):  # 2**64 parts as a tree, 64 lists in memory
        shared = [shared, shared]
    monkeypatch.setattr(literals, "_CANONICAL_MAX_NODES", 10_000)  # the real cap takes seconds to reach
    with pytest.raises(LiteralError, match="more than 10000 parts"):
        canonical(shared)


def test_canonical_is_the_same_under_other_hash_seeds() -> None:
    """Each hash seed orders sets and dict keys of strings differently; canonical does not care."""
    program = (
        "from executor.literals import canonical, parse_value\n"
        "value = {f'k{i}': {f'v{i}', f'w{i}', frozenset({f'x{i}', f'y{i}'})} for i in range(20)}\n"
        "value = {frozenset(value): set(value)}\n"
        "print(repr(value))\nprint(canonical(value))\nprint(canonical(parse_value(repr(value))))\n"
    )
    reprs, canonicals = set(), set()
    for seed in ("0", "1", "2", "3"):
        environment = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO_ROOT)}
        lines = subprocess.run(
            [sys.executable, "-c", program], env=environment, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        reprs.add(lines[0])
        canonicals.update(lines[1:])
    assert len(reprs) > 1, "the hash seeds did not change the order: the test proves nothing"
    assert len(canonicals) == 1


# ------------------------------------------------------------------ rejections (deduction answers)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x", "the name 'x' is not a literal"),
        ("f", "the name 'f' is not a literal"),
        ("Infinity", "the name 'Infinity'"),
        ("NaN", "the name 'NaN'"),
        ("f('stressed')", "a call (f(...)) is not a literal"),
        ("len([1])", "a call (len(...))"),
        ("dict()", "a call (dict(...))"),
        ("tuple()", "a call (tuple(...))"),
        ("frozenset('ab')", "frozenset(...) takes a list, tuple or set display"),
        ("frozenset({})", "frozenset(...) takes a list, tuple or set display"),
        ("set(1, 2)", "set(...) takes a list, tuple or set display"),
        ("set([1], [2])", "set() takes at most one argument"),
        ("a.b", "the name 'a' is not a literal"),
        ("[1].count", "attribute access"),
        ("'abc'.upper()", "attribute access"),
        ("[x for x in y]", "the name 'x'"),
        ("[1 for _ in 'ab']", "a comprehension is not a literal"),
        ("{1: 2 for _ in ()}", "a comprehension is not a literal"),
        ("lambda: 1", "a lambda is not a literal"),
        ("1+2", "the operator '+' is not allowed"),
        ("1 - 2", "the operator '-' is not allowed"),
        ("2*3", "'*' is not allowed"),
        ("2**3", "'*' is not allowed"),
        ("1/2", "the operator '/' is not allowed"),
        ("'a'*3", "'*' is not allowed"),
        ("'a' * 10**9", "'*' is not allowed"),
        ("not 1", "the operator 'not'"),
        ("~1", "the operator '~'"),
        ("--1", "a sign ('-' or '+') may only come once"),
        ("- -1", "a sign ('-' or '+') may only come once"),
        ("-(1)", "a sign"),
        ("-True", "a sign"),
        ("1 < 2", "comparisons are not literals"),
        ("1 if True else 2", "a conditional expression"),
        ("1 and 2", "the operator 'and'"),
        ("(1+2j)+1", "the operator '+' is not allowed"),
        ("1j+1", "the operator '+' is not allowed"),
        ("1+True", "the operator '+' is not allowed"),
        ("0x1+2j", "the operator '+' is not allowed"),
        ("[1][0]", "subscripts and slices are not literals"),
        ("'abc'[1:]", "subscripts and slices"),
        ("f'{1}'", "an f-string"),
        ("F'x'", "an f-string"),
        ("rf'x'", "an f-string"),
        ("t'x'", "an f-string"),
        ("x'a'", "not a string prefix"),
        ("(x := 1)", "the name 'x'"),
        ("x = 1", "an assignment is not a literal"),
        ("...", "Ellipsis (...) is not accepted"),
        ("[1, ...]", "Ellipsis"),
        ("Ellipsis", "the name 'Ellipsis'"),
        ("*[1]", "'*' is not allowed"),
        ("[*[1]]", "'*' is not allowed"),
        ("{**{}}", "'*' is not allowed"),
        ("1; 2", "';' would start another statement"),
        ("1\n2", "expected the end of the value"),
        ("1\nimport os", "statements are not allowed"),
        ("[1]\n[2]", "subscripts"),
        ("1, 2", "a tuple needs its parentheses"),
        ("(1), (2)", "a tuple needs its parentheses"),
        ("{[1]: 2}", "a dict key must be hashable"),
        ("{{}: 2}", "a dict key must be hashable"),
        ("{(1, [2]): 3}", "a dict key must be hashable"),
        ("{[1]}", "a set member must be hashable"),
        ("{set()}", "a set member must be hashable"),
        ("frozenset([[1]])", "a set member must be hashable"),
        ("{1: 2, 3}", "a dict key needs ':' and a value"),
        ("{1: 2, 3, 4}", "a dict key needs ':' and a value"),
        ("{1, 2: 3}", "':' is only allowed between a dict key and its value"),
        ("{1: }", "expected a value"),
        ("[1:2]", "':' is only allowed"),
        ("[1 2]", "expected ',' or ']'"),
        ("[1,", "'[' is never closed"),
        ("(1", "'(' is never closed"),
        ("[1)", "expected ']' to close '['"),
        ("1)", "unmatched ')'"),
        ("'abc", "unterminated string literal"),
        ("'''abc'", "unterminated string literal"),
        ("'a\nb'", "unterminated string literal"),
        ("'a\rb'", "unterminated string literal"),
        ("b'a", "unterminated string literal"),
        ("'a' b'b'", "str and bytes literals cannot be concatenated"),
        ("b'é'", "bytes can only contain ASCII characters"),
        ("'\\x4'", "truncated \\xXX escape"),
        ("'\\u12'", "truncated \\u escape"),
        ("'\\U00110000'", "illegal Unicode character"),
        ("'\\N{NO SUCH NAME}'", "unknown Unicode character name"),
        ("'\\N{LATIN CAPITAL LETTER A WITH MACRON AND GRAVE}'", "unknown Unicode character name"),
        ("'\\Nx'", "malformed \\N"),
        ("007", "leading zeros are not allowed"),
        ("1_", "invalid number literal"),
        ("1__0", "invalid number literal"),
        ("0x", "invalid number literal"),
        ("1e", "invalid number literal"),
        ("1abc", "invalid number literal"),
        ("\\", "a backslash may only appear inside a string"),
        ("", "the text is empty"),
        ("   \n ", "the text is empty"),
        ("# only a comment", "the text is empty"),
        ("$", "the character '$' cannot appear"),
        ("1 `", "cannot appear"),
        ("\x00", "the text contains a NUL character"),
        ("'a\x00b'", "the text contains a NUL character"),
        ("[k=1]", "keyword arguments are only allowed in the argument list itself"),
    ],
)
def test_rejected_with_a_clear_message(text: str, fragment: str) -> None:
    message = rejected(text)
    assert fragment in message, message
    assert "(at " in message  # every parse error says where


def test_error_positions_are_line_and_column() -> None:
    assert "(at column 5: 'x]')" in rejected("[1, x]")
    assert "(at line 2, column 2: 'x]')" in rejected("[1,\n x]")


def test_non_text_is_rejected() -> None:
    with pytest.raises(LiteralError, match="expected a text"):
        parse_value(b"1")  # type: ignore[arg-type]
    with pytest.raises(LiteralError, match="expected a text"):
        parse_arguments(None)  # type: ignore[arg-type]
    assert not is_literal(1)  # type: ignore[arg-type]


# ------------------------------------------------------------------ argument lists (abduction answers)


@pytest.mark.parametrize(
    ("text", "args", "kwargs"),
    [
        ("1, [2], k=3", (1, [2]), {"k": 3}),
        ("", (), {}),
        ("  \n ", (), {}),
        ("# nothing", (), {}),
        ("(1, ), (1, ), (1, 2)", ((1,), (1,), (1, 2)), {}),
        ("(1, 2)", ((1, 2),), {}),
        ("[1, 2]", ([1, 2],), {}),
        ("'a',\n 'b',", ("a", "b"), {}),
        ("1, # the first\n 2", (1, 2), {}),
        ("x=1, y='a'", (), {"x": 1, "y": "a"}),
        ("a = 1", (), {"a": 1}),
        ("inf=inf, set=set(), nan_=-nan", (), {"inf": INF, "set": set(), "nan_": NAN}),
        ("1,", (1,), {}),
        ("-1, +2.5, (1+2j)", (-1, 2.5, complex(1, 2)), {}),
        ("'#', ')'", ("#", ")"), {}),
    ],
)
def test_arguments_accepted(text: str, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    parsed_args, parsed_kwargs = parse_arguments(text)
    assert values_equal(parsed_args, args) and type(parsed_args) is tuple
    assert values_equal(parsed_kwargs, kwargs) and list(parsed_kwargs) == list(kwargs)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1), (2", "')' would close the argument list early"),
        ("1, 2) or (3", "')' would close the argument list early"),
        ("1); import os; (1", "')' would close the argument list early"),
        ("1)\nimport os\nf(1", "')' would close the argument list early"),
        (")", "')' would close the argument list early"),
        ("]", "']' would close the argument list early"),
        ("1, 2]", "']' would close the argument list early"),
        ("*a", "'*' is not allowed"),
        ("*[1, 2]", "'*' is not allowed"),
        ("**kw", "'*' is not allowed"),
        ("**{'a': 1}", "'*' is not allowed"),
        ("k=1, 2", "a positional argument cannot follow a keyword argument"),
        ("k=1, k=2", "the keyword argument 'k' is given twice"),
        ("True=1", "'True' cannot be a keyword argument name"),
        ("lambda=1", "'lambda' cannot be a keyword argument name"),
        ("k=", "the text ends early"),
        ("k=1, j=", "the text ends early"),
        ("k==1", "the name 'k'"),
        ("1=2", "a keyword argument needs a name"),
        (",", "expected a value, found ','"),
        ("1,,2", "expected a value, found ','"),
        ("1 2", "expected ',' or the end of the arguments"),
        ("(1", "'(' is never closed"),
        ("f(1)", "a call (f(...))"),
        ("x", "the name 'x'"),
        ("x for x in y", "the name 'x'"),
        ("1 for x in y", "a comprehension"),
        ("1; 2", "';' would start another statement"),
        ("1\nimport os", "statements are not allowed"),
        ("(x := 1)", "the name 'x'"),
        ("1+2", "the operator '+' is not allowed"),
        ("k=[1", "'[' is never closed"),
    ],
)
def test_arguments_rejected(text: str, fragment: str) -> None:
    message = rejected(text, arguments=True)
    assert fragment in message, message


# ------------------------------------------------------------------ hostile sizes and limits


def quick(seconds: float, text: str, *, arguments: bool = False) -> str:
    """The LiteralError message for ``text``, which must come within ``seconds``."""
    started = time.perf_counter()
    message = rejected(text, arguments=arguments)
    elapsed = time.perf_counter() - started
    assert elapsed < seconds, f"{elapsed:.2f}s for a hostile text ({message})"
    return message


def test_deep_nesting_is_rejected_at_once() -> None:
    for opener in ("[", "(", "{", "set(", "frozenset("):
        assert "nested more than 100 deep" in quick(0.5, opener * 100_000)
        assert "nested more than 100 deep" in quick(0.5, opener * 100_000, arguments=True)
    assert "nested more than 100 deep" in quick(0.5, "[" * 101 + "]" * 101)
    assert parse_value("[" * 100 + "]" * 100) is not None  # exactly the limit is fine
    assert parse_arguments("(" * 100 + ")" * 100) == (((),), {})


def test_chains_without_brackets_stop_at_the_second_token() -> None:
    for text in (
        "-" * 999_999 + "1",
        "not " * 200_000 + "1",
        "1+" * 300_000 + "1",
        "a." * 300_000 + "a",
        "f" + "()" * 300_000,
        "[0]" * 300_000,
        "1 if 1 else " * 80_000 + "1",
        "lambda:" * 100_000 + "1",
        "~" * 999_999 + "1",
        "2**" * 300_000 + "2",
    ):
        quick(0.5, text)


def test_size_limit_is_checked_first() -> None:
    message = quick(0.1, "[" + "0," * 1_000_000 + "0]")
    assert "at most 1000000 are accepted" in message
    assert "at most 1000000 are accepted" in quick(0.1, " " * 2_000_000, arguments=True)
    text = "[" + "0," * 499_998 + "0]"  # 999,999 characters: within the limit
    assert len(text) <= DEFAULT_LIMITS.max_chars
    parsed = parse_value(text)
    assert isinstance(parsed, list) and len(parsed) == 499_999


def test_int_digit_limit() -> None:
    assert parse_value("9" * 4300) == 10**4300 - 1
    assert parse_value("-" + "9" * 4300) == -(10**4300 - 1)
    assert parse_value("1_" * 4299 + "1") == int("1" * 4300)  # separators are not digits
    assert "more than 4300 digits" in quick(0.1, "9" * 4301)
    assert "more than 4300 digits" in quick(0.1, "1" * 5000)
    assert "more than 4300 digits" in quick(0.1, "[1, " + "1" * 900_000 + "]")
    assert "more than 4300 digits" in quick(0.5, "0x" + "f" * 900_000)  # huge in any base
    assert parse_value(hex(10**4300 - 1)) == 10**4300 - 1
    assert "more than 4300 digits" in rejected(hex(10**4300))
    assert "more than 4300 digits" in rejected("(" + "1" * 4301 + "+1j)")
    assert "too large for a float" in rejected("(" + "1" * 400 + "+1j)")
    assert parse_value("1" * 900_000 + ".0") == INF
    assert parse_value("1" * 900_000 + "e-899990") == pytest.approx(1.111111111e9)


def test_custom_limits() -> None:
    small = LiteralLimits(max_chars=20, max_depth=2, max_int_digits=3, max_items=4)
    assert parse_value("[[1, 2]]", small) == [[1, 2]]
    with pytest.raises(LiteralError, match="nested more than 2 deep"):
        parse_value("[[[1]]]", small)
    with pytest.raises(LiteralError, match="more than 3 digits"):
        parse_value("1234", small)
    with pytest.raises(LiteralError, match="more than 4 values"):
        parse_value("[1, 2, 3, 4]", small)  # four ints and the list
    with pytest.raises(LiteralError, match="more than 4 values"):
        parse_arguments("1, 2, 3, k=4, j=5", small)
    with pytest.raises(LiteralError, match="at most 20"):
        parse_value("'" + "a" * 20 + "'", small)
    for bad in ({"max_depth": 0}, {"max_chars": -1}, {"max_items": 1.5}):
        with pytest.raises(ValueError, match="must be a positive int"):
            LiteralLimits(**bad)  # type: ignore[arg-type]


def test_pathological_strings_stay_linear() -> None:
    """Unterminated or escape-heavy strings near the size limit: the regular expressions never backtrack
    more than linearly."""
    for text in (
        "'" + "a" * 999_000,
        "'" + "\\'" * 499_000,
        '"""' + "'" * 999_000,
        "'''" + "\\'" * 400_000,
        "'''" + "''\\" * 300_000,
        "r'" + "\\" * 999_997 + "'",
        "'" + "a\\\n" * 300_000,
        "[" + "'a'," * 240_000 + "'",
    ):
        quick(2.0, text)
    started = time.perf_counter()
    assert parse_value("'" + "\\n" * 400_000 + "'") == "\n" * 400_000
    assert parse_value("'" + "\\d" * 300_000 + "'") == "\\d" * 300_000
    assert parse_value("'a' " * 200_000) == "a" * 200_000
    assert time.perf_counter() - started < 5.0


# ------------------------------------------------------------------ agreement with Python


def python_literal(text: str) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences
        return ast.literal_eval(text)


def same_outcome(text: str) -> None:
    """parse_value and ast.literal_eval both fail, or both give the same value of the same type.

    Python reads the text inside brackets, where it too takes line breaks as whitespace.
    """
    try:
        expected = python_literal(f"(\n{text}\n)")
        if expected is Ellipsis:  # Python's literal_eval takes it; the contract does not
            raise ValueError("Ellipsis")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        with pytest.raises(LiteralError):
            parse_value(text)
        return
    value = parse_value(text)
    assert type(value) is type(expected) and values_equal(value, expected), (text, value, expected)


ESCAPE_ALPHABET = st.sampled_from(
    list("\\\\\\\\'\"abfnrtvxuUN01234567{}89ABCDEFdeg z\n\t")
    + [
        "é",
        "你",
        "😀",
        "\x00",
        "\\N{BULLET}",
        "\\N{",
        "\\777",
        "\\400",
        "\\x4",
        "\\xff",
        "\\u00e9",
        "\\U0001F600",
    ]
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(["", "r", "b", "rb", "u", "BR", "Rb"]),
    quote=st.sampled_from(["'", '"', "'''", '"""']),
    body=st.lists(ESCAPE_ALPHABET, max_size=12).map("".join),
)
def test_strings_decode_as_python_does(prefix: str, quote: str, body: str) -> None:
    same_outcome(f"{prefix}{quote}{body}{quote}")


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="0123456789_.eEjJ+- ", max_size=10))
def test_decimal_numbers_parse_as_python_does(text: str) -> None:
    """Signs, exponents, imaginary numbers, real+imaginary: accepted exactly when Python's literal_eval
    accepts them (it allows one binary operator, real +/- imaginary, like this parser)."""
    if text.strip() != text:  # literal_eval strips leading spaces itself; compare on the bare text
        text = text.strip()
    if not text:
        return
    same_outcome(text)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet="0123456789_xXoObBaAfF+-j.", max_size=8))
def test_based_numbers_mean_what_python_means(text: str) -> None:
    """Hex, octal and binary: whatever the parser accepts, Python reads the same (the parser does not
    take a hex int as the real part of a complex number, which literal_eval does)."""
    try:
        value = parse_value(text)
    except LiteralError:
        return
    expected = python_literal(text)
    assert type(value) is type(expected) and values_equal(value, expected)


TOKENS = st.sampled_from(
    [
        "1",
        "-",
        "+",
        "2.5",
        "3j",
        "'a'",
        "b'b'",
        ",",
        ":",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "None",
        "True",
        " ",
        "\n",
        "x",
        "=",
        "*",
        ".",
        ";",
        "#",
        "1e5",
        "0x1",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(TOKENS, max_size=14).map("".join))
def test_whatever_is_accepted_python_reads_the_same(text: str) -> None:
    """Random token soup: the parser never fails other than with LiteralError, and whatever it accepts
    (but for inf/nan and set()/frozenset(), which Python's literal_eval lacks) literal_eval accepts
    too, with an equal value."""
    try:
        value = parse_value(text)
    except LiteralError:
        return
    expected = python_literal(f"(\n{text}\n)")  # Python allows line breaks inside brackets only
    assert type(value) is type(expected) and values_equal(value, expected), (text, value, expected)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_value_or_a_literal_error(text: str) -> None:
    for parse in (parse_value, parse_arguments):
        try:
            parse(text)
        except LiteralError:
            pass
    assert canonical_text(text)


# ------------------------------------------------------------------ round trips of random values

# Several nan objects can sit in one set or as keys of one dict, and repr cannot tell them apart, so
# hashable positions get no nan.
HASHABLE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.complex_numbers(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
HASHABLE = st.recursive(
    HASHABLE_SCALARS,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=8,
)
SCALARS = (
    HASHABLE_SCALARS
    | st.floats()
    | st.complex_numbers()
    | st.integers(min_value=-(10**4300 - 1), max_value=10**4300 - 1)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(HASHABLE, inner, max_size=4)
        | st.sets(HASHABLE, max_size=4)
        | st.frozensets(HASHABLE, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_random_values_round_trip_through_repr(value: object) -> None:
    parsed = parse_value(repr(value))
    assert values_equal(value, parsed)
    assert values_equal(parsed, value)
    assert canonical(parsed) == canonical(value)
    assert canonical_text(repr(value)) == canonical(value)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(VALUES, max_size=4),
    st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), VALUES, max_size=3),
)
def test_random_arguments_round_trip(args: list[object], kwargs: dict[str, object]) -> None:
    import keyword

    kwargs = {name: item for name, item in kwargs.items() if not keyword.iskeyword(name)}
    text = ", ".join([repr(item) for item in args] + [f"{name}={item!r}" for name, item in kwargs.items()])
    parsed_args, parsed_kwargs = parse_arguments(text)
    assert values_equal(parsed_args, tuple(args)) and values_equal(parsed_kwargs, kwargs)


# ------------------------------------------------------------------ CRUXEval

# Gold inputs that CRUXEval's harness evaluates as Python expressions: they are not literals, and the
# parser says so (the grammar is not widened for them).
CRUXEVAL_NON_LITERAL_INPUTS = {
    "sample_152": "attribute access",  # ''.join(['A'] * 20)
    "sample_239": "the operator '+' is not allowed",  # 'st ' + '0\t\n  '
    "sample_258": "the name 'thigh_o_two'",  # thigh_o_two[:], a name from the program
    "sample_344": "a lambda",  # (lambda x: x.reverse())
    "sample_364": "a lambda",  # lambda x: x < 2
    "sample_378": "a call (dict(...))",  # dict(did=0)
    "sample_459": "a call (dict(...))",  # dict()
    "sample_522": "a call (range(...))",  # range(100, 120)
    "sample_694": "a call (dict(...))",  # dict(e=1, d=2, c=3)
    "sample_720": "attribute access",  # '...'.split('-')
    "sample_760": "a call (dict(...))",  # dict(f = 1, h = 2, j = 3, k = 4)
    "sample_770": "attribute access",  # '$78'.upper()
}


def test_every_cruxeval_output_and_literal_input_parses(data_root: Path) -> None:
    """All 800 gold outputs parse as values, and all inputs but 12 non-literal ones as argument lists,
    to the values Python's literal_eval gives."""
    triplets = datasets.cruxeval(data_root)
    assert len(triplets) == 800
    failures, non_literal = [], {}
    for triplet in triplets:
        try:
            output = parse_value(triplet.output)
        except LiteralError as error:
            failures.append(f"{triplet.id} output: {error}")
            continue
        assert values_equal(output, python_literal(triplet.output)), triplet.id
        assert canonical(output) == canonical_text(triplet.output)
        try:
            args, kwargs = parse_arguments(triplet.input)
        except LiteralError as error:
            non_literal[triplet.id] = str(error)
            continue
        call = ast.parse(f"f({triplet.input})", mode="eval").body
        assert isinstance(call, ast.Call)
        assert values_equal(args, tuple(ast.literal_eval(node) for node in call.args)), triplet.id
        assert values_equal(kwargs, {str(node.arg): ast.literal_eval(node.value) for node in call.keywords})
    assert not failures, f"{len(failures)} of 800 outputs do not parse:\n" + "\n".join(failures)
    assert sorted(non_literal) == sorted(CRUXEVAL_NON_LITERAL_INPUTS), non_literal
    for sample, fragment in CRUXEVAL_NON_LITERAL_INPUTS.items():
        assert fragment in non_literal[sample], (sample, non_literal[sample])
