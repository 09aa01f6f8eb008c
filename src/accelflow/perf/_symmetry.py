"""Relabellings of on-chip locations under which one iteration of a loop maps onto the next (fast mode).

If every access of iteration ``k + 1`` of a loop is the image under a bijection ``sigma`` of the matching
access of iteration ``k`` (e.g. ``acc[(i % 2) * 32 + ii]`` moves by +1 per ``ii``; ``spad[2 + ii % 8]``
rotates over 8 buffers; ``spad[k % 2]`` swaps two), and nothing else of the instruction stream depends
on the index, then the dependency-graph evaluation is equivariant: evaluating iteration ``k`` from
frontier ``S`` gives ``sigma^k`` of evaluating iteration 0 from ``sigma^-k S`` (the engine only compares
locations for equality). The fast mode therefore compares frontiers in the frame of iteration 0, which
makes such loops periodic with period 1 instead of the buffer rotation, and lets one iteration's
evaluation be reused at every index. ``sigma`` is found numerically by evaluating the addresses of the
loop body at consecutive indices (all inner-loop indices the address depends on included); spaces
where no bijection fits keep the phase ``index % period`` in the key, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from accelflow.arch import Expr
from accelflow.mapping import Instr, Item, Loop, iteration_sizes

__all__ = ["Symmetry", "NO_SYMMETRY", "find_symmetry", "maps_onto"]

_SAMPLES = 64  # consecutive indices of the loop whose addresses are compared
_CAP = 8192  # most addresses enumerated per access and index before giving up on a space

Items = tuple[tuple[int, int], ...]  # (location key = space + address << 6, normalised time), sorted


@dataclass(frozen=True)
class Symmetry:
    """Per-space address maps of one loop iteration; ``phased``: the stream also depends on index % period."""

    shifts: Mapping[int, int] = field(default_factory=dict)  # space -> address stride per iteration
    cycles: Mapping[int, Mapping[int, tuple[tuple[int, ...], int]]] = field(default_factory=dict)
    phased: bool = True
    periodic: bool = True  # what the relabelling does not explain repeats with the declared period

    def __bool__(self) -> bool:
        return bool(self.shifts or self.cycles)

    @cached_property
    def signature(self) -> tuple[object, ...]:
        """Hashable identity: memo entries made in different frames must not be mixed."""
        cycles = tuple(sorted((space, tuple(sorted({c for c, _ in perm.values()}))) for space, perm in self.cycles.items()))
        return (tuple(sorted(self.shifts.items())), cycles, self.phased)

    def image(self, space: int, address: int, steps: int) -> int:
        """``sigma^steps`` of one address of ``space``."""
        d = self.shifts.get(space)
        if d is not None:
            return address + d * steps
        hit = self.cycles.get(space, {}).get(address)
        if hit is None:
            return address
        cyc, pos = hit
        return cyc[(pos + steps) % len(cyc)]

    def move(self, items: Items, steps: int) -> Items:
        """Apply ``sigma^steps`` to the locations of ``items`` (a frontier's ready or read times)."""
        if not steps or not self:
            return items
        shifts, cycles = self.shifts, self.cycles
        out = []
        for key, value in items:
            space = key & 63
            d = shifts.get(space)
            if d is not None:
                key += (d * steps) << 6
            else:
                perm = cycles.get(space)
                if perm is not None:
                    hit = perm.get(key >> 6)
                    if hit is not None:
                        cyc, pos = hit
                        key = space + (cyc[(pos + steps) % len(cyc)] << 6)
            out.append((key, value))
        out.sort()
        return tuple(out)

    def move_state(self, state: tuple[object, ...], steps: int) -> tuple[object, ...]:
        """Apply ``sigma^steps`` to a normalised frontier (its ready and read times carry locations)."""
        if not steps or not self:
            return state
        return (*state[:6], self.move(state[6], steps), self.move(state[7], steps), state[8])  # type: ignore[arg-type]


NO_SYMMETRY = Symmetry()


def _walk(block: tuple[Item, ...], path: tuple[Loop, ...]) -> Iterator[tuple[Instr | Loop, tuple[Loop, ...]]]:
    for it in block:
        yield it, path
        if isinstance(it, Loop):
            yield from _walk(it.body, (*path, it))


def _values(expr: Expr, path: tuple[Loop, ...], env: dict[str, int]) -> list[int] | None:
    """Addresses of ``expr`` over the inner-loop indices it depends on (in a fixed order), or None if too many."""
    needed = set(expr.names)
    for lp in path:
        needed |= lp.extent.names
    out: list[int] = []

    def rec(j: int) -> bool:
        if len(out) > _CAP:
            return False
        if j == len(path):
            out.append(expr(env))
            return True
        lp = path[j]
        full, tile, rem = iteration_sizes(lp, env)
        sizes = [tile] * full + ([rem] if rem else [])
        if lp.var not in needed and f"{lp.var}_size" not in needed:
            sizes = sizes[:1]
        for idx, size in enumerate(sizes):
            env[lp.var], env[f"{lp.var}_size"] = idx, size
            if not rec(j + 1):
                return False
        return True

    return out if rec(0) else None


def find_symmetry(loop: Loop, env: Mapping[str, int], space_index: Mapping[str, int]) -> Symmetry:
    """The per-iteration relabelling of ``loop`` at the sizes in ``env`` (its own size = its tile).

    Also checks on the sampled indices that whatever the relabelling does not explain repeats with
    the loop's declared ``period`` (``periodic``); the fast mode relies on both.
    """
    full, tile, _ = iteration_sizes(loop, env)
    n = min(full, _SAMPLES)
    if n < 2:
        return NO_SYMMETRY
    var, period = loop.var, loop.period

    def series(expr: Expr, path: tuple[Loop, ...]) -> list[list[int]] | None:
        out: list[list[int]] = []
        for v in range(n):
            vals = _values(expr, path, {**env, var: v, f"{var}_size": tile})
            if vals is None or (out and len(vals) != len(out[0])):
                return None
            out.append(vals)
        return out

    def repeats(ser: list[list[int]] | None) -> bool:
        return ser is not None and all(ser[v] == ser[v - period] for v in range(period, n))

    phased, periodic = False, True
    moved: dict[int, list[list[list[int]] | None]] = {}  # space -> series of its index-dependent accesses
    fixed: dict[int, set[int] | None] = {}  # space -> addresses of its index-independent accesses
    for it, path in _walk(loop.body, ()):
        outer_dep = any(var in lp.extent.names for lp in path)
        if isinstance(it, Loop):
            if var in it.extent.names:
                phased = True
                periodic &= repeats(series(it.extent, path))
            continue
        for _, e in it.fields:
            if outer_dep or var in e.names:
                phased = True
                periodic &= repeats(series(e, path))
        for acc in (*it.reads, *it.writes):
            space = space_index[acc.space]
            if outer_dep or var in acc.address.names:
                moved.setdefault(space, []).append(series(acc.address, path))
            else:
                vals = _values(acc.address, path, {**env, var: 0, f"{var}_size": tile})
                known = fixed.setdefault(space, set())
                if vals is None or known is None:
                    fixed[space] = None
                else:
                    known.update(vals)
    shifts: dict[int, int] = {}
    cycles: dict[int, dict[int, tuple[tuple[int, ...], int]]] = {}
    for space, sers in moved.items():
        found = None
        known = fixed.get(space, set())
        if known is not None and all(ser is not None for ser in sers):
            pairs = [p for ser in sers if ser for a, b in zip(ser, ser[1:], strict=False) for p in zip(a, b, strict=True)]
            found = _fit(pairs, known)
        if found is None:
            phased = True
            periodic &= all(repeats(ser) for ser in sers)
        elif isinstance(found, int):
            shifts[space] = found
        else:
            cycles[space] = found
    return Symmetry(shifts, cycles, phased, periodic)


def _fit(pairs: list[tuple[int, int]], fixed: set[int]) -> int | dict[int, tuple[tuple[int, ...], int]] | None:
    """A translation (stride) or a permutation (address -> (cycle, position)) mapping each a to b, or None."""
    diffs = {b - a for a, b in pairs}
    if len(diffs) == 1 and not fixed and 0 not in diffs:
        return diffs.pop()
    f: dict[int, int] = {}
    for a, b in pairs:
        if f.setdefault(a, b) != b:
            return None
    image = set(f.values())
    if len(image) != len(f) or image != set(f) or fixed & {a for a, b in f.items() if a != b}:
        return None  # not a bijection of the moved addresses onto themselves
    out: dict[int, tuple[tuple[int, ...], int]] = {}
    for start in f:
        if start in out:
            continue
        cyc = [start]
        while f[cyc[-1]] != start:
            cyc.append(f[cyc[-1]])
        frozen = tuple(cyc)
        for pos, a in enumerate(frozen):
            out[a] = (frozen, pos)
    return out


def maps_onto(loop: Loop, env: Mapping[str, int], space_index: Mapping[str, int], sym: Symmetry,
              src: int, dst: int, size: int) -> bool:  # fmt: skip
    """True if iteration ``dst`` of ``loop`` (of ``size``) is ``sigma^(dst - src)`` of iteration ``src``
    (same size): same fields and inner-loop extents, relabelled addresses. Checked by enumeration."""
    var, svar = loop.var, f"{loop.var}_size"
    at_src, at_dst = {**env, var: src, svar: size}, {**env, var: dst, svar: size}

    def both(expr: Expr, path: tuple[Loop, ...]) -> tuple[list[int], list[int]] | None:
        a, b = _values(expr, path, dict(at_src)), _values(expr, path, dict(at_dst))
        return None if a is None or b is None or len(a) != len(b) else (a, b)

    for it, path in _walk(loop.body, ()):
        exprs = [it.extent] if isinstance(it, Loop) else [e for _, e in it.fields]
        for e in exprs:
            pair = both(e, path)
            if pair is None or pair[0] != pair[1]:
                return False
        if isinstance(it, Loop):
            continue
        for acc in (*it.reads, *it.writes):
            space = space_index[acc.space]
            pair = both(acc.address, path)
            if pair is None or [sym.image(space, a, dst - src) for a in pair[0]] != pair[1]:
                return False
    return True
