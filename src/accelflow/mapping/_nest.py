"""Loop nests whose bodies are short sequences of accelerator instructions (loop kernels).

A :class:`LoopNest` is a tree: a block is a sequence of instruction templates and loops. Each loop runs
its variable over ``ceil(extent / tile)`` iterations; inside, ``<var>`` is the iteration index and
``<var>_size`` the current tile size (``tile``, or the remainder in the last iteration). Instruction
fields and addresses are integer expressions (affine in the indices in practice) over these names and
the layer constants. Only addresses in on-chip spaces (register files, storages) carry dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from accelflow.arch import Expr, ceil_div

__all__ = ["Access", "Instr", "Loop", "LoopNest", "Item", "iteration_sizes"]


@dataclass(frozen=True)
class Access:
    """A location in an on-chip space: ``space[address]``."""

    space: str
    address: Expr

    def __str__(self) -> str:
        return f"{self.space}[{self.address}]"


@dataclass(frozen=True)
class Instr:
    """One instruction of a loop kernel: operation, locations read/written, and fields (``n``, ``bytes``...)."""

    op: str
    reads: tuple[Access, ...] = ()
    writes: tuple[Access, ...] = ()
    fields: tuple[tuple[str, Expr], ...] = ()

    def __str__(self) -> str:
        parts = [self.op] + [f"{k}={v}" for k, v in self.fields]
        text = " ".join(parts)
        if self.reads:
            text += "  <- " + ", ".join(map(str, self.reads))
        if self.writes:
            text += "  -> " + ", ".join(map(str, self.writes))
        return text


@dataclass(frozen=True)
class Loop:
    """``for var in range(ceil(extent / tile))``; timing-relevant fields depend on ``var`` only through
    ``var % period`` (``period`` > 1 for double buffering), which the fast mode relies on."""

    var: str
    extent: Expr
    tile: int
    body: tuple[Item, ...]
    period: int = 1


Item = Instr | Loop


def iteration_sizes(loop: Loop, env: Mapping[str, int]) -> tuple[int, int, int]:
    """(number of full iterations, tile size, size of the last partial iteration or 0)."""
    extent = loop.extent(env)
    if extent <= 0:
        return 0, loop.tile, 0
    trips = ceil_div(extent, loop.tile)
    rem = extent - (trips - 1) * loop.tile
    if rem == loop.tile:
        return trips, loop.tile, 0
    return trips - 1, loop.tile, rem


@dataclass(frozen=True)
class LoopNest:
    """The mapping of one layer onto one architecture."""

    layer: str
    arch: str
    body: tuple[Item, ...]
    constants: tuple[tuple[str, int], ...]
    tiling: tuple[tuple[str, int], ...] = ()
    note: str = field(default="", compare=False)

    @property
    def env(self) -> dict[str, int]:
        return dict(self.constants)

    def instruction_count(self) -> int:
        """Dynamic instructions of the whole nest (exact, computed without enumerating them)."""
        return _count(self.body, self.env)

    def iteration_count(self) -> int:
        """Executions of innermost loop bodies (the loop-kernel iterations)."""
        return _count(self.body, self.env, iterations=True)

    def __str__(self) -> str:
        consts = ", ".join(f"{k}={v}" for k, v in self.constants)
        tiles = ", ".join(f"{k}={v}" for k, v in self.tiling)
        lines = [f"mapping of {self.layer} on {self.arch}  ({consts})", f"  tiling: {tiles or '-'}"]
        if self.note:
            lines.append(f"  note: {self.note}")
        _render(self.body, lines, 1)
        lines.append(f"  dynamic instructions: {self.instruction_count():,}")
        return "\n".join(lines)


def _count(block: tuple[Item, ...], env: dict[str, int], iterations: bool = False) -> int:
    total = 0 if iterations else sum(1 for it in block if isinstance(it, Instr))
    has_loop = False
    for it in block:
        if isinstance(it, Loop):
            has_loop = True
            full, tile, rem = iteration_sizes(it, env)
            for count, size in ((full, tile), (1 if rem else 0, rem)):
                if count:
                    inner = {**env, it.var: 0, f"{it.var}_size": size}
                    total += count * _count(it.body, inner, iterations)
    if iterations and not has_loop:
        return 1
    return total


def _render(block: tuple[Item, ...], lines: list[str], depth: int) -> None:
    pad = "  " * depth
    for it in block:
        if isinstance(it, Loop):
            per = f"  (period {it.period})" if it.period > 1 else ""
            lines.append(f"{pad}for {it.var} in 0..ceil({it.extent} / {it.tile}):{per}")
            _render(it.body, lines, depth + 1)
        else:
            lines.append(f"{pad}  {it}")
