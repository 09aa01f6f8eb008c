"""Built-in tasks. Each module wraps plain functions from another accelflow package; the table below is the
only place built-ins are listed (no scanning). Modules are imported when the table is first built."""

from __future__ import annotations

import importlib
import logging

from accelflow.flow.task import Task

__all__ = ["builtin_tasks", "BUILTIN_MODULES"]

log = logging.getLogger(__name__)

#: (task name, module, class) of every built-in task.
BUILTIN_MODULES: tuple[tuple[str, str, str], ...] = (
    ("train", "accelflow.flow.tasks.training", "Train"),
    ("fine_tune", "accelflow.flow.tasks.training", "FineTune"),
    ("evaluate", "accelflow.flow.tasks.training", "Evaluate"),
    ("prune", "accelflow.flow.tasks.compress_tasks", "Prune"),
    ("scale", "accelflow.flow.tasks.compress_tasks", "Scale"),
    ("qat", "accelflow.flow.tasks.compress_tasks", "QuantizeAware"),
    ("quantize", "accelflow.flow.tasks.hls_tasks", "QuantizeHls"),
    ("hls4ml", "accelflow.flow.tasks.hls_tasks", "Hls4mlConvert"),
    ("emulate", "accelflow.flow.tasks.hls_tasks", "EmulateHls"),
    ("estimate", "accelflow.flow.tasks.hls_tasks", "EstimateResources"),
    ("parse_report", "accelflow.flow.tasks.hls_tasks", "ParseReport"),
    ("train_cached", "accelflow.flow.tasks.hardware_tasks", "TrainCached"),
    ("perf_estimate", "accelflow.flow.tasks.hardware_tasks", "PerfEstimate"),
    ("dataflow", "accelflow.flow.tasks.hardware_tasks", "DataflowTask"),
    ("hass", "accelflow.flow.tasks.hardware_tasks", "HassTask"),
)


def builtin_tasks() -> dict[str, type[Task]]:
    """name -> class for every built-in task whose module imports (a missing optional package is logged)."""
    out: dict[str, type[Task]] = {}
    for name, module, cls_name in BUILTIN_MODULES:
        try:
            out[name] = getattr(importlib.import_module(module), cls_name)
        except ImportError as exc:
            log.warning("built-in task %s unavailable: %s", name, exc)
    return out
