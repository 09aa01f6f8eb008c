"""Architecture description language (ACADL-style) and shipped accelerator templates.

An accelerator is data: fetch/issue, pipeline stages (capacity, latency, back-pressure), execute stages
dispatching to functional units by operation, memory access units, register files, on-chip storages,
memory interfaces and the edges joining them. YAML is validated with pydantic and built into a frozen
:class:`Architecture`; errors name the file, the object and the field.

>>> from accelflow.arch import template
>>> arch = template("systolic", rows=8, cols=8, dataflow="ws")
>>> arch.path("compute")
('fetch', 'exec_queue', 'array_issue', 'array')
"""

from accelflow.arch._expr import Expr, ExprError, ceil_div
from accelflow.arch._load import (
    TEMPLATES,
    load_architecture,
    parse_arch_spec,
    parse_option_value,
    template,
    template_names,
    template_parameters,
)
from accelflow.arch._model import (
    ArchError,
    Architecture,
    MemoryInterface,
    Operation,
    Stage,
    Storage,
    Unit,
    build,
)
from accelflow.arch._schema import ArchitectureSpec, EdgeKind

__all__ = [
    "TEMPLATES",
    "ArchError",
    "Architecture",
    "ArchitectureSpec",
    "EdgeKind",
    "Expr",
    "ExprError",
    "MemoryInterface",
    "Operation",
    "Stage",
    "Storage",
    "Unit",
    "build",
    "ceil_div",
    "load_architecture",
    "parse_arch_spec",
    "parse_option_value",
    "template",
    "template_names",
    "template_parameters",
]
