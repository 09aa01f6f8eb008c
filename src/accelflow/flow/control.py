"""The structure of a flow: task steps and the control nodes FORK/REDUCE, BRANCH and LOOP.

A flow is a sequence of nodes; a sequence is a plain tuple. Nodes are frozen records (data), the engine
(:mod:`accelflow.flow.engine`) interprets them.

Example (Python API)::

    from accelflow.flow import Branch, Flow, Fork, Step
    from accelflow.flow.tasks import Prune, Quantize, Scale

    flow = Flow("orders", steps=(
        Fork(branches=((Step(Prune()), Step(Quantize())), (Step(Scale()), Step(Quantize()))),
             objective="hls_csim.accuracy - resources.dsp / 1000"),
    ))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from accelflow.flow.errors import FlowValidationError
from accelflow.flow.expr import Expression
from accelflow.flow.task import Task

__all__ = ["Step", "Fork", "Branch", "Loop", "Node", "Flow", "task_label"]


def task_label(task: Task) -> str:
    return type(task).name or type(task).__name__


@dataclass(frozen=True)
class Step:
    """Run one task. ``id`` labels the step so a :class:`Branch` can jump back to it."""

    task: Task
    id: str | None = None

    @property
    def label(self) -> str:
        return self.id or task_label(self.task)


def _expr(value: Expression | str) -> Expression:
    return value if isinstance(value, Expression) else Expression(value)


@dataclass(frozen=True)
class Fork:
    """FORK/REDUCE: run every branch from the same input state, keep the state whose ``objective`` is best.

    ``objective`` is an :class:`~accelflow.flow.expr.Expression` over the branch's final metrics;
    ``maximize`` says which way is better. Ties keep the earlier branch.
    """

    branches: tuple[tuple[Node, ...], ...]
    objective: Expression
    maximize: bool = True
    id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "objective", _expr(self.objective))
        object.__setattr__(self, "branches", tuple(tuple(b) for b in self.branches))
        if not self.branches or any(not b for b in self.branches):
            raise FlowValidationError("a fork needs at least one branch and every branch at least one step")


@dataclass(frozen=True)
class Branch:
    """BRANCH: when ``condition`` holds, go back to the step labelled ``goto`` (earlier in the same sequence).

    At most ``max_repeats`` jumps are taken; afterwards the flow continues past the branch.
    """

    condition: Expression
    goto: str
    max_repeats: int = 1
    id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "condition", _expr(self.condition))
        if self.max_repeats < 1:
            raise FlowValidationError(f"branch to '{self.goto}': max_repeats must be >= 1, got {self.max_repeats}")


@dataclass(frozen=True)
class Loop:
    """LOOP: run ``body`` up to ``times`` times, stopping early once ``until`` holds after an iteration."""

    body: tuple[Node, ...]
    times: int
    until: Expression | None = None
    id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", tuple(self.body))
        if self.until is not None:
            object.__setattr__(self, "until", _expr(self.until))
        if self.times < 1 or not self.body:
            raise FlowValidationError(f"a loop needs times >= 1 and a non-empty body (got times={self.times})")


Node = Step | Fork | Branch | Loop


@dataclass(frozen=True)
class Flow:
    """A named sequence of nodes. ``source`` names the YAML file it came from (for messages)."""

    name: str
    steps: tuple[Node, ...]
    source: str = field(default="<python>", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
