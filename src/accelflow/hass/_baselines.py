"""Baselines HASS is compared with: dense, one uniform (global) threshold pair, and the slowest-layer
heuristic. All return a :class:`HassResult` whose design meets the accuracy bound.

* **dense**: no thresholds and no sparse hardware (histograms ignored), folding optimised on the device.
* **uniform**: one absolute weight threshold and one activation threshold for every layer, the pair
  within the bound on a 2-D grid with the most zero products (MAC-weighted over the network): the
  non-hardware-aware sparse design, chosen without looking at the hardware, then folded by the same
  optimiser. ``select="objective"`` instead picks the pair whose *folded design* is best (a hardware-aware
  choice of two thresholds, reported as a stronger extra baseline). Grid points at least as aggressive
  in both thresholds as a point that broke the bound are skipped (accuracy falls as either threshold
  rises), which makes a fine grid affordable.
* **slowest layer**: start from plain ReLU sparsity; repeatedly raise the weight fraction and the input
  activation threshold of the current bottleneck layer by one step, keeping the step only if the accuracy
  stays within the bound (a rejected step is rolled back and that layer is frozen): no one-step overshoot.

With a ``holdout`` split the baselines are selected as the search is (:func:`accelflow.hass.run_search`):
the returned design must also meet the bound on those images, so the comparison stays fair.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from accelflow.data import ArraySplit
from accelflow.hass._evaluate import Evaluation, Evaluator, meets_holdout, within_bound
from accelflow.hass._result import HassResult, TrialRecord, make_result
from accelflow.hass._space import Objective, Thresholds

__all__ = ["dense_baseline", "uniform_baseline", "slowest_layer_baseline", "uniform_grid", "scan_uniform_grid"]

log = logging.getLogger(__name__)


def _record(i: int, source: str, ev: Evaluation, objective: Objective, bound: float) -> TrialRecord:
    return TrialRecord(i, source, ev.accuracy, ev.accuracy_drop, ev.throughput, ev.dsp, ev.objective(objective),
                       ev.feasible(bound), ev.zero_products)


def _result(method: str, ev: Evaluation, evaluator: Evaluator, objective: Objective, bound: float,
            records: Sequence[TrialRecord] = ()) -> HassResult:
    dense = evaluator.dense_design()
    return make_result(method, ev, dense.throughput_images_per_s, int(dense.resources.dsp), evaluator.space,
                       objective, bound, evaluator.base_accuracy, tuple(records), lockstep=evaluator.lockstep.value)


def dense_baseline(evaluator: Evaluator, objective: Objective = Objective.THROUGHPUT) -> HassResult:
    """The dense design: thresholds 0, no sparse layers (accuracy drop 0 by construction)."""
    design = evaluator.dense_design()
    ev = Evaluation(Thresholds(), evaluator.base_accuracy, 0.0, design, {}, 0.0)
    return make_result("dense", ev, design.throughput_images_per_s, int(design.resources.dsp), evaluator.space,
                       objective, 0.0, evaluator.base_accuracy, (_record(0, "dense", ev, objective, 0.0),),
                       lockstep=evaluator.lockstep.value)


def uniform_grid(evaluator: Evaluator, weight_fractions: Sequence[float] = (0.0, 0.2, 0.4, 0.55, 0.7, 0.8),
                 activation_ratios: Sequence[float] = (0.0, 0.1, 0.2, 0.35, 0.5)) -> list[tuple[float, float]]:
    """Absolute (weight, activation) threshold pairs: global quantiles of all conv ``|w|`` pooled, and
    multiples of the mean positive activation pooled over the ReLUs feeding convs."""
    space = evaluator.space
    pooled = np.sort(np.concatenate([space.weight_magnitudes[c] for c in space.convs]))
    w_values = [0.0 if f <= 0 else float(pooled[min(int(f * len(pooled)), len(pooled) - 1)]) for f in weight_fractions]
    act_scale = float(np.mean(list(space.activation_scale.values()))) if space.activation_scale else 0.0
    return [(w, r * act_scale) for w in w_values for r in activation_ratios]


def uniform_baseline(evaluator: Evaluator, max_accuracy_drop: float, objective: Objective = Objective.THROUGHPUT,
                     grid: Sequence[tuple[float, float]] | None = None, holdout: ArraySplit | None = None,
                     skip_dominated: bool = True, local: bool = False,
                     select: Literal["sparsity", "objective"] = "sparsity") -> HassResult:
    """Best single global (weight, activation) threshold pair within the bound on ``grid`` (and on
    ``holdout``): most zero products (``select="sparsity"``, hardware-blind; result method ``uniform``) or
    best ``objective`` of the folded design (``select="objective"``; method ``uniform_hw``).
    ``skip_dominated`` skips pairs >= a pair that broke the bound in both thresholds; ``local`` then also
    tries the midpoints between the best pair and its grid neighbours (a finer grid where it matters, so
    the baseline is not held back by the grid spacing)."""
    if select not in ("sparsity", "objective"):
        raise ValueError(f"select must be 'sparsity' or 'objective', got {select!r}")
    grid = list(uniform_grid(evaluator) if grid is None else grid)
    feasible: list[Evaluation] = []
    failed: list[tuple[float, float]] = []
    records: list[TrialRecord] = []
    _scan(evaluator, grid, 0, max_accuracy_drop, objective, skip_dominated, feasible, failed, records)
    base: list[float] = []

    def rank(e: Evaluation) -> tuple[float, float]:
        return (e.zero_products, e.accuracy) if select == "sparsity" else (e.objective(objective), e.accuracy)

    def pick() -> Evaluation | None:
        return next((ev for ev in sorted(feasible, key=rank, reverse=True)
                     if meets_holdout(evaluator, holdout, ev.thresholds, max_accuracy_drop, base=base)), None)

    best = pick()
    if local and best is not None:
        conv, act = evaluator.space.convs[0], evaluator.space.activations
        w0 = best.thresholds.weight.get(conv, 0.0)
        a0 = best.thresholds.activation.get(act[0], 0.0) if act else 0.0
        near = _midpoints(sorted({w for w, _ in grid}), w0), _midpoints(sorted({a for _, a in grid}), a0)
        extra = [(w, a) for w in near[0] for a in near[1] if (w, a) != (w0, a0)]
        _scan(evaluator, extra, len(grid), max_accuracy_drop, objective, skip_dominated, feasible, failed, records)
        best = pick()
    if best is None:  # the (0, 0) point is normally on the grid; fall back to it
        best = evaluator(Thresholds())
    method = "uniform" if select == "sparsity" else "uniform_hw"
    log.info("%s baseline: %d of %d grid points evaluated", method, len(records), len(grid))
    return _result(method, best, evaluator, objective, max_accuracy_drop, records)


def _midpoints(values: Sequence[float], x: float) -> list[float]:
    """``x`` and the midpoints to its neighbours in the sorted ``values``."""
    i = min(range(len(values)), key=lambda k: abs(values[k] - x))
    out = [x]
    if i > 0:
        out.append((values[i - 1] + x) / 2)
    if i + 1 < len(values):
        out.append((values[i + 1] + x) / 2)
    return out


def scan_uniform_grid(evaluator: Evaluator, grid: Sequence[tuple[float, float]], bound: float,
                      skip_dominated: bool = True) -> list[Evaluation]:
    """The evaluations of ``grid``'s uniform (weight, activation) pairs that fit the device and stay within
    ``bound`` points, in grid order; with ``skip_dominated``, pairs at least as aggressive in both
    thresholds as one that broke the bound are not evaluated (e.g. the candidates of a looser bound, to
    fine-tune back)."""
    feasible: list[Evaluation] = []
    _scan(evaluator, grid, 0, bound, Objective.THROUGHPUT, skip_dominated, feasible, [], [])
    return feasible


def _scan(evaluator: Evaluator, grid: Sequence[tuple[float, float]], offset: int, bound: float,
          objective: Objective, skip_dominated: bool, feasible: list[Evaluation],
          failed: list[tuple[float, float]], records: list[TrialRecord]) -> None:
    for i, (w, a) in enumerate(grid, start=offset):
        if skip_dominated and any(w >= fw and a >= fa for fw, fa in failed):
            continue
        ev = evaluator(evaluator.space.uniform(w, a))
        records.append(_record(i, "uniform", ev, objective, bound))
        if ev.feasible(bound):
            feasible.append(ev)
        elif not within_bound(ev.accuracy_drop, bound):
            failed.append((w, a))


def slowest_layer_baseline(evaluator: Evaluator, max_accuracy_drop: float,
                           objective: Objective = Objective.THROUGHPUT, weight_step: float = 0.1,
                           activation_step: float = 0.1, max_steps: int = 30,
                           holdout: ArraySplit | None = None) -> HassResult:
    """Greedy heuristic: raise the thresholds of the bottleneck conv while accuracy holds (see module doc);
    with ``holdout``, a step must also meet the bound there to be kept (as in the search's refinement)."""
    space = evaluator.space
    params = space.params(Thresholds())
    current = evaluator(space.thresholds(params))
    base: list[float] = []
    records = [_record(0, "slowest_layer", current, objective, max_accuracy_drop)]
    frozen: set[str] = set()
    for step in range(1, max_steps + 1):
        convs = [layer for layer in current.design.layers if layer.name in space.weight_magnitudes
                 and layer.name not in frozen]
        if not convs:
            break
        target = max(convs, key=lambda layer: layer.cycles_per_image).name
        trial = dict(params)
        trial[f"w:{target}"] = min(trial[f"w:{target}"] + weight_step, space.max_weight_fraction)
        feed = space.feeds.get(target)
        if feed is not None:
            trial[f"a:{feed}"] = min(trial[f"a:{feed}"] + activation_step, space.max_activation_ratio)
        if trial == params:
            frozen.add(target)
            continue
        ev = evaluator(space.thresholds(trial))
        records.append(_record(step, "slowest_layer", ev, objective, max_accuracy_drop))
        if ev.feasible(max_accuracy_drop) and meets_holdout(evaluator, holdout, ev.thresholds, max_accuracy_drop,
                                                            base=base):
            params, current = trial, ev
        else:  # roll back the step that broke the bound and stop touching this layer
            frozen.add(target)
    log.info("slowest-layer heuristic: %d evaluations, %d layers frozen", len(records), len(frozen))
    result = _result("slowest_layer", current, evaluator, objective, max_accuracy_drop, records)
    return replace(result, extra={"frozen_layers": sorted(frozen)})
