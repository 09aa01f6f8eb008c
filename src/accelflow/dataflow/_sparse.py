"""Expected cycles of a sparse vector-dot (HASS model, REFERENCE section 3).

A window of one input channel holds K*K activation x weight products; with ``N = fine`` MAC lanes a
window with ``z`` zero products takes ``ceil((K*K - z) / N)`` cycles and an all-zero window is skipped
(0 cycles). For channel ``c`` with histogram ``p_c(z)`` the expected cycles per window are

    E_c(N) = sum_z p_c(z) * ceil((K*K - z) / N).

Channels are sorted by ``E_c`` and dealt to the parallel streams in snake order (0,1,..,S-1,S-1,..,0,..)
so every stream gets a mix of busy and idle channels; the streams run in lock-step, so the layer takes as
long as its slowest stream. For a 1x1 kernel ``E_c = 1 - sparsity_c``, i.e. cycles scale with
``1 - mean sparsity of the stream group``, which is the 1x1 rule of the reference.

Worked example (tested): 3x3 kernel, zeros uniform over 0..9 -> dense/sparse speed-up 2.0x at N=1,
1.67x at N=3, 1.11x at N=9.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = [
    "LockStep",
    "ceil_table",
    "expected_window_cycles",
    "window_cycle_variance",
    "snake_streams",
    "max_stream_cycles",
    "expected_max_stream_cycles",
    "speedup_over_dense",
]


class LockStep(enum.StrEnum):
    """How lock-stepped streams are costed.

    ``MEAN`` (REFERENCE): the slowest stream's *expected* cycles. ``EXPECTED_MAX`` (ours): streams wait
    for each other at every output position, so the cost per position is the expected *maximum* over
    the coarse_in streams of their work, each stream's work approximated as normal: its mean from the
    windows' expected cycles, its variance with channels independent but the filters of one channel
    fully correlated (they share the activation window). Coarse_out units are taken as identical (they
    see the same windows); the per-channel histogram cannot show per-filter imbalance. This brackets the
    truth from above where MEAN brackets it from below (see docs/dataflow.md). ``SAMPLED`` (ours): the
    mean over sampled calibration positions of the exact lock-step maximum over (stream, unit) pairs, from
    the activation/weight zero bitmasks of a :class:`~accelflow.dataflow.WindowSample` annotation (see
    :mod:`accelflow.dataflow._lockstep`); it sees both the correlation of channels at one position and
    the per-filter imbalance across coarse_out units.
    """

    MEAN = "mean"
    EXPECTED_MAX = "expected_max"
    SAMPLED = "sampled"


def ceil_table(kernel_size: int) -> np.ndarray:
    """``T[z, n-1] = ceil((K*K - z) / n)`` for z = 0..K*K, n = 1..K*K (row z = K*K is all zero)."""
    kk = kernel_size
    z = np.arange(kk + 1)[:, None]
    n = np.arange(1, kk + 1)[None, :]
    return -(-(kk - z) // n)


def expected_window_cycles(hist: np.ndarray) -> np.ndarray:
    """``E[c, n-1]``: expected cycles per window of channel ``c`` with ``n`` lanes, shape (C, K*K)."""
    h = np.asarray(hist, dtype=np.float64)
    return h @ ceil_table(h.shape[1] - 1)


def snake_streams(per_channel: np.ndarray, streams: int) -> np.ndarray:
    """Stream index of every channel when channels sorted by cost (descending) are dealt in snake order."""
    c = per_channel.shape[0]
    order = np.argsort(-per_channel, kind="stable")
    rank = np.arange(c)
    block, pos = np.divmod(rank, streams)
    stream_of_rank = np.where(block % 2 == 0, pos, streams - 1 - pos)
    out = np.empty(c, dtype=np.int64)
    out[order] = stream_of_rank
    return out


def max_stream_cycles(per_channel: np.ndarray, streams: int) -> float:
    """Largest sum of per-channel cycles over the streams, after snake dealing."""
    if streams <= 1:
        return float(per_channel.sum())
    sums = np.bincount(snake_streams(per_channel, streams), weights=per_channel, minlength=streams)
    return float(sums.max())


def window_cycle_variance(hist: np.ndarray) -> np.ndarray:
    """``V[c, n-1]``: variance of the cycles of one window of channel ``c`` with ``n`` lanes."""
    h = np.asarray(hist, dtype=np.float64)
    t = ceil_table(h.shape[1] - 1).astype(np.float64)
    mean = h @ t
    return np.maximum(h @ (t * t) - mean * mean, 0.0)


def expected_max_stream_cycles(mean: np.ndarray, var: np.ndarray, streams: int, windows: float) -> float:
    """Expected maximum over the streams of ``windows`` windows' cycles per stream (normal approximation).

    ``mean``/``var`` are per-channel cycles per window; a stream's work per position is the sum over its
    channels of ``windows`` (filters per coarse_out unit) windows each, taken as fully correlated.
    """
    if streams <= 1:
        return float(mean.sum() * windows)
    from scipy.special import ndtr

    s = snake_streams(mean, streams)
    mu = np.bincount(s, weights=mean, minlength=streams) * windows
    sd = np.sqrt(np.bincount(s, weights=var, minlength=streams)) * windows  # filters share the window
    if float(sd.max()) <= 0.0:
        return float(mu.max())
    top = float((mu + 8.0 * sd).max())
    grid = np.linspace(0.0, top, 2049)
    cdf = np.ones_like(grid)
    for m, d in zip(mu, sd, strict=True):
        cdf *= ndtr((grid - m) / d) if d > 0 else (grid >= m)
    return float(np.trapezoid(1.0 - cdf, grid))


def speedup_over_dense(hist: np.ndarray, fine: int) -> float:
    """Dense cycles per window (ceil(K*K/N)) over expected sparse cycles, averaged over channels."""
    e = expected_window_cycles(hist)[:, fine - 1]
    kk = np.asarray(hist).shape[1] - 1
    return float(-(-kk // fine) / e.mean())
