"""`accelflow sweep MODEL --arch systolic --param rows=8,16,32 ...`: latency/area-proxy Pareto over
architecture parameters, evaluated locally (--workers N) or on a Dask cluster (--scheduler ADDRESS)."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import sys
from pathlib import Path
from typing import Any

import optuna

from accelflow.arch import parse_option_value, template_names, template_parameters
from accelflow.cli.inspect_cmd import parse_shape
from accelflow.errors import ConfigError
from accelflow.frontends import load_model
from accelflow.perf import Mode
from accelflow.search import (
    DEFAULT_STORAGE,
    create_study,
    enqueue_grid,
    grid_space,
    make_executor,
    optimize,
    storage_url,
)
from accelflow.search._sweep import ArchSweep, SweepPoint, sweep_points

__all__ = ["register", "run", "parse_param"]

log = logging.getLogger(__name__)

Value = int | float | str | None


def parse_param(text: str) -> tuple[str, list[Value]]:
    """'rows=8,16,32' -> ('rows', [8, 16, 32])."""
    key, eq, values = text.partition("=")
    items = [parse_option_value(v) for v in values.split(",") if v.strip()]
    if not eq or not key.strip() or not items:
        raise ConfigError(f"--param {text!r}: expected NAME=V1,V2,..., e.g. rows=8,16,32")
    if len(set(map(str, items))) != len(items):
        raise ConfigError(f"--param {text!r}: repeated value")
    return key.strip(), items


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="latency vs area-proxy Pareto sweep over architecture parameters",
        description="Evaluates MODEL (ONNX file or zoo:NAME) on a template for every combination of the "
                    "--param values (or --trials sampled ones), storing results in an Optuna study so an "
                    "interrupted sweep resumes. Area proxy: MACs x 0.0015 mm2 + on-chip KB x 0.012 mm2 (ours).",
    )  # fmt: skip
    p.add_argument("model", help="path to an .onnx file, or zoo:NAME")
    p.add_argument("--arch", required=True, help=f"template name: {', '.join(template_names())}")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2",
                   help="swept template parameter (repeatable), e.g. rows=8,16,32")
    p.add_argument("--set", action="append", default=[], metavar="NAME=V", help="fixed template parameter")
    p.add_argument("--mode", default="fast", choices=[m.value for m in Mode], help="evaluation mode (default fast)")
    p.add_argument("--trials", type=int, help="sample this many designs (Optuna TPE) instead of the full grid")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a local Dask cluster")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"study storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--study", help="study name (default derived from the model, template and space)")
    p.add_argument("--input-shape", help="input shape without batch (zoo models only)")
    p.add_argument("--out", type=Path, help="directory for sweep.json and pareto.png (default runs/<study>)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed for --trials")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _check_template(name: str, params: dict[str, Any]) -> None:
    if name not in template_names():
        raise ConfigError(f"--arch {name!r}: sweeps take a template name, one of {', '.join(template_names())}")
    known = template_parameters(name)
    bad = [k for k in params if k not in known]
    if bad:
        raise ConfigError(f"--param/--set {bad}: template {name!r} has parameters {', '.join(known)}")


def _study_name(sweep: ArchSweep, grid: dict[str, list[Value]], trials: int | None) -> str:
    key = json.dumps([sweep.describe(), sweep.input_shape, grid, trials], sort_keys=True, default=str)
    stem = sweep.model.replace("zoo:", "").replace("/", "_").rsplit(".", 1)[0][-40:]
    return f"sweep-{stem}-{sweep.template_name}-{sweep.mode}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _label(p: SweepPoint) -> str:
    return ",".join(f"{k}={v}" for k, v in p.params.items())


def _plot(points: list[SweepPoint], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter([p.area_mm2 for p in points], [p.cycles for p in points], s=18, c="0.6", label="design")
    front = sorted((p for p in points if p.pareto), key=lambda p: p.area_mm2)
    ax.step([p.area_mm2 for p in front], [p.cycles for p in front], where="post", c="C3", lw=1.5)
    ax.scatter([p.area_mm2 for p in front], [p.cycles for p in front], s=30, c="C3", label="Pareto front")
    for p in front:
        ax.annotate(_label(p), (p.area_mm2, p.cycles), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("area proxy (mm$^2$, ours)")
    ax.set_ylabel("latency (cycles)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(points: list[SweepPoint], names: list[str], title: str, n_failed: int, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in [*names, "cycles", "area proxy mm2", "MACs", "on-chip KB"]:
        table.add_column(col, justify="right")
    for p in points:
        if p.pareto:
            table.add_row(*(str(p.params[n]) for n in names), f"{p.cycles:,}", f"{p.area_mm2:.3f}",
                          f"{p.pes:,}", f"{p.sram_kb:,.0f}")
    console = Console()
    console.print(table)
    console.print(f"{sum(p.pareto for p in points)} Pareto-optimal of {len(points)} designs"
                  + (f"; {n_failed} failed evaluations (see sweep.json)" if n_failed else ""))
    console.print(f"wrote {out / 'sweep.json'} and {out / 'pareto.png'}")


def run(args: argparse.Namespace) -> int:
    grid = dict(parse_param(t) for t in args.param)
    fixed = dict(parse_param(t) for t in args.set)
    if any(len(v) != 1 for v in fixed.values()):
        raise ConfigError("--set takes one value, e.g. --set dataflow=os")
    if not grid:
        raise ConfigError("give at least one --param NAME=V1,V2,...")
    if set(grid) & set(fixed):
        raise ConfigError(f"parameters both swept and fixed: {sorted(set(grid) & set(fixed))}")
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    _check_template(args.arch, {**grid, **fixed})
    shape = parse_shape(args.input_shape)
    sweep = ArchSweep(args.model, args.arch, Mode(args.mode).value, tuple((k, v[0]) for k, v in fixed.items()), shape)
    for combo in itertools.islice(itertools.product(*grid.values()), 10_000):  # bad values fail before any worker
        sweep.arch(dict(zip(grid, combo, strict=True)))
    load_model(args.model, shape)  # a bad model fails here with a one-line error
    name = args.study or _study_name(sweep, grid, args.trials)
    sampler = optuna.samplers.TPESampler(seed=args.seed, multivariate=True) if args.trials else None
    study = create_study(name, storage_url(args.storage), ("minimize", "minimize"), sampler)
    if args.trials:
        n_trials = args.trials
    else:
        enqueue_grid(study, grid)
        n_trials = 1
        for values in grid.values():
            n_trials *= len(values)
    with make_executor(args.workers, args.scheduler) as executor:
        result = optimize(study, sweep, grid_space(grid), n_trials, executor, progress=not args.json,
                          enqueued_only=not args.trials)
    names = list(grid)
    points = sweep_points(study, names)
    failed = [t for t in study.get_trials(deepcopy=False) if "error" in t.user_attrs]
    if not points:
        raise ConfigError(f"every design failed to evaluate; first error: {failed[0].user_attrs['error']}"
                          if failed else "no design was evaluated")
    out = args.out or Path("runs") / name
    out.mkdir(parents=True, exist_ok=True)
    title = f"{args.model} on {args.arch} ({args.mode} mode): latency vs area proxy"
    _plot(points, out / "pareto.png", title)
    doc = {**sweep.describe(), "study": name, "storage": storage_url(args.storage), "parameters": grid,
           "designs": len(points), "evaluated_this_run": result.evaluated, "wall_seconds": result.wall_seconds,
           "failed": [{"trial": t.number, "params": t.params, "error": t.user_attrs["error"]} for t in failed],
           "pareto": [p.to_dict() for p in points if p.pareto], "points": [p.to_dict() for p in points],
           "plot": str(out / "pareto.png")}
    (out / "sweep.json").write_text(json.dumps(doc, indent=1, default=str))
    if args.json:
        sys.stdout.write(json.dumps(doc, default=str) + "\n")
    else:
        _table(points, names, title, len(failed), out)
    return 0
