"""Import time (both routes) and reference-execution time of the IR for ResNet-50 at 224x224.

Run: .venv/bin/python benchmarks/bench_ir.py [--repeats N]
Writes benchmarks/results/ir_import_exec.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from accelflow.frontends import export_onnx, from_onnx, from_pytorch  # noqa: E402
from accelflow.ir import LayerCost, execute, network_cost  # noqa: E402
from accelflow.zoo import create, spec  # noqa: E402


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    info = spec(args.model)
    model = create(args.model)
    shape = info.input_shape
    import_s, graph = _timed(lambda: from_pytorch(model, shape, name=args.model), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.model}.onnx"
        export_s, _ = _timed(lambda: export_onnx(model, shape, path), 1)
        onnx_s, g2 = _timed(lambda: from_onnx(path), args.repeats)
    x = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    exec_s, out = _timed(lambda: execute(graph, x)[0], args.repeats)
    with torch.no_grad():
        torch_s, ref = _timed(lambda: model(torch.from_numpy(x)).numpy(), args.repeats)
    macs = sum(network_cost(graph).values(), LayerCost()).macs
    result = {
        "model": args.model,
        "input_shape": list(shape),
        "nodes": len(graph),
        "total_macs": macs,
        "import_pytorch_torch_export_s": round(import_s, 3),
        "onnx_export_s": round(export_s, 3),
        "import_onnx_s": round(onnx_s, 3),
        "ir_execute_batch1_s": round(exec_s, 3),
        "torch_forward_batch1_s": round(torch_s, 3),
        "ir_gmacs_per_s": round(macs / exec_s / 1e9, 2),
        "max_abs_diff_vs_torch": float(np.abs(out - ref).max()),
        "routes_same_node_count": len(graph) == len(g2),
        "repeats": args.repeats,
    }
    path = write_result("ir_import_exec", result)
    for k, v in result.items():
        print(f"{k:28s} {v}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
