"""Parse model responses. Pure functions, no exceptions: a failure is a ``Parsed`` with an error.

A response is the text generated after the prompt's ``Assistant: <think>``. It is well formed
when it closes the thinking with ``</think>`` and then holds exactly one
``<answer>…</answer>`` section that contains the role's fenced blocks. Text after
``</answer>`` is ignored.

Two extraction modes (``selfplay.answer_parsing``); the tags are required in both, except for
proposals in the seed pass (``require_tags=False``, as the public AZR code's seeding), where
blocks are looked for in the whole response when the tags are broken:

* ``strict`` (``lenient=False``): the role's labelled fenced blocks must be there; the first one
  counts.
* ``official`` (``lenient=True``), like the public AZR code:
  - solver, deduction/abduction: the *last* ```output / ```input block, and with no such block
    the whole ``<answer>`` text is the answer;
  - solver, induction: the last ```python or unlabelled block; with no code block it is a
    format error (the official code fails too: a program needs a block to be told apart from
    prose);
  - proposer, deduction/abduction: the first ```python or unlabelled block and the first
    ```input block, both required (a proposal has two parts, so there is no whole-text
    fallback);
  - proposer, induction: the last N ```input blocks, duplicates kept, and the message from a
    ```message block or, failing that, ``<message>…</message>``.
  The official code's further heuristics (``# Output:`` lines, "the output is …") are not
  copied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FENCE = re.compile(r"```[ \t]*([A-Za-z_][\w+-]*)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    ok: bool
    error: str = ""
    program: str = ""
    input: str = ""
    inputs: list[str] = field(default_factory=list)
    message: str = ""
    answer: str = ""


def fail(reason: str) -> Parsed:
    return Parsed(ok=False, error=reason)


def answer_section(response: str) -> tuple[str | None, str]:
    """The text inside the single ``<answer>`` section, or ``(None, reason)``."""
    text = response if "<think>" in response[:20] else "<think>" + response
    if text.count("<think>") != 1:
        return None, "more than one <think> tag"
    if text.count("</think>") != 1:
        return None, "missing </think>" if "</think>" not in text else "more than one </think>"
    before, after = text.split("</think>", 1)
    if "<answer>" in before or "</answer>" in before:
        return None, "answer tag inside the thinking"
    after = after.lstrip()
    if not after.startswith("<answer>"):
        return None, "no <answer> right after </think>"
    if after.count("<answer>") != 1 or after.count("</answer>") < 1:
        return None, "missing </answer>" if "</answer>" not in after else "more than one <answer>"
    body = after[len("<answer>") :].split("</answer>", 1)[0]
    return body, ""


def fenced_blocks(section: str, label: str) -> list[str]:
    """Contents of the ```label blocks (label compared case-insensitively)."""
    return [
        body.strip("\n").rstrip()
        for lab, body in _FENCE.findall(section)
        if (lab or "").lower() == label.lower()
    ]


def code_blocks(section: str) -> list[str]:
    """Contents of the ```python and unlabelled fenced blocks."""
    return [
        body.strip("\n").rstrip()
        for lab, body in _FENCE.findall(section)
        if (lab or "").lower() in ("python", "")
    ]


_MESSAGE_TAG = re.compile(r"<message>\s*(.*?)\s*</message>", re.DOTALL | re.IGNORECASE)


def _single(section: str, label: str) -> tuple[str | None, str]:
    blocks = [b for b in fenced_blocks(section, label) if b.strip()]
    if not blocks:
        return None, f"missing ```{label} block"
    return blocks[0], ""


def _first_code(section: str) -> tuple[str | None, str]:
    blocks = [b for b in code_blocks(section) if b.strip()]
    if not blocks:
        return None, "missing ```python (or unlabelled) block"
    return blocks[0], ""


def _proposal_section(response: str, require_tags: bool) -> tuple[str | None, str]:
    """The answer section; without ``require_tags`` (the seed pass) the whole response when
    the tags are broken, so that the code blocks are found wherever they are."""
    section, why = answer_section(response)
    if section is None and not require_tags:
        return response, ""
    return section, why


def parse_propose_code(response: str, lenient: bool = False, require_tags: bool = True) -> Parsed:
    """Deduction/abduction proposal: a ```python block and an ```input block."""
    section, why = _proposal_section(response, require_tags)
    if section is None:
        return fail(why)
    program, why = _first_code(section) if lenient else _single(section, "python")
    if program is None:
        return fail(why)
    inp, why = _single(section, "input")
    if inp is None:
        return fail(why)
    return Parsed(ok=True, program=program, input=inp.strip())


def parse_propose_induction(
    response: str, max_inputs: int, lenient: bool = False, require_tags: bool = True
) -> Parsed:
    """Induction proposal: up to ``max_inputs`` ```input blocks and a ```message block.

    Strict: distinct inputs, the first ``max_inputs``. Lenient (official): the last
    ``max_inputs`` blocks, duplicates kept; the message may also be in ``<message>`` tags.
    """
    section, why = _proposal_section(response, require_tags)
    if section is None:
        return fail(why)
    inputs: list[str] = []
    for b in fenced_blocks(section, "input"):
        b = b.strip()
        if b and (lenient or b not in inputs):
            inputs.append(b)
    if not inputs:
        return fail("missing ```input blocks")
    inputs = inputs[-max_inputs:] if lenient else inputs[:max_inputs]
    message, why = _single(section, "message")
    if message is None and lenient:
        tagged = _MESSAGE_TAG.search(section)
        message = tagged.group(1) if tagged and tagged.group(1).strip() else None
    if message is None:
        return fail(why)
    return Parsed(ok=True, inputs=inputs, message=message.strip())


_SOLVE_LABEL = {"deduction": "output", "abduction": "input", "induction": "python"}


def _lenient_solve(section: str, task_type: str) -> tuple[str | None, str]:
    if task_type == "induction":
        blocks = [b for b in code_blocks(section) if b.strip()]
        return (blocks[-1], "") if blocks else (None, "missing ```python (or unlabelled) block")
    blocks = [b for b in fenced_blocks(section, _SOLVE_LABEL[task_type]) if b.strip()]
    if blocks:
        return blocks[-1], ""
    if section.strip():
        return section.strip(), ""  # no block: the whole answer text is the answer
    return None, "empty <answer>"


def parse_solve(response: str, task_type: str, lenient: bool = False) -> Parsed:
    """Solver answer: ```output (deduction), ```input (abduction) or ```python (induction).

    ``lenient`` (official): the last such block, else (deduction/abduction) the whole
    ``<answer>`` text.
    """
    section, why = answer_section(response)
    if section is None:
        return fail(why)
    if lenient:
        body, why = _lenient_solve(section, task_type)
    else:
        body, why = _single(section, _SOLVE_LABEL[task_type])
    if body is None:
        return fail(why)
    return Parsed(ok=True, answer=body.strip() if task_type != "induction" else body)


def extract_answer_loose(response: str, label: str) -> str | None:
    """Evaluation-time extraction: last ```label block anywhere, else the answer section."""
    blocks = [b for b in fenced_blocks(response, label) if b.strip()]
    if blocks:
        return blocks[-1].strip()
    section, _ = answer_section(response)
    if section is not None and section.strip():
        return section.strip()
    return None
