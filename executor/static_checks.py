"""Static checks: syntax, the program's form, and the forbidden-import/call policy.

Pure functions over source text; nothing here executes anything. They are a first
filter only: the sandbox holds even when a program slips past them.
"""

from __future__ import annotations

import ast
import functools
import re
import threading
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

from executor.limits import SizeLimits
from executor.policy import ATTRIBUTE_FUNCTIONS, Policy
from executor.verdicts import Finding, Verdict


def text_problem(text: str, what: str, limit: int) -> str | None:
    """Why `text` (the request's `what`) cannot be checked at all, or None: over `limit`
    characters, a NUL character, or not encodable as UTF-8."""
    if len(text) > limit:
        return f"the {what} has {len(text):,} characters; the limit is {limit:,}"
    if "\x00" in text:
        return f"the {what} contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"the {what} is not valid UTF-8 text (it contains a lone surrogate)"
    return None


# CPython 3.11 keeps the syntax-tree constructor's recursion count per interpreter, not per
# thread: two threads building trees at once (the GIL can change hands inside, when a
# finalizer runs in a garbage collection) fail with "SystemError: AST constructor recursion
# depth mismatch". Programs are checked on the API's event loop and on worker threads, so
# every parse here holds this lock (a parse holds the GIL anyway: nothing ran in parallel).
_PARSE_LOCK = threading.Lock()


def _parse(text: str, mode: str, filename: str) -> ast.AST | SyntaxError:
    try:
        with _PARSE_LOCK, warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # e.g. "invalid escape sequence" in request text is not ours to print
            return ast.parse(text, filename=filename, mode=mode)
    except SyntaxError as exc:
        return exc
    except (MemoryError, RecursionError):
        # CPython's parser gives up on deep nesting (`-` * 5000 + `x`, a long `a.b.c…` chain).
        return SyntaxError("it nests too deeply for the parser")
    except ValueError as exc:
        return SyntaxError(f"{type(exc).__name__}: {exc}")


def _syntax_message(exc: SyntaxError, what: str) -> str:
    where = f" at line {exc.lineno}" if exc.lineno else ""
    return f"the {what} does not parse{where}: {exc.msg}"


# The most syntax nodes one walk of the tree visits. Every walk here is linear, and a program
# within the default size limits stays below this (20,000 characters make at most about
# 30,000 nodes, some 50 ms of checks); past it, a program gets a finding instead of a
# longer check (a service configured for longer programs).
MAX_WALK_NODES = 60_000


class _TooComplex(Exception):
    """A walk went past `MAX_WALK_NODES`."""


def _over_budget_finding(verdict: Verdict, what: str) -> Finding:
    return Finding(
        verdict,
        f"the {what} is too complex to check: it has more than {MAX_WALK_NODES:,} syntax nodes",
    )


def _parameter_names(params: ast.arguments) -> set[str]:
    every = [*params.posonlyargs, *params.args, *params.kwonlyargs, params.vararg, params.kwarg]
    return {arg.arg for arg in every if arg is not None}


def _outside_body(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.AST]:
    """A function's children that its own scope does not hold: decorators, defaults, annotations."""
    return _children(node, skip="body")


def _function_bindings(root: ast.AST) -> dict[ast.AST, frozenset[str]]:
    """The names each function scope under ``root`` binds itself (parameters, assignments,
    defs, imports; nested scopes excluded), for every scope in one pass over the tree.

    The pass goes region by region. A region's nodes bind names in its *owner*: the
    function whose own body it is, or none (module level, a class body, the decorators
    and defaults of a def, which the enclosing scope evaluates). `global eval` /
    `nonlocal eval` anywhere inside a def, nested defs included, make the name refer
    outward again: not a local binding there.
    """
    bound: dict[ast.AST, set[str]] = {}
    outward: dict[ast.AST, set[str]] = {}
    enclosing_def: dict[ast.AST, ast.AST | None] = {}
    # (owner, the innermost function around the region, the region's nodes still to visit)
    regions: list[tuple[ast.AST | None, ast.AST | None, list[ast.AST]]] = [(None, None, [root])]
    visited = 0
    while regions:
        owner, enclosing, stack = regions.pop()
        names = bound[owner] if owner is not None else set()
        while stack:
            node: Any = stack.pop()  # Any: the node's type is dispatched on by hand, for speed
            visited += 1
            if visited > MAX_WALK_NODES:
                raise _TooComplex
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is not ast.Load:
                    names.add(node.id)
                continue
            if kind in _FUNCTION_TYPES:
                if kind is not ast.Lambda:
                    names.add(node.name)
                bound[node] = _parameter_names(node.args)
                outward[node], enclosing_def[node] = set(), enclosing
                body = node.body if kind is not ast.Lambda else [node.body]
                regions.append((node, node, list(body)))
                regions.append((None, enclosing, _outside_body(node)))
                continue
            if kind is ast.ClassDef:
                names.add(node.name)
                regions.append((None, enclosing, _children(node)))
                continue
            if kind is ast.Import or kind is ast.ImportFrom:
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif kind is ast.ExceptHandler and node.name:
                names.add(node.name)
            elif (kind is ast.Global or kind is ast.Nonlocal) and enclosing is not None:
                outward[enclosing].update(node.names)
            stack.extend(_children(node))
    for scope in reversed(list(enclosing_def)):  # a scope was met after the one around it
        around = enclosing_def[scope]
        if around is not None:
            outward[around] |= outward[scope]
    return {scope: frozenset(names - outward[scope]) for scope, names in bound.items()}


def _module_bindings(body: Sequence[ast.stmt]) -> set[str]:
    """Names every run of the module binds: unconditional top-level statements only.

    A module-level binding inside `if False:` (or a loop, or a `try`) may never happen, and
    then the name falls through to the builtin; inside a function any assignment makes the
    name local, so function scopes are sound as `_function_bindings` computes them.
    """
    bound: set[str] = set()
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in statement.names)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                bound.update(
                    n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                )
    return bound


def _children(node: ast.AST, skip: str = "") -> list[ast.AST]:
    """A node's direct children in field order (what ``ast.iter_child_nodes`` yields, faster),
    leaving out the field `skip`."""
    found: list[ast.AST] = []
    for field in node._fields:
        if field == skip:
            continue
        value = getattr(node, field, None)
        if isinstance(value, list):
            found.extend(item for item in value if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            found.append(value)
    return found


_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_FUNCTION_TYPES = frozenset(_FUNCTION_NODES)
_LEAVE_SCOPE = ast.AST()  # a marker on the walk's stack: the scope opened by a function ends here


def _node_problem(
    node: ast.AST,
    policy: Policy,
    names: set[str],
    attributes: set[str],
    scopes: _Scopes,
) -> str | None:
    """What the policy says about this one node (its children are checked separately)."""
    if isinstance(node, ast.Name):
        if node.id in names and not scopes.bind(node.id):
            return f"use of '{node.id}' is forbidden"
    elif isinstance(node, ast.Attribute):
        if node.attr in attributes:
            return f"access to the attribute '{node.attr}' is forbidden"
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in ATTRIBUTE_FUNCTIONS and len(node.args) >= 2:
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                return f"{func.id}() with a computed attribute name is forbidden"
            if name.value.startswith("__") or name.value in attributes:
                return f"{func.id}() of '{name.value}' is forbidden"
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        return _import_problem(node, policy)
    return None


def _import_problem(node: ast.Import | ast.ImportFrom, policy: Policy) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            banned = policy.banned_module(alias.name)
            if banned:
                return f"import of '{alias.name}' is forbidden (policy entry '{banned}')"
        return None
    if node.level and not policy.allow_relative_imports:
        return "relative imports are forbidden"
    module = node.module or ""
    for alias in node.names:
        dotted = f"{module}.{alias.name}" if module else alias.name
        banned = (policy.banned_module(module) if module else None) or policy.banned_module(dotted)
        if banned:
            return f"import of '{dotted}' is forbidden (policy entry '{banned}')"
    return None


class _Scopes:
    """The scopes around the policy walk's position, and how many of them bind each name.

    The functions' bindings are computed for the whole tree at once (`_function_bindings`),
    only when a forbidden name first needs resolving: most programs never use one. From
    then on, entering and leaving a scope updates the counts, so resolving a name costs
    the same however deep the scopes nest.
    """

    def __init__(self, root: ast.AST) -> None:
        self._root = root
        self._open: list[frozenset[str] | ast.AST] = []  # a module's bindings, or a function node
        self._functions: dict[ast.AST, frozenset[str]] | None = None
        self._binding: Counter[str] = Counter()

    def _names(self, scope: frozenset[str] | ast.AST) -> frozenset[str]:
        if isinstance(scope, ast.AST):
            assert self._functions is not None
            return self._functions[scope]
        return scope

    def enter(self, scope: frozenset[str] | ast.AST) -> None:
        self._open.append(scope)
        if self._functions is not None:
            self._binding.update(self._names(scope))

    def leave(self) -> None:
        scope = self._open.pop()
        if self._functions is not None:
            self._binding.subtract(self._names(scope))

    def bind(self, name: str) -> bool:
        """Whether a scope around the walk's position binds ``name``."""
        if self._functions is None:
            self._functions = _function_bindings(self._root)
            for scope in self._open:
                self._binding.update(self._names(scope))
        return self._binding[name] > 0


def policy_finding(
    tree: ast.AST, policy: Policy, source: str | None = None, what: str = "program"
) -> Finding | None:
    """The first policy violation in source order (a depth-first walk), or None.

    Names are resolved with scope: a forbidden builtin's name is fine where a function's
    own scope (or an enclosing one, or an unconditional module-level binding) binds it.
    Given the ``source`` the tree was parsed from, its text decides how much to walk
    (`rules_that_can_fire`): nothing, the statements only (for imports), or everything.
    A tree past `MAX_WALK_NODES` gets a finding: `bad_form` for a program, `invalid_input`
    for the input or answer ``what`` names.
    """
    try:
        if source is not None:
            rules = rules_that_can_fire(source, policy)
            if rules == "none":
                return None
            if rules == "imports":
                return _import_finding(tree, policy)
        return _policy_walk(tree, policy)
    except _TooComplex:
        return _over_budget_finding(Verdict.BAD_FORM if what == "program" else Verdict.INVALID_INPUT, what)


def _policy_walk(tree: ast.AST, policy: Policy) -> Finding | None:
    names, attributes = set(policy.forbidden_names), set(policy.forbidden_attributes)
    scopes = _Scopes(tree)
    stack: list[ast.AST] = [tree]
    visited = 0
    while stack:
        node = stack.pop()
        if node is _LEAVE_SCOPE:
            scopes.leave()
            continue
        visited += 1
        if visited > MAX_WALK_NODES:
            raise _TooComplex
        if isinstance(node, ast.Module):
            scopes.enter(frozenset(_module_bindings(node.body)))
            stack.append(_LEAVE_SCOPE)
        elif isinstance(node, _FUNCTION_NODES):
            scopes.enter(node)
            stack.append(_LEAVE_SCOPE)
        else:
            problem = _node_problem(node, policy, names, attributes, scopes)
            if problem is not None:
                return _finding(node, problem)
        stack.extend(reversed(_children(node)))
    return None


def _finding(node: ast.AST, problem: str) -> Finding:
    line = getattr(node, "lineno", None)
    return Finding(Verdict.FORBIDDEN, (f"line {line}: " if line else "") + problem, line)


# Import statements live only in statement lists, never inside an expression.
_STATEMENT_NODES = (ast.stmt, ast.excepthandler, ast.match_case)


def _import_finding(tree: ast.AST, policy: Policy) -> Finding | None:
    """The first forbidden import, walking statements only: what `policy_finding` returns
    when no name, attribute or getattr rule can fire (the same depth-first order)."""
    stack: list[ast.AST] = [tree]
    visited = 0
    while stack:
        node = stack.pop()
        visited += 1
        if visited > MAX_WALK_NODES:
            raise _TooComplex
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            problem = _import_problem(node, policy)
            if problem is not None:
                return _finding(node, problem)
            continue
        stack.extend(reversed([child for child in _children(node) if isinstance(child, _STATEMENT_NODES)]))
    return None


@functools.lru_cache(maxsize=16)
def _rule_words(words: tuple[str, ...]) -> re.Pattern[str]:
    """Any of the words as a whole identifier (``input`` but not ``input_list``): in ASCII
    text an identifier is a maximal run of word characters, so a Name or attribute can only
    come from a whole-word occurrence. A word with other characters matches anywhere."""
    alternatives = []
    for word in sorted(set(words), key=len, reverse=True):
        pattern = re.escape(word)
        alternatives.append(rf"\b{pattern}\b" if re.fullmatch(r"\w+", word, re.ASCII) else pattern)
    return re.compile("|".join(alternatives), re.ASCII)


def rules_that_can_fire(source: str, policy: Policy) -> str:
    """Which policy rules can fire on this program, judged from its text alone: "none",
    "imports" (only an import statement can be forbidden) or "all".

    Every rule needs a word in the source: an import statement the keyword ``import``, a
    forbidden name or attribute its own spelling as a whole word, a computed attribute
    lookup the name of ``getattr`` & co. Most programs contain none of them, and then the syntax tree need
    not be walked. Only for ASCII text: identifiers are NFKC-normalised, so a non-ASCII
    spelling (a fullwidth ``ｅval``) can parse as a forbidden name.
    """
    if not source.isascii():
        return "all"
    words = (*policy.forbidden_names, *policy.forbidden_attributes, *ATTRIBUTE_FUNCTIONS)
    if words and _rule_words(tuple(words)).search(source):
        return "all"
    return "imports" if "import" in source else "none"


def check_program(source: str, policy: Policy, sizes: SizeLimits) -> Finding | None:
    """Syntax, form and policy of a program. None means it passed."""
    if not source.strip():
        return Finding(Verdict.BAD_FORM, "the program is empty; it must define a function f")
    problem = text_problem(source, "program", sizes.max_program_chars)
    if problem:
        return Finding(Verdict.BAD_FORM, problem)
    tree = _parse(source, "exec", "<program>")
    if isinstance(tree, SyntaxError):
        return Finding(Verdict.SYNTAX_ERROR, _syntax_message(tree, "program"), tree.lineno)
    assert isinstance(tree, ast.Module)
    finding = policy_finding(tree, policy, source)
    if finding:
        return finding
    defines_f = any(isinstance(node, ast.FunctionDef) and node.name == "f" for node in tree.body)
    if not defines_f:
        return Finding(
            Verdict.BAD_FORM, "the program must define a function named f at the top level (def f(...):)"
        )
    return None


def check_arguments(text: str, policy: Policy, max_chars: int, what: str = "input") -> Finding | None:
    """An input is the text of one call's argument list: exactly `f(<text>)` and nothing more."""
    problem = text_problem(text, what, max_chars)
    if problem:
        return Finding(Verdict.INVALID_INPUT, problem)
    tree = _parse(f"f({text})", "eval", f"<{what}>")
    if isinstance(tree, SyntaxError):
        return Finding(
            Verdict.INVALID_INPUT,
            f"the {what} is not a valid argument list for f(...): {tree.msg}",
        )
    assert isinstance(tree, ast.Expression)
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "f"
        and call.func.col_offset == 0
        and call.func.end_col_offset == 1
    ):
        return Finding(
            Verdict.INVALID_INPUT,
            f"the {what} must be a single argument list such as `1, 'a'`; text that closes the "
            "call early or adds other expressions is not allowed",
        )
    for node in [*call.args, *call.keywords]:
        finding = policy_finding(node, policy, text, what)
        if finding:
            return finding
    return None


def check_expression(text: str, policy: Policy, max_chars: int, what: str = "answer") -> Finding | None:
    """An output or a predicted output: one Python expression, no statements."""
    problem = text_problem(text, what, max_chars)
    if problem:
        return Finding(Verdict.INVALID_INPUT, problem)
    if not text.strip():
        return Finding(Verdict.INVALID_INPUT, f"the {what} is empty; give a Python expression")
    tree = _parse(text.strip(), "eval", f"<{what}>")
    if isinstance(tree, SyntaxError):
        return Finding(Verdict.INVALID_INPUT, f"the {what} is not a single Python expression: {tree.msg}")
    return policy_finding(tree, policy, text, what)
