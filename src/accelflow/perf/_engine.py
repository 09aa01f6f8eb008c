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
(phase, sizes, normalised frontier). Both modes run the same code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from accelflow.arch import Architecture, Expr
from accelflow.errors import ConfigError
from accelflow.mapping import Instr, Item, Loop, LoopNest, iteration_sizes

__all__ = ["EngineResult", "evaluate_nest"]

_PRUNE_EVERY = 4096  # instructions between frontier prunes in FULL mode (keeps memory bounded)
_HISTORY = 512  # snapshots remembered per loop level before the history is restarted


@dataclass(frozen=True)
class EngineResult:
    cycles: int
    instructions_evaluated: int
    iterations_evaluated: int
    max_frontier: int  # largest number of frontier entries seen (memory boundedness)


class _CInstr:
    """An instruction template compiled against the architecture."""

    __slots__ = ("tid", "names", "path", "stage_lat", "unit", "lat", "occ", "mi", "mem_lat", "width",
                 "fields", "reads", "writes", "cache")  # fmt: skip

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
    def __init__(self, arch: Architecture, fast: bool) -> None:
        self.arch, self.fast = arch, fast
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
        self.max_frontier = 0
        self.memo: dict[tuple[object, ...], tuple[tuple[object, ...], int, int]] = {}
        self.compiled: dict[int, _CInstr] = {}
        self.stride_cache: dict[int, dict[int, int]] = {}

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
        for item in block:
            if isinstance(item, Loop):
                self.run_loop(item, env, ctx)
            else:
                ci = self.compiled.get(id(item))
                if ci is None:
                    ci = self.compiled[id(item)] = _CInstr(len(self.compiled), item, self)
                self.execute(ci, env)

    def run_loop(self, loop: Loop, env: dict[str, int], ctx: tuple[int, ...]) -> None:
        full, tile, rem = iteration_sizes(loop, env)
        innermost = not any(isinstance(it, Loop) for it in loop.body)
        memo_key = None
        # memoise loop entries only where a hit can save work (tiny innermost loops are cheaper to run)
        if self.fast and (not innermost or full >= 4):
            t0, s0 = self.snapshot()
            memo_key = (id(loop), ctx, full, tile, rem, s0)
            hit = self.memo.get(memo_key)
            if hit is not None:
                state, dt, _ = hit
                self.restore(state, t0 + dt)
                return
        var, svar = loop.var, loop.var + "_size"
        env[svar] = tile
        history: dict[tuple[object, ...], tuple[int, int]] = {}
        strides = self.strides(loop, env) if self.fast and full >= 4 else {}
        k = 0
        while k < full:
            env[var] = k
            self.run_block(loop.body, env, (*ctx, k % loop.period, tile))
            if innermost:
                self.n_iter += 1
            k += 1
            if self.fast and full - k >= 2:  # a jump needs at least one whole remaining period
                t, state = self.snapshot()
                key = (k % loop.period, _translate(state, strides, -k) if strides else state)
                seen = history.get(key)
                if seen is None:
                    if len(history) >= _HISTORY:
                        history.clear()
                    history[key] = (k, t)
                    continue
                k_prev, t_prev = seen
                p = k - k_prev
                q = (full - k) // p
                if q > 0:  # the frontier repeats with period p: skip q whole periods
                    self.restore(_translate(state, strides, q * p) if strides else state, t + q * (t - t_prev))
                    k += q * p
                history.clear()
        if rem:  # epilogue: the partial last iteration
            env[var] = full
            env[svar] = rem
            self.run_block(loop.body, env, (*ctx, full % loop.period, rem))
            if innermost:
                self.n_iter += 1
        env.pop(var, None)
        env.pop(svar, None)
        if memo_key is not None:
            t1, s1 = self.snapshot()
            self.memo[memo_key] = (s1, t1 - t0, 0)


    def strides(self, loop: Loop, env: dict[str, int]) -> dict[int, int]:
        """On-chip spaces whose addresses in ``loop`` all move by the same stride per iteration.

        The fast mode compares frontiers up to this translation (e.g. accumulator rows addressed by
        the loop index), so such loops become periodic too; the stream is translation-equivariant in
        these spaces and periodic (``index % period``) in the others, so a repeat is exact.
        """
        key = id(loop)
        found = self.stride_cache.get(key)
        if found is not None:
            return found
        accesses: list[tuple[int, Expr]] = []
        probe = dict(env)

        def collect(block: tuple[Item, ...]) -> None:
            for it in block:
                if isinstance(it, Loop):
                    probe[it.var], probe[f"{it.var}_size"] = 0, it.tile
                    collect(it.body)
                else:
                    accesses.extend((self.space[a.space], a.address) for a in (*it.reads, *it.writes))

        collect(loop.body)
        per_space: dict[int, set[int | None]] = {}
        full, tile, _ = iteration_sizes(loop, env)
        points = range(min(full, 64))
        for space, expr in accesses:
            if loop.var not in expr.names:
                per_space.setdefault(space, set()).add(0)
                continue
            values = [expr({**probe, loop.var: v, f"{loop.var}_size": tile}) for v in points]
            diffs = {b - a for a, b in zip(values, values[1:], strict=False)}
            per_space.setdefault(space, set()).add(diffs.pop() if len(diffs) == 1 else None)
        found = {s: next(iter(c)) for s, c in per_space.items() if len(c) == 1 and next(iter(c)) not in (0, None)}
        self.stride_cache[key] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]


def _translate(state: tuple[object, ...], strides: dict[int, int], steps: int) -> tuple[object, ...]:
    """Move the locations of the strided spaces by ``steps`` iterations (keys are space + address << 6)."""

    def move(items: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        return tuple(sorted((k + ((strides.get(k & 63, 0) * steps) << 6), v) for k, v in items))

    return (*state[:6], move(state[6]), move(state[7]), state[8])  # type: ignore[arg-type]


def evaluate_nest(nest: LoopNest, arch: Architecture, fast: bool) -> EngineResult:
    """Latency in cycles of ``nest`` on ``arch`` (FULL: every instruction; FAST: periodic extrapolation)."""
    eng = _Engine(arch, fast)
    eng.run_block(nest.body, nest.env, ())
    eng.snapshot()
    return EngineResult(eng.end, eng.n_instr, eng.n_iter, eng.max_frontier)
