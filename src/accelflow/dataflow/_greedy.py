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
5. *Re-target* (ours): for a target interval T below the current one, every layer takes its cheapest
   folding with cycles <= T among those within 4x of its current lanes, priced by its use of each
   resource weighted by how scarce that resource is in the current design; while the combined choice
   overflows a resource, that resource's price rises by 30% and the layers choose again. A binary search
   finds the smallest T that fits. If that improves the design, the coarse phase resumes from it (at
   most a few rounds).
"""

from __future__ import annotations

import logging

import numpy as np

from accelflow.dataflow._folding import Folding
from accelflow.dataflow._network import NetworkCost, NetworkModel

__all__ = ["greedy", "retarget_rounds"]

log = logging.getLogger(__name__)

SPARSE_FIRST_GAIN = 1.2
SPARSE_GAIN = 1.01
_EPS = 1e-9
_REPAIR_ROUNDS = 40
_REPAIR_FACTOR = 1.3


def _with_fine(f: Folding, fine: int) -> Folding:
    return Folding(f.coarse_in, f.coarse_out, f.coarse_group, fine, f.dense)


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


def _retarget(model: NetworkModel, fold: list[Folding], cost: NetworkCost) -> tuple[list[Folding], NetworkCost] | None:
    caps = np.maximum(model.caps, 1.0)
    util = np.maximum(cost.totals / caps, 0.02)
    table = []
    for i, layer in enumerate(model.layers):
        lanes = fold[i].lanes
        cands = [f for f in layer.all_foldings() if lanes / 4 <= f.lanes <= lanes * 4]
        costs = [model.layer_cost(i, f) for f in cands]
        cyc = np.array([c.cycles for c in costs])
        use = np.array([np.add(c.modules, c.w_lutram) + np.array([0, 0, 0, c.w_bram, 0]) for c in costs]) / caps
        table.append((cands, cyc, use))
    targets = np.unique(np.concatenate([t[1] for t in table]))
    targets = targets[(targets < cost.compute_interval * (1 - 1e-9)) & (targets >= max(t[1].min() for t in table))]
    def choose(target: float) -> tuple[list[Folding], NetworkCost] | None:
        # Lagrangian-style repair: price layers by resource use, double the price of every resource
        # the combined choice overflows, and choose again
        weights = util.copy()
        for _ in range(_REPAIR_ROUNDS):
            trial = []
            for cands, cyc, use in table:
                ok = np.flatnonzero(cyc <= target)
                trial.append(cands[int(ok[np.argmin(use[ok] @ weights)])])
            new = model.cost(trial)
            if new.feasible:
                return trial, new
            over = new.totals > model.caps
            if not over.any():
                return None
            fixed = _swap_repair(model, table, trial, new, target)
            if fixed is not None:
                return fixed
            weights[over] *= _REPAIR_FACTOR
        return None

    best: tuple[list[Folding], NetworkCost] | None = None
    lo, hi = 0, len(targets) - 1
    while lo <= hi:  # smallest target for which a fitting choice is found
        mid = (lo + hi) // 2
        found = choose(float(targets[mid]))
        if found is not None and found[1].throughput > cost.throughput * (1 + 1e-9):
            if best is None or found[1].throughput > best[1].throughput:
                best = found
            hi = mid - 1
        else:
            lo = mid + 1
    return best


def _swap_repair(
    model: NetworkModel, table: list, trial: list[Folding], cost: NetworkCost, target: float
) -> tuple[list[Folding], NetworkCost] | None:
    """Swap one layer at a time to the candidate that most reduces the total overflow (cycles <= target)."""
    caps = np.maximum(model.caps, 1.0)
    trial = list(trial)
    for _ in range(2 * len(trial)):
        excess = np.maximum(cost.totals / caps - model.caps / caps, 0.0).sum()
        best: tuple[float, int, Folding] | None = None
        for i, (cands, cyc, use) in enumerate(table):
            cur = use[cands.index(trial[i])] if trial[i] in cands else None
            if cur is None:
                continue
            ok = np.flatnonzero(cyc <= target)
            after = cost.totals / caps + (use[ok] - cur)  # approximate: ignores squeeze/placement changes
            left = np.maximum(after - model.caps / caps, 0.0).sum(axis=1)
            k = int(np.argmin(left))
            if left[k] < excess - 1e-12 and (best is None or left[k] < best[0]):
                best = (float(left[k]), i, cands[int(ok[k])])
        if best is None:
            return None
        trial[best[1]] = best[2]
        cost = model.cost(trial)
        if cost.feasible:
            return trial, cost
    return None


def greedy(
    model: NetworkModel, max_steps: int = 100_000, rounds: int = 3, refine: bool = True
) -> tuple[list[Folding], NetworkCost]:
    """Greedy folding of ``model``; returns the foldings and their cost.

    ``refine`` runs up to ``rounds`` re-target rounds (step 5). On ImageNet-size networks they cost
    seconds (up to ~30 s under the sampled lock-step model) and gain up to a third: sparse ResNet-18 on
    U250 2,037 -> 2,718 img/s, sparse MobileNetV2 on ZCU102 1,943 -> 2,586 (docs/dataflow.md);
    ``refine=False`` is the fast path.
    """
    if not refine:
        rounds = 0
    fold = [layer.minimal() for layer in model.layers]
    cost = model.cost(fold)
    if not cost.feasible:
        log.warning("even the minimal folding does not fit the device")
        return fold, cost
    cost = _fine_phase(model, fold, cost)
    fold, cost = _coarse_phase(model, fold, cost, max_steps)
    fold, cost = retarget_rounds(model, fold, cost, rounds, max_steps)
    return _trim(model, fold, cost)


def retarget_rounds(model: NetworkModel, fold: list[Folding], cost: NetworkCost, rounds: int = 3,
                    max_steps: int = 100_000) -> tuple[list[Folding], NetworkCost]:
    """Up to ``rounds`` re-target rounds (step 5), each followed by the coarse phase; stops when a round
    finds nothing faster that fits."""
    for _ in range(rounds):
        better = _retarget(model, fold, cost)
        if better is None:
            break
        fold, cost = _coarse_phase(model, *better, max_steps)
    return fold, cost


def _trim(model: NetworkModel, fold: list[Folding], cost: NetworkCost) -> tuple[list[Folding], NetworkCost]:
    """Fold every layer back down as far as it stays within the final interval (ours, not fpgaConvNet's).

    Raising the slowest layer overshoots: a layer folded up while it was the bottleneck may end well
    below the interval set later by another layer. Trimming keeps the throughput and frees resources;
    it is what lets a sparse layer (fewer cycles per window) use fewer DSPs at the same throughput.
    """
    trimmed = list(fold)
    _reclaim(model, trimmed, skip=-1, target=float(np.max(cost.cycles)))
    new = model.cost(trimmed)
    if new.feasible and new.throughput >= cost.throughput * (1 - 1e-9):
        return trimmed, new
    return fold, cost


def _coarse_phase(model: NetworkModel, fold: list[Folding], cost: NetworkCost, max_steps: int) -> tuple[list[Folding], NetworkCost]:
    fold = list(fold)
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
