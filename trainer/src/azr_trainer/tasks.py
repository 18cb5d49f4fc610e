"""The task records kept in the buffers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Triplet:
    """A validated (program, input, output) for deduction/abduction; output is the service's."""

    program: str
    input: str
    output: str
    step: int = -1  # -1: seed

    def key(self) -> tuple[str, str]:
        return (self.program.strip(), self.input.strip())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Triplet:
        return cls(str(d["program"]), str(d["input"]), str(d["output"]), int(d.get("step", -1)))


@dataclass(frozen=True)
class InductionTask:
    """A program with computed input/output pairs and the proposer's message."""

    program: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    message: str
    step: int = -1
    num_visible: int = field(default=0)  # 0: half, rounded down (as the public AZR code)

    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.program.strip(), tuple(i.strip() for i in self.inputs))

    @property
    def visible(self) -> list[tuple[str, str]]:
        k = self.num_visible or len(self.inputs) // 2
        k = min(k, len(self.inputs) - 1) if len(self.inputs) > 1 else len(self.inputs)
        return list(zip(self.inputs[:k], self.outputs[:k], strict=False))

    @property
    def hidden(self) -> list[tuple[str, str]]:
        vis = len(self.visible)
        pairs = list(zip(self.inputs[vis:], self.outputs[vis:], strict=False))
        return pairs or list(zip(self.inputs, self.outputs, strict=False))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        d["outputs"] = list(self.outputs)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InductionTask:
        return cls(
            program=str(d["program"]),
            inputs=tuple(str(x) for x in d["inputs"]),
            outputs=tuple(str(x) for x in d["outputs"]),
            message=str(d.get("message", "")),
            step=int(d.get("step", -1)),
            num_visible=int(d.get("num_visible", 0)),
        )


IDENTITY_PROGRAM = "def f(a):\n    return a"
IDENTITY_TRIPLET = Triplet(IDENTITY_PROGRAM, '"Hello world"', "'Hello world'")
IDENTITY_INDUCTION = InductionTask(
    program=IDENTITY_PROGRAM,
    inputs=('"Hello world"', "1", "dict(a=1, b=2)", "(1.1, 1.2, 1.3)", "[[1, 0], [0, 1]]", "None"),
    outputs=(
        "'Hello world'",
        "1",
        "{'a': 1, 'b': 2}",
        "(1.1, 1.2, 1.3)",
        "[[1, 0], [0, 1]]",
        "None",
    ),
    message="Write a function that returns whatever you input",
)
