"""Network and layer latency estimates in the four modes."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping

from accelflow.arch import Architecture
from accelflow.errors import ConfigError
from accelflow.ir import Graph, Node, propagate_shapes
from accelflow.mapping import FREE_OPS, LayerShape, is_mappable, layer_shape, map_shape
from accelflow.perf._baselines import RegressionModel, roofline_cycles
from accelflow.perf._engine import KernelCache, evaluate_nest
from accelflow.perf._report import LayerPerf, Mode, PerfReport

__all__ = ["estimate", "estimate_layer", "estimate_shape"]

log = logging.getLogger(__name__)


def _util(shape: LayerShape, cycles: int, arch: Architecture) -> float:
    return shape.macs / (cycles * arch.peak_macs_per_cycle) if cycles and shape.macs else 0.0


def estimate_shape(
    shape: LayerShape,
    arch: Architecture,
    mode: Mode = Mode.FAST,
    tiles: Mapping[str, int] | None = None,
    cache: KernelCache | None = None,
    maxplus: bool = True,
) -> LayerPerf:
    """Latency of one layer given by its GEMM view (FULL, FAST or ROOFLINE).

    ``cache`` (FAST) reuses loop evaluations of earlier layers on ``arch``; without it the layer is
    evaluated on its own. ``maxplus`` (FAST): straight-line segments are evaluated once symbolically and
    then applied as max-plus maps (same cycles; ``False`` evaluates them instruction by instruction)."""
    mode = Mode(mode)
    nest = map_shape(shape, arch, tiles)
    if mode is Mode.ROOFLINE:
        cycles = roofline_cycles(shape, arch)
        return LayerPerf(shape.name, shape.op.value, cycles, nest.instruction_count(), 0, _util(shape, cycles, arch), 0, shape.macs)
    if mode is Mode.REGRESSION:
        raise ConfigError("regression mode needs the other layers of a network: use estimate(graph, arch, Mode.REGRESSION)")
    res = evaluate_nest(nest, arch, fast=mode is Mode.FAST, cache=cache if mode is Mode.FAST else None, maxplus=maxplus)
    return LayerPerf(shape.name, shape.op.value, res.cycles, nest.instruction_count(), res.iterations_evaluated,
                     _util(shape, res.cycles, arch), res.instructions_evaluated, shape.macs, res.map_applications,
                     res.instructions_applied)  # fmt: skip


def estimate_layer(
    node: Node, arch: Architecture, mode: Mode = Mode.FAST, tiles: Mapping[str, int] | None = None
) -> LayerPerf:
    """Latency of one IR node (shapes must be propagated)."""
    return estimate_shape(layer_shape(node), arch, mode, tiles)


def _shape_key(shape: LayerShape) -> LayerShape:
    return dataclasses.replace(shape, name="")


def estimate(
    graph: Graph,
    arch: Architecture,
    mode: Mode | str = Mode.FAST,
    tiles: Mapping[str, int] | None = None,
    unsupported: str = "skip",
    maxplus: bool = True,
) -> PerfReport:
    """Latency of every layer of ``graph`` on ``arch``, run one after the other.

    Activations, flatten and reshape are free (fused into the producer's output stage). Other operators
    the architecture cannot run are skipped and listed in ``report.skipped`` (``unsupported="skip"``,
    documented host fallback, not timed) or raise :class:`UnsupportedOnArchError` (``"error"``).
    ``maxplus``: see :func:`estimate_shape`.
    """
    mode = Mode(mode)
    if unsupported not in ("skip", "error"):
        raise ConfigError(f"unsupported must be 'skip' or 'error', got {unsupported!r}")
    if any(n.shape is None for n in graph):
        propagate_shapes(graph)
    started = time.perf_counter()
    shapes: list[LayerShape] = []
    skipped: list[str] = []
    for node in graph:
        if node.op in FREE_OPS:
            continue
        if not is_mappable(node, arch):
            if unsupported == "error":
                map_shape(layer_shape(node), arch, tiles)  # raises UnsupportedOnArchError with the message
            skipped.append(node.name)
            log.info("%s: %s not supported on %s, skipped (host fallback)", node.name, node.op.value, arch.name)
            continue
        shapes.append(layer_shape(node))
    if mode is Mode.REGRESSION:
        layers = _regression(shapes, arch, tiles)
    elif mode is Mode.FAST:
        # identical layers (same sizes) start from the same empty frontier and give the same result:
        # evaluate each once; repeats report 0 evaluated instructions (they were not evaluated). The
        # kernel cache lets the other layers reuse inner loops already evaluated (exact, structural keys).
        seen: dict[LayerShape, LayerPerf] = {}
        cache = KernelCache(arch)
        layers = []
        for s in shapes:
            key = _shape_key(s)
            if key in seen:
                layers.append(dataclasses.replace(seen[key], name=s.name, iterations_evaluated=0, instructions_evaluated=0,
                                                  map_applications=0, instructions_applied=0))  # fmt: skip
            else:
                seen[key] = estimate_shape(s, arch, mode, tiles, cache, maxplus)
                layers.append(seen[key])
    else:
        layers = [estimate_shape(s, arch, mode, tiles) for s in shapes]
    return PerfReport(mode, tuple(layers), time.perf_counter() - started, arch.name, tuple(skipped))


def _regression(shapes: list[LayerShape], arch: Architecture, tiles: Mapping[str, int] | None) -> list[LayerPerf]:
    """Leave-one-shape-out: each layer is predicted by a model trained on FULL-mode cycles of the layers
    with a different shape (identical shapes would leak the answer)."""
    labels: dict[LayerShape, int] = {}
    for s in shapes:
        key = _shape_key(s)
        if key not in labels:
            labels[key] = estimate_shape(s, arch, Mode.FULL, tiles).cycles
    keys = list(labels)
    if len(keys) < 4:
        raise ConfigError(f"regression mode needs at least 4 distinct layer shapes to train on, the network has {len(keys)}")
    out = []
    models: dict[LayerShape, RegressionModel] = {}
    for s in shapes:
        key = _shape_key(s)
        if key not in models:
            train = [k for k in keys if k != key]
            models[key] = RegressionModel().fit(train, [labels[k] for k in train], arch)
        cycles = models[key].predict(s, arch)
        nest = map_shape(s, arch, tiles)
        out.append(LayerPerf(s.name, s.op.value, cycles, nest.instruction_count(), 0, _util(s, cycles, arch), 0, s.macs))
    return out
