"""Flow files: YAML validated with pydantic, then built into a :class:`~accelflow.flow.control.Flow`.

A flow file looks like::

    name: metaml_jet_dnn
    seed: 0
    start:                       # the initial design state
      model: jet_dnn             # zoo name
      dataset: synthetic_jets
      pretrained: true           # trained weights from accelflow.train.cached_model
      data: {limit_train: 4000}
      target: {part: xcu250-figd2104-2L-e, clock_mhz: 200, io_type: io_stream, reuse_factor: 1}
    steps:
      - task: prune
        id: prune
        params: {tolerance: 0.02}
      - fork:
          objective: hls_csim.accuracy - resources.dsp / 1000
          branches:
            - [{task: scale}, {task: quantize}]
            - [{task: quantize}]
      - branch: {if: "hls_csim.accuracy < 0.7", goto: prune, max_repeats: 1}
      - loop: {times: 2, until: "train.accuracy > 0.9", body: [{task: train}]}

Every error names the file, the step (1-based, nested as ``step 2 fork branch 1 step 1``), the task and
the field; nothing runs before the whole file is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accelflow.flow.control import Branch, Flow, Fork, Loop, Node, Step
from accelflow.flow.errors import FlowValidationError
from accelflow.flow.state import DesignState, HardwareTarget
from accelflow.flow.task import TaskRegistry, build_task

__all__ = ["StartSpec", "FlowFile", "parse_flow", "load_flow", "initial_state"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartSpec(_Strict):
    """The initial design state of a flow file: a zoo model (``model: resnet8``, trained from the weights
    cache with ``pretrained: true``), the user's own PyTorch model file (``model: nets/cnn.py[:NAME]``, with
    its trained weights ``weights: cnn.pt``) or an ONNX file (``model: cnn.onnx``, weights included); the
    user's models need the ``dataset`` they were trained on. Relative paths are relative to the flow file."""

    model: str | None = None  # zoo name, model.py[:NAME] or model.onnx
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = None  # state dict of a model file's trained weights
    dataset: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)  # accelflow.data.load options
    pretrained: bool = False
    target: HardwareTarget = Field(default_factory=HardwareTarget)

    @property
    def is_user_model(self) -> bool:
        """The model is the user's: a PyTorch model file or an ONNX file (not a zoo name)."""
        from accelflow.frontends import is_user_model

        return self.model is not None and is_user_model(self.model)

    @property
    def is_onnx(self) -> bool:
        return self.model is not None and self.model.lower().endswith(".onnx")

    def checked(self, source: str) -> StartSpec:
        """This start with a model file's paths made relative to the flow file ``source`` (when it is one),
        or a :class:`FlowValidationError` naming the field that does not go with the model given."""
        if not self.is_user_model:
            if self.weights is not None:
                raise FlowValidationError(f"{source}: field 'start.weights': only for a model file (model: "
                                          "net.py[:NAME]); a zoo model's weights come from the weights cache "
                                          "(pretrained: true)")
            return self

        def refuse(field: str, why: str) -> FlowValidationError:
            return FlowValidationError(f"{source}: field 'start.{field}': {why}")

        if self.is_onnx and self.weights is not None:
            raise refuse("weights", "an ONNX file carries its own weights; weights are for a PyTorch model file")
        if self.pretrained and (self.is_onnx or self.weights is not None):
            raise refuse("pretrained", "the model already has trained weights (" + (
                "an ONNX file carries them" if self.is_onnx else "start.weights") + "); pretrained: true trains a "
                "model file's model once through the weights cache")
        if self.model_kwargs:
            raise refuse("model_kwargs", "zoo models only; a model file builds its own model")
        if self.dataset is None:
            raise refuse("dataset", "required with a model file: the data set it is trained and evaluated on")
        base = Path(source).parent if Path(source).is_file() else None
        if base is None:
            return self

        def near(path: str) -> str:
            return path if Path(path).is_absolute() else str(base / path)

        assert self.model is not None
        return self.model_copy(update={"model": near(self.model),
                                       "weights": None if self.weights is None else near(self.weights)})


class FlowFile(_Strict):
    name: str
    seed: int = 0
    description: str = ""
    start: StartSpec = Field(default_factory=StartSpec)
    steps: list[dict[str, Any]] = Field(min_length=1)


class _TaskStep(_Strict):
    task: str
    id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class _ForkBody(_Strict):
    objective: str
    maximize: bool = True
    branches: list[list[dict[str, Any]]] = Field(min_length=1)


class _BranchBody(_Strict):
    condition: str = Field(alias="if")
    goto: str
    max_repeats: int = Field(1, ge=1)


class _LoopBody(_Strict):
    times: int = Field(ge=1)
    until: str | None = None
    body: list[dict[str, Any]] = Field(min_length=1)


def _pyd_error(exc: ValidationError, where: str) -> FlowValidationError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "?"
    return FlowValidationError(f"{where}: field '{loc}': {err['msg']}")


_KINDS = ("task", "fork", "branch", "loop")


def _node(raw: Any, where: str, registry: TaskRegistry) -> Node:
    if not isinstance(raw, Mapping):
        raise FlowValidationError(f"{where}: expected a mapping with one of {list(_KINDS)}, got {raw!r}")
    kinds = [k for k in _KINDS if k in raw]
    if len(kinds) != 1:
        raise FlowValidationError(f"{where}: a step has exactly one of {list(_KINDS)}; got keys {sorted(raw)}")
    kind = kinds[0]
    try:
        if kind == "task":
            spec = _TaskStep.model_validate(raw)
            where = f"{where} (task '{spec.task}')" if spec.id is None else f"{where} (task '{spec.task}', id '{spec.id}')"
            cls = registry.get(spec.task) if spec.task in registry else None
            if cls is None:
                raise FlowValidationError(f"{where}: unknown task '{spec.task}'; registered tasks: {registry.names()}")
            return Step(build_task(cls, spec.params, where), spec.id)
        extra = sorted(set(raw) - {kind, "id"})
        if extra:
            raise FlowValidationError(f"{where} ({kind}): unexpected key(s) {extra}; put options under '{kind}:'")
        node_id = raw.get("id")
        if kind == "fork":
            fb = _ForkBody.model_validate(raw["fork"])
            branches = tuple(_seq(b, f"{where} fork branch {j + 1} ", registry) for j, b in enumerate(fb.branches))
            return Fork(branches, fb.objective, fb.maximize, node_id)  # type: ignore[arg-type]
        if kind == "branch":
            bb = _BranchBody.model_validate(raw["branch"])
            return Branch(bb.condition, bb.goto, bb.max_repeats, node_id)  # type: ignore[arg-type]
        lb = _LoopBody.model_validate(raw["loop"])
        return Loop(_seq(lb.body, f"{where} loop ", registry), lb.times, lb.until, node_id)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _pyd_error(exc, f"{where} ({kind})") from None


def _seq(raws: list[Any], prefix: str, registry: TaskRegistry) -> tuple[Node, ...]:
    return tuple(_node(r, f"{prefix}step {i + 1}", registry) for i, r in enumerate(raws))


def parse_flow(text: str, source: str = "<string>", registry: TaskRegistry | None = None) -> tuple[FlowFile, Flow]:
    """Validate flow YAML ``text`` and build the flow; ``source`` names the file in error messages."""
    from accelflow.flow.registry import default_registry

    registry = registry or default_registry()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FlowValidationError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise FlowValidationError(f"{source}: a flow file is a mapping with keys name, start, steps")
    try:
        spec = FlowFile.model_validate(data)
    except ValidationError as exc:
        raise _pyd_error(exc, source) from None
    spec = spec.model_copy(update={"start": spec.start.checked(source)})
    steps = _seq(spec.steps, f"{source}: ", registry)
    return spec, Flow(spec.name, steps, source)


def load_flow(path: str | Path, registry: TaskRegistry | None = None) -> tuple[FlowFile, Flow, str]:
    """Read and validate a flow file; returns the spec, the flow and the file text."""
    text = read_text(path, "flow file")
    spec, flow = parse_flow(text, str(path), registry)
    return spec, flow, text


def read_text(path: str | Path, what: str) -> str:
    """The text of a YAML input file, or a :class:`FlowValidationError` naming ``what`` and the path."""
    p = Path(path)
    try:
        return p.read_text()
    except OSError as exc:
        raise FlowValidationError(f"cannot read {what} {p}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FlowValidationError(f"{what} {p} is not UTF-8 text (expected YAML)") from None


def initial_state(start: StartSpec, *, progress: bool = False) -> DesignState:
    """Build the initial design state: the zoo model (trained from the weight cache if ``pretrained``), or
    the model file's module (with its ``weights``, when given)."""
    from accelflow.data import load

    if start.is_user_model:
        return _model_file_state(start)
    model, shape = None, None
    if start.model is not None:
        from accelflow.zoo import create, options, spec

        dataset = start.dataset or spec(start.model).default_dataset
        info = load(dataset, **start.data).info
        shape = tuple(info.input_shape)
        if start.pretrained:
            from accelflow.train import cached_model

            model, _ = cached_model(start.model, dataset, model_kwargs=start.model_kwargs,
                                    data_kwargs=start.data, progress=progress)
        else:
            accepted = options(start.model)
            implied: dict[str, Any] = {"num_classes": info.num_classes}
            if info.is_image:
                implied.update(in_channels=info.input_shape[0], input_size=info.input_shape[-1])
            else:
                implied["in_features"] = info.input_shape[0]
            kwargs = {k: v for k, v in implied.items() if k in accepted} | dict(start.model_kwargs)
            model = create(start.model, **kwargs)
        start = start.model_copy(update={"dataset": dataset})
    state = DesignState(model=model, model_name=start.model, input_shape=shape, dataset=start.dataset,
                        data_kwargs=dict(start.data), target=start.target)
    return _with_test_accuracy(state) if start.pretrained and model is not None else state


def _model_file_state(start: StartSpec) -> DesignState:
    """The start state of ``model: file.py[:NAME]`` or ``model: file.onnx``: named after the file (never a zoo
    name), trained when it has weights (``weights`` for a PyTorch file; an ONNX file always carries them) or
    when ``pretrained`` (trained once through the weights cache, like ``train_cached``). A PyTorch file's
    model is built from :data:`~accelflow.frontends.MODEL_FILE_SEED` and the state records the file's sha256
    (``info``)."""
    from accelflow.data import load
    from accelflow.errors import ConfigError
    from accelflow.frontends import load_torch_model, seeded_model_file

    assert start.model is not None and start.dataset is not None  # StartSpec.checked
    if start.is_onnx:
        loaded, sha256 = load_torch_model(start.model), None
    else:
        loaded, sha256 = seeded_model_file(start.model, start.weights)
    shape = tuple(load(start.dataset, **start.data).info.input_shape)
    if loaded.input_shape is not None and loaded.input_shape != shape:
        what = "input shape" if start.is_onnx else "INPUT_SHAPE"
        raise ConfigError(f"{start.model}: {what} {loaded.input_shape} is not the shape of {start.dataset} "
                          f"images, {shape}")
    file, _, attr = start.model.partition(":")
    state = DesignState(model=loaded.module, model_name=Path(file).name + (f":{attr}" if attr else ""),
                        input_shape=shape, dataset=start.dataset, data_kwargs=dict(start.data), target=start.target)
    if sha256 is not None:
        state = state.with_info(model_file_sha256=sha256)
    if start.pretrained:
        from accelflow.flow.tasks.training import train_through_cache

        return train_through_cache(state, progress=False)
    return _with_test_accuracy(state) if start.weights is not None or start.is_onnx else state


def _with_test_accuracy(state: DesignState) -> DesignState:
    """A trained start state: ``train.accuracy`` on the test split marks it trained."""
    from accelflow.train import evaluate

    return state.with_metrics("train", accuracy=evaluate(state.model, state.splits().test))
