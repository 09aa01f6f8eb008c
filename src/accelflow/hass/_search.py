"""HASS search with Optuna's ask/tell interface and a small module-level loop.

Each trial samples per-layer thresholds, evaluates accuracy, measured sparsity and the folded design, and
reports the objective (TPE, GP) or (accuracy, objective) (NSGA-II). The accuracy bound is a *constraint*
(``drop - bound <= 0``) given to the sampler and, independently, a hard filter when the design is chosen:
only trials whose measured drop is within the bound can be returned, and the chosen trial is re-evaluated
before it is returned, so the returned design never violates the bound. The dense point (all thresholds 0,
drop 0) is always trial 0 of a new study, so a feasible design always exists.

The study lives in SQLite by default and is created before any trial runs, with ``load_if_exists``: running
the same search again resumes it, keeping completed trials and running only the missing ones. To
distribute trials, several workers call :func:`run_search` (or ask/tell themselves) on one storage URL.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna
from rich.progress import TimeElapsedColumn

from accelflow.data import ArraySplit
from accelflow.hass._baselines import slowest_layer_baseline, uniform_baseline
from accelflow.hass._errors import HassError
from accelflow.hass._evaluate import (
    BOUND_SLACK,
    Evaluation,
    Evaluator,
    drop_estimates,
    meets_holdout,
    within_bound,
)
from accelflow.hass._finetune import FineTune
from accelflow.hass._progress import progress_bar, status
from accelflow.hass._recover import pareto_order, recover
from accelflow.hass._refine import best_start, refine_study
from accelflow.hass._result import HassResult, TrialRecord, make_result
from accelflow.hass._space import Objective, SamplerKind, Thresholds, ThresholdSpace
from accelflow.search import Executor, Outcome, optimize

__all__ = [
    "DEFAULT_STORAGE",
    "SearchSettings",
    "create_study",
    "ask",
    "tell",
    "feasible_trials",
    "best_trial",
    "trial_records",
    "warm_start_points",
    "BASELINES",
    "study_baselines",
    "run_search",
]

log = logging.getLogger(__name__)

#: Where studies go unless a storage URL is given (relative to the working directory).
DEFAULT_STORAGE = "sqlite:///accelflow_hass.db"

_CONSTRAINT = "accuracy_drop_excess"  # drop - bound in points (<= 0 feasible), seen by the samplers


@dataclass(frozen=True)
class SearchSettings:
    """What to search for. ``max_accuracy_drop`` in percentage points; ``trials`` is the total number of
    completed sampler trials the study should hold (a resumed study runs only the missing ones);
    ``refine_trials`` further trials of the hardware-aware greedy refinement (:mod:`accelflow.hass._refine`)
    run after them, from the best feasible design. ``finetune_slack`` (points, with a ``finetune`` given to
    :func:`run_search`) lets the search go ``max_accuracy_drop + finetune_slack`` below the reference; the
    designs it finds are then fine-tuned back within ``max_accuracy_drop`` (:func:`accelflow.hass.recover`,
    at most ``finetune_tries`` fine-tunings)."""

    max_accuracy_drop: float = 1.0
    trials: int = 50
    objective: Objective = Objective.THROUGHPUT
    sampler: SamplerKind = SamplerKind.TPE
    seed: int = 0
    storage: str | None = DEFAULT_STORAGE
    study_name: str | None = None
    startup_trials: int = 10
    refine_trials: int = 0
    finetune_slack: float = 0.0
    finetune_tries: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "objective", Objective(self.objective))
        object.__setattr__(self, "sampler", SamplerKind(self.sampler))
        if self.max_accuracy_drop < 0:
            raise HassError(f"max_accuracy_drop must be >= 0 points, got {self.max_accuracy_drop}")
        if self.trials < 1 or self.refine_trials < 0:
            raise HassError(f"need trials >= 1 and refine_trials >= 0, got {self.trials}, {self.refine_trials}")
        if self.finetune_slack < 0 or self.finetune_tries < 1:
            raise HassError(f"need finetune_slack >= 0 points and finetune_tries >= 1, got {self.finetune_slack}, "
                            f"{self.finetune_tries}")

    def searching(self) -> SearchSettings:
        """The settings the study is searched (and stored) with: the bound widened by ``finetune_slack``."""
        if self.finetune_slack == 0:
            return self
        return replace(self, max_accuracy_drop=self.max_accuracy_drop + self.finetune_slack, finetune_slack=0.0)

    def name_for(self, network: str, device: str, lockstep: str = "mean") -> str:
        return self.study_name or (f"hass-{network}-{device}-{self.objective.value}-{self.sampler.value}"
                                   f"-drop{self.max_accuracy_drop:g}" + ("" if lockstep == "mean" else f"-{lockstep}"))


def _sampler(settings: SearchSettings) -> optuna.samplers.BaseSampler:
    if settings.sampler is SamplerKind.TPE:
        return optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=settings.startup_trials,
                                          multivariate=True)
    if settings.sampler is SamplerKind.GP:  # reads the accuracy constraint set on each trial
        return optuna.samplers.GPSampler(seed=settings.seed, n_startup_trials=settings.startup_trials,
                                         warn_independent_sampling=False)
    if settings.sampler is SamplerKind.NSGA2:
        return optuna.samplers.NSGAIISampler(seed=settings.seed, population_size=max(4, settings.startup_trials))
    return optuna.samplers.RandomSampler(seed=settings.seed)


def create_study(settings: SearchSettings, evaluator: Evaluator,
                 initial: Sequence[tuple[str, Mapping[str, float]]] = ()) -> optuna.Study:
    """Create (or load, keeping its trials) the study of ``evaluator``; a new study gets the ``(source,
    params)`` points of ``initial`` enqueued first (normalised parameters, e.g. the dense point: all zeros).
    A stored study scored under another accuracy bound, or by an evaluator with another
    :attr:`Evaluator.fingerprint` (other weights, validation or calibration images, or hardware settings), is
    refused: its trials would not compare with this run's."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize", "maximize"] if settings.sampler is SamplerKind.NSGA2 else ["maximize"]
    lockstep = evaluator.lockstep.value
    study = optuna.create_study(storage=settings.storage,
                                study_name=settings.name_for(evaluator.name, evaluator.device.name, lockstep),
                                sampler=_sampler(settings), directions=directions, load_if_exists=True)
    if not study.trials:
        study.set_user_attr("max_accuracy_drop", settings.max_accuracy_drop)
        study.set_user_attr("objective", settings.objective.value)
        study.set_user_attr("lockstep", lockstep)
        study.set_user_attr("evaluator", evaluator.fingerprint)
        for source, params in initial:
            study.enqueue_trial(dict(params), user_attrs={"source": source}, skip_if_exists=True)
        return study
    # (attribute, this run's value, what a study from before the attribute existed was run with)
    checks = (("max_accuracy_drop", settings.max_accuracy_drop, None), ("lockstep", lockstep, "mean"))
    for attr, value, legacy in checks:
        stored = study.user_attrs.get(attr, legacy)
        if stored not in (None, value):
            raise HassError(f"study {study.study_name!r} in {_shown(settings.storage)} was created with "
                            f"{attr}={stored!r}, not {value!r}; pass another study name")
    stored = study.user_attrs.get("evaluator")
    if stored is None:  # a study from before fingerprints: adopt this run's
        study.set_user_attr("evaluator", evaluator.fingerprint)
    elif stored != evaluator.fingerprint:
        differ = " and ".join(_FINGERPRINT_PARTS[k] for k, v in evaluator.fingerprint.items() if stored.get(k) != v)
        raise HassError(f"study {study.study_name!r} in {_shown(settings.storage)} was run with other {differ}; its "
                        "trials would not compare with this run's: pass another study name (--study-name) or storage")
    tried = [t.params for t in study.get_trials(deepcopy=False)]
    ignored = sum(source != "dense" and not any(_same(params, p) for p in tried) for source, params in initial)
    if ignored:
        log.warning("%d starting point(s) ignored: study %r exists and is resumed with its own trials (starting "
                    "points are added only to a new study)", ignored, study.study_name)
    return study


#: What each part of :attr:`Evaluator.fingerprint` covers, for the error of a refused resume.
_FINGERPRINT_PARTS = {"weights": "model weights", "validation": "validation images (accuracy)",
                      "calibration": "calibration images (sparsity)",
                      "hardware": "hardware settings (device, batch, optimiser, bit widths)"}


def _same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """The same point (to float rounding): a starting point a resumed study already holds is not "ignored"."""
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-12) for k in a)


def ask(study: optuna.Study, evaluator: Evaluator) -> tuple[optuna.trial.Trial, Thresholds]:
    """Start a trial and sample its thresholds (enqueued parameters are honoured)."""
    trial = study.ask()
    return trial, evaluator.space.suggest(trial)


def _constraint(ev: Evaluation, bound: float) -> float:
    """What the samplers see: points above the bound (<= 0 exactly when :func:`within_bound`), and at least
    1 for a design that does not fit the device."""
    excess = ev.accuracy_drop - bound - BOUND_SLACK
    return excess if ev.design.feasible else max(excess, 0.0) + 1.0


def tell(study: optuna.Study, trial: optuna.trial.Trial, ev: Evaluation, settings: SearchSettings) -> None:
    """Record an evaluation: constraint, summary and absolute thresholds as user attributes, then the values."""
    trial.set_constraint(_CONSTRAINT, _constraint(ev, settings.max_accuracy_drop))
    for key, value in ev.summary().items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("thresholds", json.dumps(ev.thresholds.to_dict()))
    value = ev.objective(settings.objective)
    values: list[float] = [ev.accuracy, value] if settings.sampler is SamplerKind.NSGA2 else [value]
    study.tell(trial, values)


def run_trial(study: optuna.Study, evaluator: Evaluator, settings: SearchSettings) -> Evaluation:
    """Ask, evaluate in this process and tell one trial (failed, not left running, if the evaluation raises)."""
    trial, thresholds = ask(study, evaluator)
    try:
        ev = evaluator(thresholds)
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    tell(study, trial, ev, settings)
    return ev


def feasible_trials(study: optuna.Study, max_accuracy_drop: float) -> list[optuna.trial.FrozenTrial]:
    """Completed trials whose recorded drop is within the bound and whose design fits the device."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [t for t in done if within_bound(t.user_attrs.get("accuracy_drop", float("inf")), max_accuracy_drop)
            and t.user_attrs.get("design_feasible", False)]


def trial_thresholds(trial: optuna.trial.FrozenTrial) -> Thresholds:
    """The absolute thresholds a completed trial evaluated (recorded by :func:`tell`)."""
    return Thresholds.from_dict(json.loads(trial.user_attrs["thresholds"]))


def _objective_of(trial: optuna.trial.FrozenTrial, objective: Objective) -> float:
    thr = float(trial.user_attrs["throughput_images_per_s"])
    return thr if objective is Objective.THROUGHPUT else thr / max(int(trial.user_attrs["dsp"]), 1)


def ranked_trials(study: optuna.Study, max_accuracy_drop: float,
                  objective: Objective) -> list[optuna.trial.FrozenTrial]:
    """:func:`feasible_trials`, best first: highest objective, ties broken by higher accuracy."""
    return sorted(feasible_trials(study, max_accuracy_drop), reverse=True,
                  key=lambda t: (_objective_of(t, objective), t.user_attrs["accuracy"]))


def best_trial(study: optuna.Study, settings: SearchSettings) -> optuna.trial.FrozenTrial:
    """The feasible trial with the highest objective (ties: higher accuracy)."""
    ranked = ranked_trials(study, settings.max_accuracy_drop, settings.objective)
    if not ranked:
        raise HassError(f"study {study.study_name!r} has no trial within {settings.max_accuracy_drop} points")
    return ranked[0]


def trial_records(study: optuna.Study, settings: SearchSettings) -> tuple[TrialRecord, ...]:
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return tuple(TrialRecord(
        number=t.number, source=str(t.user_attrs.get("source", "search")),
        accuracy=float(t.user_attrs["accuracy"]), accuracy_drop=float(t.user_attrs["accuracy_drop"]),
        throughput_images_per_s=float(t.user_attrs["throughput_images_per_s"]), dsp=int(t.user_attrs["dsp"]),
        objective=_objective_of(t, settings.objective),
        feasible=within_bound(t.user_attrs["accuracy_drop"], settings.max_accuracy_drop)
        and bool(t.user_attrs.get("design_feasible", False)),
        zero_products=float(t.user_attrs.get("zero_products", 0.0)),
    ) for t in done)


def warm_start_points(storage: str | None, study_name: str, space: ThresholdSpace,
                      top: int = 3) -> list[dict[str, float]]:
    """The normalised parameters of the ``top`` best designs of a stored study (within the bound it was
    searched under, by its own objective), to pass as ``initial`` to :func:`run_search`: a new study, e.g.
    one with a wider bound and ``finetune_slack``, then starts from what an earlier search found, and its
    untuned fallback is at least as good. The study must have searched the same variables (``space``); its
    dense point is not repeated."""
    if top < 1:
        raise HassError(f"warm start needs top >= 1 designs, got {top}")
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        known = ", ".join(optuna.get_all_study_names(storage)) or "none"
        raise HassError(f"no study {study_name!r} in {_shown(storage)} to warm-start from (studies there: {known})") \
            from None
    bound = float(study.user_attrs.get("max_accuracy_drop", 0.0))
    objective = Objective(study.user_attrs.get("objective", Objective.THROUGHPUT.value))
    ranked = [t for t in ranked_trials(study, bound, objective)
              if t.user_attrs.get("source") != "dense"]  # every study starts dense anyway
    wanted = set(space.distributions())
    points = []
    for trial in ranked[:top]:
        if set(trial.params) != wanted:
            raise HassError(f"study {study_name!r} searched other variables than this network's "
                            f"({len(trial.params)} vs {len(wanted)}, e.g. {sorted(set(trial.params) ^ wanted)[:3]}); "
                            "warm-start from a study of the same network")
        points.append(dict(trial.params))
    log.info("warm start from %s: %d designs within %g points", study_name, len(points), bound)
    return points


#: The sparse baselines :func:`study_baselines` computes, by method name (see :mod:`accelflow.hass._baselines`).
BASELINES = ("uniform", "slowest_layer")


def study_baselines(evaluator: Evaluator, settings: SearchSettings, methods: Sequence[str],
                    holdout: ArraySplit | None = None, progress: bool = False) -> dict[str, dict[str, Any]]:
    """The sparse baselines ``methods`` (of :data:`BASELINES`) within ``settings.max_accuracy_drop``, selected
    like the search (hold-out check included), each as a summary: throughput, DSP, accuracy drop, zero
    products and thresholds. They are kept in the user attributes of ``settings``' study (created here if
    new), so a resumed run reads them back instead of re-scanning the grid; a stored one computed by another
    evaluator (:attr:`Evaluator.fingerprint`), on another hold-out size or for another objective is
    recomputed. Their thresholds are natural starting points of a new study
    (``evaluator.space.params(Thresholds.from_dict(summary["thresholds"]))``). ``progress`` shows which
    baseline is running (a uniform grid takes minutes on a mid-size network)."""
    unknown = [m for m in methods if m not in BASELINES]
    if unknown:
        raise HassError(f"unknown baseline(s) {', '.join(map(repr, unknown))}; known: {', '.join(BASELINES)}")
    study = create_study(settings.searching(), evaluator)
    bound = settings.max_accuracy_drop
    sizes = {"validation_images": len(evaluator.validation), "holdout_images": 0 if holdout is None else len(holdout),
             "objective": settings.objective.value, "evaluator": evaluator.fingerprint}
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(methods):
        attr = f"baseline:{method}:drop{bound:g}"
        stored = study.user_attrs.get(attr)
        if stored is not None and all(stored.get(k) == v for k, v in sizes.items()):
            log.info("%s baseline read from study %s", method, study.study_name)
            out[method] = stored
            continue
        log.info("%s baseline within %g points...", method, bound)
        with status(progress, f"{method} baseline within {bound:g} points"):
            if method == "uniform":
                r = uniform_baseline(evaluator, bound, settings.objective, holdout=holdout, local=True)
            else:
                r = slowest_layer_baseline(evaluator, bound, settings.objective, holdout=holdout)
        out[method] = {"method": method, "max_accuracy_drop": bound, **sizes, "evaluations": len(r.trials),
                       "objective_value": r.objective_value, "throughput_images_per_s": r.throughput_images_per_s,
                       "throughput_per_dsp": r.throughput_per_dsp, "speedup_over_dense": r.speedup_over_dense,
                       "dsp": r.dsp, "lut": r.lut, "binding_resource": r.binding_resource, "accuracy": r.accuracy,
                       "accuracy_drop": r.accuracy_drop, "zero_products": r.zero_products,
                       "thresholds": r.thresholds.to_dict()}
        study.set_user_attr(attr, out[method])
    return out


def _shown(storage: str | None) -> str:
    """A storage URL fit for a message: any password replaced by ``***``."""
    if storage is None:
        return "in-memory storage"
    from sqlalchemy.engine import make_url  # optuna's RDB storage dependency
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return storage


def _recover(study: optuna.Study, evaluator: Evaluator, settings: SearchSettings, finetune: Any,
             holdout: ArraySplit | None, chosen: Evaluation) -> tuple[Evaluation, Any, dict[str, Any]]:
    """Fine-tune the study's front within the widened bound back to ``settings.max_accuracy_drop``; keep the
    result (evaluation, tuned model) only if it beats ``chosen``, the best untuned design within the final
    bound (returned with model None otherwise)."""
    floor = chosen.objective(settings.objective)
    loose = settings.max_accuracy_drop + settings.finetune_slack
    front = pareto_order([(trial_thresholds(t), t.user_attrs["accuracy"], _objective_of(t, settings.objective))
                          for t in feasible_trials(study, loose) if _objective_of(t, settings.objective) > floor])
    got = recover(evaluator, front, finetune, settings.max_accuracy_drop, holdout, settings.finetune_tries,
                  score=lambda ev: ev.objective(settings.objective))
    info: dict[str, Any] = {"finetune_slack": settings.finetune_slack, "recover_candidates": len(front),
                            "recover_tried": [list(t) for t in got.tried]}
    if got.evaluation is None or got.evaluation.objective(settings.objective) <= floor:
        log.info("no fine-tuned design beats the untuned one within %g points", settings.max_accuracy_drop)
        return chosen, None, info
    return got.evaluation, got.model, info | {"recover_rank": got.rank, "recover_holdout_drop": got.holdout_drop}


def _recipe(finetune: Any) -> dict[str, Any]:
    """``{"finetune_recipe": ...}`` for a :class:`FineTune` (any callable is accepted; others record nothing)."""
    return {"finetune_recipe": finetune.recipe()} if isinstance(finetune, FineTune) else {}


@dataclass(frozen=True, eq=False)
class TrialEvaluation:
    """One trial as a picklable function of its parameters, for ``accelflow.search`` executors (process
    pool, Dask): the same evaluation, attributes and constraint as :func:`tell` records."""

    evaluator: Evaluator
    settings: SearchSettings

    def __call__(self, params: Mapping[str, float]) -> Outcome:
        ev = self.evaluator(self.evaluator.space.thresholds(params))
        value = ev.objective(self.settings.objective)
        values = (ev.accuracy, value) if self.settings.sampler is SamplerKind.NSGA2 else (value,)
        attrs = {**ev.summary(), "thresholds": json.dumps(ev.thresholds.to_dict())}
        return Outcome(values, attrs, {_CONSTRAINT: _constraint(ev, self.settings.max_accuracy_drop)})


def run_search(evaluator: Evaluator, settings: SearchSettings, initial: Sequence[Mapping[str, float]] = (),
               progress: bool = False, finetune: Any = None, extra: dict[str, Any] | None = None,
               holdout: ArraySplit | None = None, executor: Executor | None = None,
               baselines: Sequence[str] = ()) -> HassResult:
    """Run (or resume) a search until the study holds ``settings.trials`` completed trials; return the best
    feasible design.

    ``initial`` are normalised parameter sets tried right after the dense point (e.g. a baseline's
    thresholds, see ``ThresholdSpace.params``). ``finetune``, if given, is called as
    ``finetune(model, thresholds) -> model``; the fine-tuned model is re-evaluated and kept only if it
    stays within the bound and does not lower the objective. ``holdout`` (examples not used by the search)
    guards against a search that overfits its validation subset: the returned design must also be within
    the bound on it (the dense point always is). ``executor`` (``accelflow.search.make_executor``) evaluates
    trials in parallel workers through the shared ask/tell loop; without one, trials run here one by one.
    With ``settings.finetune_slack`` the study searches within the widened bound and ``finetune`` wins the
    slack back (see :class:`SearchSettings`); the study is stored under the widened bound.
    ``baselines`` (of :data:`BASELINES`) are run first by :func:`study_baselines`, their designs join
    ``initial``, and the result's ``extra["baselines"]`` holds their summaries, each with ``hass_ratio``:
    the result over the baseline on the search objective.
    """
    if settings.finetune_slack > 0 and finetune is None:
        raise HassError(f"finetune_slack={settings.finetune_slack:g} points needs finetune: the slack the search "
                        "takes is won back by fine-tuning")
    for label, split in (("validation", evaluator.validation), ("hold-out", holdout)):
        if split is not None and 100.0 / len(split) > settings.max_accuracy_drop:
            log.warning("%d %s images: one image is %.2g points, more than the %g-point bound, so a design that "
                        "misclassifies one more image than the dense model fails it (use more images)",
                        len(split), label, 100.0 / len(split), settings.max_accuracy_drop)
    compared = study_baselines(evaluator, settings, baselines, holdout, progress) if baselines else {}
    starts = [*initial, *(evaluator.space.params(Thresholds.from_dict(b["thresholds"])) for b in compared.values())]
    final, settings = settings, settings.searching()
    points = [("dense", evaluator.space.params(Thresholds()))] + [("initial", dict(p)) for p in starts]
    study = create_study(settings, evaluator, points)
    _run_trials(study, evaluator, settings, progress, executor)
    _refine(study, evaluator, settings, holdout)
    result = _finish(study, evaluator, final, finetune, extra, holdout)
    if not compared:
        return result
    ratios = {m: {**b, "hass_ratio": result.objective_value / b["objective_value"]} for m, b in compared.items()}
    return replace(result, extra={**result.extra, "baselines": ratios})


def _run_trials(study: optuna.Study, evaluator: Evaluator, settings: SearchSettings, progress: bool,
                executor: Executor | None) -> None:
    """Run the missing sampler trials: in ``executor``'s workers when it has more than one, else here."""
    if executor is not None and executor.n_workers > 1:
        run = optimize(study, TrialEvaluation(evaluator, settings), evaluator.space.distributions(), settings.trials,
                       executor, progress=progress)
        if run.evaluated and run.failed == run.evaluated:  # a broken set-up, not unlucky thresholds
            failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
            raise HassError(f"all {run.failed} trials run in {executor.n_workers} workers failed, the last with "
                            f"{failed[-1].user_attrs.get('error', 'no message')}")
        return
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    todo = max(settings.trials - done, 0)
    if done:
        log.info("resuming study %s with %d completed trials, %d to go", study.study_name, done, todo)
    with progress_bar(progress, TimeElapsedColumn()) as bar:
        task = bar.add_task(evaluator.name, total=todo)
        for _ in range(todo):
            run_trial(study, evaluator, settings)
            bar.advance(task)


def _refine(study: optuna.Study, evaluator: Evaluator, settings: SearchSettings, holdout: ArraySplit | None) -> None:
    """Run the missing refinement trials (none when ``settings.refine_trials`` is 0)."""
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    todo = settings.trials + settings.refine_trials - max(done, settings.trials)
    if settings.refine_trials <= 0 or todo <= 0:
        return
    start = best_start(study, evaluator, settings, holdout)
    if start is None:
        log.warning("no feasible trial to refine in %s", study.study_name)
        return
    used = refine_study(study, evaluator, settings, todo, start, holdout=holdout)
    log.info("refinement ran %d trials", used)


def _finish(study: optuna.Study, evaluator: Evaluator, settings: SearchSettings, finetune: Any,
            extra: dict[str, Any] | None, holdout: ArraySplit | None = None) -> HassResult:
    ranked = ranked_trials(study, settings.max_accuracy_drop, settings.objective)
    chosen: Evaluation | None = None
    base: list[float] = []
    rejected = 0
    for trial in ranked:  # re-evaluate; a trial that no longer meets the bound is skipped, never returned
        ev = evaluator(trial_thresholds(trial))
        if ev.feasible(settings.max_accuracy_drop) and \
                meets_holdout(evaluator, holdout, ev.thresholds, settings.max_accuracy_drop, base=base):
            chosen = ev
            break
        rejected += 1
        log.warning("trial %d does not meet the bound on re-evaluation or hold-out; trying the next", trial.number)
    if chosen is None:  # thresholds 0 are the unpruned network itself: drop 0 by construction
        log.warning("no trial of %s meets the bound; returning the zero-threshold design", study.study_name)
        chosen = evaluator(Thresholds())
    finetuned, model = False, None
    recovered: dict[str, Any] = {}
    if finetune is not None and settings.finetune_slack > 0:
        chosen, model, recovered = _recover(study, evaluator, settings, finetune, holdout, chosen)
        finetuned = model is not None
    elif finetune is not None:
        tuned_model = finetune(evaluator.model, chosen.thresholds)
        tuned = evaluator(chosen.thresholds, model=tuned_model)
        if tuned.feasible(settings.max_accuracy_drop) and meets_holdout(
                evaluator, holdout, chosen.thresholds, settings.max_accuracy_drop, model=tuned_model, base=base) and \
                tuned.objective(settings.objective) >= chosen.objective(settings.objective):
            chosen, finetuned, model = tuned, True, tuned_model
    dense = evaluator.dense_design()
    design = chosen.thresholds.apply(evaluator.model if model is None else model)
    estimates = {k: e.to_dict() for k, e in drop_estimates(evaluator, design, holdout).items()}
    return make_result("hass", chosen, dense.throughput_images_per_s, int(dense.resources.dsp), evaluator.space,
                       settings.objective, settings.max_accuracy_drop, evaluator.base_accuracy,
                       trial_records(study, settings), finetuned,
                       {**(extra or {}), **recovered, **_recipe(finetune), "rejected_at_selection": rejected,
                        "holdout_images": 0 if holdout is None else len(holdout),
                        "accuracy_drop_estimates": estimates}, lockstep=evaluator.lockstep.value, model=model)
