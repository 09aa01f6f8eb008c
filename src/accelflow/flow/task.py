"""Tasks: the unit of a design flow, and the explicit table of named task classes.

A task is a dataclass whose fields are its parameters; constructing one does no work. It declares what it
``needs`` from the design state and what it ``produces`` (:class:`~accelflow.flow.state.StateField` members
or :class:`~accelflow.flow.state.MetricKey` s), and ``run(state, ctx)`` returns the updated state.

Example (a complete user task)::

    from dataclasses import dataclass
    from accelflow.flow import MetricKey, StateField, Task, param, register_task

    @dataclass
    class CountParams(Task):
        name = "count_params"
        needs = (StateField.MODEL,)
        produces = (MetricKey("model", "params"),)
        trainable_only: bool = param(True, help="count only parameters with requires_grad")

        def run(self, state, ctx):
            n = sum(p.numel() for p in state.model.parameters()
                    if p.requires_grad or not self.trainable_only)
            return state.with_metrics("model", params=n)

    register_task("count_params", CountParams)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError

from accelflow.flow.errors import FlowError, FlowValidationError
from accelflow.flow.state import DesignState, MetricKey, StateField

__all__ = ["Task", "TaskContext", "ParamSpec", "param", "param_specs", "build_task", "TaskRegistry"]

log = logging.getLogger(__name__)

Requirement = StateField | MetricKey


def param(default: Any, *, low: float | None = None, high: float | None = None,
          choices: Sequence[Any] | None = None, log_scale: bool = False, help: str = "") -> Any:
    """A task parameter: a dataclass field with its search range (``low``/``high`` or ``choices``)."""
    meta = {"low": low, "high": high, "choices": tuple(choices) if choices is not None else None,
            "log": log_scale, "help": help}
    if isinstance(default, list | dict | set):
        raise TypeError("use a tuple or None as a parameter default, not a mutable container")
    return dataclasses.field(default=default, metadata={"accelflow": meta})


@dataclass(frozen=True)
class ParamSpec:
    """One searchable parameter of a task class, derived from its dataclass field."""

    name: str
    default: Any
    low: float | None
    high: float | None
    choices: tuple[Any, ...] | None
    log_scale: bool
    help: str


def param_specs(cls: type[Task]) -> tuple[ParamSpec, ...]:
    """The parameters of a task class, with the ranges given to :func:`param` (None when not searchable)."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("accelflow", {})
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append(ParamSpec(f.name, default, meta.get("low"), meta.get("high"), meta.get("choices"),
                             bool(meta.get("log", False)), str(meta.get("help", ""))))
    return tuple(out)


@dataclass
class TaskContext:
    """What the engine gives a running task: a private artefact directory and run-wide settings."""

    workdir: Path  # artefacts of this task execution go here (created by the engine)
    key: str  # position of this execution in the flow, e.g. "2/fork.1/0"
    seed: int = 0
    progress: bool = False  # whether tasks may draw progress bars (training)

    def path(self, name: str) -> Path:
        """A path inside :attr:`workdir`."""
        return self.workdir / name


@dataclass
class Task(ABC):
    """Narrow base of every task: declare ``name``, ``needs``, ``produces``; implement :meth:`run`.

    ``needs``/``produces`` are class attributes, or properties when they depend on a parameter (a task
    writing its metrics under a configurable stage name).
    """

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[Requirement, ...]] = ()
    produces: ClassVar[tuple[Requirement, ...]] = ()

    @abstractmethod
    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        """Return the design state after this task (an updated copy; never mutate ``state``)."""

    def params(self) -> dict[str, Any]:
        """The parameter values, JSON-ready (enums as values)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.value if hasattr(v, "value") and not isinstance(v, int | float | str) else v
            if isinstance(out[f.name], tuple):
                out[f.name] = list(out[f.name])
        return out


def build_task(cls: type[Task], raw: Mapping[str, Any], where: str) -> Task:
    """Validate ``raw`` parameters against ``cls``'s fields and ranges; ``where`` prefixes error messages."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FlowValidationError(
            f"{where}: unknown parameter(s) {unknown} for task '{cls.name}'; allowed: {sorted(known)}"
        )
    try:
        task = TypeAdapter(cls).validate_python(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = ".".join(str(p) for p in err["loc"]) or "?"
        raise FlowValidationError(
            f"{where}: task '{cls.name}', field '{field_name}': {err['msg']} (got {err.get('input')!r})"
        ) from None
    except (ValueError, TypeError) as exc:  # raised by a task's __post_init__
        raise FlowValidationError(f"{where}: task '{cls.name}': {exc}") from None
    for spec in param_specs(cls):
        value = getattr(task, spec.name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high) \
                    or (isinstance(value, float) and math.isnan(value)):
                raise FlowValidationError(
                    f"{where}: task '{cls.name}', field '{spec.name}': {value} is outside "
                    f"[{spec.low}, {spec.high}]"
                )
        if spec.choices is not None and value not in spec.choices:
            raise FlowValidationError(
                f"{where}: task '{cls.name}', field '{spec.name}': {value!r} is not one of {list(spec.choices)}"
            )
    return task


class TaskRegistry:
    """An explicit table name -> task class. A duplicate name is an error."""

    def __init__(self, entries: Mapping[str, type[Task]] | None = None) -> None:
        self._table: dict[str, type[Task]] = {}
        for name, cls in (entries or {}).items():
            self.register(name, cls)

    def register(self, name: str, cls: type[Task]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Task) and dataclasses.is_dataclass(cls)):
            raise FlowError(f"task '{name}': {cls!r} is not a dataclass subclass of accelflow.flow.Task")
        if name in self._table:
            raise FlowError(
                f"task name '{name}' is already registered ({self._table[name].__module__}."
                f"{self._table[name].__qualname__}); choose another name"
            )
        self._table[name] = cls

    def unregister(self, name: str) -> None:
        self._table.pop(name, None)

    def get(self, name: str) -> type[Task]:
        try:
            return self._table[name]
        except KeyError:
            raise FlowValidationError(f"unknown task '{name}'; registered tasks: {self.names()}") from None

    def names(self) -> list[str]:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table
