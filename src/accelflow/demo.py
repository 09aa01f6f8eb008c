"""The main job (`make demo`): one design flow through all three systems, then the run report.

Runs ``examples/flows/demo.yaml`` (LeNet-5 on Fashion-MNIST: MetaML pruning + HLS quantisation + hls4ml
resource estimate, HASS sparsity search on a ZCU102 dataflow design, Gemmini latency with the fast
dependency-graph model), records it in ``runs/`` and writes ``runs/<id>/report.html`` and
``report.json``. ``--resume RUN`` continues an interrupted demo run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from accelflow.cli.run_cmd import ConsoleObserver
from accelflow.errors import AccelflowError
from accelflow.flow import check_flow, initial_state, load_flow, run_flow
from accelflow.runs import RunStore
from accelflow.runs.report import build_report, write_report

DEFAULT_FLOW = Path("examples/flows/demo.yaml")


def _summary(report: dict) -> Table:
    m = report["metrics"]
    table = Table(title="accelflow demo: what each system achieved")
    table.add_column("system")
    table.add_column("result")

    def get(stage: str, name: str) -> float | None:
        return m.get(stage, {}).get(name)

    base, opt = m.get("baseline", {}), m.get("resources", {})
    if base and opt:
        dsp = 1 - opt["dsp"] / base["dsp"] if base.get("dsp") else 0.0
        lut = 1 - opt["lut"] / base["lut"] if base.get("lut") else 0.0
        table.add_row("MetaML (hls4ml design)", f"DSP {base['dsp']:,.0f} -> {opt['dsp']:,.0f} ({100 * dsp:.1f}% fewer), "
                      f"LUT {base['lut']:,.0f} -> {opt['lut']:,.0f} ({100 * lut:.1f}% fewer); accuracy "
                      f"{100 * (get('train', 'accuracy') or 0):.2f}% -> {100 * (get('quant', 'accuracy') or 0):.2f}% "
                      "(emulated bit-accurate)")
    if "hass" in m:
        h = m["hass"]
        dense = f"dense: {h['dense_throughput_images_per_s']:,.0f} images/s"
        if h.get("dense_dsp"):
            gain = (h["throughput_images_per_s"] / h["dsp"]) / (h["dense_throughput_images_per_s"] / h["dense_dsp"])
            dense += f" with {h['dense_dsp']:,.0f} DSPs; {gain:.2f}x throughput per DSP"
        vs = f"; {h['vs_uniform']:.2f}x the uniform-threshold design on the search objective" \
            if "vs_uniform" in h else ""
        table.add_row("HASS (dataflow FPGA)", f"{h['throughput_images_per_s']:,.0f} images/s with {h['dsp']:,.0f} DSPs "
                      f"({dense}{vs}), accuracy drop {h['accuracy_drop']:.2f} points (validation)")
    if "perf" in m:
        p = m["perf"]
        table.add_row("AIDG (Gemmini-like)", f"{p['total_cycles']:,.0f} cycles, {p['instructions_evaluated']:,.0f} of "
                      f"{p['instructions_total']:,.0f} instructions evaluated")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accelflow.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--flow", type=Path, default=DEFAULT_FLOW)
    parser.add_argument("--store", type=Path, default=Path("runs"))
    parser.add_argument("--resume", metavar="RUN")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        spec, flow, text = load_flow(args.flow)
        store = RunStore(args.store)
        try:
            if args.resume:
                start = store.initial_state(store.get_run(args.resume).id)
            else:
                with console.status("preparing the initial design state"):
                    start = initial_state(spec.start)
                check_flow(flow, start)
            result = run_flow(flow, start, store=store, run_id=args.resume, flow_text=text, seed=spec.seed,
                              progress=console.is_terminal, observer=ConsoleObserver(console))
            json_path, html_path = write_report(store, result.run_id)
            console.print(_summary(build_report(store, result.run_id)))
        finally:
            store.close()
    except AccelflowError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        return 2
    console.print(f"report: [bold]{html_path}[/] and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
