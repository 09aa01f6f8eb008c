"""Max-plus maps of straight-line instruction segments (fast mode).

Every timing rule of the engine is a max or a + of a constant: an object is entered at the max of the
previous object's exit, the previous instruction's entry and the exit of the instruction ``capacity``
earlier; a unit starts at the max of that and the RAW/WAR/WAW times of its locations and of the port
and request slots; done = start + constants. No rule picks a minimum (units and ports are FIFO rings,
not "earliest free"). So the frontier after a segment of instructions is a max-plus linear function of
the frontier before it: each new time is ``max_j (x_j + a_j)`` over entry values ``x_j`` (a ring slot
that is empty or a location without a pending time is -inf and drops out). The constant start time 0
of the fetch stage is dominated by the fetch stage's own last time and is left out, so the map is
linear and commutes with a time shift.

``derive`` evaluates a segment ONCE on a symbolic frontier (one variable per entry it touches) and
returns that map; ``apply`` applies it to the engine's concrete frontier without evaluating the
instructions again. A ring of capacity c is the padded view of the engine's deque: slot 0 is the entry
c instructions back, empty (-inf) while fewer than c instructions passed or after pruning, exactly the
engine's ``len(r) == r.maxlen and r[0] > e`` test. Rings are only appended to, so a map records the
values it appends and ``apply`` appends them (the deque drops the oldest as the engine does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelflow.perf._engine import _CInstr, _Engine

__all__ = ["SegmentMap", "derive", "apply"]

# variable kinds: (kind, index[, slot]) for s_last, s_ring slot, u_last, u_ring slot, port slot,
# request slot, ready time of a location, read time of a location, end
SL, SR, UL, UR, MP, MF, RD, RR, END = range(9)
Var = tuple[int, ...]
Form = dict[Var, int]  # max over (variable + offset)
Terms = tuple[tuple[int, int], ...]  # (input position, offset)
Resolved = tuple[int, int, int, tuple[int, ...], tuple[int, ...]]


_NEG = -(1 << 62)  # -inf for an absent entry: far below any time plus any offset


_COMPILE_AFTER = 8  # applications after which a map is compiled to one function (compiling costs ~20 uses)


@dataclass(frozen=True)
class SegmentMap:
    """The max-plus map of one segment: entry values read, scalars set, values appended to rings."""

    inputs: tuple[Var, ...]
    scalars: tuple[tuple[Var, Terms], ...]  # (target: s_last/u_last/ready/read/end, new value)
    rings: tuple[tuple[int, int, tuple[Terms, ...]], ...]  # (kind, ring index, appended values in order)
    instructions: int
    uses: list[int] = field(default_factory=lambda: [0], compare=False)  # applications so far

    @cached_property
    def outputs(self) -> tuple[Terms, ...]:
        return tuple(ts for _, ts in self.scalars) + tuple(ts for _, _, app in self.rings for ts in app)

    @cached_property
    def compiled(self) -> Callable[[list[int]], tuple[int, ...]]:
        """All new values (scalars, then ring appends) from the entry values, as one compiled function.

        The source is generated from integers only (input positions and offsets), so compiling it is
        safe; it runs several times faster than interpreting the terms."""
        code = compile(f"lambda v: ({', '.join(_expr(ts) for ts in self.outputs)},)", "<max-plus map>", "eval")
        return eval(code, {"max": max})  # type: ignore[no-any-return]

    def evaluate(self, vals: list[int]) -> tuple[int, ...]:
        self.uses[0] += 1
        if self.uses[0] > _COMPILE_AFTER:
            return self.compiled(vals)
        return tuple(max([vals[p] + o for p, o in ts]) for ts in self.outputs)


def _expr(ts: Terms) -> str:
    parts = [f"v[{p}]" + (f"+{o}" if o > 0 else f"-{-o}" if o < 0 else "") for p, o in ts]
    return parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"


def _mx(a: Form | None, b: Form | None) -> Form | None:
    if a is None:
        return b
    if b is None:
        return a
    out = dict(a)
    for v, o in b.items():
        if out.get(v, o - 1) < o:
            out[v] = o
    return out


def _add(a: Form, c: int) -> Form:
    return {v: o + c for v, o in a.items()} if c else a


class _Sym:
    """A frontier whose times are max-plus forms over the entry frontier, created on first touch."""

    def __init__(self, caps: dict[tuple[int, int], int]) -> None:
        self.caps = caps
        self.scalar: dict[Var, Form] = {}
        self.appended: dict[tuple[int, int], list[Form]] = {}

    def get(self, var: Var) -> Form:
        f = self.scalar.get(var)
        return {var: 0} if f is None else f

    def set(self, var: Var, f: Form) -> None:
        self.scalar[var] = f

    def oldest(self, kind: int, i: int) -> Form:
        """Slot 0 of the ring after the appends so far: an entry slot shifted down, or an appended value."""
        a = self.appended.get((kind, i))
        n = 0 if a is None else len(a)
        cap = self.caps[kind, i]
        return {(kind, i, n): 0} if n < cap else a[n - cap]  # type: ignore[index]

    def append(self, kind: int, i: int, f: Form) -> None:
        self.appended.setdefault((kind, i), []).append(f)


def derive(eng: _Engine, seg: Sequence[tuple[_CInstr, Resolved]]) -> SegmentMap:
    """Evaluate ``seg`` once on a symbolic frontier: the same rules as ``_Engine.execute``, on forms."""
    sym = _Sym(eng.ring_caps)
    for ci, (lat, occ, xfer, reads, writes) in seg:
        t: Form | None = None  # the engine's t = 0 is dominated by the fetch stage's last time
        prev = -1
        for s, sl in ci.stage_lat:
            e = _mx(_mx(sym.get((SL, s)), t), sym.oldest(SR, s))
            assert e is not None
            if prev >= 0:
                sym.append(SR, prev, e)
            sym.set((SL, s), e)
            t = _add(e, sl)
            prev = s
        u = ci.unit
        start = _mx(_mx(sym.get((UL, u)), t), sym.oldest(UR, u))
        for k in reads:  # RAW
            start = _mx(start, sym.get((RD, k)))
        for k in writes:  # WAR and WAW
            start = _mx(_mx(start, sym.get((RR, k))), sym.get((RD, k)))
        assert start is not None
        if ci.mi >= 0:
            x = _mx(_mx(start, sym.oldest(MP, ci.mi)), sym.oldest(MF, ci.mi))
            assert x is not None
            sym.append(MP, ci.mi, _add(x, xfer))
            done = _add(x, xfer + ci.mem_lat + lat)
            sym.append(MF, ci.mi, done)
        else:
            done = _add(start, lat)
        sym.append(SR, prev, start)
        sym.append(UR, u, _add(start, occ))
        sym.set((UL, u), start)
        for k in reads:
            f = _mx(sym.get((RR, k)), done)
            assert f is not None
            sym.set((RR, k), f)
        for k in writes:
            sym.set((RD, k), done)
        f = _mx(sym.get((END,)), done)
        assert f is not None
        sym.set((END,), f)
    inputs: dict[Var, int] = {}

    def terms(f: Form) -> Terms:
        return tuple((inputs.setdefault(v, len(inputs)), o) for v, o in f.items())

    scalars = tuple((var, terms(f)) for var, f in sorted(sym.scalar.items()) if f != {var: 0})
    rings = tuple((kind, i, tuple(terms(f) for f in fs[-eng.ring_caps[kind, i]:]))
                  for (kind, i), fs in sorted(sym.appended.items()))  # fmt: skip
    return SegmentMap(tuple(inputs), scalars, rings, len(seg))


def apply(eng: _Engine, m: SegmentMap) -> None:
    """Set the engine's frontier to the image of its current frontier under ``m``."""
    vals = [_value(eng, v) for v in m.inputs]
    new = m.evaluate(vals)
    # every new time depends on the fetch stage's last time, which is always set: never -inf
    assert min(new) > _NEG // 2, "max-plus map produced an undefined time"
    pos = 0
    for var, _ in m.scalars:
        kind, val = var[0], new[pos]
        pos += 1
        if kind == SL:
            eng.s_last[var[1]] = val
        elif kind == UL:
            eng.u_last[var[1]] = val
        elif kind == RD:
            eng.ready[var[1]] = val
        elif kind == RR:
            eng.read[var[1]] = val
        else:
            eng.end = val
    for kind, i, appended in m.rings:
        eng.rings(kind)[i].extend(new[pos:pos + len(appended)])
        pos += len(appended)


def _value(eng: _Engine, var: Var) -> int:
    kind = var[0]
    if kind == SL:
        return eng.s_last[var[1]]
    if kind == UL:
        return eng.u_last[var[1]]
    if kind == RD:
        return eng.ready.get(var[1], _NEG)
    if kind == RR:
        return eng.read.get(var[1], _NEG)
    if kind == END:
        return eng.end
    d = eng.rings(kind)[var[1]]
    j = var[2] - (d.maxlen or 0) + len(d)  # padded view: the first maxlen - len slots are empty
    return d[j] if j >= 0 else _NEG
