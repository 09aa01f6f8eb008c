"""Fast vs full AIDG evaluation, and the roofline/regression baselines, on every layer of ResNet-18,
MobileNetV2 and TC-ResNet8 on every template (full ImageNet resolution for ResNet-18/MobileNetV2).

Every timed layer is included: GEMM layers and vector layers (pooling, residual adds; on systolic and Gemmini
these run on the vector unit since the templates gained one). ``gemm_*`` figures repeat the statistics over
the GEMM layers alone, comparable with the versions of this benchmark before the vector units.

Run: .venv/bin/python benchmarks/bench_perf_fast_vs_full.py [--quick]
Writes benchmarks/results/perf_fast_vs_full.json and prints a markdown table.
Regression baseline: per template, layers of all three networks pooled; each layer is predicted by a
model trained on the FULL-mode cycles of the layers with a different shape (leave-one-shape-out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from accelflow.arch import template
from accelflow.frontends import load_model
from accelflow.mapping import LayerKind, workload
from accelflow.perf import Mode, RegressionModel, estimate, estimate_shape

NETS = ("resnet18", "mobilenet_v2", "tc_resnet8")
TEMPLATES = ("systolic", "gemmini", "ultratrail", "plasticine")
OUT = Path(__file__).parent / "results" / "perf_fast_vs_full.json"


def _mape(pred: list[int], ref: list[int]) -> float:
    return 100.0 * sum(abs(p - r) / r for p, r in zip(pred, ref, strict=True)) / len(ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="TC-ResNet8 and MobileNetV2 on two templates only")
    args = ap.parse_args()
    nets = ("tc_resnet8", "mobilenet_v2") if args.quick else NETS
    templates = ("systolic", "ultratrail") if args.quick else TEMPLATES
    graphs = {n: load_model(f"zoo:{n}") for n in nets}
    results: dict = {"networks": {}, "baselines": {}}
    for tname in templates:
        arch = template(tname)
        pooled = []  # (shape, full cycles, fast cycles, roofline cycles)
        for net, g in graphs.items():
            shapes = [s for s in workload(g) if s.kind is not LayerKind.FREE]
            rows = []
            t_full = t_fast = 0.0
            for s in shapes:
                t0 = time.perf_counter()
                full = estimate_shape(s, arch, Mode.FULL)
                t1 = time.perf_counter()
                fast = estimate_shape(s, arch, Mode.FAST)
                t2 = time.perf_counter()
                roof = estimate_shape(s, arch, Mode.ROOFLINE)
                t_full += t1 - t0
                t_fast += t2 - t1
                rows.append({"layer": s.name, "op": s.op.value, "kind": s.kind.value, "full": full.cycles, "fast": fast.cycles,
                             "roofline": roof.cycles, "instructions": full.instructions,
                             "fast_instructions_evaluated": fast.instructions_evaluated,
                             "fast_iterations_evaluated": fast.iterations_evaluated,
                             "fast_map_applications": fast.map_applications,
                             "fast_instructions_applied": fast.instructions_applied})  # fmt: skip
                pooled.append((s, full.cycles, fast.cycles, roof.cycles))
            tot_full, tot_fast = sum(r["full"] for r in rows), sum(r["fast"] for r in rows)
            n_instr = sum(r["instructions"] for r in rows)
            # the whole network in one FAST call: identical layers evaluated once, inner loops shared
            # between layers through the kernel cache; must give the same cycles per layer
            t0 = time.perf_counter()
            whole = estimate(g, arch, Mode.FAST)
            t_net = time.perf_counter() - t0
            net_exact = [lp.cycles for lp in whole.timed()] == [r["full"] for r in rows]
            results["networks"][f"{net}/{tname}"] = {
                "layers": len(rows),
                "full_cycles": tot_full,
                "gemm_layers": sum(1 for r in rows if r["kind"] == "gemm"),
                "gemm_full_cycles": sum(r["full"] for r in rows if r["kind"] == "gemm"),
                "fast_cycles": tot_fast,
                "network_error_pct": 100.0 * abs(tot_fast - tot_full) / tot_full,
                "layer_mape_pct": _mape([r["fast"] for r in rows], [r["full"] for r in rows]),
                "instructions": n_instr,
                "fast_instructions_evaluated": sum(r["fast_instructions_evaluated"] for r in rows),
                "fast_map_applications": sum(r["fast_map_applications"] for r in rows),
                "fast_instructions_applied": sum(r["fast_instructions_applied"] for r in rows),
                "network_fast_cycles": whole.total_cycles,
                "network_fast_equals_full_per_layer": net_exact,
                "network_fast_instructions_evaluated": whole.instructions_evaluated,
                "network_fast_map_applications": whole.map_applications,
                "network_fast_instructions_applied": whole.instructions_applied,
                "network_fast_seconds": t_net,
                "full_seconds": t_full,
                "fast_seconds": t_fast,
                "full_instructions_per_second": n_instr / t_full if t_full else 0.0,
                "per_layer": rows,
            }
            print(f"{net:13s} {tname:10s} layers={len(rows):3d} full={tot_full:>12,} fast={tot_fast:>12,} "
                  f"instr={n_instr:>10,} eval={results['networks'][f'{net}/{tname}']['fast_instructions_evaluated']:>7,} "
                  f"full {t_full:6.1f}s fast {t_fast:5.2f}s network: eval={whole.instructions_evaluated:,} "
                  f"maps applied={whole.map_applications:,} exact={net_exact}", flush=True)  # fmt: skip
        # baselines on the pooled layer set of this template
        keys = [dataclasses.replace(s, name="") for s, *_ in pooled]
        labels = {k: full for k, (_, full, _, _) in zip(keys, pooled, strict=True)}
        distinct = list(labels)
        models: dict = {}
        reg = []
        for k, (s, *_rest) in zip(keys, pooled, strict=True):
            if k not in models:
                train = [d for d in distinct if d != k]
                models[k] = RegressionModel().fit(train, [labels[d] for d in train], arch)
            reg.append(models[k].predict(s, arch))
        ref = [p[1] for p in pooled]
        gemm = [i for i, p in enumerate(pooled) if p[0].kind is LayerKind.GEMM]
        results["baselines"][tname] = {
            "layers": len(pooled),
            "distinct_shapes": len(distinct),
            "fast_mape_pct": _mape([p[2] for p in pooled], ref),
            "roofline_mape_pct": _mape([p[3] for p in pooled], ref),
            "regression_mape_pct": _mape(reg, ref),
            "gemm_layers": len(gemm),
            "gemm_roofline_mape_pct": _mape([pooled[i][3] for i in gemm], [ref[i] for i in gemm]),
        }
        print(f"baselines {tname}: {results['baselines'][tname]}", flush=True)
    results["quick"] = args.quick
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    print("\n| network / template | layers | full cycles | fast cycles | network error | layer MAPE | instructions | "
          "evaluated (fast, per layer) | evaluated (fast, network) | full instr/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, r in results["networks"].items():
        print(f"| {key} | {r['layers']} | {r['full_cycles']:,} | {r['fast_cycles']:,} | {r['network_error_pct']:.3f}% | "
              f"{r['layer_mape_pct']:.3f}% | {r['instructions']:,} | {r['fast_instructions_evaluated']:,} | "
              f"{r['network_fast_instructions_evaluated']:,}{'' if r['network_fast_equals_full_per_layer'] else ' (NOT exact)'} | "
              f"{r['full_instructions_per_second']:,.0f} |")  # fmt: skip
    print("\n| template | layers | fast MAPE | roofline MAPE | regression MAPE |")
    print("|---|---|---|---|---|")
    for t, b in results["baselines"].items():
        print(f"| {t} | {b['layers']} | {b['fast_mape_pct']:.2f}% | {b['roofline_mape_pct']:.1f}% | {b['regression_mape_pct']:.1f}% |")


if __name__ == "__main__":
    main()
