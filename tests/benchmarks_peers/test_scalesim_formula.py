"""SCALE-Sim's closed-form compute cycles (benchmarks/peers/scalesim_formula.py) and our systolic template.

The closed form was derived from SCALE-Sim 3.0.0's source and checked cycle-exact against the simulator
(slow test below, and the benchmark on 25 layers x 3 dataflows). Here it is the independent reference
for our template: with unlimited bandwidth our fast and full modes must match it within the one cycle
SCALE-Sim drops (it reports the index of the last demand line, not the line count).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

import scalesim_formula as sf  # noqa: E402

from accelflow.arch import template  # noqa: E402
from accelflow.frontends import from_pytorch  # noqa: E402
from accelflow.perf import Mode, estimate  # noqa: E402

SCALESIM_PY = ROOT / "benchmarks" / ".peers" / "venv-scalesim" / "bin" / "python"


def test_fold_model_by_hand() -> None:
    # 6x6 ifmap, 3x3 filter, 4 channels, 10 filters on an 8x8 WS array:
    # E = 4*4 = 16, K = 36 -> ceil(36/8) = 5 row folds, ceil(10/8) = 2 column folds;
    # one fold = 2*8 + 8 + 16 - 2 = 38 lines; 10 folds = 380 lines; last index 379 (SCALE-Sim: 379).
    shape = sf.ConvShape(6, 6, 3, 3, 4, 10, 1)
    assert sf.spatio_temporal(shape, "ws") == (36, 10, 16)
    assert sf.compute_cycles(shape, 8, 8, "ws") == 379
    # OS: Sr = E = 16 -> 2 folds x 2 = 4 folds of 8 + 8 + 36 - 2 = 50 lines.
    assert sf.compute_cycles(shape, 8, 8, "os") == 4 * 50 - 1
    # IS: Sr = K = 36 (5 folds), Sc = E = 16 (2 folds), T = F = 10: 10 folds of 16 + 8 + 10 - 2.
    assert sf.compute_cycles(shape, 8, 8, "is") == 10 * 32 - 1


def test_stride_and_depthwise() -> None:
    layer = {"kind": "depthwise", "ifmap_h": 9, "ifmap_w": 9, "filter_h": 3, "filter_w": 3,
             "channels": 5, "num_filters": 5, "stride": 2}
    # one channel: E = 4*4 (stride 2), K = 9 -> ceil(9/4) = 3 folds of 2*4 + 4 + 16 - 2 = 26 lines,
    # minus one; five channels simulated one after the other.
    assert sf.layer_compute_cycles(layer, 4, 4, "ws") == 5 * (3 * 26 - 1)
    with pytest.raises(ValueError):
        sf.compute_cycles(sf.ConvShape(4, 4, 1, 1, 1, 1), 4, 4, "rs")


def _random_layers(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    layers = []
    for i in range(n):
        k, s = rng.choice([1, 3, 5]), rng.choice([1, 2])
        # ifmap = the extent the strided window reads, where SCALE-Sim's ceil output size and
        # PyTorch's floor agree (as in benchmarks/layers/scalesim_layers.json)
        ho, wo = rng.randint(1, 6), rng.randint(1, 6)
        layers.append({"name": f"r{i}", "kind": "conv", "ifmap_h": (ho - 1) * s + k,
                       "ifmap_w": (wo - 1) * s + k, "filter_h": k, "filter_w": k,
                       "channels": rng.randint(1, 40), "num_filters": rng.randint(1, 40),
                       "stride": s})
    return layers


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_our_template_matches_scalesim_closed_form(dataflow: str) -> None:
    rows, cols = 8, 4
    arch = template("systolic", rows=rows, cols=cols, dataflow=dataflow)
    for layer in _random_layers(6, seed={"ws": 1, "os": 2, "is": 3}[dataflow]):
        conv = nn.Conv2d(layer["channels"], layer["num_filters"], layer["filter_h"],
                         stride=layer["stride"], bias=False)
        graph = from_pytorch(nn.Sequential(conv),
                             (layer["channels"], layer["ifmap_h"], layer["ifmap_w"]))
        ref = sf.layer_compute_cycles(layer, rows, cols, dataflow)
        fast = estimate(graph, arch, mode=Mode.FAST).total_cycles
        full = estimate(graph, arch, mode=Mode.FULL).total_cycles
        assert fast == full
        assert abs(fast - ref) <= 1, (layer, fast, ref)


@pytest.mark.slow
@pytest.mark.skipif(not SCALESIM_PY.exists(), reason="peer venv missing: run benchmarks/peers/setup_env.sh")
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_closed_form_is_cycle_exact_against_scalesim(dataflow: str, tmp_path: Path) -> None:
    layers = _random_layers(8, seed=10)
    req = {"array": {"rows": 8, "cols": 6, "dataflow": dataflow, "ifmap_kb": 64, "filter_kb": 64,
                     "ofmap_kb": 64}, "layers": layers}
    (tmp_path / "req.json").write_text(json.dumps(req))
    subprocess.run([str(SCALESIM_PY), str(ROOT / "benchmarks" / "peers" / "run_scalesim.py"),
                    str(tmp_path / "req.json"), str(tmp_path / "out.json")], check=True,
                   capture_output=True)
    out = json.loads((tmp_path / "out.json").read_text())["layers"]
    for layer, rec in zip(layers, out, strict=True):
        assert rec["stall_cycles"] == 0
        assert rec["compute_cycles"] == sf.layer_compute_cycles(layer, 8, 6, dataflow), layer
