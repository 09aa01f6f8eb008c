"""AIDG evaluation: one forward pass over the dynamic instructions of a loop nest, keeping a frontier.

Each dynamic instruction passes the objects of its path (fetch, pipeline stages, execute stage, unit,
memory interface). Its node times follow from the edges of the architectural instruction dependency
graph: the path (an object is entered when the previous one is done), structural conflicts (an object
of capacity c is entered by instruction i only after instruction i-c left it; objects are in order),
back-pressure (an instruction leaves a stage only when the next object accepts it) and data
dependencies on on-chip locations (RAW: start after the writer is done; WAR: a write starts after the
earlier readers are done; WAW: after the earlier writer). Program order is a topological order, so
only the frontier is kept: each object's recent exit times and each live location's ready times.

FULL mode evaluates every instruction. FAST mode (ours) snapshots the frontier normalised by the
current fetch time after every loop iteration; when a snapshot repeats (same phase of the loop index),
the iterations in between form a period whose effect is a pure time shift, so the remaining whole
periods are skipped by shifting the frontier, hierarchically at every loop level, and the remaining
iterations and the partial last iteration (the epilogue) are evaluated. Loop entries are memoised on
(phase, sizes, normalised frontier). Every rule is a max or a + of a constant, so a straight-line
segment's effect is a max-plus linear map of the frontier: FAST evaluates a segment normally the first
time, derives its map symbolically the second time (``_maxplus``) and applies it from then on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from accelflow.arch import Architecture, Expr
from accelflow.errors import ConfigError
from accelflow.mapping import Instr, Item, Loop, LoopNest, iteration_sizes
from accelflow.perf import _maxplus
from accelflow.perf._symmetry import Symmetry, find_symmetry, maps_onto

__all__ = ["EngineResult", "KernelCache", "evaluate_nest"]

log = logging.getLogger(__name__)
_RING_KINDS = (_maxplus.SR, _maxplus.UR, _maxplus.MP, _maxplus.MF)

_PRUNE_EVERY = 4096  # instructions between frontier prunes in FULL mode (keeps memory bounded)
_HISTORY = 512  # snapshots remembered per loop level before the history is restarted


@dataclass(frozen=True)
class EngineResult:
    cycles: int
    instructions_evaluated: int
    iterations_evaluated: int
    max_frontier: int  # largest number of frontier entries seen (memory boundedness)
    map_applications: int = 0  # FAST with max-plus maps: segments applied as a map instead of evaluated
    instructions_applied: int = 0  # the dynamic instructions those applications stand for


class _CInstr:
    """An instruction template compiled against the architecture."""

    __slots__ = ("tid", "names", "path", "stage_lat", "unit", "lat", "occ", "mi", "mem_lat", "width",
                 "fields", "reads", "writes", "cache", "sig")  # fmt: skip

    def __init__(self, tid: int, ins: Instr, eng: _Engine) -> None:
        arch = eng.arch
        self.tid = tid
        path = arch.path(ins.op)
        unit = arch.unit(path[-1])
        op = next(o for o in unit.operations if o.name == ins.op)
        self.path = tuple(eng.station[s] for s in path[:-1])
        self.stage_lat = tuple((s, eng.stage_lat[s]) for s in self.path)  # (station, latency) pairs
        self.unit = eng.unit_index[unit.name]
        self.lat, self.occ = op.latency, op.occupancy
        self.fields = ins.fields
        for acc in (*ins.reads, *ins.writes):
            if acc.space not in eng.space:
                raise ConfigError(f"instruction {ins.op}: unknown on-chip space {acc.space!r} on {arch.name}; "
                                  f"known: {sorted(eng.space)}")  # fmt: skip
        self.reads = tuple((eng.space[a.space], a.address) for a in ins.reads)
        self.writes = tuple((eng.space[a.space], a.address) for a in ins.writes)
        self.mi, self.mem_lat, self.width = -1, 0, None
        if unit.memory_interface is not None:
            mi = next(m for m in arch.memory_interfaces if m.name == unit.memory_interface)
            self.mi = eng.iface_index[mi.name]
            is_store = bool(ins.reads) and not ins.writes
            self.mem_lat = mi.write_latency_cycles if is_store else mi.read_latency_cycles
            self.width = mi.port_width_bits
        names: set[str] = set()
        for _, e in self.fields:
            names |= e.names
        for _, e in (*self.reads, *self.writes):
            names |= e.names
        self.names = tuple(sorted(names))
        self.cache: dict[tuple[int, ...], tuple[int, int, int, tuple[int, ...], tuple[int, ...]]] = {}
        self.sig = (self.stage_lat, self.unit, self.mi, self.mem_lat)  # with resolve(): all execute() uses

    def resolve(self, env: Mapping[str, int], word_bits: int) -> tuple[int, int, int, tuple[int, ...], tuple[int, ...]]:
        key = tuple(env[n] for n in self.names)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        fenv = {k: e(env) for k, e in self.fields}
        lat, occ = _ev(self.lat, fenv), _ev(self.occ, fenv)
        xfer = 0
        if self.mi >= 0 and self.width is not None:
            xfer = -(-fenv.get("words", 0) * word_bits // self.width)
        reads = tuple(s + (a(env) << 6) for s, a in self.reads)
        writes = tuple(s + (a(env) << 6) for s, a in self.writes)
        res = (lat, occ, xfer, reads, writes)
        if len(self.cache) < 65536:
            self.cache[key] = res
        return res


def _ev(e: Expr, fenv: Mapping[str, int]) -> int:
    try:
        return e(fenv)
    except ConfigError as exc:
        raise ConfigError(f"latency {e.source!r} needs an instruction field the mapping does not set: {exc}") from None


class _Engine:
    def __init__(self, arch: Architecture, fast: bool, cache: KernelCache, constants: frozenset[str],
                 maxplus: bool = False) -> None:  # fmt: skip
        self.arch, self.fast, self.cache, self.constants, self.maxplus = arch, fast, cache, constants, maxplus
        stages = (arch.fetch, *arch.stages)
        self.station = {s.name: i for i, s in enumerate(stages)}
        self.stage_lat = [s.latency_cycles for s in stages]
        self.unit_index = {u.name: i for i, u in enumerate(arch.units)}
        self.iface_index = {m.name: i for i, m in enumerate(arch.memory_interfaces)}
        self.space = {s.name: i for i, s in enumerate(arch.storages)}
        if len(self.space) > 63:
            raise ConfigError(f"{arch.name}: at most 63 register files/storages are supported")
        self.word_bits = arch.word_bits
        self.s_last = [0] * len(stages)
        self.s_ring: list[deque[int]] = [deque(maxlen=s.capacity) for s in stages]
        self.u_last = [0] * len(arch.units)
        self.u_ring: list[deque[int]] = [deque(maxlen=u.capacity) for u in arch.units]
        self.m_port: list[deque[int]] = [deque(maxlen=m.ports) for m in arch.memory_interfaces]
        self.m_flight: list[deque[int]] = [deque(maxlen=m.max_requests_in_flight) for m in arch.memory_interfaces]
        self.ready: dict[int, int] = {}  # location -> time its last write is done
        self.read: dict[int, int] = {}  # location -> time its last read is done
        self.end = 0
        self.n_instr = 0
        self.n_iter = 0
        self.n_applied = 0
        self.n_applied_instr = 0
        # max-plus ring variables by kind (the lists are never replaced, only their deques updated in place)
        self.ring_groups = dict(zip(_RING_KINDS, (self.s_ring, self.u_ring, self.m_port, self.m_flight), strict=True))
        self.ring_caps = {(kind, i): d.maxlen or 0 for kind, group in self.ring_groups.items()
                          for i, d in enumerate(group)}  # fmt: skip
        self.max_frontier = 0
        self.compiled: dict[int, _CInstr] = {}
        self.info: dict[int, tuple[int, tuple[str, ...], bool]] = {}

    # -- one dynamic instruction ---------------------------------------------------------------------
    def execute(self, ci: _CInstr, env: Mapping[str, int]) -> None:
        lat, occ, xfer, reads, writes = ci.resolve(env, self.word_bits)
        s_last, s_ring = self.s_last, self.s_ring
        t = 0
        prev = -1
        for s, sl in ci.stage_lat:
            e = s_last[s] if s_last[s] > t else t
            r = s_ring[s]
            if len(r) == r.maxlen and r[0] > e:
                e = r[0]
            if prev >= 0:
                s_ring[prev].append(e)  # back-pressure: the previous stage is left when this one is entered
            s_last[s] = e
            t = e + sl
            prev = s
        u = ci.unit
        start = self.u_last[u] if self.u_last[u] > t else t
        ru = self.u_ring[u]
        if len(ru) == ru.maxlen and ru[0] > start:
            start = ru[0]
        ready, read = self.ready, self.read
        for k in reads:  # RAW
            w = ready.get(k)
            if w is not None and w > start:
                start = w
        for k in writes:  # WAR and WAW
            w = read.get(k)
            if w is not None and w > start:
                start = w
            w = ready.get(k)
            if w is not None and w > start:
                start = w
        if ci.mi >= 0:
            pr, fl = self.m_port[ci.mi], self.m_flight[ci.mi]
            x = start
            if len(pr) == pr.maxlen and pr[0] > x:
                x = pr[0]
            if len(fl) == fl.maxlen and fl[0] > x:
                x = fl[0]
            pr.append(x + xfer)
            done = x + xfer + ci.mem_lat + lat
            fl.append(done)
        else:
            done = start + lat
        s_ring[prev].append(start)
        ru.append(start + occ)
        self.u_last[u] = start
        for k in reads:
            if read.get(k, -1) < done:
                read[k] = done
        for k in writes:
            ready[k] = done
        if done > self.end:
            self.end = done
        self.n_instr += 1
        if not self.fast and self.n_instr % _PRUNE_EVERY == 0:
            self.snapshot()

    def rings(self, kind: int) -> list[deque[int]]:
        return self.ring_groups[kind]

    def run_segment(self, seg: list[_CInstr], env: Mapping[str, int]) -> None:
        """FAST with max-plus maps: apply the segment's map if known. A segment seen for the first time is
        evaluated as usual (most segments of some mappings never recur, and deriving a map costs more than
        evaluating); the second time its map is derived symbolically, and from then on only applied."""
        resolved = tuple((ci, ci.resolve(env, self.word_bits)) for ci in seg)
        key = tuple((ci.sig, r) for ci, r in resolved)
        cache = self.cache
        m = cache.maps.get(key)
        if m is None:
            if key not in cache.seen:
                cache.seen.add(key)
                for ci in seg:
                    self.execute(ci, env)
                return
            m = cache.maps[key] = _maxplus.derive(self, resolved)
            self.n_instr += len(seg)
        _maxplus.apply(self, m)
        self.n_applied += 1
        self.n_applied_instr += m.instructions

    # -- frontier --------------------------------------------------------------------------------------
    def now(self) -> int:
        return self.s_last[0]

    def snapshot(self) -> tuple[int, tuple[object, ...]]:
        """Prune entries that can no longer delay anything and return (now, normalised frontier)."""
        t = self.s_last[0]

        def ring(d: deque[int]) -> tuple[int, ...]:
            while d and d[0] <= t:
                d.popleft()
            return tuple(v - t for v in d)

        for k in [k for k, v in self.ready.items() if v <= t]:
            del self.ready[k]
        for k in [k for k, v in self.read.items() if v <= t]:
            del self.read[k]
        state = (
            tuple(v - t if v > t else 0 for v in self.s_last),
            tuple(ring(d) for d in self.s_ring),
            tuple(v - t if v > t else 0 for v in self.u_last),
            tuple(ring(d) for d in self.u_ring),
            tuple(ring(d) for d in self.m_port),
            tuple(ring(d) for d in self.m_flight),
            tuple(sorted((k, v - t) for k, v in self.ready.items())),
            tuple(sorted((k, v - t) for k, v in self.read.items())),
            self.end - t if self.end > t else 0,
        )
        size = len(self.ready) + len(self.read) + sum(len(d) for d in self.s_ring) + sum(len(d) for d in self.u_ring)
        if size > self.max_frontier:
            self.max_frontier = size
        return t, state

    def restore(self, state: tuple[object, ...], t: int) -> None:
        """Set the frontier to a normalised ``state`` placed at time ``t``."""
        s_last, s_ring, u_last, u_ring, m_port, m_flight, ready, read, end = state
        self.s_last = [t + v for v in s_last]  # type: ignore[attr-defined]
        for d, vals in zip(self.s_ring, s_ring, strict=True):  # type: ignore[call-overload]
            d.clear()
            d.extend(t + v for v in vals)
        self.u_last = [t + v for v in u_last]  # type: ignore[attr-defined]
        for group, saved in ((self.u_ring, u_ring), (self.m_port, m_port), (self.m_flight, m_flight)):
            for d, vals in zip(group, saved, strict=True):  # type: ignore[call-overload]
                d.clear()
                d.extend(t + v for v in vals)
        self.ready = {k: t + v for k, v in ready}  # type: ignore[attr-defined]
        self.read = {k: t + v for k, v in read}  # type: ignore[attr-defined]
        self.end = t + end  # type: ignore[operator]

    # -- loop nests ------------------------------------------------------------------------------------
    def run_block(self, block: tuple[Item, ...], env: dict[str, int], ctx: tuple[int, ...]) -> None:
        if self.maxplus:
            seg: list[_CInstr] = []
            for item in block:
                if isinstance(item, Loop):
                    if seg:
                        self.run_segment(seg, env)
                        seg = []
                    self.run_loop_fast(item, env, ctx)
                else:
                    seg.append(self.compile(item))
            if seg:
                self.run_segment(seg, env)
            return
        for item in block:
            if isinstance(item, Loop):
                if self.fast:
                    self.run_loop_fast(item, env, ctx)
                else:
                    self.run_loop_full(item, env, ctx)
            else:
                self.execute(self.compile(item), env)

    def compile(self, item: Instr) -> _CInstr:
        ci = self.compiled.get(id(item))
        if ci is None:
            ci = self.compiled[id(item)] = _CInstr(len(self.compiled), item, self)
        return ci

    def run_loop_full(self, loop: Loop, env: dict[str, int], ctx: tuple[int, ...]) -> None:
        full, tile, rem = iteration_sizes(loop, env)
        innermost = not any(isinstance(it, Loop) for it in loop.body)
        var, svar = loop.var, loop.var + "_size"
        for k, size in [(k, tile) for k in range(full)] + ([(full, rem)] if rem else []):
            env[var], env[svar] = k, size
            self.run_block(loop.body, env, ctx)
            if innermost:
                self.n_iter += 1
        env.pop(var, None)
        env.pop(svar, None)

    def loop_info(self, loop: Loop) -> tuple[int, tuple[str, ...], bool]:
        """(structural token shared by equal loops of all layers, layer constants the loop reads, innermost)."""
        info = self.info.get(id(loop))
        if info is None:
            names: set[str] = set()
            for it in _items(loop):
                if isinstance(it, Loop):
                    names |= it.extent.names
                else:
                    for _, e in it.fields:
                        names |= e.names
                    for a in (*it.reads, *it.writes):
                        names |= a.address.names
            token = self.cache.tokens.setdefault(loop, len(self.cache.tokens))
            innermost = not any(isinstance(it, Loop) for it in loop.body)
            info = self.info[id(loop)] = (token, tuple(sorted(names & self.constants)), innermost)
        return info

    def run_loop_fast(self, loop: Loop, env: dict[str, int], ctx: tuple[int, ...]) -> None:
        """Evaluate ``loop`` reusing whatever is known: its whole effect from this entry frontier, one
        iteration's effect from a frontier, and the periodic steady state (remaining whole periods
        skipped by a time shift). Iterations are compared and evaluated in the frame of the first
        iteration of their phase (``_symmetry``): iteration k = r + m (r = k mod period) is evaluated as
        iteration r on the frontier relabelled by sigma^-m, and the result relabelled back by sigma^m,
        so inner loops see the same frontiers at every outer iteration."""
        cache = self.cache
        full, tile, rem = iteration_sizes(loop, env)
        token, consts, innermost = self.loop_info(loop)
        base = (token, ctx, tuple(env[n] for n in consts))
        t0, s0 = self.snapshot()
        entry_key = (base, full, tile, rem, s0)
        hit = cache.entries.get(entry_key)
        if hit is not None:
            self.restore(hit[0], t0 + hit[1])
            return
        var, svar = loop.var, loop.var + "_size"
        env[svar] = tile
        sym = self.symmetry(loop, env, base, full, tile)
        if not sym.periodic:  # the stream does not repeat as declared: evaluate every iteration
            log.debug("loop %s is not periodic with period %d: evaluated in full", var, loop.period)
            env.pop(svar)
            self.run_loop_full(loop, env, ctx)
            return
        period = loop.period if sym.phased else 1
        frame_id = (base, sym.signature)
        steps = cache.steps
        history: dict[tuple[object, ...], tuple[int, int]] = {}
        t, s, pending = t0, s0, False  # frontier at the start of iteration k; pending: engine not set to it
        k = 0
        while k < full:
            r = k % period
            key = (r, sym.move_state(s, -k))
            seen = history.get(key)
            if seen is not None:
                k_prev, t_prev = seen
                p = k - k_prev
                q = (full - k) // p
                history.clear()
                if q > 0:  # the frontier repeats with period p: skip q whole periods
                    t, s, pending = t + q * (t - t_prev), sym.move_state(s, q * p), True
                    k += q * p
                    continue
            if len(history) >= _HISTORY:
                history.clear()
            history[key] = (k, t)
            step_key = (frame_id, tile, key)
            step = steps.get(step_key)
            if step is not None:  # this iteration was evaluated before from the same (relabelled) frontier
                t, s, pending = t + step[1], sym.move_state(step[0], k), True
            else:
                t1, s1, pending = self.run_step(loop, env, ctx, innermost, r, tile, k - r, sym, t, s, pending)
                steps[step_key] = (sym.move_state(s1, -k), t1 - t)
                t, s = t1, s1
            k += 1
        if rem:  # epilogue: the partial last iteration
            r = full % period
            canonical = self.epilogue_maps(loop, env, base, sym, full, r, rem)
            step_key = (frame_id, -1, rem, r, sym.move_state(s, -full)) if canonical else (base, -2, full, rem, s)
            step = steps.get(step_key)
            if step is not None:
                t, s, pending = t + step[1], (sym.move_state(step[0], full) if canonical else step[0]), True
            else:
                idx, frame = (r, full - r) if canonical else (full, 0)
                t1, s1, pending = self.run_step(loop, env, ctx, innermost, idx, rem, frame, sym, t, s, pending)
                steps[step_key] = (sym.move_state(s1, -full) if canonical else s1, t1 - t)
                t, s = t1, s1
        if pending:
            self.restore(s, t)
        env.pop(var, None)
        env.pop(svar, None)
        cache.entries[entry_key] = (s, t - t0)
        cache.trim()

    def run_step(self, loop: Loop, env: dict[str, int], ctx: tuple[int, ...], innermost: bool, idx: int, size: int,
                 frame: int, sym: Symmetry, t: int, s: tuple[object, ...], pending: bool,
                 ) -> tuple[int, tuple[object, ...], bool]:  # fmt: skip
        """Evaluate iteration ``idx`` (of ``size``) on frontier ``s`` at ``t`` relabelled by sigma^-frame;
        return the time and frontier after it (relabelled back) and whether the engine still needs them set."""
        moved = bool(frame) and bool(sym)
        if pending or moved:
            self.restore(sym.move_state(s, -frame) if moved else s, t)
        env[loop.var], env[loop.var + "_size"] = idx, size
        self.run_block(loop.body, env, (*ctx, idx % loop.period, size))
        if innermost:
            self.n_iter += 1
        t1, s1 = self.snapshot()
        return t1, (sym.move_state(s1, frame) if moved else s1), moved

    def symmetry(self, loop: Loop, env: dict[str, int], base: tuple[object, ...], full: int, tile: int) -> Symmetry:
        key = (base, full, tile)
        found = self.cache.symmetries.get(key)
        if found is None:
            found = self.cache.symmetries[key] = find_symmetry(loop, env, self.space)
        return found

    def epilogue_maps(self, loop: Loop, env: dict[str, int], base: tuple[object, ...], sym: Symmetry, full: int,
                      r: int, rem: int) -> bool:  # fmt: skip
        key = (base, "epilogue", full, r, rem)
        found = self.cache.symmetries.get(key)
        if found is None:
            found = self.cache.symmetries[key] = maps_onto(loop, env, self.space, sym, r, full, rem)  # type: ignore[assignment]
        return bool(found)


def _items(loop: Loop) -> list[Item]:
    out: list[Item] = []
    for it in loop.body:
        out.append(it)
        if isinstance(it, Loop):
            out.extend(_items(it))
    return out


class KernelCache:
    """What FAST mode learnt about loops on one architecture, shared by the layers of a network.

    Keys are structural: the loop as data (equal loops of different layers share a token), the phases
    and tile sizes of the enclosing loops, the layer constants the loop reads and the normalised
    frontier. The instruction stream of a loop is a function of exactly these, so a hit is exact and
    layers with the same inner loops (ResNet's repeated blocks, equal tiles of different layers) reuse
    each other's evaluations. Create one per network evaluation; it only grows up to a bound.
    """

    _MAX = 1 << 15  # entries per table before it is emptied (memory bound; results stay exact)

    def __init__(self, arch: Architecture) -> None:
        self.arch = arch
        self.tokens: dict[Loop, int] = {}
        self.entries: dict[tuple[object, ...], tuple[tuple[object, ...], int]] = {}
        self.steps: dict[tuple[object, ...], tuple[tuple[object, ...], int]] = {}
        self.symmetries: dict[tuple[object, ...], Symmetry | bool] = {}
        self.maps: dict[tuple[object, ...], _maxplus.SegmentMap] = {}  # resolved segment -> its max-plus map
        self.seen: set[tuple[object, ...]] = set()  # segments evaluated once (their map is derived on reuse)

    def trim(self) -> None:
        for table in (self.entries, self.steps, self.maps, self.seen):
            if len(table) > self._MAX:
                table.clear()


def evaluate_nest(nest: LoopNest, arch: Architecture, fast: bool, cache: KernelCache | None = None,
                  maxplus: bool = True) -> EngineResult:  # fmt: skip
    """Latency in cycles of ``nest`` on ``arch`` (FULL: every instruction; FAST: periodic extrapolation).

    ``cache`` (FAST only) carries loop evaluations and segment maps over from earlier layers on the same
    architecture; ``instructions_evaluated`` counts only the instructions this call pushed through the
    engine (concretely, or symbolically to derive a max-plus map). ``maxplus`` (FAST): apply the maps of
    recurring straight-line segments instead of evaluating them (same cycles; ``map_applications`` and
    ``instructions_applied`` say how often and for how many instructions).
    """
    if cache is not None and cache.arch is not arch:
        raise ConfigError(f"kernel cache belongs to {cache.arch.name!r}, not to {arch.name!r}")
    eng = _Engine(arch, fast, cache if cache is not None else KernelCache(arch), frozenset(nest.env), fast and maxplus)
    eng.run_block(nest.body, nest.env, ())
    eng.snapshot()
    return EngineResult(eng.end, eng.n_instr, eng.n_iter, eng.max_frontier, eng.n_applied, eng.n_applied_instr)
