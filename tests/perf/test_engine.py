"""AIDG engine: hand-derived cycle counts, closed-form systolic check, fast == full, bounded memory."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from accelflow.arch import Expr, load_architecture, template
from accelflow.frontends import from_pytorch
from accelflow.mapping import Access, Instr, Loop, LoopNest, layer_shape
from accelflow.perf import LayerPerf, Mode, PerfReport, estimate, estimate_shape, evaluate_nest

HAND = """
name: hand
mapper: systolic
parameters: {lat: 4, occ: 4}
fetch: {name: fetch, issue_width: 1, latency_cycles: 1}
execute_stages:
  - {name: ex, capacity: 1, latency_cycles: 0, functional_units: [alu]}
functional_units:
  - name: alu
    operations:
      op: {latency_cycles: lat, occupancy_cycles: occ}
storages: [{name: regs, size_kb: 1}]
edges: [{src: fetch, dst: ex}]
roofline: {peak_macs_per_cycle: 1}
"""


def _kernel(n: int, reads: str | None = None, writes: str | None = None) -> LoopNest:
    acc_r = (Access("regs", Expr.parse(reads)),) if reads else ()
    acc_w = (Access("regs", Expr.parse(writes)),) if writes else ()
    body = (Loop("i", Expr.parse(n), 1, (Instr("op", acc_r, acc_w),)),)
    return LoopNest("k", "hand", body, ())


def _hand(lat: int, occ: int):
    return load_architecture(HAND.replace("{lat: 4, occ: 4}", f"{{lat: {lat}, occ: {occ}}}"))


@pytest.mark.parametrize("fast", [False, True])
def test_hand_derived_kernels(fast: bool) -> None:
    n = 50
    # not pipelined: fetch 1 cycle, then the unit is busy 4 cycles per instruction
    assert evaluate_nest(_kernel(n), _hand(4, 4), fast).cycles == 1 + 4 * n
    # pipelined (one per cycle), independent instructions: fill + n - 1
    assert evaluate_nest(_kernel(n), _hand(4, 1), fast).cycles == 1 + 4 + (n - 1)
    # pipelined but each instruction reads what the previous wrote (RAW chain): serialised again
    assert evaluate_nest(_kernel(n, "0", "0"), _hand(4, 1), fast).cycles == 1 + 4 * n
    # two alternating registers: dependency distance 2 -> two instructions per 4 cycles
    res = evaluate_nest(_kernel(n, "i % 2", "i % 2"), _hand(4, 1), fast)
    assert res.cycles == 1 + 4 * (n // 2) + 1


def _closed_form(df: str, rows: int, cols: int, npx: int, window: int, filters: int) -> int:
    """SCALE-Sim's stall-free compute cycles (fill and drain included) folded over the array."""
    if df == "ws":
        return math.ceil(window / rows) * math.ceil(filters / cols) * (2 * rows + cols + npx - 2)
    if df == "os":
        return math.ceil(npx / rows) * math.ceil(filters / cols) * (rows + cols + window - 2)
    return math.ceil(window / rows) * math.ceil(npx / cols) * (2 * rows + cols + filters - 2)


SHAPES = [(3, 16, 3, 12, 1), (16, 24, 3, 9, 1), (8, 40, 1, 7, 2), (64, 10, 3, 5, 1)]


@pytest.mark.parametrize("df", ["ws", "os", "is"])
def test_systolic_matches_closed_form(df: str) -> None:
    torch.manual_seed(0)
    for rows, cols in ((8, 8), (16, 4)):
        arch = template("systolic", rows=rows, cols=cols, dataflow=df)
        for cin, cout, k, size, stride in SHAPES:
            g = from_pytorch(nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride)), (cin, size, size))
            shape = layer_shape(g.compute_nodes()[0])
            expected = _closed_form(df, rows, cols, shape.npx, shape.window, shape.filters)
            for mode in (Mode.FULL, Mode.FAST):
                assert estimate_shape(shape, arch, mode).cycles == expected, (df, rows, cols, cin, cout, k, mode)


def test_limited_bandwidth_adds_stalls() -> None:
    g = from_pytorch(nn.Sequential(nn.Conv2d(16, 32, 3)), (16, 12, 12))
    shape = layer_shape(g.compute_nodes()[0])
    free = estimate_shape(shape, template("systolic", rows=8, cols=8), Mode.FULL).cycles
    slow = estimate_shape(shape, template("systolic", rows=8, cols=8, bandwidth_words_per_cycle=1), Mode.FULL)
    assert slow.cycles > free
    assert estimate_shape(shape, template("systolic", rows=8, cols=8, bandwidth_words_per_cycle=1), Mode.FAST).cycles == slow.cycles


def _small_net() -> nn.Module:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 24, 3, padding=1)
            self.dw = nn.Conv2d(24, 24, 3, padding=1, groups=24)
            self.pw = nn.Conv2d(24, 40, 1)
            self.c2 = nn.Conv2d(40, 24, 3, padding=1, stride=2)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(24 * 4 * 4, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.c1(x))
            y = y + self.dw(y)
            y = self.pool(self.c2(self.pw(y)))
            return self.fc(torch.flatten(y, 1))

    return Net()


@pytest.mark.parametrize("name", ["systolic", "gemmini", "ultratrail", "plasticine"])
def test_fast_equals_full_on_every_template(name: str) -> None:
    torch.manual_seed(0)
    g = from_pytorch(_small_net(), (3, 16, 16))
    arch = template(name, **({"rows": 8, "cols": 8} if name == "systolic" else {}))
    full, fast = estimate(g, arch, Mode.FULL), estimate(g, arch, Mode.FAST)
    assert [lp.cycles for lp in fast.layers] == [lp.cycles for lp in full.layers]
    assert full.instructions_evaluated == full.instructions_total
    assert fast.instructions_evaluated <= full.instructions_evaluated
    assert all(lp.cycles > 0 for lp in full.timed()) and not full.skipped
    # pooling and the residual add are timed (vector unit, OPU or PCUs); views and fused ReLUs are free
    kinds = {lp.op: lp.kind.value for lp in full.layers}
    assert kinds["maxpool"] == kinds["add"] == "vector" and kinds["relu"] == kinds["flatten"] == "free"


def test_fast_mode_skips_most_instructions_on_a_big_layer() -> None:
    g = from_pytorch(nn.Sequential(nn.Conv2d(64, 128, 3)), (64, 58, 58))
    shape = layer_shape(g.compute_nodes()[0])
    arch = template("gemmini")
    full, fast = estimate_shape(shape, arch, Mode.FULL), estimate_shape(shape, arch, Mode.FAST)
    assert fast.cycles == full.cycles
    assert fast.instructions_evaluated * 20 < full.instructions_evaluated
    assert 0.3 < full.utilisation <= 1.0


def test_frontier_memory_is_bounded() -> None:
    arch = template("gemmini")
    sizes = []
    for n in (24, 96):
        g = from_pytorch(nn.Sequential(nn.Conv2d(32, 32, 3, padding=1)), (32, n, n))
        nest_shape = layer_shape(g.compute_nodes()[0])
        from accelflow.mapping import map_shape

        res = evaluate_nest(map_shape(nest_shape, arch), arch, fast=False)
        sizes.append((res.instructions_evaluated, res.max_frontier))
    (n_small, f_small), (n_big, f_big) = sizes
    assert n_big > 10 * n_small
    # bounded by the architecture and the mapping's live locations (2 x (10 spad + 2 mesh + 64 acc)),
    # not by the instruction count
    bound = sum(s.capacity for s in (arch.fetch, *arch.stages)) + sum(u.capacity for u in arch.units) + 2 * 76
    assert f_small <= bound and f_big <= bound


def test_reports_add_and_serialise() -> None:
    a = PerfReport(Mode.FAST, (LayerPerf("a", "conv", 10, 5, 2, 0.5, 3, 100),), 0.1, "x")
    b = PerfReport(Mode.FAST, (LayerPerf("b", "linear", 7, 2, 1, 0.25, 2, 10),), 0.2, "x")
    c = a + b
    assert (c.total_cycles, c.instructions_total, c.instructions_evaluated, c.iterations_evaluated) == (17, 7, 5, 3)
    data = json.loads(c.to_json())
    assert set(data) >= {"total_cycles", "mode", "instructions_total", "instructions_evaluated", "iterations_evaluated",
                         "wall_seconds", "layers", "seconds", "non_gemm_share", "bound"}  # fmt: skip
    assert set(data["layers"][0]) >= {"name", "op", "cycles", "instructions", "iterations_evaluated", "utilisation",
                                      "seconds", "bound", "kind"}  # fmt: skip
    assert data["seconds"] == pytest.approx(17 / 1e9) and data["layers"][0]["kind"] == "gemm"
    with pytest.raises(ValueError):
        _ = a + PerfReport(Mode.FULL, (LayerPerf("c", "conv", 1, 1, 1, 0.0),))


def test_ultratrail_conv1d_by_hand() -> None:
    # Conv1d 8->8, 3 taps, length 10: one 8x8 channel tile, n = 8 output positions.
    # ld_w: 8*8*3 words x 8 bit / 512-bit port = 3 cycles + 1 cycle WMEM latency -> done at 4
    # conv: waits for the weights (RAW), n * taps + 2 = 26 cycles -> done at 30
    # opu:  waits for the partial sums (RAW), n + 2 = 10 cycles -> done at 40
    g = from_pytorch(nn.Sequential(nn.Conv1d(8, 8, 3)), (8, 10))
    shape = layer_shape(g.compute_nodes()[0])
    for mode in (Mode.FULL, Mode.FAST):
        assert estimate_shape(shape, template("ultratrail"), mode).cycles == 40


def test_loop_symmetries_of_the_gemmini_mapping() -> None:
    from accelflow.mapping import map_shape
    from accelflow.perf._symmetry import find_symmetry

    g = from_pytorch(nn.Sequential(nn.Conv2d(64, 64, 3, padding=1)), (64, 56, 56))
    arch = template("gemmini")
    nest = map_shape(layer_shape(g.compute_nodes()[0]), arch)
    space = {s.name: i for i, s in enumerate(arch.storages)}
    j_loop = nest.body[0]
    i_loop = j_loop.body[0]
    k_loop = i_loop.body[0]
    ii_loop = k_loop.body[2]
    env = {**nest.env, "j": 0, "j_size": 16, "i": 0, "i_size": 512, "k": 0, "k_size": 16}
    ii = find_symmetry(ii_loop, {**env, "ii_size": 16}, space)
    # acc rows move by one block per iteration; the 8 spad A buffers rotate; nothing else depends on ii
    assert dict(ii.shifts) == {space["acc"]: 1} and not ii.phased and ii.periodic
    assert {a: len(c) for a, (c, _) in ii.cycles[space["spad"]].items()} == {a: 8 for a in range(2, 10)}
    k = find_symmetry(k_loop, env, space)  # spad[k % 2] and mesh_weights[k % 2] swap
    assert set(k.cycles) == {space["spad"], space["mesh_weights"]} and not k.phased
    i = find_symmetry(i_loop, {**nest.env, "j": 0, "j_size": 16, "i_size": 512}, space)  # accumulator halves swap
    assert set(i.cycles) == {space["acc"]} and len(i.cycles[space["acc"]]) == 64 and not i.phased


def test_fast_falls_back_when_the_declared_period_is_wrong() -> None:
    # the address i*i % 5 is neither periodic with the declared period 1 nor a relabelling: evaluated in full
    kernel = _kernel(40, "i * i % 5", "i * i % 5")
    full = evaluate_nest(kernel, _hand(4, 1), False)
    fast = evaluate_nest(kernel, _hand(4, 1), True, maxplus=False)
    assert fast.cycles == full.cycles and fast.instructions_evaluated == 40
    # with max-plus maps each of the 3 distinct bodies (addresses 0, 1, 4) is evaluated at its first
    # occurrence, derived as a map at its second and applied from then on: no fewer iterations, only
    # fewer instruction evaluations
    maps = evaluate_nest(kernel, _hand(4, 1), True)
    assert maps.cycles == full.cycles and maps.instructions_evaluated == 6 and maps.map_applications == 37


def test_kernel_cache_is_exact_and_shares_inner_loops_between_layers() -> None:
    from accelflow.errors import ConfigError
    from accelflow.perf import KernelCache

    arch = template("gemmini")
    shapes = []
    for cin, cout, size in ((64, 64, 56), (64, 128, 56), (128, 64, 28)):
        g = from_pytorch(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1)), (cin, size, size))
        shapes.append(layer_shape(g.compute_nodes()[0]))
    cache = KernelCache(arch)
    alone = [estimate_shape(s, arch, Mode.FAST) for s in shapes]
    shared = [estimate_shape(s, arch, Mode.FAST, cache=cache) for s in shapes]
    full = [estimate_shape(s, arch, Mode.FULL) for s in shapes]
    assert [lp.cycles for lp in shared] == [lp.cycles for lp in alone] == [lp.cycles for lp in full]
    assert sum(lp.instructions_evaluated for lp in shared) < sum(lp.instructions_evaluated for lp in alone)
    with pytest.raises(ConfigError, match="kernel cache belongs"):
        estimate_shape(shapes[0], template("gemmini", dim=8), Mode.FAST, cache=cache)


def test_gemmini_row_granularity_is_exact_and_matches_the_block_model() -> None:
    torch.manual_seed(0)
    g = from_pytorch(_small_net(), (3, 16, 16))
    row, block = template("gemmini", row_granularity=1), template("gemmini")
    full, fast = estimate(g, row, Mode.FULL), estimate(g, row, Mode.FAST)
    assert [lp.cycles for lp in fast.layers] == [lp.cycles for lp in full.layers]
    ref = estimate(g, block, Mode.FULL)
    assert full.instructions_total > 2 * ref.instructions_total
    # same dataflow at a finer abstraction: within 1 % per layer (the front-end issues rows without a cycle each)
    for a, b in zip(full.layers, ref.layers, strict=True):
        assert abs(a.cycles - b.cycles) <= 0.01 * b.cycles, (a.name, a.cycles, b.cycles)
