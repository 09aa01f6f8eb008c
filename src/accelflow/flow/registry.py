"""The default task table: built-in tasks, tasks from the ``accelflow.tasks`` entry-point group, and tasks
registered with :func:`register_task`. Plugins are loaded here and nowhere else, on first use.

A third-party package exposes a task in its ``pyproject.toml``::

    [project.entry-points."accelflow.tasks"]
    my_task = "my_package.tasks:MyTask"
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import entry_points

from accelflow.flow.errors import FlowError
from accelflow.flow.task import Task, TaskRegistry

__all__ = ["ENTRY_POINT_GROUP", "default_registry", "register_task"]

ENTRY_POINT_GROUP = "accelflow.tasks"

log = logging.getLogger(__name__)


@cache
def default_registry() -> TaskRegistry:
    """The process-wide task table (built on first call: built-ins, then entry-point plugins)."""
    from accelflow.flow.tasks import builtin_tasks

    registry = TaskRegistry(builtin_tasks())
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not break every flow
            log.warning("task plugin %s (%s) failed to load: %s", ep.name, ep.value, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise FlowError(f"entry point {ENTRY_POINT_GROUP}:{ep.name} = {ep.value} is not a Task subclass")
        registry.register(ep.name, cls)
    return registry


def register_task(name: str, cls: type[Task]) -> None:
    """Add a user task to the default table (a duplicate name is an error)."""
    default_registry().register(name, cls)
