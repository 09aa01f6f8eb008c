"""Simulated annealing and exact (branch-and-bound) folding search.

Annealing (seeded): from the minimal folding, each step moves one layer (the slowest with
probability 1/2, otherwise a random one) one legal step up or down in one factor, or re-splits its
parallelism, or (a sparse conv) switches between the zero-skipping and the dense vector dot; infeasible designs
are rejected; the objective is log(throughput) minus a small resource term (mean utilisation / 50,
ours) so that equally fast designs that use less are preferred, which frees room for later steps.
The temperature falls geometrically; the best design seen is quenched by the greedy's re-target rounds
(ours; ``quench=False`` skips it) and returned.

Exhaustive: the interval is the slowest layer's cycles, so the best interval is the smallest ``T``
for which every layer has a folding with ``cycles <= T`` and the chosen foldings fit together. We
binary-search ``T`` over all per-layer cycle values and decide each ``T`` by depth-first search over
the Pareto-minimal foldings of each layer, pruned with per-resource lower bounds: an exact optimum of
the interval over all legal foldings (the pipeline depth is not optimised; it changes throughput at
batch 256 by well under 1%). Feasible only for small networks; a node budget guards the search.
"""

from __future__ import annotations

import logging
import math
import random
from bisect import bisect_left

import numpy as np

from accelflow.dataflow._folding import Folding
from accelflow.dataflow._greedy import retarget_rounds
from accelflow.dataflow._network import NetworkCost, NetworkModel
from accelflow.errors import AccelflowError

__all__ = ["anneal", "exhaustive", "SearchBudgetError"]

log = logging.getLogger(__name__)


class SearchBudgetError(AccelflowError):
    """The exhaustive search exceeded its node budget: the network is too large for it."""


def _objective(model: NetworkModel, cost: NetworkCost) -> float:
    use = float(np.mean(cost.totals / np.maximum(model.caps, 1.0)))
    return math.log(cost.throughput) - use / 50.0


def _switch(model: NetworkModel, i: int, f: Folding,
            table: dict[tuple[int, bool], tuple[list[Folding], np.ndarray, np.ndarray]]) -> Folding | None:
    """Layer ``i`` in its other implementation (sparse <-> dense vector dot), at least as fast as ``f``
    (else as fast as that implementation gets) for the fewest resources relative to the caps: a move
    that keeps the throughput, so the annealer can trade one conv's lanes for another's without first
    walking through slower designs. ``table`` caches, per layer and build, the other build's foldings
    with their cycles and resource use (they do not depend on ``f`` beyond its build)."""
    key = (i, f.dense)
    if key not in table:
        others = model.layers[i].alternatives(f)
        costs = [model.layer_cost(i, g) for g in others]
        caps = np.maximum(model.caps, 1.0)
        table[key] = (others, np.array([c.cycles for c in costs]),
                      np.array([float(np.sum(np.add(c.modules, c.w_lutram) / caps)) for c in costs]))
    others, cycles, use = table[key]
    if not others:
        return None
    fast = np.flatnonzero(cycles <= model.layer_cost(i, f).cycles)
    if not fast.size:
        fast = np.array([int(np.argmin(cycles))])
    return others[int(fast[np.argmin(use[fast])])]


def anneal(
    model: NetworkModel,
    *,
    seed: int = 0,
    iterations: int | None = None,
    t_start: float = 0.05,
    t_end: float = 1e-4,
    start: list[Folding] | None = None,
    quench: bool = True,
) -> tuple[list[Folding], NetworkCost]:
    """Simulated annealing over the foldings; ``iterations`` defaults to 300 per layer, twice for a sparse
    conv (it has two implementations to explore), and at least 3,000. ``quench`` (ours) ends with up to
    3 of the greedy's re-target rounds from the best design found: on small sparse networks the chain
    can freeze with one conv sparse and another dense where the opposite is faster (the resources that
    would let either move are held by the other), at 80-90% of the optimum."""
    rng = random.Random(seed)
    n = len(model.layers)
    choices = n + sum(bool(layer.alternatives(layer.minimal())) for layer in model.layers)
    steps = iterations if iterations is not None else max(3000, 300 * choices)
    fold = list(start) if start is not None else [layer.minimal() for layer in model.layers]
    cost = model.cost(fold)
    cur = _objective(model, cost) if cost.feasible else -math.inf
    best_fold, best_cost = fold.copy(), cost
    alike: dict[int, list[Folding]] = {}
    switches: dict[tuple[int, bool], tuple[list[Folding], np.ndarray, np.ndarray]] = {}
    for k in range(steps):
        temp = t_start * (t_end / t_start) ** (k / max(steps - 1, 1))
        i = int(np.argmax(cost.cycles)) if rng.random() < 0.5 else rng.randrange(n)
        r = rng.random()
        if r < 0.25:  # re-split the same parallelism (e.g. coarse_in <-> coarse_out)
            lanes = fold[i].lanes
            if i not in alike:
                alike[i] = model.layers[i].all_foldings()
            moves = [f for f in alike[i] if lanes / 2 <= f.lanes <= lanes * 2 and f != fold[i]]
        elif r < 0.35 and (switch := _switch(model, i, fold[i], switches)) is not None:
            moves = [switch]  # the other implementation of a sparse conv at the same speed
        else:
            moves = model.layers[i].neighbours(fold[i], up=rng.random() < 0.6)
        if not moves:
            continue
        trial = fold.copy()
        trial[i] = rng.choice(moves)
        new = model.cost(trial)
        if not new.feasible:
            continue
        value = _objective(model, new)
        if value >= cur or rng.random() < math.exp((value - cur) / temp):
            fold, cost, cur = trial, new, value
            if cost.feasible and (not best_cost.feasible or cost.throughput > best_cost.throughput):
                best_fold, best_cost = fold.copy(), cost
    if quench and best_cost.feasible:
        best_fold, best_cost = retarget_rounds(model, best_fold, best_cost)
    return best_fold, best_cost


def _pareto(points: np.ndarray) -> np.ndarray:
    """Indices of the rows not dominated (<= everywhere, < somewhere) by another row."""
    order = np.lexsort(points.T[::-1])
    keep: list[int] = []
    for idx in order:
        p = points[idx]
        if not any(np.all(points[k] <= p) for k in keep):
            keep.append(int(idx))
    return np.array(keep, dtype=np.int64)


def exhaustive(model: NetworkModel, node_budget: int = 2_000_000) -> tuple[list[Folding], NetworkCost]:
    """Exact minimum-interval folding (see module doc); raises SearchBudgetError when too large."""
    options = [layer.all_foldings() for layer in model.layers]
    cycles = [np.array([model.layer_cost(i, f).cycles for f in opts]) for i, opts in enumerate(options)]

    def vec(i: int, f: Folding) -> np.ndarray:
        c = model.layer_cost(i, f)
        v = np.array(c.modules, dtype=np.float64)
        v[1:3] += np.array(c.w_lutram[1:3], dtype=np.float64)  # LUTRAM weights never move; BRAM weights may go to URAM/off-chip
        return v

    res = [np.array([vec(i, f) for f in opts]) for i, opts in enumerate(options)]
    caps = model.caps.copy()
    caps[4] = np.inf  # URAM is only used for weights that overflow BRAM
    nodes = 0

    def search(target: float) -> list[Folding] | None:
        nonlocal nodes
        fronts = []
        for i in range(len(options)):
            ok = np.flatnonzero(cycles[i] <= target * (1 + 1e-12))
            if ok.size == 0:
                return None
            front = ok[_pareto(res[i][ok])]
            fronts.append(front[np.argsort(res[i][front].sum(axis=1) / 1.0)])
        lows = np.array([res[i][fr].min(axis=0) for i, fr in enumerate(fronts)])
        suffix = np.vstack([np.cumsum(lows[::-1], axis=0)[::-1], np.zeros((1, 5))])
        chosen: list[int] = []

        def dfs(i: int, used: np.ndarray) -> list[Folding] | None:
            nonlocal nodes
            nodes += 1
            if nodes > node_budget:
                raise SearchBudgetError(
                    f"exhaustive folding search exceeded {node_budget} nodes; use greedy or anneal, or a larger "
                    "node budget (optimise_folding(node_budget=), CLI --node-budget)"
                )
            if i == len(fronts):
                fold = [options[k][chosen[k]] for k in range(len(chosen))]
                cost = model.cost(fold)
                return fold if cost.feasible and cost.interval <= target * (1 + 1e-12) else None
            for k in fronts[i]:
                nxt = used + res[i][k]
                if np.any(nxt + suffix[i + 1] > caps):
                    continue
                chosen.append(int(k))
                found = dfs(i + 1, nxt)
                chosen.pop()
                if found is not None:
                    return found
            return None

        return dfs(0, np.zeros(5))

    targets = np.unique(np.concatenate(cycles))
    lo = bisect_left(targets.tolist(), max(float(c.min()) for c in cycles))
    hi = len(targets) - 1
    best = search(float(targets[hi]))
    if best is None:
        fold = [layer.minimal() for layer in model.layers]
        return fold, model.cost(fold)
    while lo < hi:  # feasibility is monotone in the target interval
        mid = (lo + hi) // 2
        found = search(float(targets[mid]))
        if found is None:
            lo = mid + 1
        else:
            best, hi = found, mid
    log.debug("exhaustive search: %d nodes", nodes)
    return best, model.cost(best)
