"""Design-flow engine (MetaML): tasks over a typed design state, control nodes, checking and execution.

Example::

    from accelflow.flow import load_flow, initial_state, run_flow
    from accelflow.runs import RunStore

    spec, flow, text = load_flow("examples/flows/metaml_jet_dnn.yaml")   # validated, nothing runs yet
    result = run_flow(flow, initial_state(spec.start), store=RunStore("runs"), flow_text=text)
    result.state.metrics["resources"]["dsp"]
"""

from accelflow.flow.control import Branch, Flow, Fork, Loop, Node, Step, task_label
from accelflow.flow.engine import FlowObserver, FlowResult, check_flow, run_flow
from accelflow.flow.errors import ExpressionError, FlowError, FlowValidationError, TaskFailedError
from accelflow.flow.expr import Expression
from accelflow.flow.registry import ENTRY_POINT_GROUP, default_registry, register_task
from accelflow.flow.schema import FlowFile, StartSpec, initial_state, load_flow, parse_flow
from accelflow.flow.state import (
    DesignState,
    HardwareTarget,
    IOType,
    MetricKey,
    StateField,
    Strategy,
    TaskRecord,
    load_state,
    save_state,
)
from accelflow.flow.task import ParamSpec, Task, TaskContext, TaskRegistry, build_task, param, param_specs

__all__ = [
    "Branch", "Flow", "Fork", "Loop", "Node", "Step", "task_label",
    "FlowObserver", "FlowResult", "check_flow", "run_flow",
    "ExpressionError", "FlowError", "FlowValidationError", "TaskFailedError",
    "Expression",
    "ENTRY_POINT_GROUP", "default_registry", "register_task",
    "FlowFile", "StartSpec", "initial_state", "load_flow", "parse_flow",
    "DesignState", "HardwareTarget", "IOType", "MetricKey", "StateField", "Strategy", "TaskRecord",
    "load_state", "save_state",
    "ParamSpec", "Task", "TaskContext", "TaskRegistry", "build_task", "param", "param_specs",
]
