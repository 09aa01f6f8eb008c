"""Run da4ml's constant-matrix-vector-multiplication (CMVM) optimiser on dense kernels; JSON in, JSON out.

Executed with the interpreter of ``benchmarks/.peers/venv-da4ml``, never imported by accelflow.

    python run_da4ml.py request.json result.json

request.json: ``{"layers": [{"name", "kernel": [[...]] (n_in x n_out, values already on their fixed-point
grid), "qinterval": [min, max, step] (every input's range and LSB)}]}``.

da4ml (Sun et al., "da4ml: distributed arithmetic for real-time neural networks on FPGAs") rewrites
``y = x @ W`` for constant W into a shared adder graph and reports its ``cost`` (with ``adder_size=1``, as
da4ml's own HWConfig default: adder bits, its estimate of LUTs) and ``latency`` (adder levels). It sees the weight values and the input widths, no DSPs.
result.json: ``{"da4ml_version", "layers": [{"name", "cost", "latency_min", "latency_max", "seconds"}]}``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def main() -> None:
    import da4ml
    from da4ml.cmvm import solve

    request = json.loads(open(sys.argv[1]).read())
    out = []
    for layer in request["layers"]:
        kernel = np.asarray(layer["kernel"], dtype=np.float32)
        qi = tuple(float(v) for v in layer["qinterval"])
        t0 = time.perf_counter()
        # adder_size=1, carry_size=-1 is da4ml's own HWConfig default: cost in adder bits (~LUTs),
        # latency in adder levels (the solver's -1 default would count adders instead of bits)
        sol = solve(kernel, qintervals=[qi] * kernel.shape[0], adder_size=1, carry_size=-1)
        lat = sol.latency
        out.append(
            {
                "name": layer["name"],
                "cost": float(sol.cost),
                "latency_min": float(lat[0]),
                "latency_max": float(lat[1]),
                "seconds": time.perf_counter() - t0,
            }
        )
    with open(sys.argv[2], "w") as f:
        json.dump({"da4ml_version": da4ml.__version__, "layers": out}, f, indent=1)


if __name__ == "__main__":
    main()
