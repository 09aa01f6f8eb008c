"""Network-level cost of a folding: pipeline interval, depth, resources, weight placement, bandwidth.

:class:`NetworkModel` holds the per-layer models of one network on one device and evaluates a full
list of foldings in 0.1-0.7 ms (per-layer costs are memoised), which is what the optimisers call.

Weight placement (ours): weight memories go to LUTRAM (< 1,024 bits per array) or BRAM18; when BRAM
exceeds the cap, the layers with the most weight BRAM move to URAM (if the device has it and it fits),
then to off-chip memory. Off-chip weights are streamed once per image. The off-chip traffic per image
is the network input + output + off-chip weights; when it exceeds the device bandwidth at the compute
interval the interval is stretched by the ratio (the bandwidth slow-down).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from accelflow.dataflow._device import Device
from accelflow.dataflow._folding import Folding
from accelflow.dataflow._layers import LayerModel, WeightMemory
from accelflow.dataflow._resources import ResourceKind, Resources, register
from accelflow.errors import ConfigError

__all__ = ["NetworkModel", "NetworkCost", "WeightStorage", "RES_KINDS", "DEFAULT_UTILISATION"]

#: Fraction of each device resource a design may use (ours: leaves room for routing and the shell).
DEFAULT_UTILISATION = 0.9
#: Order of the resource vectors used internally.
RES_KINDS = (ResourceKind.DSP, ResourceKind.LUT, ResourceKind.FF, ResourceKind.BRAM18, ResourceKind.URAM)
_DSP, _LUT, _FF, _BRAM, _URAM = range(5)


class WeightStorage(enum.StrEnum):
    NONE = "none"
    LUTRAM = "lutram"
    BRAM = "bram"
    URAM = "uram"
    OFFCHIP = "offchip"


def _vec(r: Resources) -> tuple[int, int, int, int, int]:
    return (r.dsp, r.lut, r.ff, r.bram18, r.uram)


class _LayerCost(NamedTuple):
    cycles: float
    fill: float
    modules: tuple[int, int, int, int, int]  # resources without weights
    weights: WeightMemory
    w_bram: int  # BRAM18 of the weights if placed in BRAM (0 when they fit LUTRAM)
    w_lutram: tuple[int, int, int, int, int]  # resources when the weights sit in LUTRAM
    w_uram: int
    storage: WeightStorage  # default placement: BRAM, LUTRAM or NONE


class NetworkCost(NamedTuple):
    """Cost of one folding of the whole network."""

    throughput: float  # images/s at the design batch
    interval: float  # cycles per image including the bandwidth slow-down
    compute_interval: float
    slowdown: float
    depth: float
    totals: np.ndarray  # (dsp, lut, ff, bram18, uram)
    storage: tuple[WeightStorage, ...]
    feasible: bool
    cycles: np.ndarray
    required_gbps: float


@dataclass(eq=False)
class NetworkModel:
    """The layers of a network on a device at a batch size, with a resource cap per resource."""

    layers: Sequence[LayerModel]
    device: Device
    batch: int = 256
    utilisation: float = DEFAULT_UTILISATION
    input_bits: int = 0  # off-chip words per image, in bits
    output_bits: int = 0
    _memo: dict[tuple[int, Folding], _LayerCost] = field(default_factory=dict, repr=False)
    _squeeze: dict[tuple[int, int, int], tuple[int, int, int, int, int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.utilisation <= 1:
            raise ConfigError(f"utilisation cap must be in (0, 1], got {self.utilisation}")
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        self.evaluations = 0  # design points evaluated (for optimiser speed reports)
        self.index = {layer.name: i for i, layer in enumerate(self.layers)}
        self.edges = [(self.index[p], j) for j, layer in enumerate(self.layers) for p in layer.producers]
        self.preds: list[list[int]] = [[] for _ in self.layers]
        for i, j in self.edges:
            self.preds[j].append(i)
        d = self.device
        self.caps = np.floor(np.array([d.dsp, d.lut, d.ff, d.bram18, d.uram], dtype=np.float64) * self.utilisation)
        self.caps_list = [float(v) for v in self.caps]
        self.edges3 = [(i, j, int(getattr(self.layers[j], "channels", 1))) for i, j in self.edges]
        self.available = np.array([d.dsp, d.lut, d.ff, d.bram18, d.uram], dtype=np.float64)

    def layer_cost(self, i: int, f: Folding) -> _LayerCost:
        key = (i, f)
        hit = self._memo.get(key)
        if hit is None:
            layer = self.layers[i]
            if not layer.is_legal(f):
                raise ConfigError(f"layer {layer.name!r}: illegal folding {f}; legal values {layer.options()}")
            wm = layer.weights(f)
            on_chip = wm.on_chip()
            hit = _LayerCost(
                layer.cycles(f), layer.fill_cycles(f), _vec(layer.resources(f)), wm,
                on_chip.bram18, _vec(Resources(lut=on_chip.lut, ff=on_chip.ff)), wm.in_uram().uram,
                WeightStorage.NONE if wm.arrays == 0
                else WeightStorage.BRAM if on_chip.bram18 else WeightStorage.LUTRAM,
            )  # fmt: skip
            self._memo[key] = hit
        return hit

    def _squeeze_cost(self, a: int, b: int, channels: int) -> tuple[int, int, int, int, int]:
        key = (a, b, channels)
        hit = self._squeeze.get(key)
        if hit is None:
            words = min(math.lcm(a, b), max(channels, 1))
            d = self.layers[0].data_bits
            hit = _vec(register(words * d) + Resources(lut=2 * d + 12, ff=8))
            self._squeeze[key] = hit
        return hit

    def cost(self, foldings: Sequence[Folding]) -> NetworkCost:
        self.evaluations += 1
        memo = self._memo
        costs = []
        for i, f in enumerate(foldings):
            c = memo.get((i, f))
            costs.append(c if c is not None else self.layer_cost(i, f))
        dsp = lut = ff = bram = uram = 0
        for c in costs:
            m = c.modules
            dsp += m[0]
            lut += m[1]
            ff += m[2]
            bram += m[3]
            uram += m[4]
        for i, j, channels in self.edges3:  # squeeze between layers with different stream counts
            a = foldings[i].coarse_out * foldings[i].coarse_group
            b = foldings[j].coarse_in * foldings[j].coarse_group
            if a != b:
                sq = self._squeeze_cost(a, b, channels)
                lut += sq[1]
                ff += sq[2]
        depth = [0.0] * len(costs)
        for j, c in enumerate(costs):
            preds = self.preds[j]
            depth[j] = c.fill + (max(depth[i] for i in preds) if preds else 0.0)
        storage, offchip_bits = self._place(costs, bram, uram)
        for c, s in zip(costs, storage, strict=True):
            if s is WeightStorage.BRAM:
                bram += c.w_bram
            elif s is WeightStorage.LUTRAM:
                lut += c.w_lutram[1]
                ff += c.w_lutram[2]
            elif s is WeightStorage.URAM:
                uram += c.w_uram
        cycles = [c.cycles for c in costs]
        compute = max(cycles)
        f_hz = self.device.clock_hz
        bits = self.input_bits + self.output_bits + offchip_bits
        required = bits * f_hz / compute / 1e9
        slowdown = max(1.0, required / self.device.offchip_gbps)
        interval = compute * slowdown
        total_depth = max(depth)
        throughput = self.batch * f_hz / (interval * self.batch + total_depth)
        caps = self.caps_list
        feasible = dsp <= caps[0] and lut <= caps[1] and ff <= caps[2] and bram <= caps[3] and uram <= caps[4]
        totals = np.array([dsp, lut, ff, bram, uram], dtype=np.int64)
        return NetworkCost(
            throughput, interval, compute, slowdown, total_depth, totals, storage, bool(feasible),
            np.array(cycles), required,
        )  # fmt: skip

    def _place(self, costs: list[_LayerCost], bram: int, uram: int) -> tuple[tuple[WeightStorage, ...], int]:
        storage = [c.storage for c in costs]
        bram_left = self.caps_list[_BRAM] - bram
        need = sum(c.w_bram for c in costs)
        offchip_bits = 0
        if need > bram_left:
            uram_left = self.caps_list[_URAM] - uram
            for i in sorted(range(len(costs)), key=lambda k: -costs[k].w_bram):
                if need <= bram_left or costs[i].w_bram == 0:
                    break
                need -= costs[i].w_bram
                if 0 < costs[i].w_uram <= uram_left:
                    storage[i] = WeightStorage.URAM
                    uram_left -= costs[i].w_uram
                else:
                    storage[i] = WeightStorage.OFFCHIP
                    offchip_bits += costs[i].weights.bits
        return tuple(storage), offchip_bits

    def binding(self, cost: NetworkCost, foldings: Sequence[Folding]) -> ResourceKind:
        """The resource closest to its limit; off-chip bandwidth when it slows the pipeline down;
        PARALLELISM when the slowest layer is fully unfolded (more resources would not help)."""
        if cost.slowdown > 1.0:
            return ResourceKind.BANDWIDTH
        slowest = int(np.argmax(cost.cycles))
        if self.layers[slowest].is_maximal(foldings[slowest]):
            return ResourceKind.PARALLELISM
        with np.errstate(divide="ignore", invalid="ignore"):
            use = np.where(self.available > 0, cost.totals / self.available, 0.0)
        return RES_KINDS[int(np.argmax(use))]
