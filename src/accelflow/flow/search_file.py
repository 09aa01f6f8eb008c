"""Flow-search files: a MetaML-Pro flow-level search written as YAML, evaluated on any executor.

A flow-search file names the start state (as a flow file does), the task behind each O-task letter, the
steps that measure every candidate, and the search space::

    name: metaml_pro_search_digits
    seed: 0
    start: {model: digits_mlp, dataset: digits, pretrained: true,
            target: {io_type: io_parallel, reuse_factor: 1}}
    tasks:                       # S, P, Q -> the task run for that letter; the search sets `tolerance`
      S: {task: scale, params: {retrain_epochs: 4, batch_size: 64}}
      P: {task: prune, params: {finetune_epochs: 3, batch_size: 64}}
      Q: {task: quantize}
    measure: [{task: emulate}, {task: estimate}]      # must record the accuracy metric and resources.*
    search: {orders: [Q, SP, SQ, PQ, SPQ, S, P], tolerance: [0.01, 0.04], trials: 12, random_trials: 2,
             sampler: gp, accuracy: hls_emu.accuracy}

Each candidate (an order and a tolerance per letter) runs as a flow from the start state; its score is
:func:`~accelflow.flow.search.metaml_score` against the unoptimised design (the ``measure`` steps run on the
start state, resources recorded as stage ``baseline``). Everything is validated before anything runs: every
letter's task is built with the lowest and highest tolerance and the longest candidate flow is checked
against the start state, so errors name the file, the letter or step, the task and the field.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from accelflow.flow.control import Flow, Node
from accelflow.flow.engine import check_flow, run_flow
from accelflow.flow.errors import FlowValidationError
from accelflow.flow.schema import StartSpec, _node, _pyd_error, _TaskStep, initial_state, read_text
from accelflow.flow.search import (
    ORDERS,
    RESOURCE_KEYS,
    Candidate,
    Evaluation,
    SearchSpace,
    metaml_score,
)
from accelflow.flow.state import DesignState

__all__ = ["FlowSearchFile", "FlowSearchProblem", "FlowSearchEvaluator", "load_flow_search", "parse_flow_search"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchSpec(_Strict):
    """The ``search:`` section: space, budget and the accuracy metric of the score."""

    orders: list[str] = Field(default_factory=lambda: list(ORDERS), min_length=1)
    tolerance: tuple[float, float] = (0.01, 0.04)
    tolerance_step: float | None = None
    trials: int = Field(12, ge=1)
    random_trials: int = Field(2, ge=0)
    sampler: Literal["gp", "tpe"] = "gp"
    accuracy: str = "hls_emu.accuracy"

    @field_validator("accuracy")
    @classmethod
    def _metric(cls, v: str) -> str:
        if "." not in v.strip(".") or v.count(".") != 1:
            raise ValueError(f"{v!r} must be a metric 'stage.name', e.g. hls_emu.accuracy")
        return v


class FlowSearchFile(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    start: StartSpec = Field(default_factory=StartSpec)
    tasks: dict[str, _TaskStep] = Field(min_length=1)
    measure: list[dict[str, Any]] = Field(default_factory=lambda: [{"task": "emulate"}, {"task": "estimate"}],
                                          min_length=1)
    search: SearchSpec = Field(default_factory=SearchSpec)


@dataclass(frozen=True)
class FlowSearchProblem:
    """A validated flow-search file: its spec, the space, and the text it came from (workers re-parse it)."""

    spec: FlowSearchFile
    space: SearchSpace
    text: str
    source: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:10]

    def candidate_flow(self, cand: Candidate) -> Flow:
        """The flow of one candidate: each letter's task with the candidate's tolerance, then ``measure``."""
        steps: list[Node] = []
        for i, letter in enumerate(cand.order):
            entry = self.spec.tasks[letter]
            raw = {"task": entry.task, "params": {**entry.params, "tolerance": cand.tolerances[letter]}}
            steps.append(_node(raw, f"{self.source}: tasks.{letter} (candidate {cand.order}, step {i + 1})",
                               _registry()))
        return Flow(f"{self.spec.name}:{cand.order}", (*steps, *self._measure()), self.source)

    def baseline_flow(self) -> Flow:
        """``measure`` on the start state, with the resource estimate recorded as stage ``baseline``."""
        return Flow(f"{self.spec.name}:baseline", self._measure(estimate_stage="baseline"), self.source)

    def _measure(self, estimate_stage: str | None = None) -> tuple[Node, ...]:
        steps = []
        for i, raw in enumerate(self.spec.measure):
            if estimate_stage and raw.get("task") == "estimate" and isinstance(raw.get("params", {}), Mapping):
                raw = {**raw, "params": {**raw.get("params", {}), "stage": estimate_stage}}
            steps.append(_node(raw, f"{self.source}: measure step {i + 1}", _registry()))
        return tuple(steps)

    def final_metrics(self) -> tuple[str, ...]:
        return (self.spec.search.accuracy, *(f"resources.{k}" for k in RESOURCE_KEYS))

    def check(self, start: DesignState) -> None:
        """Check the longest candidate flow and the baseline flow against ``start`` (nothing runs)."""
        longest = max(self.space.orders, key=len)
        cand = Candidate(longest, {x: self.space.tolerance_low for x in longest})
        check_flow(self.candidate_flow(cand), start, final_metrics=self.final_metrics())
        check_flow(self.baseline_flow(), start,
                   final_metrics=(self.spec.search.accuracy, *(f"baseline.{k}" for k in RESOURCE_KEYS)))


def _registry() -> Any:
    from accelflow.flow.registry import default_registry

    return default_registry()


def parse_flow_search(text: str, source: str = "<string>") -> FlowSearchProblem:
    """Validate flow-search YAML ``text`` (``source`` names it in errors); builds every task once."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FlowValidationError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise FlowValidationError(f"{source}: a flow-search file is a mapping with keys name, start, tasks, "
                                  "measure, search")
    try:
        spec = FlowSearchFile.model_validate(data)
    except ValidationError as exc:
        raise _pyd_error(exc, source) from None
    spec = spec.model_copy(update={"start": spec.start.checked(source)})
    s = spec.search
    try:
        space = SearchSpace(tuple(s.orders), s.tolerance[0], s.tolerance[1], s.tolerance_step)
    except FlowValidationError as exc:
        raise FlowValidationError(f"{source}: field 'search': {exc}") from None
    extra = sorted(set(spec.tasks) - set("SPQ"))
    missing = sorted(set(space.letters) - set(spec.tasks))
    if extra or missing:
        raise FlowValidationError(f"{source}: field 'tasks': keys must be the letters S, P, Q that the orders use "
                                  f"(missing {missing}, unknown {extra})")
    problem = FlowSearchProblem(spec, space, text, source)
    for letter in space.letters:  # every letter's task accepts the tolerance range and its parameters
        for tol in (space.tolerance_low, space.tolerance_high):
            problem.candidate_flow(Candidate(letter, {letter: tol}))
    return problem


def load_flow_search(path: str | Path) -> FlowSearchProblem:
    return parse_flow_search(read_text(path, "flow-search file"), str(path))


#: Start states built in this process, by file digest (a worker evaluates many candidates of one file).
_STARTS: dict[str, DesignState] = {}


class FlowSearchEvaluator:
    """``Candidate -> Evaluation`` for one flow-search file: picklable (it carries the file text and the
    baseline), so process-pool and Dask workers rebuild the start state once each, from the weight cache."""

    def __init__(self, text: str, source: str, baseline: Mapping[str, float]) -> None:
        self.text, self.source, self.baseline = text, source, dict(baseline)
        self._problem: FlowSearchProblem | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"text": self.text, "source": self.source, "baseline": self.baseline, "_problem": None}

    @property
    def problem(self) -> FlowSearchProblem:
        if self._problem is None:
            self._problem = parse_flow_search(self.text, self.source)
        return self._problem

    def start(self) -> DesignState:
        key = self.problem.digest
        if key not in _STARTS:
            _STARTS[key] = initial_state(self.problem.spec.start)
        return _STARTS[key]

    def __call__(self, cand: Candidate) -> Evaluation:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="accelflow-flow-search-") as scratch:
            state = run_flow(self.problem.candidate_flow(cand), self.start(), scratch_dir=scratch,
                             seed=self.problem.spec.seed).state
        acc = state.metric(self.problem.spec.search.accuracy)
        res = {k: state.metric(f"resources.{k}") for k in RESOURCE_KEYS}
        return Evaluation(cand, metaml_score(acc, res, self.baseline), acc, res, time.perf_counter() - t0)


def measure_baseline(problem: FlowSearchProblem, start: DesignState) -> tuple[float, dict[str, float]]:
    """Accuracy and resources of the unoptimised design (the ``measure`` steps on the start state)."""
    with tempfile.TemporaryDirectory(prefix="accelflow-flow-search-") as scratch:
        state = run_flow(problem.baseline_flow(), start, scratch_dir=scratch, seed=problem.spec.seed).state
    return (state.metric(problem.spec.search.accuracy),
            {k: state.metric(f"baseline.{k}") for k in RESOURCE_KEYS})
