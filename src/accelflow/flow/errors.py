"""Errors raised by the design-flow engine."""

from __future__ import annotations

from accelflow.errors import AccelflowError, ConfigError

__all__ = ["FlowError", "FlowValidationError", "TaskFailedError", "ExpressionError"]


class FlowError(AccelflowError):
    """A flow cannot run (unknown task, bad control structure, store problem)."""


class FlowValidationError(ConfigError, FlowError):
    """A flow is invalid: the message names the file, the step, the task and the field."""


class ExpressionError(FlowValidationError):
    """An objective or predicate expression over metrics is malformed or names a missing metric."""


class TaskFailedError(FlowError):
    """A task raised; the message names the task and lists the tasks that completed before it."""

    def __init__(self, message: str, *, task: str, key: str, completed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.task = task
        self.key = key
        self.completed = completed
