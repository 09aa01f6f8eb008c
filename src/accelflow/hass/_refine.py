"""Hardware-aware greedy refinement of a HASS study's best design (ours; runs after the TPE trials).

TPE over ~15-30 per-layer variables finds good regions but rarely spends the last of the accuracy budget
where it buys the most throughput. The refinement does that with the hardware in the loop:

1. Start from the best feasible trial of the study (the one that also meets the bound on the hold-out,
   when there is one) and evaluate it to see its folded design.
2. Rank the moves by hardware pressure: a move raises one conv's weight prune fraction or one ReLU's
   activation threshold by a step. Convs are ranked bottleneck first, then by the DSPs they use in the
   current design (in a DSP-bound pipeline, a conv that needs fewer DSPs for the same interval frees
   them for every other layer); a ReLU by the summed DSPs of the convs it feeds.
3. Evaluate the ``moves_per_round`` best-ranked untried moves (each is an ordinary trial of the study,
   source ``refine``). Among those within the bound that raise the objective, accept the one with the
   largest relative gain per point of accuracy spent (``gain / (extra drop + 0.1)``) that also meets the
   bound on the hold-out images, when there are any. A move that breaks the bound is rolled back and its
   step halved (dropped below ``min_step``). A move that raises the objective by less than ``min_gain``
   (folding noise, not a new design) is not retried until another move is accepted. With ``escalate``
   (off by default) it is first retried at once with doubled steps up to ``max_step``: the folding
   changes in jumps, so a layer may need a large step before it frees a DSP. Measured under the sampled
   model (40 TPE + 80 refinement trials): MobileNetV2-tiny 1.155x uniform instead of 1.13x, but a design
   that drops 1.26 points on the test images; ResNet-8 1.01x instead of 1.04x (the line searches spend
   the budget on a network whose every layer is near its limit).
4. When every move is stalled or dropped: if the bound is what blocks (some move broke it), *give back*:
   lower the least hardware-relevant parameter (bottom of the ranking) by a step, accepted if accuracy
   recovers and the objective stays within ``min_gain``; each parameter is given back at most once and
   never raised again (no cycling). Otherwise the stalled moves' steps are doubled (up to ``max_step``):
   a bigger step can cross the next folding change where a small one bought nothing. Stop when the
   budget is spent or no move is left.

Every evaluation is a study trial, so selection (re-evaluation, hold-out check) and resuming work as for
the TPE trials, and the refinement never returns a design beyond the bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna

from accelflow.data import ArraySplit
from accelflow.hass._evaluate import Evaluation, Evaluator, meets_holdout
from accelflow.hass._space import FLOOR, Objective, ThresholdSpace

if TYPE_CHECKING:
    from accelflow.hass._search import SearchSettings

__all__ = ["RefineSettings", "best_start", "rank_moves", "refine_study"]

log = logging.getLogger(__name__)

_ACCURACY_FLOOR = 0.1  # points: the price of a move that does not (measurably) cost accuracy


@dataclass(frozen=True)
class RefineSettings:
    """Steps are additive on the normalised variables (prune fraction, activation / mean activation)."""

    weight_step: float = 0.05
    activation_step: float = 0.05
    min_step: float = 0.0125
    max_step: float = 0.2
    min_gain: float = 0.003
    moves_per_round: int = 4
    escalate: bool = False  # retry a stalled move at once with doubled steps (a line search to the next folding change)


def rank_moves(space: ThresholdSpace, ev: Evaluation) -> list[str]:
    """Parameter names (``w:<conv>``, ``a:<relu>``) ordered by hardware pressure in ``ev``'s design:
    the bottleneck conv first, then convs by DSPs used; a ReLU ranks by the DSPs of the convs it feeds."""
    convs = {layer.name: layer for layer in ev.design.layers if layer.name in space.weight_magnitudes}
    if not convs:
        return []
    slowest = max(convs.values(), key=lambda layer: layer.cycles_per_image).name
    pressure: dict[str, float] = {}
    for name, layer in convs.items():
        dsp = float(layer.resources.dsp) + (1e9 if name == slowest else 0.0)
        pressure[f"w:{name}"] = dsp
        feed = space.feeds.get(name)
        if feed is not None:
            pressure[f"a:{feed}"] = pressure.get(f"a:{feed}", 0.0) + dsp
    return sorted(pressure, key=lambda k: (-pressure[k], k))


def _base_step(refine: RefineSettings, key: str) -> float:
    return refine.weight_step if key.startswith("w:") else refine.activation_step


def _upper(space: ThresholdSpace, key: str) -> float:
    return space.max_weight_fraction if key.startswith("w:") else space.max_activation_ratio


def refine_study(study: optuna.Study, evaluator: Evaluator, settings: SearchSettings, budget: int,
                 start: Mapping[str, float], refine: RefineSettings = RefineSettings(),
                 holdout: ArraySplit | None = None) -> int:
    """Run up to ``budget`` refinement trials in ``study`` from the normalised parameters ``start``;
    returns the number run. ``settings`` is the search's :class:`SearchSettings` (bound, objective).
    With ``holdout``, a move is only accepted if the design also meets the bound there: a greedy climb
    over hundreds of small steps otherwise drifts to points whose validation drop is merely lucky."""
    from accelflow.hass._search import run_trial  # circular: _search calls this module

    space = evaluator.space
    bound, objective = settings.max_accuracy_drop, settings.objective
    params = {k: max(float(start.get(k, FLOOR)), FLOOR) for k in space.distributions()}
    current = evaluator(space.thresholds(params))
    steps = {k: _base_step(refine, k) for k in params}
    stalled: set[str] = set()
    broke: dict[str, float] = {}  # smallest step of each move that broke the bound: never grow back to it
    tried_back: set[str] = set()  # parameters a give-back was tried on (once each)
    lowered: set[str] = set()  # parameters given back (never raised again: no cycling)
    base: list[float] = []  # hold-out reference accuracy, computed once
    used = 0

    def run(trial_params: dict[str, float]) -> Evaluation:
        nonlocal used
        study.enqueue_trial(trial_params, user_attrs={"source": "refine"})
        ev = run_trial(study, evaluator, settings)
        used += 1
        return ev

    def raise_by_step(key: str) -> tuple[dict[str, float], Evaluation, float]:
        """Evaluate ``key`` raised by its current step: (parameters, evaluation, relative objective gain)."""
        trial_params = dict(params)
        trial_params[key] = min(params[key] + steps[key], _upper(space, key))
        ev = run(trial_params)
        return trial_params, ev, ev.objective(objective) / max(current.objective(objective), 1e-12) - 1.0

    while used < budget:
        ranked = rank_moves(space, current)
        moves = [k for k in ranked if k not in stalled and k not in lowered and steps[k] >= refine.min_step
                 and params[k] < _upper(space, k) - 1e-12]
        if not moves:
            back = _give_back(ranked, params, current, tried_back, refine, run, budget - used, bound,
                              objective) if broke else None
            if back is not None:
                key, params, current = back
                lowered.add(key)
                stalled.clear()
                for k in broke:  # the freed accuracy may now admit the moves that broke the bound
                    steps[k] = max(steps[k], refine.min_step)
                broke.clear()
                continue
            grow = [k for k in stalled if steps[k] * 2 <= refine.max_step + 1e-12
                    and steps[k] * 2 < broke.get(k, float("inf")) - 1e-12]
            if not grow:
                break
            for k in grow:
                steps[k] *= 2
            stalled.clear()
            continue
        improving: list[tuple[float, str, dict[str, float], Evaluation]] = []
        for key in moves[:refine.moves_per_round]:
            if used >= budget:
                break
            trial_params, ev, gain = raise_by_step(key)
            while (refine.escalate and ev.feasible(bound) and gain < refine.min_gain and used < budget
                   and steps[key] * 2 <= refine.max_step + 1e-12 and trial_params[key] < _upper(space, key) - 1e-12):
                steps[key] *= 2  # the folding changes in jumps: look further along this move right away
                trial_params, ev, gain = raise_by_step(key)
            if not ev.feasible(bound):
                broke[key] = min(broke.get(key, float("inf")), steps[key])
                steps[key] /= 2  # roll back; retry later with a smaller step (or never)
                continue
            if gain < refine.min_gain:
                stalled.add(key)
                continue
            score = gain / (max(ev.accuracy_drop - current.accuracy_drop, 0.0) + _ACCURACY_FLOOR)
            improving.append((score, key, trial_params, ev))
        best = None
        for cand in sorted(improving, key=lambda c: -c[0]):
            if meets_holdout(evaluator, holdout, cand[3].thresholds, bound, base=base):
                best = cand
                break
            broke[cand[1]] = min(broke.get(cand[1], float("inf")), steps[cand[1]])  # fails the hold-out
            steps[cand[1]] /= 2
        if best is not None:
            _, key, params, current = best
            stalled.clear()
            log.info("refine: %s -> %.3f, objective %.1f, drop %.2f", key, params[key],
                     current.objective(objective), current.accuracy_drop)
    return used


def _give_back(ranked: list[str], params: dict[str, float], current: Evaluation, tried: set[str],
               refine: RefineSettings, run: Callable[[dict[str, float]], Evaluation], left: int, bound: float,
               objective: Objective) -> tuple[str, dict[str, float], Evaluation] | None:
    """When raising is blocked by the bound: lower the least hardware-relevant parameter by a step if that
    recovers accuracy at (almost) no throughput cost, freeing budget for the layers that matter. At most
    ``refine.moves_per_round`` tries; returns the accepted point."""
    tries = 0
    for key in reversed(ranked):
        if tries >= min(refine.moves_per_round, left) or key in tried:
            continue
        if params[key] <= FLOOR * (1 + 1e-9):
            continue
        tried.add(key)
        tries += 1
        trial_params = dict(params)
        trial_params[key] = max(params[key] - _base_step(refine, key), FLOOR)
        ev = run(trial_params)
        keeps = ev.objective(objective) >= current.objective(objective) * (1 - refine.min_gain)
        if ev.feasible(bound) and keeps and ev.accuracy_drop < current.accuracy_drop - 1e-9:
            log.info("refine: gave back %s -> %.3f, objective %.1f, drop %.2f", key, trial_params[key],
                     ev.objective(objective), ev.accuracy_drop)
            return key, trial_params, ev
    return None


def best_start(study: optuna.Study, evaluator: Evaluator, settings: SearchSettings,
               holdout: ArraySplit | None) -> dict[str, float] | None:
    """Normalised parameters of the best feasible trial that also meets the bound on ``holdout``."""
    from accelflow.hass._search import ranked_trials, trial_thresholds

    bound = settings.max_accuracy_drop
    ranked = ranked_trials(study, bound, settings.objective)
    base: list[float] = []
    for trial in ranked:
        thresholds = trial_thresholds(trial)
        if meets_holdout(evaluator, holdout, thresholds, bound, base=base):
            names = evaluator.space.distributions()
            return dict(trial.params) if set(names) <= set(trial.params) else evaluator.space.params(thresholds)
    return None
