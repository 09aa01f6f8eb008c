"""Mapping layers onto architectures as tiled loop nests of accelerator instructions.

>>> import torch
>>> from accelflow.frontends import from_pytorch
>>> from accelflow.arch import template
>>> from accelflow.mapping import map_layer
>>> g = from_pytorch(torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3)), (8, 10, 10))
>>> nest = map_layer(g.compute_nodes()[0], template("systolic", rows=4, cols=4))
>>> nest.instruction_count()
360
"""

from __future__ import annotations

from collections.abc import Mapping

from accelflow.arch import Architecture
from accelflow.errors import ConfigError
from accelflow.ir import Node, OpKind
from accelflow.mapping._layer import (
    ELEMENTWISE_OPS,
    GEMM_OPS,
    POOL_OPS,
    VIEW_OPS,
    LayerKind,
    LayerShape,
    UnsupportedOnArchError,
    layer_shape,
)
from accelflow.mapping._mappers import MAPPERS, VECTOR_CHUNK, MapperInfo
from accelflow.mapping._nest import Access, Instr, Item, Loop, LoopNest, iteration_sizes
from accelflow.mapping._workload import Attention, Phase, attention_products, with_kv_cache, workload

__all__ = [
    "ELEMENTWISE_OPS",
    "GEMM_OPS",
    "MAPPERS",
    "POOL_OPS",
    "VECTOR_CHUNK",
    "VIEW_OPS",
    "Access",
    "Attention",
    "Instr",
    "Item",
    "LayerKind",
    "LayerShape",
    "Loop",
    "LoopNest",
    "MapperInfo",
    "Phase",
    "UnsupportedOnArchError",
    "FREE_OPS",
    "attention_products",
    "is_mappable",
    "iteration_sizes",
    "layer_shape",
    "map_layer",
    "map_shape",
    "with_kv_cache",
    "workload",
]

#: Operators that can cost no accelerator time: the pure views always (:data:`VIEW_OPS`), the activations
#: when fused into their producer's output stage (decided per graph by :func:`workload`). Kept for callers
#: of earlier versions; :func:`workload` gives each layer's :class:`LayerKind`.
FREE_OPS = VIEW_OPS | {OpKind.RELU, OpKind.RELU6, OpKind.THRESHOLD_RELU, OpKind.HARDSWISH, OpKind.HARDSIGMOID,
                       OpKind.SIGMOID, OpKind.SILU}  # fmt: skip


def _mapper(arch: Architecture) -> MapperInfo:
    if arch.mapper not in MAPPERS:
        raise ConfigError(f"architecture {arch.name!r}: unknown mapper {arch.mapper!r}; known: {', '.join(MAPPERS)}")
    return MAPPERS[arch.mapper]


def is_mappable(node: Node, arch: Architecture) -> bool:
    """Whether ``node`` (on its own: an activation counts as a vector pass) has a loop nest on ``arch``."""
    if node.op not in _mapper(arch).supported:
        return False
    try:
        map_layer(node, arch)
    except UnsupportedOnArchError:
        return False
    return True


def map_shape(shape: LayerShape, arch: Architecture, tiles: Mapping[str, int] | None = None) -> LoopNest:
    info = _mapper(arch)
    tiles = dict(tiles or {})
    bad = sorted(set(tiles) - set(info.tile_options))
    if bad:
        raise ConfigError(f"mapper {info.name!r} has no tile option {bad[0]!r}; options: {list(info.tile_options) or 'none'}")
    for key, value in tiles.items():
        if int(value) < 1:
            raise ConfigError(f"tile {key}={value} must be >= 1")
    return info.function(shape, arch, tiles)


def map_layer(node: Node, arch: Architecture, tiles: Mapping[str, int] | None = None) -> LoopNest:
    """The loop nest of one IR node on ``arch`` (default tiling rule unless ``tiles`` overrides it); raises
    :class:`UnsupportedOnArchError` for a free node (a view: no loop nest)."""
    return map_shape(layer_shape(node), arch, tiles)
