"""Final-answer extraction (``\\boxed{}`` etc.) and equivalence checking for the math sets.

Equivalence uses ``math-verify`` when it is installed (extra ``azr-trainer[math]``), else a
normalised string comparison followed by a sympy check on simple LaTeX.
"""

from __future__ import annotations

import re
from fractions import Fraction

import sympy

_BOX_CMDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (balanced braces), or ``\\boxed 5``."""
    best = -1
    for cmd in _BOX_CMDS:
        best = max(best, text.rfind(cmd))
    if best < 0:
        return None
    i = best
    while i < len(text) and text[i] not in "{ ":
        i += 1
    if i >= len(text):
        return None
    if text[i] == " ":
        m = re.match(r"\s*([^\s$]+)", text[i:])
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


_ANSWER_IS = re.compile(r"answer is[:\s]*\$?([^\n$]+?)\$?(?:\.|\n|$)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def extract_math_answer(response: str, last_number: bool = False) -> str | None:
    """The model's final answer: boxed (answer section first), then 'the answer is X', then
    (only with ``last_number``, e.g. for GSM8K) the last number in the answer."""
    section = response
    m = re.search(r"<answer>(.*?)(?:</answer>|$)", response, re.DOTALL)
    if m:
        section = m.group(1)
    for text in (section, response):
        boxed = last_boxed(text)
        if boxed is not None and boxed.strip():
            return boxed.strip()
    m2 = _ANSWER_IS.findall(response)
    if m2:
        return m2[-1].strip()
    if not last_number:
        return None
    nums = _NUMBER.findall(section)
    return nums[-1].replace(",", "") if nums else None


def normalize(ans: str) -> str:
    s = ans.strip().strip("$").strip()
    s = re.sub(r"\\text\{\s*([^}]*)\}", r"\1", s)
    for old, new in (
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\ ", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("^\\circ", ""),
        ("^{\\circ}", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\$", ""),
        ("\\displaystyle", ""),
    ):
        s = s.replace(old, new)
    s = re.sub(r"\s+", "", s)
    s = s.rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    s = re.sub(r"^[a-zA-Z]\s*=", "", s)  # "x=5" -> "5"
    return s


def _latex_to_sympy(s: str):
    expr = s
    for _ in range(5):
        expr = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", expr)
        expr = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", expr)
    expr = re.sub(r"\\frac(\d)(\d)", r"((\1)/(\2))", expr)
    expr = re.sub(r"\\sqrt(\d+)", r"sqrt(\1)", expr)
    expr = expr.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*")
    expr = expr.replace("^", "**").replace("{", "(").replace("}", ")")
    if "\\" in expr or len(expr) > 200:
        raise ValueError("unsupported LaTeX")
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transformations = (*standard_transformations, implicit_multiplication_application)
    return parse_expr(expr, transformations=transformations, evaluate=True)


def _numeric(s: str) -> Fraction | None:
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def fallback_equiv(pred: str, gold: str) -> bool:
    a, b = normalize(pred), normalize(gold)
    if a == b:
        return True
    na, nb = _numeric(a), _numeric(b)
    if na is not None and nb is not None:
        return na == nb
    if "," in a or "," in b:
        pa, pb = a.strip("()[]").split(","), b.strip("()[]").split(",")
        return len(pa) == len(pb) and all(fallback_equiv(x, y) for x, y in zip(pa, pb, strict=False))
    try:
        diff = sympy.simplify(_latex_to_sympy(a) - _latex_to_sympy(b))
        return bool(diff == 0)
    except Exception:  # noqa: BLE001 - anything sympy cannot parse is simply not equal
        return False


def is_equiv(pred: str | None, gold: str) -> bool:
    if pred is None:
        return False
    try:
        from math_verify import parse, verify
    except ImportError:
        return fallback_equiv(pred, gold)
    try:
        g = parse(f"${gold}$")
        p = parse(f"${pred}$")
        if g and p and verify(g, p):
            return True
    except Exception:  # noqa: BLE001
        pass
    return fallback_equiv(pred, gold)
