"""Network and layer latency estimates in the four modes."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence

from accelflow.arch import Architecture
from accelflow.errors import ConfigError
from accelflow.ir import Graph, Node
from accelflow.mapping import LayerKind, LayerShape, UnsupportedOnArchError, layer_shape, map_shape, workload
from accelflow.perf._baselines import RegressionModel, roofline_cycles, roofline_terms
from accelflow.perf._engine import KernelCache, evaluate_nest
from accelflow.perf._report import LayerPerf, Mode, PerfReport

__all__ = ["estimate", "estimate_layer", "estimate_shape"]

log = logging.getLogger(__name__)


def _util(shape: LayerShape, cycles: int, arch: Architecture) -> float:
    if not cycles:
        return 0.0
    if shape.kind is LayerKind.VECTOR:
        return shape.vector_ops / (cycles * arch.peak_vector_ops_per_cycle)
    return shape.macs / (cycles * arch.peak_macs_per_cycle) if shape.macs else 0.0


def _perf(shape: LayerShape, arch: Architecture, cycles: int, instructions: int, **counts: int) -> LayerPerf:
    return LayerPerf(shape.name, shape.op.value, cycles, instructions, counts.pop("iterations_evaluated", 0),
                     _util(shape, cycles, arch), macs=shape.macs, kind=shape.kind,
                     roofline=roofline_terms(shape, arch), **counts)  # fmt: skip


def estimate_shape(
    shape: LayerShape,
    arch: Architecture,
    mode: Mode = Mode.FAST,
    tiles: Mapping[str, int] | None = None,
    cache: KernelCache | None = None,
    maxplus: bool = True,
) -> LayerPerf:
    """Latency of one layer given by its view (FULL, FAST or ROOFLINE); a free layer takes 0 cycles.

    ``cache`` (FAST) reuses loop evaluations of earlier layers on ``arch``; without it the layer is
    evaluated on its own. ``maxplus`` (FAST): straight-line segments are evaluated once symbolically and
    then applied as max-plus maps (same cycles; ``False`` evaluates them instruction by instruction)."""
    mode = Mode(mode)
    if shape.kind is LayerKind.FREE:
        return _perf(shape, arch, 0, 0)
    nest = map_shape(shape, arch, tiles)
    if mode is Mode.ROOFLINE:
        return _perf(shape, arch, roofline_cycles(shape, arch), nest.instruction_count())
    if mode is Mode.REGRESSION:
        raise ConfigError("regression mode needs the other layers of a network: use estimate(graph, arch, Mode.REGRESSION)")
    res = evaluate_nest(nest, arch, fast=mode is Mode.FAST, cache=cache if mode is Mode.FAST else None, maxplus=maxplus)
    return _perf(shape, arch, res.cycles, nest.instruction_count(), iterations_evaluated=res.iterations_evaluated,
                 instructions_evaluated=res.instructions_evaluated, map_applications=res.map_applications,
                 instructions_applied=res.instructions_applied)  # fmt: skip


def estimate_layer(
    node: Node, arch: Architecture, mode: Mode = Mode.FAST, tiles: Mapping[str, int] | None = None
) -> LayerPerf:
    """Latency of one IR node on its own (shapes must be propagated; an activation counts as a vector pass)."""
    return estimate_shape(layer_shape(node), arch, mode, tiles)


def _shape_key(shape: LayerShape) -> LayerShape:
    return dataclasses.replace(shape, name="")


def estimate(
    model: Graph | Sequence[LayerShape],
    arch: Architecture,
    mode: Mode | str = Mode.FAST,
    tiles: Mapping[str, int] | None = None,
    unsupported: str = "skip",
    maxplus: bool = True,
) -> PerfReport:
    """Latency of every layer of ``model`` on ``arch``, run one after the other.

    ``model`` is a graph, or a workload (layer views, e.g. :func:`accelflow.mapping.with_kv_cache` for the
    decode phase of a language model). Every layer appears in the report: GEMM and vector layers timed,
    views and fused activations free (0 cycles). A layer the architecture cannot run (a description
    without a vector unit) raises :class:`UnsupportedOnArchError` with ``unsupported="error"``; with
    ``"skip"`` it is left out, named in ``report.skipped`` and logged as a warning. ``maxplus``: see
    :func:`estimate_shape`.
    """
    mode = Mode(mode)
    if unsupported not in ("skip", "error"):
        raise ConfigError(f"unsupported must be 'skip' or 'error', got {unsupported!r}")
    started = time.perf_counter()
    shapes: list[LayerShape] = []
    skipped: list[str] = []
    for shape in workload(model) if isinstance(model, Graph) else model:
        if shape.kind is not LayerKind.FREE:
            try:
                map_shape(shape, arch, tiles)
            except UnsupportedOnArchError as exc:
                if unsupported == "error":
                    raise
                skipped.append(shape.name)
                log.warning("%s; not timed", exc)
                continue
        shapes.append(shape)
    if skipped:
        log.warning("%d layer(s) not supported on %s were skipped: %s", len(skipped), arch.name, ", ".join(skipped))
    timed = [s for s in shapes if s.kind is not LayerKind.FREE]
    if mode is Mode.REGRESSION:
        by_name = dict(zip((s.name for s in timed), _regression(timed, arch, tiles), strict=True))
    elif mode is Mode.FAST:
        # identical layers (same sizes) start from the same empty frontier and give the same result:
        # evaluate each once; repeats report 0 evaluated instructions (they were not evaluated). The
        # kernel cache lets the other layers reuse inner loops already evaluated (exact, structural keys).
        seen: dict[LayerShape, LayerPerf] = {}
        cache = KernelCache(arch)
        by_name = {}
        for s in timed:
            key = _shape_key(s)
            if key in seen:
                by_name[s.name] = dataclasses.replace(seen[key], name=s.name, iterations_evaluated=0,
                                                      instructions_evaluated=0, map_applications=0,
                                                      instructions_applied=0)  # fmt: skip
            else:
                seen[key] = by_name[s.name] = estimate_shape(s, arch, mode, tiles, cache, maxplus)
    else:
        by_name = {s.name: estimate_shape(s, arch, mode, tiles) for s in timed}
    layers = tuple(by_name[s.name] if s.kind is not LayerKind.FREE else estimate_shape(s, arch, mode) for s in shapes)
    return PerfReport(mode, layers, time.perf_counter() - started, arch.name, tuple(skipped), arch.clock_mhz)


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
        out.append(_perf(s, arch, cycles, map_shape(s, arch, tiles).instruction_count()))
    return out
