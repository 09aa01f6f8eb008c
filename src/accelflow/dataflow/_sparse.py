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

import numpy as np

__all__ = ["ceil_table", "expected_window_cycles", "snake_streams", "max_stream_cycles", "speedup_over_dense"]


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


def speedup_over_dense(hist: np.ndarray, fine: int) -> float:
    """Dense cycles per window (ceil(K*K/N)) over expected sparse cycles, averaged over channels."""
    e = expected_window_cycles(hist)[:, fine - 1]
    kk = np.asarray(hist).shape[1] - 1
    return float(-(-kk // fine) / e.mean())
