"""`accelflow estimate MODEL --arch ARCH`: latency of a network on an accelerator description."""

from __future__ import annotations

import argparse
import sys

from accelflow.arch import parse_arch_spec
from accelflow.cli.inspect_cmd import parse_shape
from accelflow.errors import ConfigError
from accelflow.frontends import load_model
from accelflow.perf import Mode, PerfReport, estimate

__all__ = ["register", "run", "parse_tiles"]


def parse_tiles(text: str | None) -> dict[str, int]:
    """'ti=16,px=32' -> {'ti': 16, 'px': 32}."""
    tiles: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        key, eq, value = item.partition("=")
        try:
            tiles[key.strip()] = int(value)
        except ValueError:
            raise ConfigError(f"--tile {item!r}: expected NAME=INT, e.g. ti=16") from None
        if not eq:
            raise ConfigError(f"--tile {item!r}: expected NAME=INT, e.g. ti=16")
    return tiles


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate", help="estimate the latency of a model on an accelerator",
        description="MODEL is an ONNX file or zoo:NAME; ARCH a YAML file or a template with options, e.g. "
                    "systolic:rows=16,cols=16,dataflow=ws, gemmini, ultratrail, plasticine.",
    )  # fmt: skip
    p.add_argument("model", help="path to an .onnx file, or zoo:NAME")
    p.add_argument("--arch", required=True, help="architecture YAML path or template[:key=value,...]")
    p.add_argument("--mode", default="fast", choices=[m.value for m in Mode], help="evaluation mode (default fast)")
    p.add_argument("--tile", help="override the mapper's default tiling, e.g. ti=16 (gemmini) or px=32 (plasticine)")
    p.add_argument("--input-shape", help="input shape without batch, e.g. 3,112,112 (zoo models only)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _table(report: PerfReport, model: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model} on {report.arch} ({report.mode.value} mode)")
    for col in ("layer", "op", "cycles", "instructions", "iterations evaluated", "utilisation"):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for lp in report.layers:
        table.add_row(lp.name, lp.op, f"{lp.cycles:,}", f"{lp.instructions:,}", f"{lp.iterations_evaluated:,}", f"{lp.utilisation:.1%}")
    table.add_section()
    table.add_row("total", "", f"{report.total_cycles:,}", f"{report.instructions_total:,}",
                  f"{report.iterations_evaluated:,}", "")  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"instructions evaluated: {report.instructions_evaluated:,} of {report.instructions_total:,}; "
                  f"wall time {report.wall_seconds:.2f} s")  # fmt: skip
    if report.skipped:
        console.print(f"not supported on {report.arch}, skipped (host fallback, not timed): {', '.join(report.skipped)}")


def run(args: argparse.Namespace) -> int:
    arch = parse_arch_spec(args.arch)  # bad architecture -> ConfigError -> exit 2 before loading the model
    tiles = parse_tiles(args.tile)
    graph = load_model(args.model, parse_shape(args.input_shape))
    report = estimate(graph, arch, Mode(args.mode), tiles=tiles)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        _table(report, args.model)
    return 0
