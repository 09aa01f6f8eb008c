"""Cross-check accelflow's LUT estimate of fabric (non-DSP) dense layers against da4ml.

da4ml (pip ``da4ml``, run in its own venv under ``benchmarks/.peers/``, never in the main install) sees the
weight values and widths like our estimator, but optimises a shared adder graph (common subexpressions),
whereas ours prices every product as its own shift-and-add network plus an adder tree, the way hls4ml's
Latency strategy leaves it to Vivado. So we expect ours >= da4ml, and a strong correlation across layers,
widths and sparsities. Writes benchmarks/results/resource_estimator.json.

    .venv/bin/python benchmarks/bench_resource_estimator.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from accelflow.hls import FixedPoint, LayerPrecision, estimate_resources, hls_weight_codes, integer_bits
from accelflow.ir import Graph, LinearAttrs, OpKind, propagate_shapes
from accelflow.train import cached_model

ROOT = Path(__file__).resolve().parent
PEER = ROOT / ".peers" / "venv-da4ml"
RUNNER = ROOT / "peers" / "run_da4ml.py"
OUT = ROOT / "results" / "resource_estimator.json"
DA4ML_VERSION = "0.6.0"
log = logging.getLogger("bench_resource_estimator")


def ensure_peer() -> Path:
    """Create the da4ml venv on first use (pip from the package registry), return its python."""
    py = PEER / "bin" / "python"
    if not py.exists():
        log.info("creating %s with da4ml==%s", PEER, DA4ML_VERSION)
        subprocess.run(["python3", "-m", "venv", str(PEER)], check=True)
        subprocess.run([str(PEER / "bin" / "pip"), "install", "-q", f"da4ml=={DA4ML_VERSION}"], check=True)
    return py


def _dense_graph(w: np.ndarray) -> Graph:
    g = Graph("layer")
    x = g.add_input("x", (w.shape[1],))
    fc = g.add_node(
        "fc", OpKind.LINEAR, [x], LinearAttrs(w.shape[1], w.shape[0]), {"weight": w.astype(np.float32)}
    )
    g.set_outputs([fc])
    propagate_shapes(g)
    return g


def _prune(w: np.ndarray, rate: float) -> np.ndarray:
    w = w.copy()
    k = int(round(rate * w.size))
    if k:
        w.ravel()[np.argsort(np.abs(w), axis=None, kind="stable")[:k]] = 0.0
    return w


def layers(quick: bool) -> list[tuple[str, np.ndarray]]:
    torch.set_num_threads(1)
    out = []
    for zoo, data in (("digits_mlp", "digits"), ("jet_dnn", "synthetic_jets")):
        model, _ = cached_model(zoo, data)
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear):
                out.append((f"{zoo}.{name}", mod.weight.detach().numpy().astype(np.float64)))
    return out[:3] if quick else out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("accelflow.train").setLevel(logging.WARNING)
    x_type = FixedPoint(8, 3)
    widths = (4, 6) if args.quick else (3, 4, 6, 8)
    rates = (0.0, 0.7) if args.quick else (0.0, 0.5, 0.8)
    rows, request = [], []
    for lname, w in layers(args.quick):
        for bits in widths:
            for rate in rates:
                wp = _prune(w, rate)
                iw = integer_bits(float(np.abs(wp).max()), 0)
                wt = FixedPoint(bits, iw)
                n_in = w.shape[1]
                acc = FixedPoint(
                    x_type.width + bits + math.ceil(math.log2(n_in)),
                    x_type.integer + iw + math.ceil(math.log2(n_in)),
                )
                prec = {"x": LayerPrecision(x_type), "fc": LayerPrecision(FixedPoint(16, 6), wt, wt, acc)}
                t0 = time.perf_counter()
                est = estimate_resources(_dense_graph(wp), prec).layers[0]
                ours_s = time.perf_counter() - t0
                kernel = (hls_weight_codes(wp, wt) * wt.lsb).T  # (n_in, n_out) on the grid
                key = f"{lname}|w{bits}|p{rate}"
                request.append(
                    {
                        "name": key,
                        "kernel": kernel.tolist(),
                        "qinterval": [x_type.min_value, x_type.max_value, x_type.lsb],
                    }
                )
                rows.append(
                    {
                        "layer": lname,
                        "shape": list(w.shape),
                        "weight_bits": bits,
                        "input_bits": x_type.width,
                        "prune_rate": rate,
                        "nonzero_weights": int((kernel != 0).sum()),
                        "ours_lut": est.lut,
                        "ours_dsp": est.dsp,
                        "ours_latency": est.latency_cycles,
                        "ours_seconds": ours_s,
                        "name": key,
                    }
                )
    py = ensure_peer()
    with tempfile.TemporaryDirectory() as tmp:
        req, res = Path(tmp) / "req.json", Path(tmp) / "res.json"
        req.write_text(json.dumps({"layers": request}))
        subprocess.run([str(py), str(RUNNER), str(req), str(res)], check=True)
        peer = json.loads(res.read_text())
    by_name = {r["name"]: r for r in peer["layers"]}
    for row in rows:
        d = by_name[row.pop("name")]
        row.update(da4ml_cost=d["cost"], da4ml_latency_max=d["latency_max"], da4ml_seconds=d["seconds"])
        row["ratio"] = row["ours_lut"] / d["cost"] if d["cost"] else None
    pairs = np.array(
        [[r["ours_lut"], r["da4ml_cost"]] for r in rows if r["da4ml_cost"] > 0 and r["ours_lut"] > 0]
    )
    ratios = pairs[:, 0] / pairs[:, 1]
    logs = np.log(pairs)

    def ranks(v: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(v)).astype(float)

    summary = {
        "da4ml_version": peer["da4ml_version"],
        "layers_compared": len(pairs),
        "pearson_log": float(np.corrcoef(logs[:, 0], logs[:, 1])[0, 1]),
        "spearman": float(np.corrcoef(ranks(pairs[:, 0]), ranks(pairs[:, 1]))[0, 1]),
        "ratio_median": float(np.median(ratios)),
        "ratio_min": float(ratios.min()),
        "ratio_max": float(ratios.max()),
        "ratio_by_weight_bits": {
            str(b): float(np.median([r["ratio"] for r in rows if r["weight_bits"] == b and r["ratio"]]))
            for b in widths
        },
        "ratio_by_prune_rate": {
            str(p): float(np.median([r["ratio"] for r in rows if r["prune_rate"] == p and r["ratio"]]))
            for p in rates
        },
        "note": "ours = hls4ml-style per-product shift-add + adder tree (Vivado does not share subexpressions); "
        "da4ml = optimised shared adder graph. Ratios > 1 are expected; correlation is the check.",
        "input_type": x_type.to_hls(),
        "quick": args.quick,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"summary": summary, "layers": rows}, indent=1))
    log.info("summary: %s", json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
