"""Non-dominated points of a set of objective vectors (all minimised)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["pareto_front"]


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (<= in every coordinate, < in one), all minimised;
    duplicates of a front point are all kept. Sorted by the first coordinate.

    >>> pareto_front([(1, 5), (2, 2), (3, 3), (5, 1), (2, 2)])
    [0, 1, 4, 3]
    """
    idx = sorted(range(len(points)), key=lambda i: tuple(points[i]))
    front: list[int] = []
    for i in idx:
        p = points[i]
        dominated = any(all(a <= b for a, b in zip(points[j], p, strict=True)) and tuple(points[j]) != tuple(p)
                        for j in idx)
        if not dominated:
            front.append(i)
    return front
