"""Per-template mappers: a layer's GEMM view -> a tiled loop nest of the template's instructions.

Default tiling rules (ours, documented in docs/performance-models.md):
- systolic: folds of the GEMM over the array exactly as SCALE-Sim does (ws: window over rows, filters
  over cols, all npx rows streamed per fold; os: npx over rows, filters over cols, window streamed;
  is: window over rows, npx over cols, filters streamed). No user tiles (the array fixes them).
- gemmini: dim x dim blocks; the accumulator holds ``ti`` row blocks per output block, double
  buffered (default ``ti`` = accumulator rows / (2 * dim) / dim, i.e. 32 for 64 KiB). With the
  template option ``row_granularity=1`` each compute becomes one instruction per row of A. Tiles ``wb``
  (weight-tile buffers, default 2) and ``arot=1`` (A buffers rotate over the k steps too) form a
  decode-aware tiling for skinny GEMMs (npx <= dim); the defaults keep the published CNN figures.
- ultratrail: 8 output x 8 input channels per MAC instruction over all output positions and taps.
- plasticine: 16 output channels (lanes) x ``px`` output positions per PCU pattern (default
  px = min(64, ceil(npx / pcus)) so that small layers still use all PCUs).

Vector layers (ours): the output elements in chunks of ``ve`` (default 1024), double buffered. Systolic and
Gemmini: DMA in (the input elements of the chunk), one ``vop`` of ``k`` operations per element on the vector
unit, DMA out; an embedding lookup (k = 0) is the two transfers only. UltraTrail: one ``vec`` on the OPU per
chunk (feature memory to feature memory, no DRAM; a pure move counts one operation per element). Plasticine:
load, one ``pcu_vec`` pattern per chunk, store (the chunks spread over the PCUs). Pooling and residual adds
keep their earlier kernels on UltraTrail (``pool``/``add`` on the OPU) and Plasticine (``pcu_map``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from accelflow.arch import Architecture, Expr, ceil_div
from accelflow.errors import ConfigError
from accelflow.ir import OpKind
from accelflow.mapping._layer import (
    ELEMENTWISE_OPS,
    POOL_OPS,
    LayerKind,
    LayerShape,
    UnsupportedOnArchError,
)
from accelflow.mapping._nest import Access, Instr, Item, Loop, LoopNest

__all__ = ["MapperInfo", "MAPPERS"]


def _a(space: str, address: str | int) -> Access:
    return Access(space, Expr.parse(address))


def _i(op: str, reads: tuple[Access, ...] = (), writes: tuple[Access, ...] = (), **fields: str | int) -> Instr:
    return Instr(op, reads, writes, tuple((k, Expr.parse(v)) for k, v in fields.items()))


def _loop(var: str, extent: str | int, tile: int, *body: Item, period: int = 1) -> Loop:
    return Loop(var, Expr.parse(extent), int(tile), tuple(body), period)


def _groups(shape: LayerShape, body: tuple[Item, ...]) -> tuple[Item, ...]:
    return (_loop("g", "groups", 1, *body),) if shape.groups > 1 else body


def _constants(shape: LayerShape) -> tuple[tuple[str, int], ...]:
    return (("groups", shape.groups), ("npx", shape.npx), ("window", shape.window), ("filters", shape.filters),
            ("taps", shape.taps), ("channels", shape.channels), ("cin", shape.in_channels))  # fmt: skip


def _unsupported(shape: LayerShape, arch: Architecture) -> UnsupportedOnArchError:
    if shape.kind is LayerKind.FREE:
        return UnsupportedOnArchError(f"layer {shape.name!r}: {shape.op.value} is free (a view or a fused "
                                      "activation) and has no loop nest; estimate() reports it with 0 cycles")  # fmt: skip
    return UnsupportedOnArchError(f"layer {shape.name!r}: {shape.op.value} is not supported on {arch.name}")


#: Default vector elements per chunk (the ``ve`` tile); a chunk is one DMA transfer and one vector instruction.
VECTOR_CHUNK = 1024


def _vector_constants(shape: LayerShape) -> tuple[tuple[str, int], ...]:
    return (("elems", shape.elements), ("in_elems", shape.in_elems), ("taps", shape.taps))


def _need(arch: Architecture, op: str, shape: LayerShape) -> None:
    if op not in arch.operations:
        raise UnsupportedOnArchError(
            f"layer {shape.name!r}: {shape.op.value} runs on a vector unit, but {arch.name} has no unit with the "
            f"operation {op!r} (add one as in the shipped template of mapper {arch.mapper!r}, or pass "
            "unsupported='skip' / --unsupported skip to leave such layers untimed)")  # fmt: skip


def _chunk(tiles: Mapping[str, int]) -> int:
    return int(tiles.get("ve", VECTOR_CHUNK))


def _dma_vector(shape: LayerShape, arch: Architecture, tiles: Mapping[str, int], ld: str, st: str,
                src: str, dst: str, unit_op: str) -> LoopNest:  # fmt: skip
    """Chunks of ``ve`` output elements: load their inputs, ``k`` operations per element, store them.
    ``ld``/``st``: the DMA operations; ``src``/``dst``: the on-chip spaces of the input and output buffers."""
    _need(arch, unit_op, shape)
    words_in = "ceil_div(e_size * in_elems, elems)"
    body: list[Item] = [_i(ld, writes=(_a(src, "e % 2"),), words=words_in)]
    if shape.taps:
        body.append(_i(unit_op, reads=(_a(src, "e % 2"),), writes=(_a(dst, "e % 2"),), n="e_size", k="taps"))
        body.append(_i(st, reads=(_a(dst, "e % 2"),), words="e_size"))
    else:  # a gather: memory traffic only
        body.append(_i(st, reads=(_a(src, "e % 2"),), words="e_size"))
    ve = _chunk(tiles)
    return LoopNest(shape.name, arch.name, (_loop("e", "elems", ve, *body, period=2),), _vector_constants(shape),
                    (("ve", ve),), note=f"vector: {shape.taps} operations per output element")  # fmt: skip


# -- systolic array ---------------------------------------------------------------------------------
def _systolic(shape: LayerShape, arch: Architecture, tiles: Mapping[str, int]) -> LoopNest:
    if shape.kind is LayerKind.VECTOR:  # the vector unit reads the ifmap SRAM and writes the ofmap SRAM
        return _dma_vector(shape, arch, tiles, "ld_vec", "st_vec", "ifmap_sram", "ofmap_sram", "vop")
    if shape.kind is not LayerKind.GEMM:
        raise _unsupported(shape, arch)
    rows, cols, df = int(arch.param("rows")), int(arch.param("cols")), str(arch.param("dataflow"))
    # (row dimension, col dimension, streamed length n) of the fold, as in SCALE-Sim's compute modules
    row_dim, col_dim, n = {"ws": ("window", "filters", "npx"), "os": ("npx", "filters", "window"),
                           "is": ("window", "npx", "filters")}[df]  # fmt: skip
    words_in = {"ws": "npx * fr_size", "os": "fr_size * window", "is": "fr_size * fc_size"}[df]
    words_w = {"ws": "fr_size * fc_size", "os": "window * fc_size", "is": "fr_size * filters"}[df]
    words_out = {"ws": "npx * fc_size", "os": "fr_size * fc_size", "is": "filters * fc_size"}[df]
    fold: list[Item] = [
        _i("ld_filter", writes=(_a("filter_sram", "fr % 2"),), words=words_w),
        _i("ld_ifmap", writes=(_a("ifmap_sram", "fr % 2"),), words=words_in),
    ]
    stationary = "filter_sram" if df == "ws" else "ifmap_sram"
    streamed = "ifmap_sram" if df == "ws" else "filter_sram"
    if df == "os":
        fold.append(_i("compute", reads=(_a("ifmap_sram", "fr % 2"), _a("filter_sram", "fr % 2")),
                       writes=(_a("ofmap_sram", "fr % 2"),), n=n))  # fmt: skip
    else:
        fold.append(_i("preload", reads=(_a(stationary, "fr % 2"),), writes=(_a("pe_regs", 0),)))
        fold.append(_i("compute", reads=(_a(streamed, "fr % 2"), _a("pe_regs", 0)), writes=(_a("ofmap_sram", "fr % 2"),), n=n))
    fold.append(_i("st_ofmap", reads=(_a("ofmap_sram", "fr % 2"),), words=words_out))
    body = (_loop("fc", col_dim, cols, _loop("fr", row_dim, rows, *fold, period=2)),)
    return LoopNest(shape.name, arch.name, _groups(shape, body), _constants(shape), (("rows", rows), ("cols", cols)),
                    note=f"{df}: fold = {row_dim} over rows x {col_dim} over cols, {n} streamed")  # fmt: skip


# -- Gemmini-like -------------------------------------------------------------------------------------
def _gemmini(shape: LayerShape, arch: Architecture, tiles: Mapping[str, int]) -> LoopNest:
    if shape.kind is LayerKind.VECTOR:  # scratchpad in, accumulator out (Gemmini's store-path functions)
        return _dma_vector(shape, arch, tiles, "mvin", "mvout", "spad", "acc", "vop")
    if shape.kind is not LayerKind.GEMM:
        raise _unsupported(shape, arch)
    dim = int(arch.param("dim"))
    acc_rows = int(arch.param("acc_kb")) * 1024 // (dim * 4)
    ti = int(tiles.get("ti", max(1, acc_rows // 2 // dim)))
    if ti * dim * 2 > acc_rows:
        raise ConfigError(f"gemmini: tile ti={ti} needs {ti * dim * 2} accumulator rows (double buffered), has {acc_rows}")
    rows = int(arch.param("row_granularity")) if "row_granularity" in arch.params else 0
    if rows not in (0, 1):
        raise ConfigError(f"gemmini: row_granularity must be 0 (Gemmini-ISA blocks) or 1 (one compute per row), got {rows}")
    wb, arot = int(tiles.get("wb", 2)), int(tiles.get("arot", 0))
    if wb < 2 or arot not in (0, 1):
        raise ConfigError(f"gemmini: tiles wb={wb}, arot={arot}: wb >= 2 weight-tile buffers, arot 0 or 1")
    # the 8 A-tile buffers follow the wb weight-tile buffers in the scratchpad; they rotate over the row blocks
    # ii, and with arot=1 also over the k steps (a layer with one row block then loads A ahead as well)
    a_buf = f"{wb} + (ii + k) % 8" if arot else f"{wb} + ii % 8"
    if rows:  # one compute per row of A; the accumulator is addressed by row
        acc = f"(i % 2) * {ti * dim} + ii * {dim} + r"
        compute: Item = _loop("r", "ii_size", 1,
                              _i("compute", reads=(_a("spad", a_buf), _a("mesh_weights", "k % 2"), _a("acc", acc)),
                                 writes=(_a("acc", acc),), n=1))  # fmt: skip
        out_rows = tuple(_a("acc", f"(i % 2) * {ti * dim} + io * {dim} + {r}") for r in range(dim))
    else:
        acc = f"(i % 2) * {ti} + ii"
        compute = _i("compute", reads=(_a("spad", a_buf), _a("mesh_weights", "k % 2"), _a("acc", acc)),
                     writes=(_a("acc", acc),), n="ii_size")  # fmt: skip
        out_rows = (_a("acc", f"(i % 2) * {ti} + io"),)
    k_body: tuple[Item, ...] = (
        _i("mvin", writes=(_a("spad", f"k % {wb}"),), words="k_size * j_size"),
        _i("preload", reads=(_a("spad", f"k % {wb}"),), writes=(_a("mesh_weights", "k % 2"),)),
        _loop("ii", "i_size", dim, _i("mvin", writes=(_a("spad", a_buf),), words="ii_size * k_size"), compute,
              period=8),
    )  # fmt: skip
    i_body: tuple[Item, ...] = (
        _loop("k", "window", dim, *k_body, period=wb),
        _loop("io", "i_size", dim, _i("mvout", reads=out_rows, words="io_size * j_size")),
    )
    body = (_loop("j", "filters", dim, _loop("i", "npx", dim * ti, *i_body, period=2)),)
    tiling = (("dim", dim), ("ti", ti)) + ((("wb", wb),) if wb != 2 else ()) + ((("arot", 1),) if arot else ()) \
        + ((("rows_per_compute", 1),) if rows else ())
    return LoopNest(shape.name, arch.name, _groups(shape, body), _constants(shape), tiling)


# -- UltraTrail-like ----------------------------------------------------------------------------------
def _ultratrail(shape: LayerShape, arch: Architecture, tiles: Mapping[str, int]) -> LoopNest:
    a = int(arch.param("array"))
    if shape.kind is LayerKind.GEMM:
        ic_body = (
            _i("ld_w", writes=(_a("weight_regs", "ic % 2"),), words="oc_size * ic_size * taps"),
            _i("conv", reads=(_a("weight_regs", "ic % 2"), _a("fmem", 0), _a("lmem", "oc % 2")),
               writes=(_a("lmem", "oc % 2"),), n="npx", taps="taps"),
        )  # fmt: skip
        oc_body = (_loop("ic", "cin", a, *ic_body, period=2),
                   _i("opu", reads=(_a("lmem", "oc % 2"), _a("bmem", 0)), writes=(_a("fmem", 1),), n="npx"))  # fmt: skip
        body = (_loop("oc", "filters", a, *oc_body, period=2),)
        return LoopNest(shape.name, arch.name, _groups(shape, body), _constants(shape), (("array", a),))
    if shape.op in POOL_OPS:
        body = (_loop("c", "channels", a, _i("pool", reads=(_a("fmem", 0),), writes=(_a("fmem", 1),), n="npx", window="taps")),)
        return LoopNest(shape.name, arch.name, body, _constants(shape), (("array", a),))
    if shape.op is OpKind.ADD:
        body = (_loop("c", "channels", a, _i("add", reads=(_a("fmem", 0),), writes=(_a("fmem", 1),), n="npx")),)
        return LoopNest(shape.name, arch.name, body, _constants(shape), (("array", a),))
    if shape.kind is LayerKind.VECTOR:  # the OPU, feature memory to feature memory; a move is 1 op per element
        _need(arch, "vec", shape)
        ve = _chunk(tiles)
        vec = _i("vec", reads=(_a("fmem", 0),), writes=(_a("fmem", "1 + e % 2"),), n="e_size", k="max(1, taps)")
        return LoopNest(shape.name, arch.name, (_loop("e", "elems", ve, vec, period=2),), _vector_constants(shape),
                        (("array", a), ("ve", ve)), note=f"OPU: {max(1, shape.taps)} operations per output element")
    raise _unsupported(shape, arch)


# -- Plasticine-derived CGRA ----------------------------------------------------------------------------
def _plasticine(shape: LayerShape, arch: Architecture, tiles: Mapping[str, int]) -> LoopNest:
    lanes, pcus = int(arch.param("lanes")), int(arch.param("pcus"))
    slots = 2 * pcus  # PMU buffers: double buffering per PCU
    if shape.kind is LayerKind.GEMM:
        # default rule (ours): spread the output positions over the PCUs, at most 64 per pattern
        px = int(tiles.get("px", max(1, min(64, ceil_div(shape.npx, pcus)))))
        slot = f"(f + p) % {slots}"  # rotating PMU buffers: consecutive patterns use different PCUs' buffers
        pmu_words = int(arch.param("pmus")) * int(arch.param("pmu_kb")) * 1024 * 8 // arch.word_bits
        resident = shape.npx * shape.window <= pmu_words // 2  # ours: keep the (im2col) input resident
        x = "1" if resident else f"2 + {slot}"
        dot = _i("pcu_dot", reads=(_a("pmu", x), _a("pmu", "f % 2")),
                 writes=(_a("pmu", f"{2 + slots} + {slot}"),), n="p_size", k="window")  # fmt: skip
        store = _i("st", reads=(_a("pmu", f"{2 + slots} + {slot}"),), words="p_size * f_size")
        p_body = (dot, store) if resident else (_i("ld", writes=(_a("pmu", x),), words="p_size * window"), dot, store)
        f_body = (_i("ld", writes=(_a("pmu", "f % 2"),), words="f_size * window"), _loop("p", "npx", px, *p_body, period=slots))
        body: tuple[Item, ...] = (_loop("f", "filters", lanes, *f_body, period=slots),)
        if resident:
            body = (_i("ld", writes=(_a("pmu", 1),), words="npx * window"), *body)
        note = "input resident in the PMUs" if resident else "input streamed per pattern"
        return LoopNest(shape.name, arch.name, _groups(shape, body), _constants(shape), (("lanes", lanes), ("px", px)), note)
    if shape.op in POOL_OPS or shape.op in ELEMENTWISE_OPS:
        n = "e_size * taps" if shape.op in POOL_OPS else "e_size"
        n_in = 2 if shape.op in ELEMENTWISE_OPS else 1
        e_body = (
            _i("ld", writes=(_a("pmu", f"e % {slots}"),), words=f"{n} * {n_in}"),
            _i("pcu_map", reads=(_a("pmu", f"e % {slots}"),), writes=(_a("pmu", f"{slots} + e % {slots}"),), n=n),
            _i("st", reads=(_a("pmu", f"{slots} + e % {slots}"),), words="e_size"),
        )  # fmt: skip
        body = (_loop("e", "channels * npx", 1024, *e_body, period=slots),)
        return LoopNest(shape.name, arch.name, body, _constants(shape), (("elements", 1024),))
    if shape.kind is LayerKind.VECTOR:  # one map pattern of k operations per element per chunk
        _need(arch, "pcu_vec", shape)
        ve = _chunk(tiles)
        v_body: list[Item] = [_i("ld", writes=(_a("pmu", f"e % {slots}"),), words="ceil_div(e_size * in_elems, elems)")]
        out = f"e % {slots}"
        if shape.taps:
            v_body.append(_i("pcu_vec", reads=(_a("pmu", f"e % {slots}"),), writes=(_a("pmu", f"{slots} + e % {slots}"),),
                             n="e_size", k="taps"))  # fmt: skip
            out = f"{slots} + e % {slots}"
        v_body.append(_i("st", reads=(_a("pmu", out),), words="e_size"))
        return LoopNest(shape.name, arch.name, (_loop("e", "elems", ve, *v_body, period=slots),), _vector_constants(shape),
                        (("lanes", lanes), ("ve", ve)), note=f"PCU map: {shape.taps} operations per output element")  # fmt: skip
    raise _unsupported(shape, arch)


@dataclass(frozen=True)
class MapperInfo:
    """A mapper and the user-overridable tile names it accepts."""

    name: str
    function: Callable[[LayerShape, Architecture, Mapping[str, int]], LoopNest]
    tile_options: tuple[str, ...]
    supported: frozenset[OpKind]


#: Every operator a layer view exists for (the views and fused activations are free, the rest timed).
_ALL = frozenset(OpKind) - {OpKind.INPUT}

#: Explicit registry: ``Architecture.mapper`` -> mapper.
MAPPERS: dict[str, MapperInfo] = {
    "systolic": MapperInfo("systolic", _systolic, ("ve",), _ALL),
    "gemmini": MapperInfo("gemmini", _gemmini, ("ti", "wb", "arot", "ve"), _ALL),
    "ultratrail": MapperInfo("ultratrail", _ultratrail, ("ve",), _ALL),
    "plasticine": MapperInfo("plasticine", _plasticine, ("px", "ve"), _ALL),
}
