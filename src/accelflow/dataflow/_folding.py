"""The folding of one layer: how many parallel streams and MAC lanes it is built with."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Folding", "divisors"]


@dataclass(frozen=True, order=True)
class Folding:
    """fpgaConvNet folding factors of one layer.

    ``coarse_in`` input streams (divides C/groups), ``coarse_out`` output streams (divides F/groups),
    ``coarse_group`` groups processed in parallel (divides groups), ``fine`` MAC lanes per vector dot
    (a divisor of K*K for a dense convolution, any of 1..K*K for a sparse one). Element-wise and pooling
    layers use ``coarse_in == coarse_out`` streams and ``fine == coarse_group == 1``.

    ``dense`` (ours) builds a conv that carries sparsity with the dense vector dot instead of the
    zero-skipping one: legal only for such a conv, with a dense conv's ``fine``. The optimisers choose it
    per layer where the sparse lanes' extra LUTs cost more than the skipped products save (on devices with
    few LUTs per DSP a fixed "sparse if >= 10% zeros" rule can make the whole design slower than dense).
    """

    coarse_in: int = 1
    coarse_out: int = 1
    coarse_group: int = 1
    fine: int = 1
    dense: bool = False

    @property
    def plain(self) -> Folding:
        """The same factors without the ``dense`` choice."""
        return Folding(self.coarse_in, self.coarse_out, self.coarse_group, self.fine)

    def as_dense(self) -> Folding:
        return Folding(self.coarse_in, self.coarse_out, self.coarse_group, self.fine, True)

    @property
    def lanes(self) -> int:
        """Multipliers working in parallel: fine x coarse_in x coarse_out x coarse_group."""
        return self.fine * self.coarse_in * self.coarse_out * self.coarse_group

    def as_dict(self) -> dict[str, int]:
        return {
            "coarse_in": self.coarse_in,
            "coarse_out": self.coarse_out,
            "coarse_group": self.coarse_group,
            "fine": self.fine,
        }


def divisors(n: int) -> tuple[int, ...]:
    """All positive divisors of ``n`` in increasing order."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return tuple(sorted(set(small + [n // d for d in small])))
