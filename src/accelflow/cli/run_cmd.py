"""`accelflow run FLOW.yaml [--resume RUN] [--store DIR]`: check and run a design flow, recording it."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Mapping
from types import FrameType

from rich.console import Console

from accelflow.flow import check_flow, initial_state, load_flow, run_flow
from accelflow.runs import RunStore

__all__ = ["register", "run", "ConsoleObserver", "DEFAULT_STORE"]

DEFAULT_STORE = "runs"


class ConsoleObserver:
    """Prints one line when a task starts and one when it ends (with the metrics it wrote)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def task_started(self, key: str, task: str) -> None:
        self.console.print(f"[cyan]>[/] {task} [dim]({key})[/]")

    def task_finished(self, key: str, task: str, seconds: float, replayed: bool,
                      metrics: Mapping[str, Mapping[str, float]]) -> None:
        shown = ", ".join(f"{s}.{n}={v:.4g}" for s, vals in metrics.items() for n, v in vals.items())
        how = "[yellow]replayed[/]" if replayed else f"{seconds:.1f} s"
        self.console.print(f"[green]ok[/] {task} [dim]({key})[/] {how} {shown}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="check and run a design flow (YAML), recording it in the run store",
                       description="The flow is validated completely before anything runs.")
    p.add_argument("flow", help="flow YAML file, e.g. examples/flows/metaml_jet_dnn.yaml")
    p.add_argument("--resume", metavar="RUN", help="resume run RUN (id or unique prefix): completed tasks "
                   "are replayed from their saved states, the rest runs")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"run store directory (default: ./{DEFAULT_STORE})")
    p.add_argument("--check", action="store_true", help="only validate the flow, run nothing")
    p.set_defaults(func=run)


def _interrupt_on_term(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (e.g. a job scheduler stopping us) unwinds like Ctrl-C, so the run is recorded as failed."""
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    spec, flow, text = load_flow(args.flow)
    console = Console(stderr=True)
    start = None
    if args.resume is None:
        with console.status("preparing the initial design state"):
            start = initial_state(spec.start)
        check_flow(flow, start)  # before the store is touched: an invalid flow leaves no trace
    if args.check:
        console.print(f"{args.flow}: valid flow '{flow.name}' with {len(flow.steps)} top-level step(s)")
        return 0
    store = RunStore(args.store)
    previous = signal.signal(signal.SIGTERM, _interrupt_on_term)
    try:
        if start is None:
            start = store.initial_state(store.get_run(args.resume).id)
        result = run_flow(flow, start, store=store, run_id=args.resume, flow_text=text, seed=spec.seed,
                          progress=console.is_terminal, observer=ConsoleObserver(console))
    finally:
        signal.signal(signal.SIGTERM, previous)
        store.close()
    console.print(f"run [bold]{result.run_id}[/] completed: {result.executed} task(s) run, "
                  f"{result.replayed} replayed")
    print(result.run_id)
    return 0
