"""Measure the HASS zero-product histogram of every convolution of a PyTorch model.

For conv layer ``l``, input channel ``c`` and every (calibration image, output position, filter) triple, the
window of ``K*K`` activations is multiplied tap by tap with the filter's ``K*K`` weights of channel ``c``;
``z`` counts the zero products (zero activation, pruned weight, or padding). ``hist[c, z]`` is the
fraction of triples with ``z`` zeros.

Two exact counting routes, both vectorised:

* **pattern route** (``K*K <= 9``): a window's zero pattern is a ``K*K``-bit code. Per channel we count how
  many windows carry each activation code (``n[c, p]``) and how many filters carry each weight-nonzero code
  (``m[c, q]``); the number of nonzero products of a pair is ``popcount(p & q)``, so
  ``hist[c, z] = sum_{p,q} n[c,p] m[c,q] [K*K - popcount(p&q) == z]``, evaluated without the double sum by
  superset sums and inclusion-exclusion (see :func:`_pattern_counts`), in exact integers. Cost is
  ``O(C 2^(K*K) K*K)`` per layer plus one pass over the windows, independent of the number of filters.
* **matmul route** (any ``K``): nonzeros(window, filter) = act_nz(window) . w_nz(filter) over the taps, a
  batched matrix product per channel, then a bincount.

Grouped and depthwise convolutions pair channel ``c`` only with the filters of its group.

With ``window_positions=N`` :func:`measure_sparsity` also keeps a uniform random sample of ``N`` output
positions (over all calibration images) with the nonzero bitmask of every input channel's window there,
plus the weights' nonzero bitmasks: a :class:`~accelflow.dataflow.WindowSample`, the statistic of the
lock-step model ``LockStep.SAMPLED`` (the histogram cannot show how channels of one position correlate,
nor how filters differ).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accelflow.dataflow._lockstep import WindowSample, pack_taps
from accelflow.ir import ChannelSparsity
from accelflow.sparsity._errors import SparsityError
from accelflow.zoo.layers import PadConv2d, pad_unequal

__all__ = [
    "ConvSparsity",
    "conv_layers",
    "mask_weights",
    "measure_sparsity",
    "zero_product_counts",
    "window_bitmasks",
    "brute_force_counts",
    "PATTERN_MAX_TAPS",
]

log = logging.getLogger(__name__)

#: Largest ``K*K`` for which the pattern route is used (a 512 x 512 popcount table).
PATTERN_MAX_TAPS = 9

_Conv = nn.Conv1d | nn.Conv2d


@dataclass(frozen=True, eq=False)
class ConvSparsity:
    """Zero-product counts of one conv layer: ``counts[c, z]`` (int64) over ``windows`` x filters triples.

    ``hist`` normalises each row; ``record()`` gives the IR annotation. ``windows``: the sampled window
    zero patterns when measured with ``window_positions > 0``.
    """

    name: str
    counts: np.ndarray
    kernel_taps: int
    windows: WindowSample | None = None

    @property
    def hist(self) -> np.ndarray:
        totals = self.counts.sum(axis=1, keepdims=True)
        return self.counts / np.maximum(totals, 1)

    @property
    def mean_sparsity(self) -> float:
        """Fraction of zero products over all channels, windows and filters."""
        z = np.arange(self.kernel_taps + 1)
        return float((self.counts @ z).sum() / max(int(self.counts.sum()) * self.kernel_taps, 1))

    def record(self) -> ChannelSparsity:
        return ChannelSparsity(self.hist, source="measured")

    def __add__(self, other: ConvSparsity) -> ConvSparsity:
        if other.name != self.name or other.counts.shape != self.counts.shape:
            raise SparsityError(f"cannot add sparsity of {self.name!r} and {other.name!r}")
        windows = self.windows + other.windows if self.windows is not None and other.windows is not None else None
        return ConvSparsity(self.name, self.counts + other.counts, self.kernel_taps, windows)


def conv_layers(model: nn.Module) -> dict[str, _Conv]:
    """Every ``nn.Conv1d``/``nn.Conv2d`` of ``model`` by qualified module name, in registration order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, _Conv)}


def mask_weights(model: nn.Module, thresholds: Mapping[str, float]) -> nn.Module:
    """Deep copy of ``model`` with ``|w| < t`` set to 0 in each named conv/linear weight (magnitude pruning).

    Raises:
        SparsityError: a key is not a conv or linear module of ``model``.
    """
    import copy

    modules = dict(model.named_modules())
    unknown = sorted(k for k in thresholds if not isinstance(modules.get(k), _Conv | nn.Linear))
    if unknown:
        raise SparsityError(f"weight thresholds for {unknown}: not conv/linear modules of the model")
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        for name, t in thresholds.items():
            w = pruned.get_submodule(name).weight
            w.mul_((w.abs() >= float(t)).to(w.dtype))
    return pruned


def _as_2d(x: torch.Tensor, w: torch.Tensor, conv: _Conv) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[int, int]]]:
    """Lift a 1-D conv to 2-D with a unit height so one code path serves both; a :class:`PadConv2d`'s
    unequal pads are applied to ``x`` here (zeros, so they count as zero products like symmetric padding)."""
    if isinstance(conv, PadConv2d):
        geo = {"stride": conv.stride, "padding": (0, 0), "dilation": conv.dilation}
        return pad_unequal(x, conv.pads), w, geo  # type: ignore[return-value]
    if isinstance(conv, nn.Conv2d):
        geo = {"stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation}
        return x, w, geo  # type: ignore[return-value]
    geo = {"stride": (1, conv.stride[0]), "padding": (0, conv.padding[0]), "dilation": (1, conv.dilation[0])}  # type: ignore[misc]
    return x.unsqueeze(2), w.unsqueeze(2), geo


def _act_nonzero_windows(x: torch.Tensor, w: torch.Tensor, conv: _Conv) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, KK, L) bool nonzero mask of the activation windows and (F, Cg, KK) bool weight mask."""
    x2, w2, geo = _as_2d(x, w, conv)
    kh, kw = w2.shape[-2:]
    cols = F.unfold((x2 != 0).to(torch.float32), (kh, kw), dilation=geo["dilation"], padding=geo["padding"],
                    stride=geo["stride"])
    b, c = x2.shape[:2]
    act = cols.view(b, c, kh * kw, -1) > 0.5
    return act, (w2 != 0).reshape(w2.shape[0], w2.shape[1], kh * kw)


def _activation_codes(x: torch.Tensor, conv: _Conv, kh: int, kw: int) -> torch.Tensor:
    """(B, C, L) int64 code of each window's nonzero pattern (bit ``i*kw+j`` = tap (i, j) is nonzero).

    A depthwise convolution of the nonzero mask with weights ``2**tap`` computes the codes without
    materialising the unfolded windows (exact in float32: codes < 2**9).
    """
    x2, _, geo = _as_2d(x, conv.weight, conv)
    c = x2.shape[1]
    bits = (2.0 ** torch.arange(kh * kw, dtype=torch.float32)).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    codes = F.conv2d((x2 != 0).to(torch.float32), bits.contiguous(), stride=geo["stride"], padding=geo["padding"],
                     dilation=geo["dilation"], groups=c)
    return torch.round(codes).to(torch.int64).flatten(2)


def _superset_sums(v: torch.Tensor, kk: int) -> torch.Tensor:
    """``out[c, S] = sum over codes T containing S of v[c, T]`` (zeta transform over supersets)."""
    x = v.clone()
    c = x.shape[0]
    for k in range(kk):
        view = x.view(c, -1, 2, 1 << k)  # bit k of the code is the size-2 axis
        view[:, :, 0, :] += view[:, :, 1, :]
    return x


def _pattern_counts(codes: torch.Tensor, wnz: torch.Tensor, groups: int) -> np.ndarray:
    """Exact counts from code histograms by inclusion-exclusion (all integer arithmetic).

    With ``N(S)``/``M(S)`` the number of windows/filters whose nonzero code contains tap set ``S``,
    ``N(S) M(S)`` counts (window, filter) pairs whose common nonzero taps contain ``S``; summing over
    ``|S| = k`` gives ``F_k = sum_j C(j, k) H_j`` with ``H_j`` the pairs with ``j`` nonzero products, which
    the inverse binomial transform ``H_j = sum_k (-1)^(k-j) C(k, j) F_k`` recovers.
    """
    c = codes.shape[1]
    f, cg, kk = wnz.shape
    fg = f // groups
    ncodes = 1 << kk
    flat = (codes + torch.arange(c).view(1, c, 1) * ncodes).reshape(-1)
    n = torch.bincount(flat, minlength=c * ncodes).view(c, ncodes)
    bits = 1 << torch.arange(kk, dtype=torch.int64)
    wcodes = (wnz.to(torch.int64) * bits).sum(dim=2)  # (F, Cg)
    # filter f of group g meets input channel g*Cg + j with its slice j
    per_channel = wcodes.view(groups, fg, cg).permute(0, 2, 1).reshape(c, fg)
    flat_w = (per_channel + torch.arange(c).view(c, 1) * ncodes).reshape(-1)
    m = torch.bincount(flat_w, minlength=c * ncodes).view(c, ncodes)
    both = _superset_sums(n, kk) * _superset_sums(m, kk)  # (C, P) pairs whose common taps contain S
    size = _popcount(kk)
    f_k = torch.zeros(c, kk + 1, dtype=torch.int64).index_add_(1, size, both).numpy()
    nonzero_hist = f_k @ _inverse_binomial(kk)  # (C, KK+1): [c, j] pairs with j nonzero products
    return np.ascontiguousarray(nonzero_hist[:, ::-1])  # z = KK - j


def _popcount(kk: int) -> torch.Tensor:
    codes = torch.arange(1 << kk, dtype=torch.int64)
    return sum(((codes >> k) & 1 for k in range(kk)), torch.zeros_like(codes))


def _inverse_binomial(kk: int) -> np.ndarray:
    """``B[k, j] = (-1)^(k-j) C(k, j)`` for ``k >= j`` (int64)."""
    from math import comb

    return np.array([[(-1) ** (k - j) * comb(k, j) if k >= j else 0 for j in range(kk + 1)]
                     for k in range(kk + 1)], dtype=np.int64)


def _matmul_counts(act: torch.Tensor, wnz: torch.Tensor, groups: int, chunk: int = 1 << 22) -> np.ndarray:
    b, c, kk, length = act.shape
    f, cg = wnz.shape[:2]
    fg = f // groups
    counts = np.zeros((c, kk + 1), dtype=np.int64)
    a = act.permute(1, 0, 3, 2).reshape(c, b * length, kk).to(torch.float32)  # (C, windows, KK)
    w = wnz.view(groups, fg, cg, kk).permute(0, 2, 3, 1).reshape(c, kk, fg).to(torch.float32)  # (C, KK, Fg)
    rows = max(1, chunk // max(fg, 1))
    for start in range(0, b * length, rows):
        nz = torch.bmm(a[:, start:start + rows], w).to(torch.int64)  # (C, rows, Fg) nonzero products
        flat = (kk - nz) + torch.arange(c).view(c, 1, 1) * (kk + 1)
        counts += torch.bincount(flat.reshape(-1), minlength=c * (kk + 1)).view(c, kk + 1).numpy()
    return counts


def zero_product_counts(x: torch.Tensor, weight: torch.Tensor, conv: _Conv) -> np.ndarray:
    """``counts[c, z]`` for one batch ``x`` (conv input) and (masked) ``weight``, exact, int64."""
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise SparsityError(f"conv with padding {conv.padding!r}/{conv.padding_mode!r}: only numeric zero padding")
    with torch.no_grad():
        _, w2, _ = _as_2d(x[:1], weight, conv)
        kh, kw = w2.shape[-2:]
        if kh * kw <= PATTERN_MAX_TAPS:
            wnz = (w2 != 0).reshape(w2.shape[0], w2.shape[1], kh * kw)
            return _pattern_counts(_activation_codes(x, conv, kh, kw), wnz, conv.groups)
        act, wnz = _act_nonzero_windows(x, weight, conv)
        return _matmul_counts(act, wnz, conv.groups)


def window_bitmasks(x: torch.Tensor, conv: _Conv) -> np.ndarray:
    """``(B * L, C, ceil(K*K/8))`` uint8: nonzero bitmask of every channel's window at every output position
    (images major, positions row-major; bit ``t`` = tap ``t``; padding taps are zero).

    One depthwise convolution of the nonzero mask per byte, with weight ``2**(t - 8b)`` on the taps of byte
    ``b``: exact in float32 and never materialises the unfolded windows.
    """
    x2, _, geo = _as_2d(x, conv.weight, conv)
    kh, kw = (conv.kernel_size[0], conv.kernel_size[1]) if isinstance(conv, nn.Conv2d) else (1, conv.kernel_size[0])
    kk, c = kh * kw, x2.shape[1]
    nbytes = -(-kk // 8)
    taps = torch.arange(kk)
    bits = torch.zeros(nbytes, kk)
    bits[taps // 8, taps] = 2.0 ** (taps % 8).to(torch.float32)
    weight = bits.view(1, nbytes, kh, kw).expand(c, nbytes, kh, kw).reshape(c * nbytes, 1, kh, kw)
    with torch.no_grad():
        out = F.conv2d((x2 != 0).to(torch.float32), weight.contiguous(), stride=geo["stride"],
                       padding=geo["padding"], dilation=geo["dilation"], groups=c)  # fmt: skip
    b = out.shape[0]
    codes = torch.round(out).to(torch.uint8).view(b, c, nbytes, -1).permute(0, 3, 1, 2)
    return codes.reshape(-1, c, nbytes).numpy()


class _Reservoir:
    """Uniform sample without replacement of ``size`` rows from a stream of batches (random priorities)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.rows: np.ndarray | None = None
        self.keys = np.empty(0)
        self.seen = 0

    def add(self, rows: np.ndarray) -> None:
        keys = self.rng.random(len(rows))
        self.seen += len(rows)
        if self.rows is not None:
            rows, keys = np.concatenate([self.rows, rows]), np.concatenate([self.keys, keys])
        if len(rows) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
            rows, keys = rows[keep], keys[keep]
        self.rows, self.keys = rows, keys


def brute_force_counts(x: np.ndarray, weight: np.ndarray, conv: _Conv) -> np.ndarray:
    """Reference loop over images, positions, filters and channels (tests only: slow, obviously right)."""
    xt, wt, geo = _as_2d(torch.as_tensor(x), torch.as_tensor(weight), conv)
    xp = F.pad(xt, (geo["padding"][1], geo["padding"][1], geo["padding"][0], geo["padding"][0])).numpy()
    w = wt.numpy()
    f_all, cg, kh, kw = w.shape
    fg = f_all // conv.groups
    b, c, hp, wp = xp.shape
    sh, sw = geo["stride"]
    dh, dw = geo["dilation"]
    ho = (hp - dh * (kh - 1) - 1) // sh + 1
    wo = (wp - dw * (kw - 1) - 1) // sw + 1
    counts = np.zeros((c, kh * kw + 1), dtype=np.int64)
    for n in range(b):
        for ch in range(c):
            g, j = divmod(ch, cg)
            for oy in range(ho):
                for ox in range(wo):
                    win = xp[n, ch, oy * sh:oy * sh + dh * (kh - 1) + 1:dh, ox * sw:ox * sw + dw * (kw - 1) + 1:dw]
                    for f in range(g * fg, (g + 1) * fg):
                        z = int(np.sum((win * w[f, j]) == 0))
                        counts[ch, z] += 1
    return counts


def measure_sparsity(
    model: nn.Module,
    batches: Iterable[torch.Tensor | np.ndarray],
    layers: Iterable[str] | None = None,
    window_positions: int = 0,
    seed: int = 0,
) -> dict[str, ConvSparsity]:
    """Run ``model`` (eval, no grad) over ``batches`` and histogram zero products at every conv input.

    ``model`` should already carry the thresholds being studied (see :func:`mask_weights` and
    :func:`accelflow.zoo.replace_activations`); the weights used are the modules' own. ``layers`` restricts
    the measurement to some conv names. Returns counts keyed by conv module name (the IR node name).
    ``window_positions > 0`` also samples that many output positions per layer (uniformly over all
    images, seeded by ``seed``) into ``ConvSparsity.windows`` for ``LockStep.SAMPLED``; every position is
    kept when there are fewer.
    """
    if window_positions < 0:
        raise SparsityError(f"window_positions must be >= 0, got {window_positions}")
    convs = conv_layers(model)
    wanted = list(convs) if layers is None else list(layers)
    missing = [n for n in wanted if n not in convs]
    if missing:
        raise SparsityError(f"{missing} are not conv modules; convs of the model: {list(convs)}")
    totals: dict[str, np.ndarray] = {}
    samples = {n: _Reservoir(window_positions, seed + i) for i, n in enumerate(wanted)} if window_positions else {}

    def hook(name: str, conv: _Conv):  # noqa: ANN202 - torch hook signature
        def run(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            c = zero_product_counts(inputs[0], conv.weight.detach(), conv)
            totals[name] = totals[name] + c if name in totals else c
            if name in samples:
                samples[name].add(window_bitmasks(inputs[0], conv))
        return run

    handles = [convs[n].register_forward_pre_hook(hook(n, convs[n])) for n in wanted]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                xb = torch.as_tensor(np.asarray(batch, dtype=np.float32)) if not isinstance(batch, torch.Tensor) else batch
                model(xb)
                seen += len(xb)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if seen == 0:
        raise SparsityError("measure_sparsity: no calibration data")
    out = {}
    for n in wanted:
        if n not in totals:
            continue
        taps = int(np.prod(convs[n].kernel_size))
        windows = None
        if n in samples and samples[n].rows is not None:
            w = convs[n].weight.detach()
            wmask = pack_taps((w != 0).reshape(w.shape[0], w.shape[1], taps).numpy())
            windows = WindowSample(samples[n].rows, wmask, taps, convs[n].groups, samples[n].seen)
        out[n] = ConvSparsity(n, totals[n], taps, windows)
    return out
