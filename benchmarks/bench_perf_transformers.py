"""Transformers on the Gemmini-like and systolic templates: ViT-Tiny, a BERT-base-shaped encoder, GPT-2-small
prefill and decode, fast mode beside the roofline.

Models (our own PyTorch definitions, random weights; exported to ONNX in a temporary directory and imported):
  ViT-Tiny        224x224, patch 16 (196 + 1 tokens), D=192, 12 layers, 3 heads, MLP 768, 1000 classes
  BERT-base       S=128, D=768, 12 layers, 12 heads, FFN 3072, pooler (vocabulary 1,024 instead of 30,522:
                  an embedding lookup reads only the S rows it gathers, so the table size changes nothing)
  GPT-2-small     D=768, 12 layers, 12 heads, context 1024, LM head 768 x 50,257; prefill S=128, and decode of
                  one token with a KV cache of L=127 and L=1023 keys (the model imported with one token, its
                  attentions rewritten by accelflow.mapping.with_kv_cache). The token embedding has 1,024 rows
                  for the same reason as BERT's; the LM head has the full vocabulary.
Architectures: gemmini (default: 16x16 mesh, 128-bit DMA = 16 B/cycle, 16-lane vector unit, 1 GHz assumed; and
with the decode-aware tiling ``--tile wb=8,arot=1``), systolic (32x32 ws, 32-lane vector unit, 1 GHz assumed) with its default unlimited bandwidth (SCALE-Sim's view:
nothing can be memory-bound) and with 16 words/cycle (the Gemmini bus) so that the roofline can say which phase
is memory-bound.

Run: .venv/bin/python benchmarks/bench_perf_transformers.py [--quick]   (--quick: 2 layers per model)
Writes benchmarks/results/perf_transformers.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from accelflow.arch import parse_arch_spec
from accelflow.frontends import from_onnx
from accelflow.ir import Graph, LayerCost, network_cost
from accelflow.mapping import LayerKind, LayerShape, with_kv_cache, workload
from accelflow.perf import Mode, PerfReport, estimate

OUT = Path(__file__).parent / "results" / "perf_transformers.json"
#: label -> (architecture spec, tile overrides). "gemmini_wb8" is the decode-aware Gemmini tiling (8 weight-tile
#: buffers, A buffers rotating over the k steps; not the default, which keeps the CNN figures).
ARCHS: dict[str, tuple[str, dict[str, int]]] = {
    "gemmini": ("gemmini", {}),
    "gemmini_wb8": ("gemmini", {"wb": 8, "arot": 1}),
    "systolic": ("systolic", {}),
    "systolic_bw16": ("systolic:bandwidth_words_per_cycle=16", {}),
}


class ViT(nn.Module):
    def __init__(self, layers: int, image: int = 224, patch: int = 16, dim: int = 192, heads: int = 3) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                                               batch_first=True, norm_first=True) for _ in range(layers))  # fmt: skip
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


class Bert(nn.Module):
    def __init__(self, layers: int, seq: int = 128, dim: int = 768, heads: int = 12, vocab: int = 1024) -> None:
        super().__init__()
        self.tok, self.pos, self.typ = nn.Embedding(vocab, dim), nn.Embedding(512, dim), nn.Parameter(torch.zeros(dim))
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                                               batch_first=True) for _ in range(layers))  # fmt: skip
        self.pool = nn.Linear(dim, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.tok(ids) + self.pos(torch.arange(ids.shape[1])) + self.typ)
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.pool(x[:, 0]))


class _GptBlock(nn.Module):
    def __init__(self, dim: int, heads: int, context: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc, self.out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.register_buffer("mask", torch.tril(torch.ones(context, context, dtype=torch.bool)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, d = x.shape[1], x.shape[2]
        q, k, v = (t.view(1, s, self.heads, d // self.heads).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(d, 2))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        att = att.masked_fill(~self.mask[:s, :s], float("-inf"))
        x = x + self.proj((F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(1, s, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, layers: int, dim: int = 768, heads: int = 12, context: int = 1024, vocab: int = 50257,
                 table_rows: int = 1024) -> None:  # fmt: skip
        super().__init__()
        self.wte, self.wpe = nn.Embedding(table_rows, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(_GptBlock(dim, heads, context) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def _import(model: nn.Module, example: torch.Tensor, path: Path) -> Graph:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), opset_version=18)
    return from_onnx(path)


def _ids(n: int) -> torch.Tensor:
    return torch.zeros(1, n, dtype=torch.long)


def _workloads(layers: int, tmp: Path) -> dict[str, tuple[tuple[LayerShape, ...], dict[str, Any]]]:
    torch.manual_seed(0)
    out: dict[str, tuple[tuple[LayerShape, ...], dict[str, Any]]] = {}
    started = time.perf_counter()
    vit = _import(ViT(layers), torch.zeros(1, 3, 224, 224), tmp / "vit.onnx")
    out["vit_tiny"] = (workload(vit), {"model": "ViT-Tiny/16 224", "phase": "-", "tokens": 197, **_size(vit)})
    bert = _import(Bert(layers), _ids(128), tmp / "bert.onnx")
    out["bert_base_s128"] = (workload(bert), {"model": "BERT-base encoder", "phase": "prefill", "tokens": 128, **_size(bert)})
    gpt = Gpt2(layers)
    prompt = _import(gpt, _ids(128), tmp / "gpt2_s128.onnx")
    out["gpt2_prefill_s128"] = (workload(prompt), {"model": "GPT-2 small", "phase": "prefill", "tokens": 128, **_size(prompt)})
    one = _import(gpt, _ids(1), tmp / "gpt2_s1.onnx")
    for kv in (127, 1023):
        out[f"gpt2_decode_l{kv}"] = (with_kv_cache(one, kv), {"model": "GPT-2 small", "phase": "decode", "tokens": 1,
                                                             "kv_len": kv, **_size(one)})  # fmt: skip
    print(f"exported and imported in {time.perf_counter() - started:.0f} s", flush=True)
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
    with tempfile.TemporaryDirectory() as tmp:
        loads = _workloads(layers, Path(tmp))
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
