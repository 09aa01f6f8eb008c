"""Our systolic-array template against SCALE-Sim 3.0.0 (and ZigZag 3.9.1 as a peer) on conv/GEMM layers.

    .venv/bin/python benchmarks/bench_perf_vs_scalesim.py [--dataflow ws|os|is|all] [--quick]
        [--no-zigzag] [--no-full] [--refresh]

1. Creates the peers' own venvs (``benchmarks/peers/setup_env.sh``; SCALE-Sim needs numpy<2.4, the
   project pins 2.4) - exits 3 with a clear message when the package registry is unreachable.
2. Runs SCALE-Sim on the layer set ``benchmarks/layers/scalesim_layers.json`` (stall-free compute
   cycles: bandwidth-estimation mode, no stalls by construction), caching every layer's result in
   ``benchmarks/results/scalesim_raw.json`` keyed by layer + configuration; ZigZag likewise
   (``zigzag_raw.json``; ZigZag searches the temporal mapping, so it is a peer, not a reference).
3. Runs our ``systolic`` template (fast mode, and full mode unless ``--no-full``) with the same array,
   dataflow and SRAM sizes and unlimited bandwidth, on the same unpadded layers.
4. Checks SCALE-Sim's numbers against the closed form in ``benchmarks/peers/scalesim_formula.py``.
5. Writes ``benchmarks/results/perf_vs_scalesim.json`` (one entry per dataflow, ``_quick`` suffixed
   for ``--quick``; ``perf_vs_scalesim_<stem>.json`` for another ``--layers`` file): per layer cycles and absolute % errors, MAPE, wall times and speed ratios.

Exit code 0 when the MAPE of fast mode against SCALE-Sim is <= 5 % for every dataflow run, 1 otherwise,
3 when the peers cannot be installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
PEER_ENVS = HERE / ".peers"
RESULTS = HERE / "results"
LAYER_FILE = HERE / "layers" / "scalesim_layers.json"
MAPE_GOAL_PCT = 5.0

sys.path.insert(0, str(PEERS))
import scalesim_formula  # noqa: E402  (standalone module next to the runners)

log = logging.getLogger("bench_perf_vs_scalesim")


# ----------------------------------------------------------------------------- peers
def setup_peers(which: str) -> None:
    proc = subprocess.run(["bash", str(PEERS / "setup_env.sh"), which], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        log.error("cannot create the peer venvs (package registry unreachable?): skipping the "
                  "SCALE-Sim comparison")
        raise SystemExit(3)


def _layer_key(layer: dict[str, Any], config: dict[str, Any], tool: str) -> str:
    fields = {k: layer[k] for k in ("kind", "ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels",
                                    "num_filters", "stride")}
    # The runner's own source is part of the key: editing a runner invalidates its cached results.
    runner = hashlib.sha1((PEERS / f"run_{tool}.py").read_bytes()).hexdigest()[:12]
    blob = json.dumps({"tool": tool, "layer": fields, "config": config, "runner": runner},
                      sort_keys=True)
    return f"{layer['name']}:{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def run_peer(tool: str, layers: list[dict[str, Any]], config: dict[str, Any], refresh: bool
             ) -> tuple[dict[str, dict[str, Any]], float]:
    """Per-layer peer results (cached in results/<tool>_raw.json) and the wall time of new runs."""
    cache_file = RESULTS / f"{tool}_raw.json"
    cache: dict[str, Any] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    keys = {layer["name"]: _layer_key(layer, config, tool) for layer in layers}
    todo = [layer for layer in layers if refresh or keys[layer["name"]] not in cache]
    wall = 0.0
    if todo:
        venv = PEER_ENVS / f"venv-{tool}" / "bin" / "python"
        with tempfile.TemporaryDirectory(prefix=f"bench_{tool}_") as tmp:
            req, out = Path(tmp) / "request.json", Path(tmp) / "result.json"
            req.write_text(json.dumps({**config, "layers": todo}))
            log.info("running %s on %d layer(s)", tool, len(todo))
            t0 = time.perf_counter()
            proc = subprocess.run([str(venv), str(PEERS / f"run_{tool}.py"), str(req), str(out)],
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-4000:])
                raise RuntimeError(f"{tool} runner failed with exit code {proc.returncode}")
            result = json.loads(out.read_text())
        version = result.get("scalesim_version") or result.get("zigzag_version")
        for layer, rec in zip(todo, result["layers"], strict=True):
            cache[keys[layer["name"]]] = {**rec, "version": version, "config": config}
        RESULTS.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return {layer["name"]: cache[keys[layer["name"]]] for layer in layers}, wall


# ----------------------------------------------------------------------------- ours
def build_graph(layer: dict[str, Any]) -> Any:
    """The layer as our IR sees it: the same unpadded convolution SCALE-Sim simulates."""
    import torch.nn as nn

    from accelflow.frontends import from_pytorch

    c, f, s = layer["channels"], layer["num_filters"], layer["stride"]
    kh, kw = layer["filter_h"], layer["filter_w"]
    shape = (c, layer["ifmap_h"], layer["ifmap_w"])
    if layer["kind"] == "gemm" and layer["ifmap_h"] == 1:
        return from_pytorch(nn.Sequential(nn.Linear(c, f)), (c,), name=layer["name"])
    groups = c if layer["kind"] == "depthwise" else 1
    module = nn.Sequential(nn.Conv2d(c, f, (kh, kw), stride=s, padding=0, groups=groups, bias=False))
    return from_pytorch(module, shape, name=layer["name"])


def run_ours(layers: list[dict[str, Any]], array: dict[str, Any], dataflow: str, full: bool
             ) -> dict[str, dict[str, Any]]:
    from accelflow.arch import template
    from accelflow.perf import Mode, estimate

    arch = template("systolic", rows=array["rows"], cols=array["cols"], dataflow=dataflow,
                    ifmap_kb=array["ifmap_kb"], filter_kb=array["filter_kb"],
                    ofmap_kb=array["ofmap_kb"], bandwidth_words_per_cycle=None)
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        graph = build_graph(layer)
        rec: dict[str, Any] = {}
        modes = [("fast", Mode.FAST)] + ([("full", Mode.FULL)] if full else [])
        for label, mode in modes:
            t0 = time.perf_counter()
            report = estimate(graph, arch, mode=mode)
            rec[f"{label}_wall_seconds"] = time.perf_counter() - t0
            rec[f"{label}_cycles"] = int(report.total_cycles)
            rec[f"{label}_instructions_total"] = int(getattr(report, "instructions_total", 0))
            rec[f"{label}_instructions_evaluated"] = int(getattr(report, "instructions_evaluated", 0))
        out[layer["name"]] = rec
        log.info("ours %-26s fast %8d%s", layer["name"], rec["fast_cycles"],
                 f"  full {rec['full_cycles']:8d}" if full else "")
    return out


# ----------------------------------------------------------------------------- compare
def pct_err(value: float | None, ref: float) -> float | None:
    return None if value is None else abs(value - ref) / ref * 100.0


def mape(errors: list[float | None]) -> float | None:
    vals = [e for e in errors if e is not None]
    return sum(vals) / len(vals) if vals else None


def compare(dataflow: str, layers: list[dict[str, Any]], array: dict[str, Any], args: argparse.Namespace
            ) -> dict[str, Any]:
    ss_config = {"array": {**array, "dataflow": dataflow}, "bandwidth": "CALC"}
    ss, ss_new_wall = run_peer("scalesim", layers, ss_config, args.refresh)
    zz: dict[str, dict[str, Any]] = {}
    zz_new_wall = 0.0
    if not args.no_zigzag:
        zz_config = {"array": {"rows": array["rows"], "cols": array["cols"]}, "lpf_limit": 6}
        zz, zz_new_wall = run_peer("zigzag", layers, zz_config, args.refresh)
    ours = run_ours(layers, array, dataflow, full=not args.no_full)

    rows: list[dict[str, Any]] = []
    for layer in layers:
        name = layer["name"]
        ref = ss[name]["compute_cycles"]
        formula = scalesim_formula.layer_compute_cycles(layer, array["rows"], array["cols"], dataflow)
        o = ours[name]
        z = zz.get(name)
        rows.append({
            "name": name, "kind": layer["kind"], "source": layer["source"],
            "scalesim_compute_cycles": ref,
            "scalesim_stall_cycles": ss[name]["stall_cycles"],
            "scalesim_total_cycles_incl_prefetch": ss[name]["total_cycles_incl_prefetch"],
            "formula_cycles": formula,
            "ours_fast_cycles": o["fast_cycles"],
            "ours_full_cycles": o.get("full_cycles"),
            "zigzag_latency_cycles": None if z is None else z["latency_cycles"],
            "zigzag_ideal_temporal_cycles": None if z is None else z["ideal_temporal_cycles"],
            "err_fast_pct": pct_err(o["fast_cycles"], ref),
            "err_full_pct": pct_err(o.get("full_cycles"), ref),
            "err_zigzag_pct": None if z is None else pct_err(z["latency_cycles"], ref),
            "scalesim_seconds": ss[name]["wall_seconds"],
            "zigzag_seconds": None if z is None else z["wall_seconds"],
            "ours_fast_seconds": o["fast_wall_seconds"],
            "ours_full_seconds": o.get("full_wall_seconds"),
        })

    def total(key: str) -> float | None:
        vals = [r[key] for r in rows]
        return None if any(v is None for v in vals) else float(sum(vals))

    ss_s, zz_s = total("scalesim_seconds"), total("zigzag_seconds")
    fast_s, full_s = total("ours_fast_seconds"), total("ours_full_seconds")
    dense = [r for r in rows if r["kind"] != "depthwise"]
    summary = {
        "layers": len(rows),
        "mape_fast_pct": mape([r["err_fast_pct"] for r in rows]),
        "mape_full_pct": mape([r["err_full_pct"] for r in rows]),
        "mape_zigzag_pct": mape([r["err_zigzag_pct"] for r in rows]),
        "mape_fast_pct_without_depthwise": mape([r["err_fast_pct"] for r in dense]),
        "max_err_fast_pct": max(r["err_fast_pct"] for r in rows),
        "formula_exact_layers": sum(r["formula_cycles"] == r["scalesim_compute_cycles"] for r in rows),
        "scalesim_stall_cycles_total": sum(r["scalesim_stall_cycles"] for r in rows),
        "total_cycles": {"scalesim": total("scalesim_compute_cycles"), "ours_fast": total("ours_fast_cycles"),
                         "ours_full": total("ours_full_cycles"), "zigzag": total("zigzag_latency_cycles")},
        "wall_seconds": {"scalesim": ss_s, "zigzag": zz_s, "ours_fast": fast_s, "ours_full": full_s,
                         "scalesim_this_run": ss_new_wall, "zigzag_this_run": zz_new_wall},
        "speedup_fast_vs_scalesim": None if not fast_s or ss_s is None else ss_s / fast_s,
        "speedup_full_vs_scalesim": None if not full_s or ss_s is None else ss_s / full_s,
        "speedup_fast_vs_zigzag": None if not fast_s or zz_s is None else zz_s / fast_s,
        "mape_goal_pct": MAPE_GOAL_PCT,
    }
    return {"dataflow": dataflow, "array": array, "bandwidth": "unlimited (SCALE-Sim CALC mode)",
            "summary": summary, "layers": rows}


def print_table(res: dict[str, Any]) -> None:
    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    print(f"\n== dataflow {res['dataflow']}  array {res['array']['rows']}x{res['array']['cols']}")
    print(f"{'layer':28s} {'SCALE-Sim':>10s} {'fast':>10s} {'full':>10s} {'ZigZag':>10s} "
          f"{'err fast%':>9s} {'err ZZ%':>8s}")
    for r in res["layers"]:
        print(f"{r['name']:28s} {r['scalesim_compute_cycles']:10d} {r['ours_fast_cycles']:10d} "
              f"{f(r['ours_full_cycles'], '10d')} {f(r['zigzag_latency_cycles'], '10.0f')} "
              f"{r['err_fast_pct']:9.2f} {f(r['err_zigzag_pct'], '8.1f')}")
    s = res["summary"]
    w = s["wall_seconds"]
    print(f"MAPE fast {f(s['mape_fast_pct'], '.3f')} %  full {f(s['mape_full_pct'], '.3f')} %  "
          f"ZigZag {f(s['mape_zigzag_pct'], '.1f')} %  (goal <= {MAPE_GOAL_PCT} %)")
    print(f"wall s: SCALE-Sim {f(w['scalesim'], '.2f')}  ZigZag {f(w['zigzag'], '.2f')}  "
          f"fast {f(w['ours_fast'], '.3f')}  full {f(w['ours_full'], '.3f')};  speed-up fast vs "
          f"SCALE-Sim x{f(s['speedup_fast_vs_scalesim'], '.1f')}, vs ZigZag "
          f"x{f(s['speedup_fast_vs_zigzag'], '.1f')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataflow", choices=["ws", "os", "is", "all"], default="ws")
    parser.add_argument("--quick", action="store_true", help="5 layers only")
    parser.add_argument("--no-zigzag", action="store_true", help="skip the ZigZag peer")
    parser.add_argument("--no-full", action="store_true", help="skip our full mode")
    parser.add_argument("--refresh", action="store_true", help="ignore the cached peer results")
    parser.add_argument("--layers", type=Path, default=LAYER_FILE,
                        help="layer file (default benchmarks/layers/scalesim_layers.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    layer_file = args.layers.resolve()
    spec = json.loads(layer_file.read_text())
    layers = spec["layers"]
    if args.quick:
        quick = set(spec.get("quick", [layer["name"] for layer in layers[:5]]))
        layers = [layer for layer in layers if layer["name"] in quick]
    setup_peers("scalesim" if args.no_zigzag else "all")

    suffix = "" if layer_file == LAYER_FILE else "_" + layer_file.stem
    out_file = RESULTS / f"perf_vs_scalesim{suffix}.json"
    doc: dict[str, Any] = json.loads(out_file.read_text()) if out_file.exists() else {}
    doc.setdefault("runs", {})
    doc["layer_file"] = layer_file.name
    dataflows = ["ws", "os", "is"] if args.dataflow == "all" else [args.dataflow]
    ok = True
    for df in dataflows:
        res = compare(df, layers, spec["array"], args)
        res["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        doc["runs"][df + ("_quick" if args.quick else "")] = res
        print_table(res)
        mape_fast = res["summary"]["mape_fast_pct"]
        ok = ok and mape_fast is not None and mape_fast <= MAPE_GOAL_PCT
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(doc, indent=1))
    print(f"\nwrote {out_file}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
