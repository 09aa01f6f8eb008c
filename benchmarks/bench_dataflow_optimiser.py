"""Folding optimisers vs the exact optimum, and full-size networks on U250/ZCU102 (issue 4, benchmark a).

Part 1: on networks small enough for the exact search (LeNet-5, a 3-layer CNN, both dense and with a
synthetic sparsity histogram; a sparse conv may be built sparse or dense), greedy and simulated
annealing (with its final quench, and raw) are compared with the exact
minimum-interval folding under several resource caps of a small device (ZC706). Reported: throughput
and interval relative to the optimum (goal >= 95%), and design points evaluated per second.
Part 2: ResNet-18, MobileNetV2 and MobileNetV3-Large (ImageNet size, dense, 16-bit, batch 256)
through the model and both optimisers on U250 and ZCU102: images/s, resources, binding resource.
Writes benchmarks/results/dataflow_optimiser.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from accelflow.dataflow import design_from_cost, load_device, network_model
from accelflow.dataflow._greedy import greedy
from accelflow.dataflow._search import anneal, exhaustive
from accelflow.frontends import load_model
from accelflow.ir import ChannelSparsity, ConvAttrs, Graph, OpKind, PoolAttrs, propagate_shapes

RESULTS = Path(__file__).parent / "results" / "dataflow_optimiser.json"
log = logging.getLogger("bench")


def three_layer_cnn() -> Graph:
    """conv3x3(1->8) relu maxpool conv3x3(8->16) relu conv1x1(16->10) on 16x16 input."""
    rng = np.random.default_rng(0)
    g = Graph("cnn3")
    x = g.add_input("x", (1, 16, 16))

    def conv(name: str, src, c: int, f: int, k: int):  # type: ignore[no-untyped-def]
        p = k // 2
        return g.add_node(name, OpKind.CONV, [src], ConvAttrs(c, f, (k, k), (1, 1), (p,) * 4, (1, 1)),
                          params={"weight": rng.standard_normal((f, c, k, k)).astype(np.float32)})  # fmt: skip

    h = g.add_node("relu1", OpKind.RELU, [conv("conv1", x, 1, 8, 3)])
    h = g.add_node("pool1", OpKind.MAXPOOL, [h], PoolAttrs((2, 2), (2, 2), (0, 0, 0, 0)))
    h = g.add_node("relu2", OpKind.RELU, [conv("conv2", h, 8, 16, 3)])
    g.set_outputs([conv("conv3", h, 16, 10, 1)])
    propagate_shapes(g)
    return g


def with_sparsity(g: Graph, seed: int = 0) -> Graph:
    """Attach synthetic per-channel histograms (Dirichlet, mean ~50% zero products) to every conv."""
    rng = np.random.default_rng(seed)
    for node in g.find(OpKind.CONV):
        a = node.attrs
        assert isinstance(a, ConvAttrs)
        node.annotate(ChannelSparsity(rng.dirichlet(np.ones(a.kernel_size + 1), size=a.in_channels), source="synthetic"))
    return g


def _run(method: str, model, **kw):  # type: ignore[no-untyped-def]
    model.evaluations = 0
    t0 = time.perf_counter()
    if method == "greedy":
        fold, cost = greedy(model)
    elif method in ("anneal", "anneal_raw"):  # raw: the chain alone, without the final quench
        fold, cost = anneal(model, seed=kw.get("seed", 0), quench=method == "anneal")
    else:
        fold, cost = exhaustive(model)
    elapsed = time.perf_counter() - t0
    return fold, cost, elapsed, model.evaluations


def small_networks(quick: bool) -> list[dict]:
    rows = []
    nets = {
        "lenet5": lambda: load_model("zoo:lenet5"),
        "cnn3": three_layer_cnn,
        "lenet5_sparse": lambda: with_sparsity(load_model("zoo:lenet5")),
        "cnn3_sparse": lambda: with_sparsity(three_layer_cnn()),
    }
    caps = (0.05, 0.2) if quick else (0.02, 0.05, 0.1, 0.2, 0.4)
    dev = load_device("zc706")
    for name, make in nets.items():
        graph = make()
        for cap in caps:
            row: dict = {"network": name, "device": dev.name, "utilisation_cap": cap}
            for method in ("exhaustive", "greedy", "anneal", "anneal_raw"):
                model = network_model(graph, dev, utilisation=cap)
                fold, cost, elapsed, evals = _run(method, model)
                design = design_from_cost(graph.name, model, fold, cost)
                row[method] = {
                    "throughput_images_per_s": cost.throughput, "interval_cycles": cost.interval,
                    "feasible": cost.feasible, "dsp": int(cost.totals[0]), "seconds": elapsed,
                    "design_points": evals, "points_per_s": evals / elapsed if elapsed > 0 else None,
                    "binding_resource": design.binding_resource.value,
                }  # fmt: skip
            opt = row["exhaustive"]
            for method in ("greedy", "anneal", "anneal_raw"):
                r = row[method]
                r["fraction_of_optimum_throughput"] = r["throughput_images_per_s"] / opt["throughput_images_per_s"]
                r["fraction_of_optimum_interval"] = opt["interval_cycles"] / r["interval_cycles"]
            log.info("%-14s cap %.2f: opt %.0f img/s | greedy %.3f | anneal %.3f (raw %.3f)", name, cap,
                     opt["throughput_images_per_s"], row["greedy"]["fraction_of_optimum_interval"],
                     row["anneal"]["fraction_of_optimum_interval"],
                     row["anneal_raw"]["fraction_of_optimum_interval"])  # fmt: skip
            rows.append(row)
    return rows


def full_size(quick: bool) -> list[dict]:
    rows = []
    nets = ("resnet18",) if quick else ("resnet18", "mobilenet_v2", "mobilenet_v3_large")
    methods = ("greedy",) if quick else ("greedy", "anneal")
    for name in nets:
        graph = load_model(f"zoo:{name}")
        for dev_name in ("u250", "zcu102"):
            dev = load_device(dev_name)
            for method in methods:
                model = network_model(graph, dev)
                fold, cost, elapsed, evals = _run(method, model)
                d = design_from_cost(graph.name, model, fold, cost)
                r = d.resources
                rows.append({
                    "network": name, "device": dev_name, "method": method, "layers": len(d.layers),
                    "throughput_images_per_s": d.throughput_images_per_s, "dsp": r.dsp, "lut": r.lut,
                    "ff": r.ff, "bram18": r.bram18, "uram": r.uram, "binding_resource": d.binding_resource.value,
                    "bandwidth_slowdown": d.bandwidth_slowdown, "offchip_weight_layers":
                    sum(layer.weight_storage.value == "offchip" for layer in d.layers),
                    "seconds": elapsed, "design_points": evals, "points_per_s": evals / elapsed,
                    "feasible": d.feasible, "slowest_layer": d.slowest_layer.name,
                })  # fmt: skip
                log.info("%-20s %-7s %-7s %8.1f img/s DSP %5d LUT %7d BRAM %5d URAM %4d bind %s (%.2f s)",
                         name, dev_name, method, d.throughput_images_per_s, r.dsp, r.lut, r.bram18, r.uram,
                         d.binding_resource.value, elapsed)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer caps and networks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    small = small_networks(args.quick)
    big = full_size(args.quick)
    fractions = {m: [r[m]["fraction_of_optimum_throughput"] for r in small] for m in ("greedy", "anneal", "anneal_raw")}
    summary = {
        m: {"min_fraction_of_optimum": min(v), "mean_fraction_of_optimum": float(np.mean(v)),
            "points_ge_95_percent": sum(x >= 0.95 for x in v), "points": len(v)}
        for m, v in fractions.items()
    }  # fmt: skip
    result = {"goal": "greedy and anneal >= 95% of the exact optimum", "summary": summary,
              "small_networks": small, "full_size": big}  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2), "->", RESULTS)


if __name__ == "__main__":
    main()
