"""Max-plus segment maps: applying a symbolically derived map == evaluating the instructions, on real
instruction streams of every template, from frontiers with full, partly empty and pruned rings."""

from __future__ import annotations

import random

import pytest
from torch import nn

from accelflow.arch import template
from accelflow.frontends import from_pytorch
from accelflow.mapping import layer_shape, map_shape
from accelflow.perf import Mode, _maxplus, estimate_shape
from accelflow.perf._engine import KernelCache, _CInstr, _Engine

ARCHS = {
    "systolic": dict(rows=8, cols=8, dataflow="ws"),
    "gemmini": {},
    "ultratrail": {},
    "plasticine": {},
}


def _stream(arch, nest) -> list[tuple[_CInstr, dict[str, int]]]:
    """The dynamic instructions of ``nest`` in program order (instruction, environment)."""
    eng = _Engine(arch, False, KernelCache(arch), frozenset(nest.env))
    out: list[tuple[_CInstr, dict[str, int]]] = []
    eng.execute = lambda ci, env: out.append((ci, dict(env)))  # type: ignore[method-assign]
    eng.run_block(nest.body, dict(nest.env), ())
    return out


def _frontier(eng: _Engine) -> tuple[object, ...]:
    return (list(eng.s_last), [list(d) for d in eng.s_ring], list(eng.u_last), [list(d) for d in eng.u_ring],
            [list(d) for d in eng.m_port], [list(d) for d in eng.m_flight], dict(eng.ready), dict(eng.read), eng.end)


def _clone(arch, eng: _Engine) -> _Engine:
    out = _Engine(arch, False, KernelCache(arch), frozenset())
    out.s_last, out.u_last, out.end = list(eng.s_last), list(eng.u_last), eng.end
    out.ready, out.read = dict(eng.ready), dict(eng.read)
    for mine, theirs in ((out.s_ring, eng.s_ring), (out.u_ring, eng.u_ring), (out.m_port, eng.m_port),
                         (out.m_flight, eng.m_flight)):  # fmt: skip
        for d, e in zip(mine, theirs, strict=True):
            d.extend(e)
    return out


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_map_equals_evaluation_on_real_streams(name: str) -> None:
    arch = template(name, **ARCHS[name])
    g = from_pytorch(nn.Sequential(nn.Conv2d(24, 40, 3, padding=1)), (24, 20, 20))
    nest = map_shape(layer_shape(g.compute_nodes()[0]), arch)
    stream = _stream(arch, nest)
    rng = random.Random(0)
    checked = 0
    for _ in range(40):
        p = rng.randrange(len(stream))
        length = rng.randint(1, 12)
        eng = _Engine(arch, False, KernelCache(arch), frozenset())
        for ci, env in stream[:p]:
            eng.execute(ci, env)
        if rng.random() < 0.5:
            eng.snapshot()  # prunes rings and locations: empty slots must drop out of the maps
        ref = _clone(arch, eng)
        seg = stream[p:p + length]
        for ci, env in seg:  # compiled instructions only hold indices into the architecture: shareable
            ref.execute(ci, env)
        m = _maxplus.derive(eng, [(ci, ci.resolve(env, eng.word_bits)) for ci, env in seg])
        vals = [_maxplus._value(eng, v) for v in m.inputs]
        assert m.compiled(vals) == m.evaluate(vals)  # the compiled form (used after a few applications)
        m.uses[0] = 0
        _maxplus.apply(eng, m)
        assert _frontier(eng) == _frontier(ref), (name, p, length)
        checked += 1
    assert checked == 40


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_fast_with_maps_equals_full_and_evaluates_each_segment_once(name: str) -> None:
    arch = template(name, **ARCHS[name])
    g = from_pytorch(nn.Sequential(nn.Conv2d(24, 40, 3, padding=1)), (24, 20, 20))
    shape = layer_shape(g.compute_nodes()[0])
    full = estimate_shape(shape, arch, Mode.FULL)
    fast = estimate_shape(shape, arch, Mode.FAST)
    assert fast.cycles == full.cycles
    assert fast.instructions_evaluated <= fast.instructions
    # segments are evaluated at their first occurrence and derived as maps at their second: by the third
    # evaluation with the same cache everything is a known map or a memoised loop
    cache = KernelCache(arch)
    runs = [estimate_shape(shape, arch, Mode.FAST, cache=cache) for _ in range(3)]
    assert [r.cycles for r in runs] == [full.cycles] * 3 and runs[2].instructions_evaluated == 0
