"""Frozen, typed architecture objects built from a validated :class:`ArchitectureSpec`.

Building resolves parameter expressions, checks every cross reference (edges, dispatch lists, memory
interfaces) and precomputes, for each operation, the instruction's path from the fetch stage through
the pipeline and execute stages to the unit that executes it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from accelflow.arch._expr import Expr, ExprError
from accelflow.arch._schema import ArchitectureSpec, EdgeKind, IntOrExpr
from accelflow.errors import ConfigError

__all__ = ["ArchError", "Stage", "Operation", "Unit", "MemoryInterface", "Storage", "Architecture", "build"]


class ArchError(ConfigError):
    """An architecture description is invalid; names the file, the object and the field."""

    def __init__(self, source: str, obj: str, fld: str, message: str) -> None:
        self.source, self.obj, self.field = source, obj, fld
        super().__init__(f"{source}: {obj}: field {fld!r}: {message}")


@dataclass(frozen=True)
class Stage:
    """Fetch, pipeline or execute stage: ``capacity`` instructions, ``latency_cycles`` each."""

    name: str
    capacity: int
    latency_cycles: int
    dispatches_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    name: str
    latency: Expr  # over instruction fields (parameters already substituted)
    occupancy: Expr  # initiation interval of the unit for this operation


@dataclass(frozen=True)
class Unit:
    """Functional unit (``memory_interface`` None) or memory access unit."""

    name: str
    capacity: int
    operations: tuple[Operation, ...]
    memory_interface: str | None = None
    macs_per_cycle: int = 0


@dataclass(frozen=True)
class MemoryInterface:
    name: str
    read_latency_cycles: int
    write_latency_cycles: int
    port_width_bits: int | None  # None = unlimited bandwidth
    ports: int
    max_requests_in_flight: int
    banks: int


@dataclass(frozen=True)
class Storage:
    """A location space whose addresses carry dependencies (register file or on-chip storage)."""

    name: str
    size_bytes: int
    banks: int


@dataclass(frozen=True)
class Architecture:
    """A validated accelerator description. Compare and hash by value; build with :func:`build`."""

    name: str
    mapper: str
    description: str
    parameters: tuple[tuple[str, int | float | str | None], ...]
    word_bits: int
    fetch: Stage
    stages: tuple[Stage, ...]
    units: tuple[Unit, ...]
    storages: tuple[Storage, ...]
    memory_interfaces: tuple[MemoryInterface, ...]
    edges: tuple[tuple[str, str, EdgeKind], ...]
    paths: tuple[tuple[str, tuple[str, ...]], ...]  # operation -> stages..., unit
    peak_macs_per_cycle: int
    dram_bytes_per_cycle: int | None
    peak_vector_ops_per_cycle: int = 1  # vector unit's peak for the roofline (operations per cycle)
    clock_mhz: float = 1000.0  # clock for seconds = cycles / (clock_mhz * 1e6)
    source: str = field(default="<python>", compare=False)

    def param(self, name: str) -> Any:
        for key, value in self.parameters:
            if key == name:
                return value
        raise ConfigError(f"architecture {self.name!r} has no parameter {name!r}; has {[k for k, _ in self.parameters]}")

    @property
    def params(self) -> dict[str, int | float | str | None]:
        return dict(self.parameters)

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(op for op, _ in self.paths)

    def path(self, operation: str) -> tuple[str, ...]:
        for op, p in self.paths:
            if op == operation:
                return p
        raise ConfigError(f"operation {operation!r} is not supported on {self.name}; supported: {list(self.operations)}")

    def unit(self, name: str) -> Unit:
        return next(u for u in self.units if u.name == name)

    def summary(self) -> str:
        lines = [f"architecture {self.name} (mapper {self.mapper}) {dict(self.parameters)}"]
        for op, p in self.paths:
            lines.append(f"  {op}: {' -> '.join(p)}")
        return "\n".join(lines)


def _pydantic_error(exc: ValidationError, data: Any, source: str) -> ArchError:
    err = exc.errors()[0]
    loc = list(err["loc"])
    obj = "architecture"
    if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(data, dict):
        items = data.get(str(loc[0])) or []
        name = items[loc[1]].get("name") if loc[1] < len(items) and isinstance(items[loc[1]], dict) else None
        obj = f"{loc[0]}[{loc[1]}]" + (f" ({name})" if name else "")
        loc = loc[2:]
    elif loc:
        obj = f"architecture {data.get('name', '?')!r}" if isinstance(data, dict) else obj
    fld = ".".join(str(p) for p in loc) or "(object)"
    return ArchError(source, obj, fld, err["msg"])


class _Resolver:
    def __init__(self, params: Mapping[str, int | float | str | None], source: str) -> None:
        self.env = {k: v for k, v in params.items() if isinstance(v, int) and not isinstance(v, bool)}
        self.source = source

    def int(self, value: IntOrExpr | float | None, obj: str, fld: str, minimum: int = 0) -> int:
        try:
            result = int(value) if isinstance(value, (int, float)) else Expr.parse(str(value), fld)(self.env)
        except ExprError as exc:
            raise ArchError(self.source, obj, fld, str(exc)) from None
        if result < minimum:
            raise ArchError(self.source, obj, fld, f"must be >= {minimum}, got {result}")
        return result

    def expr(self, value: IntOrExpr, obj: str, fld: str) -> Expr:
        try:
            return Expr.parse(value, fld).bind(self.env, fld)
        except ExprError as exc:
            raise ArchError(self.source, obj, fld, str(exc)) from None


def build(data: Any, source: str = "<python>") -> Architecture:
    """Validate raw data (parsed YAML or a dict) and build the frozen :class:`Architecture`."""
    if not isinstance(data, dict):
        raise ArchError(source, "architecture", "(document)", f"expected a mapping, got {type(data).__name__}")
    try:
        spec = ArchitectureSpec.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(exc, data, source) from None
    r = _Resolver(spec.parameters, source)
    fetch = Stage(spec.fetch.name, spec.fetch.issue_width, r.int(spec.fetch.latency_cycles, "fetch", "latency_cycles"))
    stages: list[Stage] = []
    for i, s in enumerate(spec.pipeline_stages):
        obj = f"pipeline_stages[{i}] ({s.name})"
        stages.append(Stage(s.name, r.int(s.capacity, obj, "capacity", 1), r.int(s.latency_cycles, obj, "latency_cycles")))
    for i, e in enumerate(spec.execute_stages):
        obj = f"execute_stages[{i}] ({e.name})"
        stages.append(
            Stage(e.name, r.int(e.capacity, obj, "capacity", 1), r.int(e.latency_cycles, obj, "latency_cycles"),
                  tuple(e.functional_units))
        )  # fmt: skip
    interfaces = []
    for i, m in enumerate(spec.memory_interfaces):
        obj = f"memory_interfaces[{i}] ({m.name})"
        width = None if m.port_width_bits is None else r.int(m.port_width_bits, obj, "port_width_bits", 1)
        interfaces.append(
            MemoryInterface(m.name, r.int(m.read_latency_cycles, obj, "read_latency_cycles"),
                            r.int(m.write_latency_cycles, obj, "write_latency_cycles"), width,
                            r.int(m.ports, obj, "ports", 1), r.int(m.max_requests_in_flight, obj, "max_requests_in_flight", 1),
                            r.int(m.banks, obj, "banks", 1))
        )  # fmt: skip
    iface_names = {m.name for m in interfaces}
    units: list[Unit] = []
    for group, specs in (("functional_units", spec.functional_units), ("memory_access_units", spec.memory_access_units)):
        for i, u in enumerate(specs):
            obj = f"{group}[{i}] ({u.name})"
            mi = getattr(u, "memory_interface", None)
            if mi is not None and mi not in iface_names:
                raise ArchError(source, obj, "memory_interface", f"unknown memory interface {mi!r}; known: {sorted(iface_names)}")
            ops = tuple(
                Operation(op, r.expr(o.latency_cycles, obj, f"operations.{op}.latency_cycles"),
                          r.expr(o.latency_cycles if o.occupancy_cycles is None else o.occupancy_cycles, obj,
                                 f"operations.{op}.occupancy_cycles"))
                for op, o in u.operations.items()
            )  # fmt: skip
            units.append(Unit(u.name, r.int(u.capacity, obj, "capacity", 1), ops, mi, r.int(u.macs_per_cycle, obj, "macs_per_cycle")))
    storages = []
    for i, f in enumerate(spec.register_files):
        obj = f"register_files[{i}] ({f.name})"
        storages.append(Storage(f.name, r.int(f.registers, obj, "registers", 1) * r.int(f.width_bits, obj, "width_bits", 1) // 8, 1))
    for i, s in enumerate(spec.storages):
        obj = f"storages[{i}] ({s.name})"
        kb = s.size_kb if isinstance(s.size_kb, (int, float)) else r.int(s.size_kb, obj, "size_kb")
        storages.append(Storage(s.name, int(kb * 1024), r.int(s.banks, obj, "banks", 1)))
    names: dict[str, str] = {}
    for kind, objs in (("stage", [fetch, *stages]), ("unit", units), ("storage", storages), ("memory interface", interfaces)):
        for o in objs:
            if o.name in names:
                raise ArchError(source, f"{kind} {o.name!r}", "name", f"duplicate name (also a {names[o.name]})")
            names[o.name] = kind
    unit_names = {u.name for u in units}
    for st in stages:
        for u in st.dispatches_to:
            if u not in unit_names:
                raise ArchError(source, f"execute stage {st.name!r}", "functional_units", f"unknown unit {u!r}; known: {sorted(unit_names)}")
    edges = []
    for i, e in enumerate(spec.edges):
        for end in ("src", "dst"):
            if getattr(e, end) not in names:
                raise ArchError(source, f"edges[{i}]", end, f"unknown object {getattr(e, end)!r}; known: {sorted(names)}")
        edges.append((e.src, e.dst, e.kind))
    paths = _paths(source, fetch, stages, units, edges)
    for u in units:
        if u.memory_interface and (u.name, u.memory_interface, EdgeKind.DATA) not in edges:
            raise ArchError(source, f"memory access unit {u.name!r}", "memory_interface",
                            f"no data edge {u.name} -> {u.memory_interface} in 'edges'")  # fmt: skip
    bw = spec.roofline.dram_bytes_per_cycle
    peak = r.int(spec.roofline.peak_macs_per_cycle, "roofline", "peak_macs_per_cycle", 1)
    vpeak = spec.roofline.peak_vector_ops_per_cycle
    return Architecture(
        name=spec.name, mapper=spec.mapper, description=spec.description,
        parameters=tuple(spec.parameters.items()), word_bits=spec.word_bits, fetch=fetch, stages=tuple(stages),
        units=tuple(units), storages=tuple(storages), memory_interfaces=tuple(interfaces), edges=tuple(edges),
        paths=paths, peak_macs_per_cycle=peak,
        dram_bytes_per_cycle=None if bw is None else r.int(bw, "roofline", "dram_bytes_per_cycle", 1),
        peak_vector_ops_per_cycle=peak if vpeak is None else r.int(vpeak, "roofline", "peak_vector_ops_per_cycle", 1),
        clock_mhz=_clock(spec, r, source), source=source,
    )  # fmt: skip


def _clock(spec: ArchitectureSpec, r: _Resolver, source: str) -> float:
    value = spec.clock_mhz
    if isinstance(value, str):
        param = spec.parameters.get(value.strip(), "")
        value = float(param) if isinstance(param, int | float) else r.int(value, "architecture", "clock_mhz", 1)
    if not value > 0:
        raise ArchError(source, "architecture", "clock_mhz", f"must be a positive number of MHz, got {value}")
    return float(value)


def _paths(
    source: str, fetch: Stage, stages: list[Stage], units: list[Unit], edges: list[tuple[str, str, EdgeKind]]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    succ: dict[str, list[str]] = {}
    for s, d, k in edges:
        if k is EdgeKind.INSTRUCTION:
            succ.setdefault(s, []).append(d)
    for st in stages:
        for u in st.dispatches_to:
            if u not in succ.get(st.name, []):
                succ.setdefault(st.name, []).append(u)
    # breadth-first search from the fetch stage gives each object's shortest instruction path
    prev: dict[str, str | None] = {fetch.name: None}
    todo = deque([fetch.name])
    while todo:
        cur = todo.popleft()
        for nxt in succ.get(cur, []):
            if nxt not in prev:
                prev[nxt] = cur
                todo.append(nxt)
    owner: dict[str, str] = {}
    result = []
    for u in units:
        for op in u.operations:
            if op.name in owner:
                raise ArchError(source, f"unit {u.name!r}", f"operations.{op.name}",
                                f"operation also executed by {owner[op.name]!r}; dispatch must be unique")  # fmt: skip
            owner[op.name] = u.name
            if u.name not in prev:
                raise ArchError(source, f"unit {u.name!r}", "edges", "no instruction path from the fetch stage reaches this unit")
            path: list[str] = []
            node: str | None = u.name
            while node is not None:
                path.append(node)
                node = prev[node]
            path.reverse()
            dispatcher = next((s for s in stages if s.name == path[-2]), None) if len(path) >= 2 else None
            if dispatcher is None or u.name not in dispatcher.dispatches_to:
                raise ArchError(source, f"unit {u.name!r}", "edges", "must be reached from an execute stage that lists it in functional_units")
            result.append((op.name, tuple(path)))
    return tuple(result)
