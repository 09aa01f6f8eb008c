"""Conformance of every registered task class (built-ins and the test tasks); a new task reuses
:func:`check_task_class` in its own tests."""

from __future__ import annotations

import dataclasses
import json

import pytest

from accelflow.flow import (
    FlowError,
    FlowValidationError,
    MetricKey,
    StateField,
    Task,
    TaskRegistry,
    build_task,
    default_registry,
    param_specs,
)
from accelflow.flow.tasks import BUILTIN_MODULES, builtin_tasks

from ._tasks import TEST_TASKS, SetMetric


def check_task_class(name: str, cls: type[Task]) -> None:
    """What the engine relies on: a dataclass Task with typed needs/produces, parameters with defaults that
    validate (or a clear FlowValidationError when a parameter is mandatory), JSON-ready params()."""
    assert dataclasses.is_dataclass(cls) and issubclass(cls, Task)
    assert cls.name == name, f"{cls.__qualname__}.name should be the registry name {name!r}"
    assert cls.__doc__ and cls.__doc__.strip(), "a task documents what it does and what it writes"
    specs = param_specs(cls)
    for spec in specs:
        if spec.low is not None and spec.high is not None:
            assert spec.low <= spec.high
        if spec.choices is not None and spec.default is not None:
            assert spec.default in spec.choices
    try:
        task = build_task(cls, {}, f"conformance of {name}")
    except FlowValidationError:
        return  # a mandatory parameter (e.g. parse_report's path) is reported, not crashed on
    for req in (*task.needs, *task.produces):
        assert isinstance(req, StateField | MetricKey)
    json.dumps(task.params())
    # parameters round-trip through validation
    again = build_task(cls, task.params(), "round trip")
    assert again.params() == task.params()


@pytest.mark.parametrize("name", [n for n, _, _ in BUILTIN_MODULES] + sorted(TEST_TASKS))
def test_task_conformance(name: str) -> None:
    table = {**builtin_tasks(), **TEST_TASKS}
    assert name in table, f"built-in task {name} failed to import"
    check_task_class(name, table[name])


def test_registry_refuses_duplicates_and_non_tasks() -> None:
    registry = TaskRegistry({"set_metric": SetMetric})
    with pytest.raises(FlowError, match="already registered"):
        registry.register("set_metric", SetMetric)
    with pytest.raises(FlowError, match="not a dataclass subclass"):
        registry.register("bad", dict)  # type: ignore[arg-type]
    with pytest.raises(FlowValidationError, match="unknown task 'nope'"):
        registry.get("nope")
    assert "train" in default_registry() and "prune" in default_registry()
