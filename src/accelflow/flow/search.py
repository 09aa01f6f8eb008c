"""Flow-level search (MetaML-Pro): which O-tasks to run, in which order, with which accuracy tolerances.

The space is the task combination/order among ``{Q, SP, SQ, PQ, SPQ, S, P}`` (S = scaling, P = pruning,
Q = quantisation) and one tolerance per O-task (each 1-4 % by default). A candidate's score is the
C-simulation accuracy plus, for each of DSP, LUT, FF and BRAM, the relative saving against the unoptimised
design (:func:`metaml_score`). Search exposes ask/tell over an Optuna study (TPE, 2 random + 10 guided
points by default, optionally stored in SQLite so an interrupted search resumes); :func:`grid_search` is the
exhaustive reference over the same space.

Example::

    space = SearchSpace()
    result = search_flows(my_evaluate, space, storage="sqlite:///runs/search.db", study_name="jet")
    result.best.candidate.order, result.best.score
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import optuna

from accelflow.flow.control import Flow, Node
from accelflow.flow.errors import FlowValidationError
from accelflow.flow.task import Task, param_specs

__all__ = [
    "ORDERS", "RESOURCE_KEYS", "SearchSpace", "Candidate", "Evaluation", "SearchResult", "metaml_score",
    "ask_candidate", "search_flows", "grid_candidates", "grid_search", "candidate_flow",
    "param_distributions",
]

log = logging.getLogger(__name__)

#: The task combinations/orders of MetaML-Pro (applied left to right).
ORDERS: tuple[str, ...] = ("Q", "SP", "SQ", "PQ", "SPQ", "S", "P")
#: Resources counted in the score, as keys of the ``resources`` metrics stage.
RESOURCE_KEYS: tuple[str, ...] = ("dsp", "lut", "ff", "bram18")


@dataclass(frozen=True)
class SearchSpace:
    """Orders to choose from and the tolerance range (fractions: 0.01 = 1 %) of each O-task letter."""

    orders: tuple[str, ...] = ORDERS
    tolerance_low: float = 0.01
    tolerance_high: float = 0.04

    def __post_init__(self) -> None:
        bad = [o for o in self.orders if not o or set(o) - set("SPQ") or len(set(o)) != len(o)]
        if bad or not self.orders:
            raise FlowValidationError(f"orders {bad} must be non-empty strings of distinct letters S, P, Q")
        if not 0 <= self.tolerance_low <= self.tolerance_high:
            raise FlowValidationError(f"need 0 <= tolerance_low <= tolerance_high, got "
                                      f"{self.tolerance_low}, {self.tolerance_high}")

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(x for x in "SPQ" if any(x in o for o in self.orders))


@dataclass(frozen=True)
class Candidate:
    """One point: an order such as ``"SPQ"`` and a tolerance per letter it uses."""

    order: str
    tolerances: Mapping[str, float]

    def label(self) -> str:
        return self.order + "(" + ",".join(f"{x}={self.tolerances[x]:.3f}" for x in self.order) + ")"


@dataclass(frozen=True)
class Evaluation:
    """The measured outcome of a candidate: its score and the numbers behind it."""

    candidate: Candidate
    score: float
    accuracy: float
    resources: Mapping[str, float]
    seconds: float
    details: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    evaluations: tuple[Evaluation, ...]
    seconds: float

    @property
    def best(self) -> Evaluation:
        return max(self.evaluations, key=lambda e: e.score)


def metaml_score(accuracy: float, resources: Mapping[str, float], baseline: Mapping[str, float],
                 keys: Sequence[str] = RESOURCE_KEYS) -> float:
    """Accuracy (fraction) + sum over ``keys`` of ``(baseline - design) / baseline`` (keys with baseline 0 add 0)."""
    saving = sum((baseline[k] - resources[k]) / baseline[k] for k in keys if baseline.get(k, 0) > 0)
    return float(accuracy + saving)


def ask_candidate(trial: optuna.Trial, space: SearchSpace) -> Candidate:
    """Sample a candidate from an Optuna trial (the ask half of ask/tell)."""
    order = str(trial.suggest_categorical("order", list(space.orders)))
    tols = {x: float(trial.suggest_float(f"tol_{x}", space.tolerance_low, space.tolerance_high))
            for x in space.letters}
    return Candidate(order, {x: tols[x] for x in order})


def _tell(study: optuna.Study, trial: optuna.Trial, ev: Evaluation) -> None:
    trial.set_user_attr("accuracy", ev.accuracy)
    trial.set_user_attr("resources", dict(ev.resources))
    trial.set_user_attr("seconds", ev.seconds)
    study.tell(trial, ev.score)


def _from_trial(t: optuna.trial.FrozenTrial) -> Evaluation:
    order = str(t.params["order"])
    cand = Candidate(order, {x: float(t.params[f"tol_{x}"]) for x in order})
    return Evaluation(cand, float(t.value or 0.0), float(t.user_attrs.get("accuracy", 0.0)),
                      dict(t.user_attrs.get("resources", {})), float(t.user_attrs.get("seconds", 0.0)))


def search_flows(evaluate: Callable[[Candidate], Evaluation], space: SearchSpace | None = None, *,
                 n_random: int = 2, n_guided: int = 10, seed: int = 0, storage: str | None = None,
                 study_name: str = "accelflow-flow-search") -> SearchResult:
    """TPE search: ``n_random`` random points then ``n_guided`` guided ones, maximising the score.

    With ``storage`` (an Optuna URL such as ``sqlite:///runs/search.db``) the study is kept on disk and a
    second call with the same name continues it: completed trials count towards the budget, trials left
    running by a crash are marked failed and re-asked.
    """
    space = space or SearchSpace()
    sampler = optuna.samplers.TPESampler(n_startup_trials=n_random, seed=seed)
    study = optuna.create_study(direction="maximize", storage=storage, study_name=study_name,
                                load_if_exists=True, sampler=sampler)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # left over by an interrupted search
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    start = time.perf_counter()
    for _ in range(max(0, n_random + n_guided - done)):
        trial = study.ask()
        cand = ask_candidate(trial, space)
        ev = evaluate(cand)
        _tell(study, trial, ev)
        log.info("trial %d %s: score %.4f (acc %.4f)", trial.number, cand.label(), ev.score, ev.accuracy)
    evaluations = tuple(_from_trial(t) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    return SearchResult(evaluations, time.perf_counter() - start)


def grid_candidates(space: SearchSpace | None = None, levels: Sequence[float] = (0.01, 0.02, 0.03, 0.04)
                    ) -> Iterator[Candidate]:
    """Every order with every combination of tolerance ``levels`` for the letters that order uses."""
    space = space or SearchSpace()
    for order in space.orders:
        for combo in itertools.product(levels, repeat=len(order)):
            yield Candidate(order, dict(zip(order, combo, strict=True)))


def grid_search(evaluate: Callable[[Candidate], Evaluation], candidates: Sequence[Candidate] | Iterator[Candidate]
                ) -> SearchResult:
    """Evaluate every candidate (the exhaustive baseline of the MetaML-Pro comparison)."""
    start = time.perf_counter()
    evaluations = tuple(evaluate(c) for c in candidates)
    return SearchResult(evaluations, time.perf_counter() - start)


def candidate_flow(candidate: Candidate, make_step: Mapping[str, Callable[[float], Node]],
                   tail: Sequence[Node] = (), name: str = "") -> Flow:
    """The flow of a candidate: ``make_step[letter](tolerance)`` for each letter of its order, then ``tail``
    (e.g. emulate + estimate). ``make_step`` maps S, P, Q to step factories, so task settings stay the
    caller's choice."""
    missing = sorted(set(candidate.order) - set(make_step))
    if missing:
        raise FlowValidationError(f"candidate {candidate.order}: no step factory for {missing}")
    steps = [make_step[x](candidate.tolerances[x]) for x in candidate.order]
    return Flow(name or f"candidate-{candidate.order}", (*steps, *tail))


def param_distributions(cls: type[Task], names: Sequence[str] | None = None
                        ) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna distributions for a task's searchable parameters (those given a range or choices in
    :func:`~accelflow.flow.task.param`), optionally restricted to ``names``; usable with ``study.ask``."""
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for spec in param_specs(cls):
        if names is not None and spec.name not in names:
            continue
        if spec.choices is not None:
            values = [c.value if hasattr(c, "value") else c for c in spec.choices]
            out[spec.name] = optuna.distributions.CategoricalDistribution(values)
        elif spec.low is not None and spec.high is not None:
            if isinstance(spec.default, bool):
                continue
            if isinstance(spec.default, int):
                out[spec.name] = optuna.distributions.IntDistribution(int(spec.low), int(spec.high),
                                                                      log=spec.log_scale)
            else:
                out[spec.name] = optuna.distributions.FloatDistribution(spec.low, spec.high, log=spec.log_scale)
    unknown = sorted(set(names or ()) - set(out))
    if unknown:
        raise FlowValidationError(f"task '{cls.name}': parameters {unknown} have no search range")
    return out
