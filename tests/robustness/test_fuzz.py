"""A fast subset of benchmarks/bench_fuzz.py: every broken ONNX file of the corpus and a few hypothesis
cases per input path either succeed or raise an AccelflowError; CLI cases exit 2 with one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from accelflow.errors import AccelflowError, ModelImportError
from accelflow.frontends import from_onnx

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fuzz.py"
_spec = importlib.util.spec_from_file_location("accelflow_bench_fuzz", BENCH)
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

CORPUS = sorted(fuzz.CORPUS.glob("*.onnx"))
#: Files the importer must reject (the others are accepted by design, e.g. a dynamic batch dimension).
MUST_REJECT = {"truncated_10.onnx", "truncated_half.onnx", "zero_bytes.onnx", "random_bytes.onnx",
               "text_file.onnx", "missing_conv_weight.onnx", "dynamic_spatial.onnx", "unsupported_lstm.onnx",
               "self_cycle.onnx", "two_node_cycle.onnx", "attr_kernel_string.onnx", "attr_strides_zero.onnx",
               "attr_group_zero.onnx", "gemm_weight_mismatch.onnx", "empty_graph.onnx", "no_inputs_outputs.onnx",
               "bitflip.onnx", "gemm_weight_scalar.onnx", "attr_pads_short.onnx"}


def test_corpus_is_what_the_script_writes(tmp_path):
    make = importlib.util.spec_from_file_location("make_corpus", fuzz.CORPUS / "make_corpus.py")
    assert make is not None and make.loader is not None
    mod = importlib.util.module_from_spec(make)
    make.loader.exec_module(mod)
    written = mod.write_corpus(tmp_path)
    assert sorted(p.name for p in written) == [p.name for p in CORPUS]
    assert all((tmp_path / p.name).read_bytes() == p.read_bytes() for p in CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_broken_onnx_raises_accelflow_error(path):
    try:
        graph = from_onnx(path)
    except AccelflowError as exc:
        assert path.name != "valid.onnx", exc
        assert isinstance(exc, ModelImportError) or path.name not in MUST_REJECT or "GraphError" in type(exc).__name__
        assert str(path) in str(exc) or "node" in str(exc) or "graph" in str(exc)
        return
    assert path.name not in MUST_REJECT, f"{path.name} was imported"
    graph.check()


@pytest.mark.parametrize("name", ["truncated_half.onnx", "attr_strides_zero.onnx", "bitflip.onnx", "dynamic_spatial.onnx"])
def test_cli_rejects_broken_onnx_with_one_line(name):
    code, err = fuzz.run_cli(["inspect", str(fuzz.CORPUS / name)])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err and name in err


def test_quick_hypothesis_campaign_finds_nothing():
    for target in ("onnx_bytes", "onnx_proto", "arch_yaml", "arch_spec", "flow_yaml", "flow_search_yaml"):
        fuzz.BUDGET[target] = (None, 12)
    rec = fuzz.campaign(quick=True, seed=1, only=("onnx_bytes", "onnx_proto", "arch_yaml", "arch_spec", "flow_yaml",
                                               "flow_search_yaml"))
    summary = rec.summary()
    assert summary["cases"] >= 50
    assert not summary["failures"], summary["failures"]
