"""Search with accuracy slack, then win it back by fine-tuning: :func:`recover`.

Post-training thresholds leave a small network little room within a 1-point bound (every layer of the
ResNet-8 trained here is near its limit, docs/hass.md). Short fine-tuning with the pruning masks and the
thresholded activations in place (:class:`~accelflow.hass.FineTune`) can bring a sparser design that
drops more back within the bound. :func:`recover` takes the designs a search (or a baseline) found
within a looser bound, ordered best first, and fine-tunes some of them to find one that meets the final
bound: it bisects the list on the assumption that the faster a design on an accuracy/objective Pareto
front, the harder it is to recover, so ``max_tries`` fine-tunings cover ``2**max_tries`` candidates.
Of the tuned designs that pass it returns the one with the best *tuned* score: fine-tuning changes the
weights and how the thresholded activations fall, so the measured zeros and the folded design move (on
ResNet-8 a candidate two places down the front came out 7% faster than the one above it). The same
procedure applied to HASS and to the uniform baseline keeps the comparison fair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from torch import nn

from accelflow.data import ArraySplit
from accelflow.hass._errors import HassError
from accelflow.hass._evaluate import Evaluation, Evaluator, holdout_drop, within_bound
from accelflow.hass._space import Thresholds

__all__ = ["Recovered", "pareto_order", "recover"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def pareto_order(points: Sequence[tuple[T, float, float]]) -> list[T]:
    """Items of ``(item, accuracy, score)`` on the front of higher accuracy and higher score, highest
    score first (so accuracy rises along the list). Ties keep the first item."""
    front: list[T] = []
    best_accuracy = float("-inf")
    for item, acc, _score in sorted(points, key=lambda p: (-p[2], -p[1])):
        if acc > best_accuracy:
            front.append(item)
            best_accuracy = acc
    return front


@dataclass(frozen=True, eq=False)
class Recovered:
    """What :func:`recover` tried, as ``(rank, val drop, hold-out drop, score)`` after fine-tuning, and the
    chosen design if one met the bound (``found``): its evaluation on the tuned model, the tuned model,
    its rank in the candidate list and its hold-out drop (points)."""

    tried: tuple[tuple[int, float, float, float], ...]
    evaluation: Evaluation | None = None
    model: nn.Module | None = None
    rank: int | None = None
    holdout_drop: float | None = None

    @property
    def found(self) -> bool:
        return self.evaluation is not None


def recover(evaluator: Evaluator, candidates: Sequence[Thresholds], finetune: Callable[[nn.Module, Thresholds], nn.Module],
            max_accuracy_drop: float, holdout: ArraySplit | None = None, max_tries: int = 4,
            score: Callable[[Evaluation], float] | None = None) -> Recovered:
    """Fine-tune ``candidates`` (best first, e.g. :func:`pareto_order` of a search's trials within a looser
    bound), at most ``max_tries`` of them chosen by bisection, and return the tried one with the highest
    tuned ``score`` (default: throughput) whose tuned model meets ``max_accuracy_drop`` on the evaluator's
    validation subset and on ``holdout`` (``found`` is False when no tried candidate does). The reference accuracy
    stays the untuned model's. The evaluation of the tuned model (re-measured sparsity, re-folded design)
    is what is returned."""
    if max_tries < 1:
        raise HassError(f"recover: max_tries must be at least 1, got {max_tries}")
    score = score or (lambda ev: ev.throughput)
    base: list[float] = []  # the untuned model's hold-out accuracy, measured once
    tried: list[tuple[int, float, float, float]] = []
    best: tuple[int, Evaluation, nn.Module, float] | None = None
    lo, hi = 0, len(candidates)  # untried ranks between the last failure (lo - 1) and the last pass (hi)
    while lo < hi and len(tried) < max_tries:
        mid = (lo + hi) // 2
        model = finetune(evaluator.model, candidates[mid])
        ev = evaluator(candidates[mid], model=model)
        held = holdout_drop(evaluator, holdout, candidates[mid], model=model, base=base)
        tried.append((mid, ev.accuracy_drop, held, score(ev)))
        ok = ev.feasible(max_accuracy_drop) and within_bound(held, max_accuracy_drop)
        log.info("recover: candidate %d of %d after fine-tuning drops %.2f (hold-out %.2f): %s", mid, len(candidates),
                 ev.accuracy_drop, held, "meets the bound" if ok else "rejected")
        if ok:
            if best is None or score(ev) > score(best[1]):
                best = (mid, ev, model, held)
            hi = mid
        else:
            lo = mid + 1
    if best is None:
        return Recovered(tuple(tried))
    rank, ev, model, held = best
    return Recovered(tuple(tried), ev, model, rank, held)
