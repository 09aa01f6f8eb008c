"""The metamodel: the design state passed from task to task.

A :class:`DesignState` is a frozen record. Tasks never edit one in place; they return an updated copy made
with :meth:`DesignState.evolve` / :meth:`DesignState.with_metrics` (and never mutate ``state.model``: copy
it first with :func:`copy.deepcopy`). Everything except the PyTorch model is JSON-serialisable; the run
store saves the model as a ``.pt`` artefact beside the JSON.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from torch import nn

    from accelflow.data import Splits
    from accelflow.ir import Graph

__all__ = [
    "IOType",
    "Strategy",
    "HardwareTarget",
    "StateField",
    "MetricKey",
    "TaskRecord",
    "DesignState",
    "save_state",
    "load_state",
]


class IOType(StrEnum):
    """hls4ml interface style between layers."""

    IO_PARALLEL = "io_parallel"
    IO_STREAM = "io_stream"


class Strategy(StrEnum):
    """hls4ml layer implementation strategy."""

    LATENCY = "latency"
    RESOURCE = "resource"


class HardwareTarget(BaseModel):
    """The FPGA the design is built for. Defaults follow MetaML: Alveo U250, 200 MHz, io_stream, RF 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part: str = "xcu250-figd2104-2L-e"
    clock_mhz: float = Field(200.0, gt=0)
    io_type: IOType = IOType.IO_STREAM
    strategy: Strategy = Strategy.LATENCY
    reuse_factor: int = Field(1, ge=1)
    backend: str = "Vitis"

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz


class StateField(StrEnum):
    """Typed parts of a :class:`DesignState` a task can need or produce."""

    MODEL = "model"  # a PyTorch module
    DATASET = "dataset"  # a data set name
    TRAINED = "trained"  # the model has been trained (metrics["train"]["accuracy"] is set)
    PRECISION = "precision"  # per-layer fixed-point types for hls4ml
    HLS_PROJECT = "hls_project"  # an hls4ml project written (and compiled) on disk
    HLS_REPORT = "hls_report"  # a Vivado/Vitis report directory


@dataclass(frozen=True)
class MetricKey:
    """One metric: ``stage.name``, e.g. ``MetricKey("hls_csim", "accuracy")``."""

    stage: str
    name: str

    def __str__(self) -> str:
        return f"{self.stage}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> MetricKey:
        stage, _, name = text.partition(".")
        if not stage or not name:
            raise ValueError(f"metric key {text!r} must be 'stage.name', e.g. 'hls_csim.accuracy'")
        return cls(stage, name)


@dataclass(frozen=True)
class TaskRecord:
    """One task execution in a state's history: which task, where in the flow, with which parameters."""

    task: str
    key: str
    params: Mapping[str, Any]
    seconds: float
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def _json_ready(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True, eq=False)
class DesignState:
    """The design at every abstraction level plus what has been measured about it.

    - ``model``: the PyTorch module (eval mode), the DNN-level design; ``model_name`` its zoo name.
    - ``input_shape``: one example's shape without batch; the IR is derived on demand by :meth:`graph`.
    - ``dataset`` / ``data_kwargs``: the data set name and :func:`accelflow.data.load` options.
    - ``target``: the FPGA part, clock and hls4ml settings.
    - ``precision``: per-layer fixed-point types (IR node name -> :class:`accelflow.hls.LayerPrecision`),
      the HLS-level design decisions a quantisation task hands to the hls4ml conversion task.
    - ``artefacts``: named paths made by tasks (``hls_project``, ``hls_report``, ...).
    - ``metrics``: ``{stage: {name: value}}``, e.g. ``{"hls_csim": {"accuracy": 0.74}}``; accuracies are
      fractions in [0, 1], resources are counts.
    - ``info``: JSON facts tasks leave for later tasks (pruning rate, width factor, ...).
    - ``history``: the tasks that produced this state, oldest first.
    """

    model: nn.Module | None = None
    model_name: str | None = None
    input_shape: tuple[int, ...] | None = None
    dataset: str | None = None
    data_kwargs: Mapping[str, Any] = field(default_factory=dict)
    target: HardwareTarget = field(default_factory=HardwareTarget)
    precision: Mapping[str, Any] | None = None
    artefacts: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[TaskRecord, ...] = ()

    # -- derived views -------------------------------------------------------------------------------------
    def graph(self) -> Graph:
        """The network IR of :attr:`model` (traced each call: the model may have changed between states)."""
        from accelflow.errors import ConfigError
        from accelflow.frontends import from_pytorch

        if self.model is None or self.input_shape is None:
            raise ConfigError("the design state has no model/input_shape yet; start the flow with a model")
        return from_pytorch(self.model, self.input_shape)

    def splits(self) -> Splits:
        """The data set splits (loaded through accelflow.data, which is deterministic for given options)."""
        from accelflow.data import load
        from accelflow.errors import ConfigError

        if self.dataset is None:
            raise ConfigError("the design state names no data set; set state.dataset in the flow")
        return load(self.dataset, **dict(self.data_kwargs))

    def metric(self, key: MetricKey | str) -> float:
        k = MetricKey.parse(key) if isinstance(key, str) else key
        try:
            return float(self.metrics[k.stage][k.name])
        except KeyError:
            raise KeyError(f"metric {k} not recorded yet (have {self.metric_keys()})") from None

    def metric_keys(self) -> list[str]:
        return [f"{s}.{n}" for s, values in self.metrics.items() for n in values]

    def available(self) -> set[StateField | MetricKey]:
        """What this state already provides, in the vocabulary of ``Task.needs``."""
        have: set[StateField | MetricKey] = {MetricKey(s, n) for s, v in self.metrics.items() for n in v}
        if self.model is not None:
            have.add(StateField.MODEL)
        if self.dataset is not None:
            have.add(StateField.DATASET)
        if "train" in self.metrics:
            have.add(StateField.TRAINED)
        if self.precision is not None:
            have.add(StateField.PRECISION)
        for name in ("hls_project", "hls_report"):
            if name in self.artefacts:
                have.add(StateField(name))
        return have

    # -- updates -------------------------------------------------------------------------------------------
    def evolve(self, **changes: Any) -> DesignState:
        """A copy with ``changes`` applied (dataclasses.replace)."""
        return replace(self, **changes)

    def with_metrics(self, stage: str, **values: float) -> DesignState:
        """A copy with ``metrics[stage]`` replaced by ``values`` (a stage's metrics are measured together)."""
        metrics = {k: dict(v) for k, v in self.metrics.items()}
        metrics[stage] = {k: float(v) for k, v in values.items()}
        return replace(self, metrics=metrics)

    def with_artefact(self, name: str, path: str | Path) -> DesignState:
        return replace(self, artefacts={**self.artefacts, name: str(path)})

    def with_info(self, **values: Any) -> DesignState:
        return replace(self, info={**self.info, **values})

    def model_copy(self) -> nn.Module:
        """A deep copy of the model for a task to change (raises if there is none)."""
        from accelflow.errors import ConfigError

        if self.model is None:
            raise ConfigError("the design state has no model yet")
        return copy.deepcopy(self.model)

    # -- serialisation -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Everything but the model, as JSON-ready data."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "model":
                continue
            value = getattr(self, f.name)
            if f.name == "target":
                value = value.model_dump(mode="json")
            elif f.name == "precision" and value is not None:
                value = {k: _record_json(v) for k, v in value.items()}
            elif f.name == "history":
                value = [
                    {"task": r.task, "key": r.key, "params": _json_ready(r.params), "seconds": r.seconds,
                     "metrics": _json_ready(r.metrics)}
                    for r in value
                ]
            out[f.name] = _json_ready(value)
        out["has_model"] = self.model is not None
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], model: nn.Module | None = None) -> DesignState:
        shape = data.get("input_shape")
        return cls(
            model=model,
            model_name=data.get("model_name"),
            input_shape=tuple(shape) if shape is not None else None,
            dataset=data.get("dataset"),
            data_kwargs=dict(data.get("data_kwargs") or {}),
            target=HardwareTarget.model_validate(data.get("target") or {}),
            precision=_precision_from_json(data.get("precision")),
            artefacts=dict(data.get("artefacts") or {}),
            metrics={k: dict(v) for k, v in (data.get("metrics") or {}).items()},
            info=dict(data.get("info") or {}),
            history=tuple(TaskRecord(**r) for r in data.get("history") or ()),
        )


def _record_json(value: Any) -> Any:
    """A frozen record (e.g. accelflow.hls.LayerPrecision) as JSON data; plain JSON passes through."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_ready(dataclasses.asdict(value))
    return _json_ready(value)


def _precision_from_json(data: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Rebuild per-layer :class:`accelflow.hls.LayerPrecision` records written by :func:`_record_json`."""
    if data is None:
        return None
    from accelflow.hls import FixedPoint, LayerPrecision

    def fixed(d: Mapping[str, Any] | None) -> Any:
        return None if d is None else FixedPoint(**d)

    return {layer: LayerPrecision(**{k: fixed(v) for k, v in rec.items()}) for layer, rec in data.items()}


STATE_JSON = "state.json"
MODEL_PT = "model.pt"


def save_state(state: DesignState, directory: Path) -> None:
    """Write ``state.json`` and (if there is a model) ``model.pt`` into ``directory`` (created)."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    (directory / STATE_JSON).write_text(json.dumps(state.to_json(), indent=1, sort_keys=True))
    if state.model is not None:
        # The whole module is pickled: scaling changes layer widths, so a state_dict alone cannot rebuild it.
        torch.save(state.model, directory / MODEL_PT)


def load_state(directory: Path) -> DesignState:
    """Read a state written by :func:`save_state` (the model file is trusted: it was written by this run)."""
    import torch

    data = json.loads((directory / STATE_JSON).read_text())
    model = None
    if data.get("has_model"):
        model = torch.load(directory / MODEL_PT, weights_only=False)
        model.eval()
    return DesignState.from_json(data, model)
