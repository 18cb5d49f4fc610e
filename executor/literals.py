"""Values as literals of builtin types, parsed and compared on the trusted side (never ``eval``).

The engine judges answers without running them: the gold value and the solver's answer are both
texts, and both are parsed here as literals of builtin types, then compared with Python's ``==``
(the CRUXEval rule: ``(1, )`` equals ``(1,)``, ``{2: 0, 1: 0}`` equals ``{1: 0, 2: 0}``, ``1`` equals
``1.0`` and ``True == 1``). The texts come from a policy under RL pressure or are ``repr()`` outputs
of untrusted programs, so the parser treats them as hostile.

Accepted syntax: what ``repr()`` writes for None, bool, int, float, complex, str, bytes, tuple, list,
dict, set and frozenset, plus what people naturally write for the same values:

- constants: strings and bytes with any prefix among ``r``, ``u``, ``b``, ``br``/``rb`` (any case),
  single or triple quoted, implicit concatenation (``'a' 'b'``; str and bytes do not mix);
  ints in decimal, hex, octal or binary with ``_`` separators; floats; imaginary numbers (``2j``);
  ``True``, ``False``, ``None``;
- the names ``inf`` and ``nan`` (``repr`` of float infinity and nan) and ``infj``, ``nanj`` (their
  imaginary forms, as in ``repr(complex(0, float('inf')))``);
- one sign (``-`` or ``+``) directly before a number or one of those names: ``-5``, ``-inf``,
  ``-nan`` (which is nan: ``repr`` never writes it, but it is accepted);
- a complex number written as a real number (decimal, or inf/nan), ``+`` or ``-``, and an imaginary
  number, with or without parentheses: ``(1+2j)``, ``(-0-1j)``, ``(inf+nanj)``, ``1-2j``. This is
  the only binary operator accepted. The parts are taken as ``repr`` means them, so ``(-0-1j)`` is
  ``complex(-0.0, -1.0)`` and ``-2j`` is ``complex(0.0, -2.0)`` (Python's ``eval`` gives other zero
  signs; the values are ``==``-equal either way);
- tuple, list, set and dict displays, nested, with trailing commas; parentheses around a value
  (``((1))`` is ``1``);
- ``set()`` and ``frozenset()``, and each with one list, tuple or set display as its argument:
  ``frozenset({1, 2})`` (the ``repr`` form), ``frozenset([1, 2])``, ``set((1, 2))``. No other call
  (not ``frozenset('ab')``, ``frozenset({})``, ``dict()`` or ``tuple()``);
- whitespace and ``#`` comments between tokens; line breaks count as whitespace anywhere (Python
  only allows them inside brackets, so ``'a'\\n'b'`` is ``'ab'`` here and a syntax error there).

Nothing else: names other than those above, calls, attributes, subscripts, comprehensions, lambdas,
f-strings, operators (``1+2``, ``'a'*3``, ``not 1``, ``~1``, ``--1``), ``:=``, ``...`` (Ellipsis),
starred items and statements are rejected with a :class:`LiteralError` that says what was found and
where. A bare tuple (``1, 2``) is rejected too: a tuple needs its parentheses, as in CRUXEval's
``assert gold == prediction``. A decimal int with leading zeros (``007``) is a syntax error, as in
Python. Dict keys and set members must be hashable (a list as a key is a ``LiteralError``).

Strings decode exactly as Python decodes them, escapes included (``\\x41``, ``\\u00e9``,
``\\N{...}``, octal, backslash-newline; an unknown escape such as ``\\d`` stays a backslash and
a letter, as in Python). ``\\r\\n`` and ``\\r`` line breaks count as ``\\n``, as in Python source.

Argument lists (abduction answers) follow Python's call syntax for the same values: positional
literals, then keyword arguments ``name=literal``; a trailing comma is fine; the empty text is no
arguments. A closing bracket that would end the call early (``1), (2``), ``*``/``**`` unpacking,
a repeated keyword, or a positional argument after a keyword is rejected.

Hardening (each limit is a field of :class:`LiteralLimits`):

- ``max_chars`` (1,000,000): longer text is rejected before any parsing.
- ``max_depth`` (100): brackets (``(``, ``[``, ``{``, including those of ``set(...)`` and
  ``frozenset(...)``) nested deeper are rejected as soon as the first bracket too deep is read.
  The parser is one loop with an explicit stack of open brackets, not recursive descent, and it
  never hands the text to CPython's parser (no ``ast.parse``, no ``eval``): 100,000 nested
  brackets cost 101 tokens and a ``LiteralError``. Chains that deepen a syntax tree without
  brackets (``- - - 1``, ``not not 1``, ``a.b.c``, ``x[0][0]``, ``1+1+1``) are rejected within
  their first two tokens.
- ``max_int_digits`` (4300, CPython's own default for int/str conversion): an int whose value has
  more decimal digits is rejected, whatever base it is written in (a huge hex literal too: its
  value could not be printed back in decimal). Decimal literals are checked by counting digits
  before any conversion. Floats may have any number of digits; ``1e9999`` is inf. A complex number
  whose real part is too large for a float is rejected.
- ``max_items`` (1,000,000): the number of values built (every scalar and container counts, dict
  keys and values each count) is capped, so memory stays proportional to the limit.

Memory stays near the size of the values built: the text is read lazily, token by token, by one
compiled regular expression whose repetitions are possessive (so that no input makes it backtrack
more than linearly), and no syntax tree is kept.

nan: ``float('nan') != float('nan')``. The parser returns one shared object, :data:`NAN`, for every
nan it reads (so ``[nan] == [nan]`` holds through Python's identity check, in sets and dict keys
too), and :func:`values_equal` also counts nan as equal to nan anywhere in two values, including
complex numbers with a nan part and nans that are not :data:`NAN`.

:func:`canonical` gives one text for ``==``-equal values of the same types (sets, frozensets and
dicts ordered by their members' canonical text), to compare two runs of a program under different
hash seeds: ``1`` and ``1.0``, ``0.0`` and ``-0.0``, a set and a frozenset all stay different.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from keyword import iskeyword
from typing import cast

__all__ = [
    "DEFAULT_LIMITS",
    "NAN",
    "LiteralError",
    "LiteralLimits",
    "canonical",
    "canonical_text",
    "is_literal",
    "parse_arguments",
    "parse_value",
    "values_equal",
]


# What canonical_text puts before a text that is not a literal (compared as exact text).
RAW_PREFIX = "\x00raw:"


class LiteralError(ValueError):
    """The text is not an accepted literal; the message says what is wrong and where."""


@dataclass(frozen=True)
class LiteralLimits:
    """Bounds on the work and memory one parse may take; see the module docstring."""

    max_chars: int = 1_000_000
    max_depth: int = 100
    max_int_digits: int = 4300
    max_items: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_depth", "max_int_digits", "max_items"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"LiteralLimits.{name} must be a positive int, not {value!r}")


DEFAULT_LIMITS = LiteralLimits()

#: The one nan object the parser returns for every ``nan`` it reads.
NAN: float = float("nan")
_INF = float("inf")

# --------------------------------------------------------------------------- tokens

# Every repetition below is possessive (``*+``, ``++``, ``?+``) or cannot match a character in
# two ways, so that no input makes the regular expressions backtrack more than linearly.
_SPACE = r"[ \t\f\n]*+"
_WS = rf"{_SPACE}(?:\#[^\n]*+{_SPACE})*+"  # whitespace and comments
# A backslash escapes the next character for the purpose of finding a string's end, raw strings
# included, exactly as in Python's tokenizer.
_STRING = (
    r"[A-Za-z]{0,2}(?:"
    r"'''[^'\\]*+(?:(?:\\[\s\S]|'(?!''))[^'\\]*+)*+'''"
    r'|"""[^"\\]*+(?:(?:\\[\s\S]|"(?!""))[^"\\]*+)*+"""'
    r"|'(?!'')[^'\\\n]*+(?:\\[\s\S][^'\\\n]*+)*+'"  # three quotes always open a triple-quoted string
    r'|"(?!"")[^"\\\n]*+(?:\\[\s\S][^"\\\n]*+)*+"'
    r")"
)
# Python's numeric literals.
_DIGITS = r"[0-9](?:_?[0-9])*+"
_REAL = rf"(?:{_DIGITS}(?:\.(?:{_DIGITS})?+)?+|\.{_DIGITS})(?:[eE][-+]?{_DIGITS})?+"
_BASED = r"0(?:[xX](?:_?[0-9a-fA-F])++|[oO](?:_?[0-7])++|[bB](?:_?[01])++)"
_NUMBER = rf"(?:{_BASED}|{_REAL}[jJ]?+|(?:inf|nan)j?+)(?!\w)"
_COMPLEX = rf"(?:[-+]{_SPACE})?(?:{_REAL}|inf|nan)(?!\w){_SPACE}[-+]{_SPACE}(?:{_REAL}[jJ]|infj|nanj)(?!\w)"

_TOKEN = re.compile(  # the most frequent tokens first
    rf"{_WS}(?:"
    r"(?P<op>[()\[\]{},:=])"
    rf"|(?P<str>(?P<first>{_STRING})(?:{_WS}{_STRING})*+)"  # implicit concatenation is one token
    rf"|(?P<kw>[^\W\d]\w*+{_SPACE}=(?!=))"
    rf"|(?P<cplx>{_COMPLEX})"
    rf"|(?P<num>(?:[-+]{_SPACE})?{_NUMBER})"
    rf"|(?P<call>(?:set|frozenset){_SPACE}\()"
    r"|(?P<name>[^\W\d]\w*+)"
    r"|(?P<sign>[-+])"
    r"|(?P<end>\Z)"
    r"|(?P<bad>[\s\S]))"
)
_ONE_STRING = re.compile(rf"{_WS}({_STRING})")
_COMPLEX_PARTS = re.compile(rf"([-+]?){_SPACE}({_REAL}|inf|nan){_SPACE}([-+]){_SPACE}([\s\S]+)")
_CALL_FOLLOWS = re.compile(rf"{_SPACE}\(")

_STRING_PREFIXES = frozenset({"", "r", "u", "b", "br", "rb"})
_CONSTANTS: dict[str, object] = {"True": True, "False": False, "None": None}
_NUMBER_NAMES: dict[str, float | complex] = {
    "inf": _INF,
    "nan": NAN,
    "infj": complex(0.0, _INF),
    "nanj": complex(0.0, NAN),
}

_BAD_HINTS = {
    ";": "';' would start another statement: give the literal only",
    ".": "attribute access ('.') is not a literal",
    "\\": "a backslash may only appear inside a string",
    "*": "'*' is not allowed: no multiplication, repetition or unpacking (*x, **x) in a literal",
    "!": "'!' is not allowed: no comparison in a literal",
    "<": "comparisons are not literals",
    ">": "comparisons are not literals",
}
_KEYWORD_HINTS = {
    "for": "a comprehension is not a literal: write out its items",
    "async": "a comprehension is not a literal: write out its items",
    "lambda": "a lambda is not a literal",
    "if": "a conditional expression is not a literal",
    "else": "a conditional expression is not a literal",
    "not": "the operator 'not' is not allowed in a literal",
    "and": "the operator 'and' is not allowed in a literal",
    "or": "the operator 'or' is not allowed in a literal",
    "in": "the operator 'in' is not allowed in a literal",
    "is": "the operator 'is' is not allowed in a literal",
    "import": "statements are not allowed: give the literal only",
}

# --------------------------------------------------------------------------- strings

_STR_ESCAPE = re.compile(
    r"\\([0-7]{1,3}|x[0-9A-Fa-f]{0,2}|u[0-9A-Fa-f]{0,4}|U[0-9A-Fa-f]{0,8}|N\{[^}]*\}|[\s\S])"
)
_BYTES_ESCAPE = re.compile(r"\\([0-7]{1,3}|x[0-9A-Fa-f]{0,2}|[\s\S])")  # no \u, \U or \N in bytes
# Escapes that Python's codecs warn about (unknown ones, octal above \377) or that need the
# parser's own handling (a backslash before a non-ASCII character): bodies with these take the
# slow path. A false alarm (as after an escaped backslash) only costs time.
_STR_SLOW_ESCAPE = re.compile(r"""\\(?:[^\n\\'"abfnrtv0-7xuUN]|[4-7][0-7][0-7])""")
_BYTES_SLOW_ESCAPE = re.compile(r"""\\(?:[^\n\\'"abfnrtv0-7x]|[4-7][0-7][0-7])""")
_SIMPLE_ESCAPES = {
    "\n": "",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def _unescape(body: str, is_bytes: bool) -> str:
    """Decode a non-raw string body as Python does (for bytes: to code points below 256)."""
    slow = _BYTES_SLOW_ESCAPE if is_bytes else _STR_SLOW_ESCAPE
    if not slow.search(body):
        try:  # the C codec: same meaning as Python's string literals for these escapes
            return body.encode("ascii", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            pass  # a malformed escape: the slow path below says which

    def one(match: re.Match[str]) -> str:
        escape = match.group(1)
        first = escape[0]
        simple = _SIMPLE_ESCAPES.get(first)
        if simple is not None:
            return simple
        if first in "01234567":
            code = int(escape, 8)
            return chr(code & 0xFF) if is_bytes else chr(code)
        if first == "x":
            if len(escape) != 3:
                raise LiteralError("truncated \\xXX escape: \\x needs two hex digits")
            return chr(int(escape[1:], 16))
        if is_bytes:  # unknown escapes (\u, \U and \N too) mean themselves in bytes
            return "\\" + escape
        if first in "uU":
            width = 5 if first == "u" else 9
            if len(escape) != width:
                raise LiteralError(f"truncated \\{first} escape: it needs {width - 1} hex digits")
            code = int(escape[1:], 16)
            if code > 0x10FFFF:
                raise LiteralError(f"illegal Unicode character \\{escape} (above U+10FFFF)")
            return chr(code)
        if first == "N":
            if not escape.startswith("N{"):
                raise LiteralError("malformed \\N character escape: write \\N{NAME}")
            try:
                char = unicodedata.lookup(escape[2:-1])
            except KeyError:
                char = ""
            if len(char) != 1:  # Python's \N takes names and aliases, not named sequences
                raise LiteralError(f"unknown Unicode character name in \\{escape}")
            return char
        return "\\" + escape  # an unknown escape keeps its backslash, as in Python

    return (_BYTES_ESCAPE if is_bytes else _STR_ESCAPE).sub(one, body)


def _decode_string(token: str) -> str | bytes:
    """The value of one string or bytes literal token."""
    first = token[0]
    if first == "'" or first == '"':  # no prefix: the common case
        width = 3 if len(token) >= 6 and token[1] == first == token[2] else 1
        body = token[width:-width]
        return _unescape(body, False) if "\\" in body else body
    quote = 0
    while token[quote] not in "'\"":
        quote += 1
    prefix = token[:quote].lower()
    if prefix not in _STRING_PREFIXES:
        if "f" in prefix or "t" in prefix:
            raise LiteralError(f"an f-string ({token[:quote]}'...') is not a literal: give the text it makes")
        raise LiteralError(f"{token[:quote]!r} is not a string prefix (use r, b, u or br)")
    width = 3 if len(token) - quote >= 6 and token.startswith(token[quote] * 3, quote) else 1
    body = token[quote + width : len(token) - width]
    is_bytes = "b" in prefix
    if is_bytes and not body.isascii():
        raise LiteralError("bytes can only contain ASCII characters: write others as \\x escapes")
    if "r" not in prefix and "\\" in body:
        body = _unescape(body, is_bytes)
    return body.encode("latin-1") if is_bytes else body


# --------------------------------------------------------------------------- the parser

_ROOT, _ARGS, _LIST, _PAREN, _BRACE, _CALL = range(6)  # frame kinds; _LIST.._BRACE are displays
_OPENS = {"[": _LIST, "(": _PAREN, "{": _BRACE}
_CLOSER = {_LIST: "]", _PAREN: ")", _BRACE: "}", _CALL: ")"}
_SET, _DICT = 1, 2  # brace modes; 0 while undecided
_SCALAR, _FROM_DISPLAY, _FROM_OTHER = range(3)  # where a value came from (set()/frozenset() check)


class _Frame:
    """One open bracket (or the root): what was collected inside it so far."""

    __slots__ = ("kind", "start", "items", "origin", "comma", "mode", "name", "keyword", "kwargs")

    def __init__(self, kind: int, start: int, name: str = "") -> None:
        self.kind = kind
        self.start = start
        self.items: list[object] = []
        self.origin = _SCALAR  # where the last item came from
        self.comma = False  # a tuple, once a paren frame has seen a comma
        self.mode = 0  # _SET or _DICT once a brace frame knows
        self.name = name  # set or frozenset, for a call frame
        self.keyword: str | None = None  # the keyword argument whose value comes next
        self.kwargs: dict[str, object] = {}


class _Parser:
    """One parse: a loop over tokens with an explicit stack of open brackets (no recursion)."""

    def __init__(self, text: str, limits: LiteralLimits) -> None:
        self.text = text
        self.limits = limits

    def run(self, root: int) -> object:
        """The value (root ``_ROOT``) or ``(args, kwargs)`` (root ``_ARGS``) of the whole text."""
        max_depth = self.limits.max_depth
        max_items = self.limits.max_items
        count = 0
        frame = _Frame(root, 0)
        stack = [frame]
        expecting = True  # a value (or, where allowed, a closing bracket) comes next
        value: object
        for match in _TOKEN.finditer(self.text):
            kind = match.lastgroup or "bad"  # (every alternative is a named group)
            if expecting:
                origin = _SCALAR
                if kind == "op":
                    token = match.group(kind)
                    if token in _OPENS:
                        if len(stack) > max_depth:
                            raise self.error(
                                match.start(kind), f"brackets are nested more than {max_depth} deep"
                            )
                        frame = _Frame(_OPENS[token], match.start(kind))
                        stack.append(frame)
                        continue
                    if token not in ")]}" or frame.kind < _LIST or self.open_key(frame):
                        raise self.value_expected(frame, kind, token, match.start(kind))
                    value, origin = self.close(frame, token, match.start(kind))  # () [] {} or a trailing ','
                    stack.pop()
                    frame = stack[-1]
                elif kind == "num":
                    value = self.number(match.group(kind), match.start(kind))
                elif kind == "str":
                    value = self.strings(match)
                elif kind == "name" and match.group(kind) in _CONSTANTS:
                    value = _CONSTANTS[match.group(kind)]
                elif kind == "cplx":
                    value = self.complex_number(match.group(kind), match.start(kind))
                elif kind == "call":
                    if len(stack) > max_depth:
                        raise self.error(match.start(kind), f"brackets are nested more than {max_depth} deep")
                    frame = _Frame(_CALL, match.start(kind), match.group(kind)[:-1].rstrip())
                    stack.append(frame)
                    continue
                elif kind == "kw" and frame.kind == _ARGS and frame.keyword is None:
                    self.keyword(frame, match.group(kind), match.start(kind))
                    continue
                elif kind == "end" and frame.kind == _ARGS and frame.keyword is None:
                    return tuple(frame.items), frame.kwargs
                else:
                    raise self.value_expected(frame, kind, match.group(kind), match.start(kind))
                expecting = False
            else:  # after a value: a separator, a closing bracket, or the end
                if kind == "op":
                    token = match.group(kind)
                    if token == "," and frame.kind != _ROOT:
                        if frame.kind == _PAREN:
                            frame.comma = True
                        elif frame.kind == _BRACE:
                            if self.open_key(frame):
                                raise self.error(match.start(kind), "a dict key needs ':' and a value")
                            frame.mode = frame.mode or _SET
                        expecting = True
                        continue
                    if token == ":" and frame.kind == _BRACE and frame.mode != _SET and len(frame.items) % 2:
                        frame.mode = _DICT
                        expecting = True
                        continue
                    if token in ")]}" and frame.kind >= _LIST:
                        if frame.kind == _BRACE and frame.mode == 0:
                            frame.mode = _SET
                        value, origin = self.close(frame, token, match.start(kind))
                        stack.pop()
                        frame = stack[-1]
                    else:
                        raise self.after_value(frame, kind, token, match.start(kind))
                elif kind == "end" and frame.kind == _ROOT:
                    return frame.items[0]
                elif kind == "end" and frame.kind == _ARGS:
                    return tuple(frame.items), frame.kwargs
                else:
                    raise self.after_value(frame, kind, match.group(kind), match.start(kind))
            # a value is complete: it joins the frame it was written in
            count += 1
            if count > max_items:
                raise self.error(match.start(kind), f"more than {max_items} values in one text")
            if _LIST <= frame.kind <= _BRACE:
                frame.items.append(value)
                frame.origin = origin
            else:
                self.deliver(frame, value, origin, match.start(kind))
        raise AssertionError("unreachable: the token pattern matches the end of the text")

    # ----------------------------------------------------------------- scalars

    def number(self, token: str, start: int) -> int | float | complex:
        """The value of a number token: an int, a float or an imaginary number, maybe signed."""
        if token.isdigit() and token[0] != "0" and len(token) <= self.limits.max_int_digits:
            return int(token)  # the common case: a plain decimal int
        negative = False
        if token[0] in "+-":
            negative = token[0] == "-"
            token = token[1:].lstrip(" \t\f\n")
        value: int | float | complex
        if token in _NUMBER_NAMES:
            value = _NUMBER_NAMES[token]
            if value is NAN:
                return NAN  # -nan is nan, and stays the one shared nan
        elif token[-1] in "jJ":
            value = complex(0.0, float(token[:-1]))
        elif token[:2] in ("0x", "0X", "0o", "0O", "0b", "0B"):
            value = int(token, 0)
            if value >= _digit_bound(self.limits.max_int_digits):
                raise self.error(start, self.too_many_digits())
        elif "." in token or "e" in token or "E" in token:
            value = float(token)
        else:
            value = self.decimal_int(token, start)
        if not negative:
            return value
        if isinstance(value, complex):  # a sign before an imaginary number negates that part only
            return complex(0.0, -value.imag)
        return -value

    def decimal_int(self, token: str, start: int) -> int:
        if token[0] == "0" and token.strip("0_"):
            raise self.error(start, "leading zeros are not allowed in a decimal int (write 0o17 for octal)")
        if len(token) - token.count("_") > self.limits.max_int_digits:
            raise self.error(start, self.too_many_digits())
        try:
            return int(token)
        except ValueError as error:  # a limit above the interpreter's int_max_str_digits
            raise self.error(start, f"the int cannot be converted: {error}") from None

    def too_many_digits(self) -> str:
        return f"an int with more than {self.limits.max_int_digits} digits is not accepted"

    def complex_number(self, token: str, start: int) -> complex:
        """``real+imaginary`` or ``real-imaginary``, such as ``(1+2j)`` or ``-0-1j``.

        The sign applies to the real part as a float, so ``-0+1j`` keeps the real part -0.0: the
        value ``repr`` wrote this text for.
        """
        parts = _COMPLEX_PARTS.fullmatch(token)
        assert parts is not None  # the token pattern matched the same shape
        sign, real_text, operator, imaginary_text = parts.groups()
        real = self.number(real_text, start)
        assert not isinstance(real, complex)  # the pattern's real part has no j
        try:
            real_part = float(real)
        except OverflowError:
            raise self.error(start, "the real part of the complex number is too large for a float") from None
        imaginary = self.number(imaginary_text, start)
        assert isinstance(imaginary, complex)
        return complex(
            -real_part if sign == "-" else real_part,
            -imaginary.imag if operator == "-" else imaginary.imag,
        )

    def strings(self, match: re.Match[str]) -> str | bytes:
        """One string literal, or several in a row (implicit concatenation)."""
        start = match.start("str")
        try:
            if match.end("first") == match.end("str"):
                return _decode_string(match.group("str"))
            parts = []
            for part in _ONE_STRING.finditer(match.group("str")):
                start = match.start("str") + part.start(1)
                parts.append(_decode_string(part.group(1)))
        except LiteralError as error:
            raise self.error(start, str(error)) from None
        if all(type(part) is str for part in parts):
            return "".join(cast(list[str], parts))
        if all(type(part) is bytes for part in parts):
            return b"".join(cast(list[bytes], parts))
        raise self.error(match.start("str"), "str and bytes literals cannot be concatenated")

    # ----------------------------------------------------------------- containers

    @staticmethod
    def open_key(frame: _Frame) -> bool:
        """Whether a dict display has a key still waiting for its value."""
        return frame.kind == _BRACE and frame.mode == _DICT and len(frame.items) % 2 == 1

    def deliver(self, frame: _Frame, value: object, origin: int, start: int) -> None:
        """A complete value joins the root, the argument list or a set()/frozenset() call."""
        if frame.kind == _ARGS:
            if frame.keyword is not None:
                frame.kwargs[frame.keyword] = value
                frame.keyword = None
                return
            if frame.kwargs:
                raise self.error(start, "a positional argument cannot follow a keyword argument")
        elif frame.kind == _CALL:
            if frame.items:
                raise self.error(start, f"{frame.name}() takes at most one argument")
            if origin != _FROM_DISPLAY:
                raise self.error(
                    start,
                    f"{frame.name}(...) takes a list, tuple or set display, as in {frame.name}({{1, 2}})",
                )
        frame.items.append(value)

    def close(self, frame: _Frame, closer: str, position: int) -> tuple[object, int]:
        """The value of a frame whose closing bracket was just read, and where it came from."""
        expected = _CLOSER[frame.kind]
        if closer != expected:
            opener = self.text[frame.start] if frame.kind != _CALL else f"{frame.name}("
            raise self.error(position, f"expected {expected!r} to close {opener!r}, found {closer!r}")
        items = frame.items
        kind = frame.kind
        if kind == _LIST:
            return items, _FROM_DISPLAY
        if kind == _PAREN:
            if frame.comma or not items:
                return tuple(items), _FROM_DISPLAY
            return items[0], frame.origin  # parentheses around one value
        try:
            if kind == _BRACE:
                if frame.mode == _SET:
                    return set(items), _FROM_DISPLAY
                if len(items) % 2:
                    raise self.error(position, "a dict key needs ':' and a value")
                return dict(zip(items[::2], items[1::2], strict=True)), _FROM_OTHER
            member = cast(Iterable[object], items[0] if items else ())  # a display: deliver() checked
            return (set(member) if frame.name == "set" else frozenset(member)), _FROM_OTHER
        except TypeError as error:
            what = "a dict key" if kind == _BRACE and frame.mode != _SET else "a set member"
            raise self.error(
                frame.start, f"{what} must be hashable ({error}): use a tuple instead of a list"
            ) from None

    def keyword(self, frame: _Frame, token: str, start: int) -> None:
        name = token[:-1].rstrip()
        if iskeyword(name):
            raise self.error(start, f"{name!r} cannot be a keyword argument name")
        name = unicodedata.normalize("NFKC", name)  # as Python reads identifiers
        if name in frame.kwargs:
            raise self.error(start, f"the keyword argument {name!r} is given twice")
        frame.keyword = name

    # ----------------------------------------------------------------- errors

    def error(self, position: int, message: str) -> LiteralError:
        """A LiteralError that says where: column (and line), and the text found there."""
        text = self.text
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        where = f"column {column}" if "\n" not in text else f"line {line}, column {column}"
        near = text[position : position + 30].split("\n", 1)[0]
        if near:
            return LiteralError(f"{message} (at {where}: {near!r})")
        return LiteralError(f"{message} (at {where}, the end of the text)")

    def value_expected(self, frame: _Frame, kind: str, token: str, start: int) -> LiteralError:
        """The error for a token where a value should start."""
        if kind == "name" and not iskeyword(token):
            if len(token) <= 2 and self.text.startswith(("'", '"'), start + len(token)):
                return self.error(start, "unterminated string literal")  # a prefix, then a quote
            if _CALL_FOLLOWS.match(self.text, start + len(token)):
                return self.error(start, f"a call ({token}(...)) is not a literal: give the value it returns")
            return self.error(
                start,
                f"the name {token!r} is not a literal: the only names allowed are True, False, None, "
                "inf and nan (and set/frozenset before their brackets)",
            )
        if kind == "kw":
            if frame.kind == _ROOT:
                return self.error(start, "an assignment is not a literal: give the value only")
            if frame.kind == _ARGS:
                return self.error(start, "expected the value of the keyword argument before the next one")
            return self.error(start, "keyword arguments are only allowed in the argument list itself")
        if kind == "op" and token in ")]}":
            if frame.kind == _ARGS:
                return self.error(
                    start, f"{token!r} would close the argument list early: give the arguments only"
                )
            if frame.kind == _ROOT:
                return self.error(start, f"unmatched {token!r}")
        if kind == "sign":
            return self.error(
                start, "a sign ('-' or '+') may only come once, right before a number, inf or nan"
            )
        if kind == "end":
            if frame.kind == _ROOT:
                return self.error(start, "the text is empty: expected a value")
            if frame.kind >= _LIST:
                return self.never_closed(frame)
        return self.unexpected(kind, token, start, "a value")

    def after_value(self, frame: _Frame, kind: str, token: str, start: int) -> LiteralError:
        """The error for a token after a complete value."""
        if kind == "end":
            return self.never_closed(frame)
        if kind == "op" and token == "," and frame.kind == _ROOT:
            return self.error(start, "a tuple needs its parentheses: write (1, 2), not 1, 2")
        if kind == "op" and token in ")]}":
            if frame.kind == _ARGS:
                return self.error(
                    start, f"{token!r} would close the argument list early: give the arguments only"
                )
            return self.error(start, f"unmatched {token!r}")
        if kind == "sign" or (kind in ("num", "cplx") and token[0] in "+-"):
            return self.error(
                start,
                f"the operator {token[0]!r} is not allowed here: a literal has no arithmetic "
                "(only a sign before a number, and real+imaginary in a complex number such as (1+2j))",
            )
        if kind == "op" and token == "(":
            return self.error(start, "a call is not a literal")
        if kind == "op" and token == "[":
            return self.error(start, "subscripts and slices are not literals")
        if kind == "op" and token == "=":
            return self.error(start, "'=' is not allowed: a keyword argument needs a name before it")
        if kind == "op" and token == ":":
            return self.error(start, "':' is only allowed between a dict key and its value")
        if kind == "bad" or (kind == "name" and token in _KEYWORD_HINTS):
            return self.unexpected(kind, token, start, "")
        expected = {
            _ROOT: "the end of the value",
            _ARGS: "',' or the end of the arguments",
            _LIST: "',' or ']'",
            _PAREN: "',' or ')'",
            _BRACE: "',', ':' or '}'",
            _CALL: "')'",
        }[frame.kind]
        return self.error(start, f"expected {expected}, found {token!r}")

    def never_closed(self, frame: _Frame) -> LiteralError:
        opener = self.text[frame.start] if frame.kind != _CALL else f"{frame.name}("
        return self.error(frame.start, f"{opener!r} is never closed")

    def unexpected(self, kind: str, token: str, start: int, expected: str) -> LiteralError:
        """The error for a stray token, with a hint for the usual suspects."""
        if kind == "bad":
            if token in "'\"":
                return self.error(start, "unterminated string literal")
            if token == "." and self.text.startswith("...", start):
                return self.error(start, "Ellipsis (...) is not accepted")
            if token.isdigit():
                return self.error(start, "invalid number literal")
            hint = _BAD_HINTS.get(token)
            if hint is None:
                hint = f"the character {token!r} cannot appear outside a string in a literal"
                if token in "/%@&|^~":
                    hint = f"the operator {token!r} is not allowed in a literal"
            return self.error(start, hint)
        if kind == "name" and token in _KEYWORD_HINTS:
            return self.error(start, _KEYWORD_HINTS[token])
        if kind == "name" and iskeyword(token):
            return self.error(start, f"the keyword {token!r} cannot appear in a literal")
        if kind == "end":
            return self.error(start, f"the text ends early: expected {expected}")
        return self.error(start, f"expected {expected}, found {token!r}")


_BOUNDS: dict[int, int] = {}


def _digit_bound(digits: int) -> int:
    """The smallest int with more than ``digits`` decimal digits (cached per limit)."""
    bound = _BOUNDS.get(digits)
    if bound is None:
        bound = 10**digits
        if len(_BOUNDS) < 16:
            _BOUNDS[digits] = bound
    return bound


def _prepare(text: object, limits: LiteralLimits) -> str:
    if type(text) is not str:
        raise LiteralError(f"expected a text (str), not {type(text).__name__}")
    if len(text) > limits.max_chars:
        raise LiteralError(f"the text has {len(text)} characters; at most {limits.max_chars} are accepted")
    if "\x00" in text:  # as in Python source, even inside a string (repr writes it as \x00)
        raise LiteralError(f"the text contains a NUL character (at character {text.index(chr(0)) + 1})")
    if "\r" in text:  # as in Python source: \r\n and \r are line breaks
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def parse_value(text: str, limits: LiteralLimits = DEFAULT_LIMITS) -> object:
    """The value of ``text``, one literal of builtin types (surrounding whitespace is fine).

    Raises :class:`LiteralError` (a ``ValueError``) for anything else; see the module docstring.
    """
    return _Parser(_prepare(text, limits), limits).run(_ROOT)


def parse_arguments(
    text: str, limits: LiteralLimits = DEFAULT_LIMITS
) -> tuple[tuple[object, ...], dict[str, object]]:
    """The positional and keyword arguments of a literal argument list such as ``1, [2], k=3``.

    The empty (or blank) text is no arguments: ``((), {})``. Raises :class:`LiteralError`.
    """
    result = _Parser(_prepare(text, limits), limits).run(_ARGS)
    return cast(tuple[tuple[object, ...], dict[str, object]], result)


def is_literal(text: str) -> bool:
    """Whether :func:`parse_value` accepts ``text``."""
    try:
        parse_value(text)
    except LiteralError:
        return False
    return True


# --------------------------------------------------------------------------- equality

_NAN_TOKEN = object()  # stands for every nan in a nan-free copy of a value
_COMPLEX_TAG = object()


def _has_nan(value: object) -> bool:
    """Whether a nan (float or a part of a complex) occurs anywhere in ``value``."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if type(item) is float or type(item) is complex:
            if item != item:
                return True
        elif type(item) in (list, tuple, set, frozenset, dict):
            if id(item) in seen:  # a value that contains itself (never one from the parser)
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                stack.extend(item)
    return False


def _without_nan(value: object) -> object:
    """A copy of ``value`` in which every nan is one token, so that ``==`` counts nan as nan."""
    kind = type(value)
    if kind is float:
        return _NAN_TOKEN if value != value else value
    if kind is complex and isinstance(value, complex):
        if value == value:
            return value
        if value.imag == 0:
            return _without_nan(value.real)
        return (_COMPLEX_TAG, _without_nan(value.real), _without_nan(value.imag))
    if kind is list and isinstance(value, list):
        return [_without_nan(item) for item in value]
    if kind is tuple and isinstance(value, tuple):
        return tuple(_without_nan(item) for item in value)
    if kind is set and isinstance(value, set):
        return {_without_nan(item) for item in value}
    if kind is frozenset and isinstance(value, frozenset):
        return frozenset(_without_nan(item) for item in value)
    if kind is dict and isinstance(value, dict):
        return {_without_nan(key): _without_nan(item) for key, item in value.items()}
    return value


def values_equal(gold: object, prediction: object) -> bool:
    """Python's ``==`` on parsed builtin values, with nan equal to nan. Never raises.

    ``True`` when ``gold is prediction or gold == prediction``; otherwise, when both values
    contain a nan, they are compared again with every nan replaced by one and the same token.
    """
    try:
        if gold is prediction or gold == prediction:
            return True
        if not _has_nan(gold) or not _has_nan(prediction):
            return False
        return bool(_without_nan(gold) == _without_nan(prediction))
    except Exception:  # RecursionError, MemoryError, a foreign type's __eq__: not equal
        return False


# --------------------------------------------------------------------------- canonical text

_CANONICAL_MAX_DEPTH = 1000
_CANONICAL_MAX_NODES = 10_000_000  # a parsed value has at most max_items (1,000,000 by default)
_VISIT, _JOIN = 0, 1


def _scalar_text(value: object) -> str | None:
    kind = type(value)
    if kind is int and isinstance(value, int):
        try:
            return repr(value)
        except ValueError:  # more digits than int/str conversion allows
            return hex(value)
    if kind in (str, bytes, float, complex, bool) or value is None:
        return repr(value)
    return None


def canonical(value: object) -> str:
    """One text for ``==``-equal values of the same type structure.

    Like ``repr`` but with set, frozenset and dict members ordered by their own canonical text,
    so it does not depend on the hash seed. Type-aware: ``1``, ``1.0`` and ``True`` differ, and
    so do ``0.0`` and ``-0.0``; a nan is always ``nan``. Raises :class:`LiteralError` for a type
    that is not a literal type, a value nested deeper than 1000 levels (or containing itself), or
    one of more than 10,000,000 values counted as a tree (shared parts count each time). The
    traversal uses an explicit stack, not recursion.
    """
    out: list[str] = []
    tasks: list[tuple[int, object, int]] = [(_VISIT, value, 0)]
    visited = 0
    while tasks:
        task, item, extra = tasks.pop()
        if task == _VISIT:
            visited += 1
            if visited > _CANONICAL_MAX_NODES:
                raise LiteralError(f"canonical: the value has more than {_CANONICAL_MAX_NODES} parts")
            text = _scalar_text(item)
            if text is not None:
                out.append(text)
                continue
            kind = type(item)
            if kind is dict and isinstance(item, dict):
                children = [part for pair in item.items() for part in pair]
            elif kind in (list, tuple, set, frozenset) and isinstance(item, list | tuple | set | frozenset):
                children = list(item)
            else:
                raise LiteralError(f"canonical: {kind.__name__} is not a literal type")
            if extra >= _CANONICAL_MAX_DEPTH:
                raise LiteralError(f"canonical: the value is nested more than {_CANONICAL_MAX_DEPTH} deep")
            tasks.append((_JOIN, item, len(children)))
            tasks.extend((_VISIT, child, extra + 1) for child in reversed(children))
            continue
        parts = out[len(out) - extra :]
        del out[len(out) - extra :]
        out.append(_join(type(item), parts))
    return out[0]


def _join(kind: type, parts: list[str]) -> str:
    if kind is list:
        return "[" + ", ".join(parts) + "]"
    if kind is tuple:
        return "(" + parts[0] + ",)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"
    if kind is dict:
        pairs = sorted(zip(parts[::2], parts[1::2], strict=True))
        return "{" + ", ".join(f"{key}: {item}" for key, item in pairs) + "}"
    parts.sort()
    if kind is set:
        return "{" + ", ".join(parts) + "}" if parts else "set()"
    return "frozenset({" + ", ".join(parts) + "})" if parts else "frozenset()"


def canonical_text(text: str) -> str:
    """``canonical(parse_value(text))`` for a literal; otherwise ``"\\x00raw:" + text``.

    Texts that are not literals compare as exact text.
    """
    try:
        return canonical(parse_value(text))
    except LiteralError:
        return RAW_PREFIX + text
