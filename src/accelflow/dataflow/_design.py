"""Frozen design reports and :func:`evaluate_design` (a pure function: graph + foldings -> design)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from accelflow.dataflow._build import build_layers
from accelflow.dataflow._device import Device
from accelflow.dataflow._folding import Folding
from accelflow.dataflow._network import DEFAULT_UTILISATION, NetworkCost, NetworkModel, WeightStorage
from accelflow.dataflow._resources import ResourceKind, Resources
from accelflow.dataflow._sparse import LockStep
from accelflow.errors import ConfigError
from accelflow.ir import Graph, OpKind

__all__ = ["LayerDesign", "DataflowDesign", "evaluate_design", "network_model", "design_from_cost"]


@dataclass(frozen=True)
class LayerDesign:
    """One layer of a design: its folding, cycles per image and resources (weights included)."""

    name: str
    op: OpKind
    folding: Folding
    cycles_per_image: float
    resources: Resources
    sparse: bool
    sparsity: float
    weight_storage: WeightStorage = WeightStorage.NONE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op.value,
            "folding": self.folding.as_dict(),
            "cycles_per_image": self.cycles_per_image,
            "resources": self.resources.as_dict(),
            "sparse": self.sparse,
            "sparsity": self.sparsity,
            "weight_storage": self.weight_storage.value,
        }


@dataclass(frozen=True)
class DataflowDesign:
    """A layer-pipelined design of a network on a device.

    ``interval_cycles`` is the cycles between images (slowest layer x bandwidth slow-down);
    ``pipeline_depth_cycles`` the fill latency of the pipeline; a batch takes
    ``interval_cycles * batch + pipeline_depth_cycles``.
    """

    network: str
    device: Device
    layers: tuple[LayerDesign, ...]
    batch: int
    data_bits: int
    weight_bits: int
    interval_cycles: float
    compute_interval_cycles: float
    bandwidth_slowdown: float
    required_gbps: float
    pipeline_depth_cycles: float
    resources: Resources
    binding_resource: ResourceKind
    feasible: bool
    utilisation_cap: float = DEFAULT_UTILISATION

    def latency_cycles(self, batch: int | None = None) -> float:
        """Cycles to process ``batch`` images (default: the design batch)."""
        b = self.batch if batch is None else batch
        return self.interval_cycles * b + self.pipeline_depth_cycles

    def latency_s(self, batch: int | None = None) -> float:
        return self.latency_cycles(batch) / self.device.clock_hz

    @property
    def throughput_images_per_s(self) -> float:
        return self.batch * self.device.clock_hz / self.latency_cycles(self.batch)

    @property
    def slowest_layer(self) -> LayerDesign:
        return max(self.layers, key=lambda layer: layer.cycles_per_image)

    def utilisation(self) -> dict[str, float]:
        d = self.device
        avail = {"dsp": d.dsp, "lut": d.lut, "ff": d.ff, "bram18": d.bram18, "uram": d.uram}
        used = self.resources.as_dict()
        return {k: (used[k] / v if v else 0.0) for k, v in avail.items()}

    def foldings(self) -> dict[str, Folding]:
        return {layer.name: layer.folding for layer in self.layers}

    def to_dict(self) -> dict[str, Any]:
        r = self.resources
        return {
            "network": self.network,
            "device": self.device.name,
            "clock_mhz": self.device.clock_mhz,
            "batch": self.batch,
            "data_bits": self.data_bits,
            "weight_bits": self.weight_bits,
            "throughput_images_per_s": self.throughput_images_per_s,
            "interval_cycles": self.interval_cycles,
            "compute_interval_cycles": self.compute_interval_cycles,
            "bandwidth_slowdown": self.bandwidth_slowdown,
            "required_gbps": self.required_gbps,
            "pipeline_depth_cycles": self.pipeline_depth_cycles,
            "latency_cycles": self.latency_cycles(),
            "dsp": r.dsp,
            "lut": r.lut,
            "ff": r.ff,
            "bram18": r.bram18,
            "uram": r.uram,
            "utilisation": self.utilisation(),
            "utilisation_cap": self.utilisation_cap,
            "binding_resource": self.binding_resource.value,
            "feasible": self.feasible,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def network_model(
    graph: Graph,
    device: Device,
    *,
    batch: int = 256,
    data_bits: int = 16,
    weight_bits: int = 16,
    utilisation: float = DEFAULT_UTILISATION,
    use_sparsity: bool = True,
    lockstep: LockStep = LockStep.MEAN,
) -> NetworkModel:
    """Hardware models of every layer of ``graph`` on ``device`` (reads ChannelSparsity annotations)."""
    layers = build_layers(graph, data_bits, weight_bits, use_sparsity, lockstep)
    in_elems = sum(math.prod(n.shape or ()) for n in graph.inputs)
    out_elems = sum(math.prod(n.shape or ()) for n in graph.outputs)
    return NetworkModel(
        layers, device, batch=batch, utilisation=utilisation,
        input_bits=in_elems * data_bits, output_bits=out_elems * data_bits,
    )  # fmt: skip


def design_from_cost(name: str, model: NetworkModel, foldings: list[Folding], cost: NetworkCost) -> DataflowDesign:
    layers = []
    for i, (layer, f) in enumerate(zip(model.layers, foldings, strict=True)):
        c = model.layer_cost(i, f)
        r = Resources(*(int(v) for v in c.modules))
        storage = cost.storage[i]
        if storage is WeightStorage.BRAM:
            r += Resources(bram18=c.w_bram)
        elif storage is WeightStorage.LUTRAM:
            r += Resources(*(int(v) for v in c.w_lutram))
        elif storage is WeightStorage.URAM:
            r += Resources(uram=c.w_uram)
        layers.append(LayerDesign(layer.name, layer.op, f, c.cycles, r, layer.sparse and not f.dense, layer.sparsity,
                                  storage))
    first = model.layers[0]
    return DataflowDesign(
        network=name, device=model.device, layers=tuple(layers), batch=model.batch,
        data_bits=first.data_bits, weight_bits=first.weight_bits, interval_cycles=cost.interval,
        compute_interval_cycles=cost.compute_interval, bandwidth_slowdown=cost.slowdown,
        required_gbps=cost.required_gbps, pipeline_depth_cycles=cost.depth,
        resources=Resources(*(int(v) for v in cost.totals)), binding_resource=model.binding(cost, foldings),
        feasible=cost.feasible, utilisation_cap=model.utilisation,
    )  # fmt: skip


def evaluate_design(
    graph: Graph,
    device: Device,
    foldings: Mapping[str, Folding] | None = None,
    *,
    batch: int = 256,
    data_bits: int = 16,
    weight_bits: int = 16,
    utilisation: float = DEFAULT_UTILISATION,
    use_sparsity: bool = True,
    lockstep: LockStep = LockStep.MEAN,
) -> DataflowDesign:
    """The design of ``graph`` at the given per-layer foldings (missing layers: minimal folding).

    No search: a pure function. A design over the device's resources is returned with
    ``feasible=False``; an illegal folding raises :class:`~accelflow.errors.ConfigError`.
    """
    model = network_model(graph, device, batch=batch, data_bits=data_bits, weight_bits=weight_bits,
                          utilisation=utilisation, use_sparsity=use_sparsity, lockstep=lockstep)  # fmt: skip
    foldings = dict(foldings or {})
    unknown = set(foldings) - set(model.index)
    if unknown:
        raise ConfigError(f"foldings given for unknown layers: {', '.join(sorted(unknown))}")
    chosen = [foldings.get(layer.name, layer.minimal()) for layer in model.layers]
    return design_from_cost(graph.name, model, chosen, model.cost(chosen))


