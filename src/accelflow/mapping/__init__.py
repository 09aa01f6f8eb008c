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
    LayerShape,
    UnsupportedOnArchError,
    layer_shape,
)
from accelflow.mapping._mappers import MAPPERS, MapperInfo
from accelflow.mapping._nest import Access, Instr, Item, Loop, LoopNest, iteration_sizes

__all__ = [
    "ELEMENTWISE_OPS",
    "GEMM_OPS",
    "MAPPERS",
    "POOL_OPS",
    "Access",
    "Instr",
    "Item",
    "LayerShape",
    "Loop",
    "LoopNest",
    "MapperInfo",
    "UnsupportedOnArchError",
    "FREE_OPS",
    "is_mappable",
    "iteration_sizes",
    "layer_shape",
    "map_layer",
    "map_shape",
]

#: Operators that cost no accelerator time: fused into the producer's output stage, or pure views.
FREE_OPS = frozenset(
    {OpKind.INPUT, OpKind.RELU, OpKind.RELU6, OpKind.THRESHOLD_RELU, OpKind.HARDSWISH, OpKind.HARDSIGMOID,
     OpKind.SIGMOID, OpKind.SILU, OpKind.FLATTEN, OpKind.RESHAPE}
)  # fmt: skip


def _mapper(arch: Architecture) -> MapperInfo:
    if arch.mapper not in MAPPERS:
        raise ConfigError(f"architecture {arch.name!r}: unknown mapper {arch.mapper!r}; known: {', '.join(MAPPERS)}")
    return MAPPERS[arch.mapper]


def is_mappable(node: Node, arch: Architecture) -> bool:
    return node.op in _mapper(arch).supported


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
    """The loop nest of one IR node on ``arch`` (default tiling rule unless ``tiles`` overrides it)."""
    return map_shape(layer_shape(node), arch, tiles)
