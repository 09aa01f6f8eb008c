"""Why fast mode does not take max-plus matrix powers: the Gemmini `ii`-loop body as a max-plus matrix.

The body of Gemmini's innermost loop (mvin of an A tile into spad[2 + ii % 8], compute into
acc[... + ii]) is derived once as a max-plus map (``perf/_maxplus.py``) and written as a square matrix
G over the frontier variables it touches, in the frame of iteration 0 (the 8 spad buffers rotate, the
accumulator row moves by one: the row written leaves the touched set, the next one enters as -inf,
i.e. no pending access). Then the powers G^k are computed until they are ultimately periodic entrywise
(G^(k+c) - G^k = G^k - G^(k-c), several rates allowed because G is reducible), which is what a
matrix-domain shortcut would need. Also measured: the cost of one dense max-plus product and the
density of the composed map of one `k` step.

Run: .venv/bin/python benchmarks/bench_perf_maxplus_powers.py   (about 10 s)
Writes benchmarks/results/perf_maxplus_powers.json.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
from torch import nn

from accelflow.arch import template
from accelflow.frontends import from_pytorch
from accelflow.mapping import layer_shape, map_shape
from accelflow.perf import _maxplus as mp
from accelflow.perf._engine import KernelCache, _Engine

OUT = Path(__file__).parent / "results" / "perf_maxplus_powers.json"
NEG = -np.inf


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Max-plus product (a (x) b)[i, j] = max_k a[i, k] + b[k, j], row by row (bounded memory)."""
    out = np.empty((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        out[i] = (a[i][:, None] + b).max(axis=0)
    return out


def main() -> None:
    warnings.simplefilter("ignore", RuntimeWarning)  # -inf - -inf in the periodicity test
    arch = template("gemmini")
    g = from_pytorch(nn.Sequential(nn.Conv2d(64, 64, 3, padding=1)), (64, 56, 56))
    nest = map_shape(layer_shape(g.compute_nodes()[0]), arch)
    eng = _Engine(arch, False, KernelCache(arch), frozenset(nest.env))
    stream: list = []
    eng.execute = lambda ci, env: stream.append((ci, ci.resolve(env, eng.word_bits)))  # type: ignore[method-assign]
    eng.run_block(nest.body, dict(nest.env), ())
    body = stream[2:4]  # first k step: mvin, preload, then ii = 0: mvin -> spad[2], compute
    m = mp.derive(eng, body)
    space = {s.name: i for i, s in enumerate(arch.storages)}
    spad, acc = space["spad"], space["acc"]
    caps = eng.ring_caps
    names = set(m.inputs) | {v for v, _ in m.scalars}
    for kind, i, _ in m.rings:
        names |= {(kind, i, j) for j in range(caps[kind, i])}
    names |= {(kind, spad + ((2 + j) << 6)) for j in range(8) for kind in (mp.RD, mp.RR)}
    order = sorted(names)
    idx = {v: n for n, v in enumerate(order)}
    n = len(order)
    f = np.full((n, n), NEG)
    np.fill_diagonal(f, 0.0)  # untouched variables keep their value

    def row(var: tuple[int, ...], terms: tuple[tuple[int, int], ...]) -> None:
        f[idx[var]] = NEG
        for p, o in terms:
            col = idx[m.inputs[p]]
            f[idx[var], col] = max(f[idx[var], col], o)

    for var, terms in m.scalars:
        row(var, terms)
    for kind, i, appended in m.rings:
        c, k = caps[kind, i], len(appended)
        for j in range(c):  # slot j after k appends: old slot j + k, or an appended value
            if j + k < c:
                f[idx[(kind, i, j)]] = NEG
                f[idx[(kind, i, j)], idx[(kind, i, j + k)]] = 0.0
            else:
                row((kind, i, j), appended[j - (c - k)])
    relabel = np.full((n, n), NEG)  # frame of the next iteration: sigma^-1
    for var in order:
        src = var
        if var[0] in (mp.RD, mp.RR) and var[1] & 63 == acc:
            continue  # the row written leaves; the next row enters with no pending access (-inf)
        if var[0] in (mp.RD, mp.RR) and var[1] & 63 == spad and 2 <= var[1] >> 6 <= 9:
            src = (var[0], spad + ((2 + ((var[1] >> 6) - 1) % 8) << 6))  # new spad[2+j] = old spad[2+(j+1)%8]
        relabel[idx[var], idx[src]] = 0.0
    gm = _product(relabel, f)
    t0 = time.perf_counter()
    powers = [np.where(np.eye(n) > 0, 0.0, NEG), gm]
    found = None
    for k in range(2, 400):
        powers.append(_product(powers[-1], gm))
        for c in range(1, 9):
            if k - 2 * c < 1:
                break
            a, b, d = powers[k], powers[k - c], powers[k - 2 * c]
            fin = np.isfinite(a)
            if (fin == np.isfinite(b)).all() and (fin == np.isfinite(d)).all() and ((a - b)[fin] == (b - d)[fin]).all():
                found = {"transient": k - 2 * c, "cyclicity": c, "rates_per_iteration": sorted({float(x) / c for x in (a - b)[fin]})}
                break
        if found:
            break
    t_powers = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(3):
        _product(gm, gm)
    t_product = (time.perf_counter() - t0) / 3
    big = np.random.default_rng(0).integers(0, 100, (380, 380)).astype(float)
    t0 = time.perf_counter()
    _product(big, big)
    t_product_380 = time.perf_counter() - t0
    # density of the composed map of one k step (mvin, preload, 32 x (mvin, compute)): derived as one segment
    step = stream[:2 + 64]
    t0 = time.perf_counter()
    ms = mp.derive(eng, step)
    t_step = time.perf_counter() - t0
    terms = sum(len(t) for _, t in ms.scalars) + sum(len(t) for _, _, app in ms.rings for t in app)
    outputs = len(ms.scalars) + sum(len(app) for _, _, app in ms.rings)
    out = {
        "loop": "gemmini ii loop of a 64x64 3x3 conv on 56x56 (i_size 512: 32 iterations per k step)",
        "matrix_dimension": n,
        "finite_entries": int(np.isfinite(gm).sum()),
        "ultimately_periodic": found,
        "powers_computed": len(powers) - 1,
        "powers_seconds": t_powers,
        "one_product_seconds": t_product,
        "one_product_seconds_n380": t_product_380,
        "k_step_map": {"instructions": len(step), "outputs": outputs, "terms": terms, "inputs": len(ms.inputs),
                       "derive_seconds": t_step},  # fmt: skip
    }
    print(json.dumps(out, indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
