"""Lock-step sparse cycles from sampled window zero patterns (ours; ``LockStep.SAMPLED``).

The REFERENCE model costs a layer with the per-channel histogram ``p_c(z)``: the slowest stream's
*expected* cycles. The hardware's streams run in lock-step: at every output position each
(coarse_in stream, coarse_out unit) pair works through its channels x filters windows and the position
ends when the slowest pair is done. So a position costs

    max_{s, o}  sum_{c in stream s}  sum_{f in unit o}  ceil(nz(p, c, f) / fine),

and a layer costs ``H_out * W_out`` times the *expected* value of that maximum. The maximum of sums is
not the sum of means: the windows of the channels at one position are correlated (an image region is
mostly zero or mostly not) and filters differ in their zero weights, so coarse_out units are unevenly
loaded. Neither shows in ``p_c(z)``.

:class:`WindowSample` keeps what is needed to evaluate that maximum exactly on calibration data: for a
random sample of output positions the nonzero-activation bitmask of every input channel's window, and
the nonzero-weight bitmask of every (filter, channel). ``nz(p, c, f) = popcount(act[p, c] & weight[f, c])``.
:class:`SampledLockStep` evaluates the mean over the sampled positions for any (fine, streams, coarse_out)
and the stream dealing the hardware uses, vectorised (a popcount lookup table, then reductions); when the
sample holds every position of some images, the result is exactly the lock-step cycles of those images.

Bitmasks are packed little-endian into ``ceil(K*K / 8)`` bytes (bit ``t`` = tap ``t``, row-major; a
3x3 window is a uint16); zero padding is a zero activation.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelflow.errors import ConfigError
from accelflow.ir import ConvAttrs, Graph, OpKind

__all__ = [
    "WindowSample",
    "SampledLockStep",
    "pack_taps",
    "window_sample_path",
    "save_window_samples",
    "load_window_samples",
    "apply_window_samples",
]

#: Popcount of every byte.
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
#: Fewest sampled positions a layer keeps when ``P x C x F/groups`` exceeds ``max_elements``.
MIN_POSITIONS = 128
#: Working-set bound (elements) of one chunk of the position loop.
_CHUNK_ELEMS = 1 << 22


def pack_taps(mask: np.ndarray) -> np.ndarray:
    """Pack a boolean ``(..., K*K)`` tap mask into ``(..., ceil(K*K/8))`` uint8 bitmasks (bit t = tap t)."""
    return np.packbits(np.asarray(mask, dtype=bool), axis=-1, bitorder="little")


@dataclass(frozen=True, eq=False)
class WindowSample:
    """Sampled window zero patterns of one conv layer (IR annotation; the ``LockStep.SAMPLED`` statistic).

    ``act[p, c]``: nonzero-activation bitmask of input channel ``c``'s window at sampled output position
    ``p`` (shape ``(P, C, B)`` uint8, ``B = ceil(K*K/8)``); all channels of one position are kept together
    because their correlation is what the model needs. ``weight[f, j]``: nonzero-weight bitmask of filter
    ``f`` on channel ``j`` of its group (shape ``(F, C/groups, B)``). ``positions_total``: how many output
    positions (images x H_out x W_out) the sample was drawn from.
    """

    act: np.ndarray
    weight: np.ndarray
    kernel_taps: int
    groups: int = 1
    positions_total: int = 0
    source: str = field(default="measured", compare=False)
    _model: SampledLockStep | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        act = np.ascontiguousarray(self.act, dtype=np.uint8)
        weight = np.ascontiguousarray(self.weight, dtype=np.uint8)
        nbytes = -(-self.kernel_taps // 8)
        if act.ndim != 3 or weight.ndim != 3 or act.shape[2] != nbytes or weight.shape[2] != nbytes:
            raise ValueError(
                f"window sample needs act (P, C, {nbytes}) and weight (F, C/groups, {nbytes}) uint8 bitmasks for "
                f"{self.kernel_taps} taps, got {act.shape} and {weight.shape}"
            )
        if self.groups < 1 or act.shape[1] != weight.shape[1] * self.groups or weight.shape[0] % self.groups:
            raise ValueError(
                f"window sample: {act.shape[1]} channels, weight {weight.shape[:2]} and groups={self.groups} do not fit"
            )
        if act.shape[0] == 0:
            raise ValueError("window sample has no positions")
        object.__setattr__(self, "act", act)
        object.__setattr__(self, "weight", weight)

    @property
    def positions(self) -> int:
        return int(self.act.shape[0])

    def lockstep_model(self) -> SampledLockStep:
        """The :class:`SampledLockStep` of this sample, built on first use and shared by every layer model
        built from it (its counts and cached unit work survive rebuilding the network model)."""
        if self._model is None:
            object.__setattr__(self, "_model", SampledLockStep(self))
        assert self._model is not None
        return self._model

    @property
    def channels(self) -> int:
        return int(self.act.shape[1])

    @property
    def filters(self) -> int:
        return int(self.weight.shape[0])

    def channel_filter_codes(self) -> np.ndarray:
        """``(C, F/groups, B)``: the weight bitmask each input channel meets, per filter of its group."""
        g, fg, cg = self.groups, self.filters // self.groups, self.weight.shape[1]
        return self.weight.reshape(g, fg, cg, -1).transpose(0, 2, 1, 3).reshape(g * cg, fg, -1)

    def nonzero_products(self) -> np.ndarray:
        """``nz[p, c, j]``: non-zero products of channel ``c``'s window at position ``p`` with filter ``j`` of
        its group (uint8; memory ``P x C x F/groups``: for tests and small layers)."""
        w = self.channel_filter_codes()
        return _POP8[self.act[:, :, None, :] & w[None]].sum(axis=-1, dtype=np.uint8)

    def zero_product_fraction(self) -> float:
        """Fraction of zero products over the sampled windows and all filters."""
        nz = self.nonzero_products().astype(np.float64)
        return float(1.0 - nz.mean() / self.kernel_taps)

    def __add__(self, other: WindowSample) -> WindowSample:
        """Both samples' positions (same layer, same weights), e.g. from two calibration batches."""
        if other.kernel_taps != self.kernel_taps or other.groups != self.groups or not np.array_equal(
            other.weight, self.weight
        ):
            raise ValueError("cannot add window samples of different layers or weights")
        return WindowSample(np.concatenate([self.act, other.act]), self.weight, self.kernel_taps, self.groups,
                            self.positions_total + other.positions_total, self.source)  # fmt: skip


class _UnitCache:
    """Least-recently-used store of unit-work arrays shared by all layers, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(self, key: tuple[int, int, int]) -> np.ndarray | None:
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
        return hit

    def put(self, key: tuple[int, int, int], value: np.ndarray) -> None:
        self.entries[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, old = self.entries.popitem(last=False)
            self.bytes -= old.nbytes

    def drop(self, owner: int) -> None:
        """Forget the arrays of a model that no longer exists."""
        for key in [k for k in self.entries if k[0] == owner]:
            self.bytes -= self.entries.pop(key).nbytes


#: Unit work of every live :class:`SampledLockStep`, at most 1 GB in all.
UNIT_CACHE = _UnitCache(1 << 30)


class SampledLockStep:
    """Expected lock-step cycles per output position from a :class:`WindowSample`, for any folding.

    ``cycles(fine, stream_of_channel, coarse_out)`` is the mean over sampled positions of
    ``max_{s,o} sum_{c in s} sum_{j in o} ceil(nz(p, c, j) / fine)``, with filter ``j`` of a group in unit
    ``j mod coarse_out`` (round-robin, as the hardware's fork deals them) and channels in the streams given.

    Cost: the non-zero products ``nz[c, j, p]`` of the sample are counted once (``P x C x F/groups`` bytes,
    byte-wise popcount lookup table). Per (fine, coarse_out) the unit work ``U[c, o, p]`` is one lookup
    and reduction of ``nz`` (or the sum of two halves of ``U`` at ``2 coarse_out``, so one lookup serves
    every coarse_out of a fine), kept in :data:`UNIT_CACHE` (least recently used, 1 GB over all layers).
    Per folding: one add per channel into its stream (``P x C x coarse_out``). A layer whose
    ``P x C x F/groups`` exceeds ``max_elements`` uses an evenly spaced subset of the sampled positions
    (at least ``MIN_POSITIONS``), which bounds memory and time on the wide layers of ImageNet networks.
    """

    def __init__(self, sample: WindowSample, max_elements: int = 1 << 24) -> None:
        self.sample = sample
        w = sample.channel_filter_codes()  # (C, Fg, B)
        self._fg = w.shape[1]
        per_position = sample.channels * self._fg
        keep = min(sample.positions, max(MIN_POSITIONS, max_elements // max(per_position, 1)))
        act = sample.act
        if keep < sample.positions:
            act = act[np.linspace(0, sample.positions - 1, keep).round().astype(np.int64)]
        self.positions = int(act.shape[0])
        # layout (C, Fg, P): every reduction below adds contiguous blocks of positions
        act_t = np.ascontiguousarray(act.transpose(1, 2, 0))  # (C, B, P)
        nz = np.empty((sample.channels, self._fg, self.positions), dtype=np.uint8)
        rows = max(1, _CHUNK_ELEMS // max(self._fg * w.shape[2] * self.positions, 1))
        for start in range(0, sample.channels, rows):
            both = w[start:start + rows, :, :, None] & act_t[start:start + rows, None, :, :]  # (r, Fg, B, P)
            nz[start:start + rows] = _POP8[both].sum(axis=2, dtype=np.uint8)
        self._nz = nz
        weakref.finalize(self, UNIT_CACHE.drop, id(self))

    def _dtype(self, coarse_out: int) -> type[np.integer]:
        top = self._fg // coarse_out * self.sample.kernel_taps  # most cycles of one unit on one window
        return np.uint8 if top < (1 << 8) else np.uint16 if top < (1 << 16) else np.int32

    def unit_work(self, fine: int, coarse_out: int) -> np.ndarray:
        """``U[c, o, p]``: cycles of unit ``o`` on the window of channel ``c`` at sampled position ``p``."""
        key = (fine, coarse_out)
        hit = UNIT_CACHE.get((id(self), *key))
        if hit is not None:
            return hit
        halve = self._fg % (2 * coarse_out) == 0 and 8 * self._nz.nbytes <= UNIT_CACHE.max_bytes
        if halve:  # unit o of co = units o and o + co of 2 co; the chain up to co = Fg stays cached
            finer = self.unit_work(fine, 2 * coarse_out)
            unit = np.add(finer[:, :coarse_out], finer[:, coarse_out:], dtype=self._dtype(coarse_out))
        else:
            ceil = (-(-np.arange(self.sample.kernel_taps + 1) // fine)).astype(np.uint8)
            unit = np.empty((self._nz.shape[0], coarse_out, self.positions), dtype=self._dtype(coarse_out))
            rows = max(1, _CHUNK_ELEMS // max(self._fg * self.positions, 1))
            for start in range(0, self._nz.shape[0], rows):  # chunks of channels bound the temporaries
                per_filter = ceil[self._nz[start:start + rows]]  # (r, Fg, P)
                shape = (per_filter.shape[0], self._fg // coarse_out, coarse_out, self.positions)
                unit[start:start + rows] = per_filter.reshape(shape).sum(axis=1, dtype=unit.dtype)
        UNIT_CACHE.put((id(self), *key), unit)
        return unit

    def cycles(self, fine: int, stream_of_channel: np.ndarray, coarse_out: int) -> float:
        """Mean over sampled positions of the slowest (stream, unit) pair's cycles."""
        if self._fg % coarse_out:
            raise ValueError(f"coarse_out {coarse_out} does not divide {self._fg} filters per group")
        s = np.asarray(stream_of_channel, dtype=np.int64)
        u = self.unit_work(fine, coarse_out)
        per_pair = np.zeros((int(s.max()) + 1, *u.shape[1:]), dtype=np.int32)  # (streams, co, P)
        for c, stream in enumerate(s.tolist()):  # one vectorised add per channel beats np.add.reduceat
            per_pair[stream] += u[c]
        return float(per_pair.max(axis=(0, 1)).sum(dtype=np.int64)) / self.positions


# -- persistence ------------------------------------------------------------------------------------
def window_sample_path(onnx_path: str | Path) -> Path:
    """Where the window samples of ``net.onnx`` live: ``net.windows.npz`` beside it."""
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}.windows.npz")


def save_window_samples(path: str | Path, samples: dict[str, WindowSample]) -> Path:
    """Write ``{layer name: WindowSample}`` to an ``.npz`` (arrays ``<name>:act``, ``<name>:weight``,
    ``<name>:meta`` = [kernel_taps, groups, positions_total]); no pickles."""
    arrays: dict[str, np.ndarray] = {}
    for name, s in samples.items():
        if ":" in name:
            raise ValueError(f"layer name {name!r} contains ':', which the window-sample file uses as separator")
        arrays[f"{name}:act"] = s.act
        arrays[f"{name}:weight"] = s.weight
        arrays[f"{name}:meta"] = np.array([s.kernel_taps, s.groups, s.positions_total], dtype=np.int64)
    p = Path(path)
    with p.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return p


def load_window_samples(path: str | Path) -> dict[str, WindowSample]:
    """Read a file written by :func:`save_window_samples` (layer order preserved)."""
    p = Path(path)
    out: dict[str, WindowSample] = {}
    with np.load(p, allow_pickle=False) as data:
        names = [k[: -len(":meta")] for k in data.files if k.endswith(":meta")]
        for name in names:
            taps, groups, total = (int(v) for v in data[f"{name}:meta"])
            out[name] = WindowSample(data[f"{name}:act"], data[f"{name}:weight"], taps, groups, total, source=str(p))
    return out


def apply_window_samples(graph: Graph, samples: dict[str, WindowSample]) -> int:
    """Annotate the conv nodes of ``graph`` named in ``samples`` (in place); returns how many.

    A name without a conv node, or a sample whose channels/filters/taps/groups differ from the node's,
    is a ConfigError.
    """
    convs = {n.name: n for n in graph.find(OpKind.CONV)}
    for name, sample in samples.items():
        node = convs.get(name)
        if node is None:
            raise ConfigError(f"window sample for {name!r}: no conv node of that name in graph {graph.name!r}")
        a = node.attrs
        assert isinstance(a, ConvAttrs)
        want = (a.in_channels, a.out_channels, a.kernel_size, a.groups)
        got = (sample.channels, sample.filters, sample.kernel_taps, sample.groups)
        if got != want:
            raise ConfigError(f"window sample for {name!r} is (channels, filters, taps, groups) = {got}, "
                              f"the node is {want}")  # fmt: skip
        node.annotate(sample)
    return len(samples)
