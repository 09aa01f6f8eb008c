"""Transformers on the Gemmini-like and systolic templates: ViT-Tiny, a BERT-base-shaped encoder, GPT-2-small
prefill and decode, fast mode beside the roofline.

Models: the zoo's definitions (accelflow.zoo.transformer, random weights), imported through the PyTorch route:
  ViT-Tiny        224x224, patch 16 (196 + 1 tokens), D=192, 12 layers, 3 heads, MLP 768, 1000 classes (zoo:vit_tiny)
  BERT-base       S=128, D=768, 12 layers, 12 heads, FFN 3072, pooler and classifier (the zoo's BertEncoder at
                  BERT-base sizes; zoo:bert_tiny is the same class at L=2, H=128)
  GPT-2-small     D=768, 12 layers, 12 heads, context 1024, tied LM head 768 x 50,257 (zoo:gpt2_small); prefill
                  S=128, and decode of one token with a KV cache of L=127 and L=1023 keys (the model imported with
                  one token, its attentions rewritten by accelflow.mapping.with_kv_cache)
Architectures: gemmini (default: 16x16 mesh, 128-bit DMA = 16 B/cycle, 16-lane vector unit, 1 GHz assumed; and
with the decode-aware tiling ``--tile wb=8,arot=1``), systolic (32x32 ws, 32-lane vector unit, 1 GHz assumed) with
its default unlimited bandwidth (SCALE-Sim's view: nothing can be memory-bound) and with 16 words/cycle (the
Gemmini bus) so that the roofline can say which phase is memory-bound.

Run: .venv/bin/python benchmarks/bench_perf_transformers.py [--quick]   (--quick: 2 layers per model)
Writes benchmarks/results/perf_transformers.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from accelflow.arch import parse_arch_spec
from accelflow.frontends import from_pytorch
from accelflow.ir import Graph, LayerCost, network_cost
from accelflow.mapping import LayerKind, LayerShape, with_kv_cache, workload
from accelflow.perf import Mode, PerfReport, estimate
from accelflow.zoo.transformer import GPT2, BertEncoder, VisionTransformer

OUT = Path(__file__).parent / "results" / "perf_transformers.json"
#: label -> (architecture spec, tile overrides). "gemmini_wb8" is the decode-aware Gemmini tiling (8 weight-tile
#: buffers, A buffers rotating over the k steps; not the default, which keeps the CNN figures).
ARCHS: dict[str, tuple[str, dict[str, int]]] = {
    "gemmini": ("gemmini", {}),
    "gemmini_wb8": ("gemmini", {"wb": 8, "arot": 1}),
    "systolic": ("systolic", {}),
    "systolic_bw16": ("systolic:bandwidth_words_per_cycle=16", {}),
}


def _workloads(layers: int) -> dict[str, tuple[tuple[LayerShape, ...], dict[str, Any]]]:
    torch.manual_seed(0)
    out: dict[str, tuple[tuple[LayerShape, ...], dict[str, Any]]] = {}
    started = time.perf_counter()
    vit = from_pytorch(VisionTransformer(depth=layers), (3, 224, 224), name="vit_tiny")
    out["vit_tiny"] = (workload(vit), {"model": "ViT-Tiny/16 224", "phase": "-", "tokens": 197, **_size(vit)})
    bert = from_pytorch(BertEncoder(dim=768, layers=layers, heads=12, mlp_dim=3072), (128,), name="bert_base",
                        input_dtype="int64")
    out["bert_base_s128"] = (workload(bert), {"model": "BERT-base encoder", "phase": "prefill", "tokens": 128, **_size(bert)})
    gpt = GPT2(layers=layers)
    prompt = from_pytorch(gpt, (128,), name="gpt2_small", input_dtype="int64")
    out["gpt2_prefill_s128"] = (workload(prompt), {"model": "GPT-2 small", "phase": "prefill", "tokens": 128, **_size(prompt)})
    one = from_pytorch(gpt, (1,), name="gpt2_small", input_dtype="int64")
    for kv in (127, 1023):
        out[f"gpt2_decode_l{kv}"] = (with_kv_cache(one, kv), {"model": "GPT-2 small", "phase": "decode", "tokens": 1,
                                                             "kv_len": kv, **_size(one)})  # fmt: skip
    print(f"imported in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def _size(g: Graph) -> dict[str, int]:
    cost = sum(network_cost(g).values(), LayerCost())
    return {"graph_nodes": len(g), "params": cost.params}


def _summary(report: PerfReport, shapes: tuple[LayerShape, ...]) -> dict[str, Any]:
    by_op: dict[str, int] = {}
    for lp in report.timed():
        if lp.kind is LayerKind.VECTOR:
            by_op[lp.op] = by_op.get(lp.op, 0) + lp.cycles
    total = report.total_cycles
    return {
        "cycles": total,
        "seconds": report.seconds,
        "gemm_cycles": sum(lp.cycles for lp in report.timed() if lp.kind is LayerKind.GEMM),
        "vector_cycles": sum(lp.cycles for lp in report.timed() if lp.kind is LayerKind.VECTOR),
        "non_gemm_share": report.non_gemm_share,
        "non_gemm_share_by_op": {op: c / total for op, c in sorted(by_op.items(), key=lambda kv: -kv[1])},
        "bound": report.bound.value,
        "memory_bound_share": report.memory_bound_share,
        "roofline_compute_cycles": report.roofline.compute_cycles,
        "roofline_memory_cycles": report.roofline.memory_cycles,
        "layers_timed": len(report.timed()),
        "layers_free": len(report.layers) - len(report.timed()),
        "skipped": list(report.skipped),
        "macs": sum(s.macs for s in shapes),
        "vector_ops": sum(s.vector_ops for s in shapes),
        "wall_seconds": report.wall_seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 layers per model instead of 12")
    args = ap.parse_args()
    layers = 2 if args.quick else 12
    loads = _workloads(layers)
    results: dict[str, Any] = {"layers_per_model": layers, "quick": args.quick,
                               "architectures": {k: {"spec": s, "tiles": t} for k, (s, t) in ARCHS.items()}, "runs": {}}
    for name, (shapes, info) in loads.items():
        for label, (spec, tiles) in ARCHS.items():
            arch = parse_arch_spec(spec)
            fast = estimate(shapes, arch, Mode.FAST, tiles=tiles, unsupported="error")
            roof = estimate(shapes, arch, Mode.ROOFLINE, tiles=tiles, unsupported="error")
            key = f"{name}/{label}"
            results["runs"][key] = {**info, "arch": spec, "tiles": tiles, "clock_mhz": arch.clock_mhz,
                                    "fast": _summary(fast, shapes), "roofline": _summary(roof, shapes)}  # fmt: skip
            r = results["runs"][key]["fast"]
            print(f"{key:34s} {r['cycles']:>13,} cycles {r['seconds'] * 1e3:9.3f} ms  non-GEMM {r['non_gemm_share']:6.1%}  "
                  f"{r['bound']}-bound (memory-bound layers {r['memory_bound_share']:.0%})  "
                  f"roofline {results['runs'][key]['roofline']['cycles']:,}  [{r['wall_seconds']:.1f} s]", flush=True)  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))
    print("\n| workload | arch | cycles (fast) | time | non-GEMM share | roofline cycles | roofline bound "
          "| time in memory-bound layers |")
    print("|---|---|---|---|---|---|---|---|")
    for key, r in results["runs"].items():
        name, label = key.split("/")
        f, rf = r["fast"], r["roofline"]
        print(f"| {name} | {label} | {f['cycles']:,} | {f['seconds'] * 1e3:.3f} ms | {f['non_gemm_share']:.1%} | "
              f"{rf['cycles']:,} | {f['bound']} | {f['memory_bound_share']:.0%} |")


if __name__ == "__main__":
    main()
