"""fpgaConvNet-style greedy folding optimiser (REFERENCE section 3).

1. Start from the minimal folding (all factors 1).
2. *Fine phase*: visiting layers from slowest to fastest, raise ``fine`` step by step while the layer
   gets faster by more than the required gain (dense: any gain; sparse: 1.2x in a first sweep, then
   1.01x, because extra lanes pay off less the sparser the windows) and the design fits.
3. *Coarse phase*: repeatedly take the slowest layer and raise the coarse factor (coarse_in,
   coarse_out or coarse_group, one legal step) that buys the most speed-up per unit of the scarcest
   resource it consumes, while the design fits.
4. *Rebalance* when no step fits: try the slowest layer's other foldings of at most twice its current
   lanes (a different coarse_in/coarse_out split relieves the scarcest resource), and fold the other
   layers down as far as they stay faster than the target, returning resources; stop when that fails.
"""

from __future__ import annotations

import logging

import numpy as np

from accelflow.dataflow._folding import Folding
from accelflow.dataflow._network import NetworkCost, NetworkModel

__all__ = ["greedy"]

log = logging.getLogger(__name__)

SPARSE_FIRST_GAIN = 1.2
SPARSE_GAIN = 1.01
_EPS = 1e-9


def _with_fine(f: Folding, fine: int) -> Folding:
    return Folding(f.coarse_in, f.coarse_out, f.coarse_group, fine)


def _fine_phase(model: NetworkModel, fold: list[Folding], cost: NetworkCost) -> NetworkCost:
    for sparse_gain in (SPARSE_FIRST_GAIN, SPARSE_GAIN):
        for i in np.argsort(-cost.cycles, kind="stable"):
            layer = model.layers[i]
            fines = layer.options()[3]
            need = sparse_gain if layer.sparse else 1.0 + _EPS
            while True:
                k = fines.index(fold[i].fine)
                if k + 1 >= len(fines):
                    break
                cand = _with_fine(fold[i], fines[k + 1])
                old_c = model.layer_cost(i, fold[i]).cycles
                if old_c / model.layer_cost(i, cand).cycles <= need:
                    break
                trial = fold.copy()
                trial[i] = cand
                new = model.cost(trial)
                if not new.feasible:
                    break
                fold[i], cost = cand, new
    return cost


def _resource_step(model: NetworkModel, old: NetworkCost, new: NetworkCost) -> float:
    """The largest increase of any resource, as a fraction of its cap."""
    caps = np.maximum(model.caps, 1.0)
    return float(np.max((new.totals - old.totals) / caps))


def _best_step(model: NetworkModel, fold: list[Folding], cost: NetworkCost, i: int, cands: list[Folding]) -> tuple[Folding, NetworkCost] | None:
    old_c = cost.cycles[i]
    best: tuple[float, Folding, NetworkCost] | None = None
    for cand in cands:
        new_c = model.layer_cost(i, cand).cycles
        if new_c >= old_c * (1 - _EPS):
            continue
        trial = fold.copy()
        trial[i] = cand
        new = model.cost(trial)
        if not new.feasible or new.throughput < cost.throughput * (1 - _EPS):
            continue
        score = (old_c / new_c - 1.0) / (max(_resource_step(model, cost, new), 0.0) + 1e-4)
        if best is None or score > best[0]:
            best = (score, cand, new)
    return None if best is None else (best[1], best[2])


def _coarse_candidates(model: NetworkModel, i: int, f: Folding) -> list[Folding]:
    return [c for c in model.layers[i].neighbours(f, up=True) if c.fine == f.fine]


def _reclaim(model: NetworkModel, fold: list[Folding], skip: int, target: float) -> None:
    """Fold every other layer down while it stays at or below ``target`` cycles (frees resources)."""
    for j in range(len(fold)):
        if j == skip:
            continue
        improved = True
        while improved:
            improved = False
            cur = model.layer_cost(j, fold[j])
            for cand in model.layers[j].neighbours(fold[j], up=False):
                c = model.layer_cost(j, cand)
                cheaper = sum(c.modules) + c.w_bram * 100 < sum(cur.modules) + cur.w_bram * 100
                if c.cycles <= target and cheaper:
                    fold[j] = cand
                    improved = True
                    break


def _rebalance(model: NetworkModel, fold: list[Folding], cost: NetworkCost, i: int) -> tuple[list[Folding], NetworkCost] | None:
    f = fold[i]
    layer = model.layers[i]
    wider = [c for c in layer.all_foldings() if c != f and c.lanes <= 2 * f.lanes]
    step = _best_step(model, fold, cost, i, wider)
    if step is not None:
        fold = fold.copy()
        fold[i] = step[0]
        return fold, step[1]
    # fold the other layers down to the best cycles the slowest layer could reach, then retry
    cands = [c for c in wider if model.layer_cost(i, c).cycles < cost.cycles[i]]
    if not cands:
        return None
    target = max(min(model.layer_cost(i, c).cycles for c in cands), float(np.partition(cost.cycles, -2)[-2]) if len(fold) > 1 else 0.0)
    trial = fold.copy()
    _reclaim(model, trial, i, target)
    if trial == fold:
        return None
    reclaimed = model.cost(trial)
    step = _best_step(model, trial, reclaimed, i, cands)
    if step is None:
        return None
    trial[i] = step[0]
    return trial, step[1]


def greedy(model: NetworkModel, max_steps: int = 100_000) -> tuple[list[Folding], NetworkCost]:
    """Greedy folding of ``model``; returns the foldings and their cost."""
    fold = [layer.minimal() for layer in model.layers]
    cost = model.cost(fold)
    if not cost.feasible:
        log.warning("even the minimal folding does not fit the device")
        return fold, cost
    cost = _fine_phase(model, fold, cost)
    best_fold, best_cost = fold.copy(), cost
    stall, patience = 0, 2 * len(fold) + 10  # steps without a throughput gain before giving up
    for _ in range(max_steps):
        i = int(np.argmax(cost.cycles))
        step = _best_step(model, fold, cost, i, _coarse_candidates(model, i, fold[i]))
        if step is not None:
            fold[i], cost = step
        else:
            balanced = _rebalance(model, fold, cost, i)
            if balanced is None:
                break
            fold, cost = balanced
        if cost.throughput > best_cost.throughput * (1 + 1e-9):
            best_fold, best_cost, stall = fold.copy(), cost, 0
        else:
            stall += 1
            if stall > patience:
                break
    return best_fold, best_cost
