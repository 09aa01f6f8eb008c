"""Transformers on every template: every layer timed or free, fast == full per layer, GEMM views with the IR's
MACs, the decode rewrite (KV cache), the roofline bound of prefill and decode, and the CLI's LM options."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from accelflow.arch import load_architecture, template
from accelflow.cli.main import main
from accelflow.errors import ConfigError
from accelflow.ir import Graph, OpKind, layer_cost, propagate_shapes
from accelflow.mapping import (
    LayerKind,
    LayerShape,
    UnsupportedOnArchError,
    attention_products,
    with_kv_cache,
    workload,
)
from accelflow.perf import Bound, Mode, estimate
from tests.perf._transformers import Bert, Gpt, ViT, gemmini_without_vector_unit, import_onnx, tokens

TEMPLATES = ("systolic", "gemmini", "ultratrail", "plasticine")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graph]:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("transformers")
    return {
        "vit": import_onnx(ViT(), torch.zeros(1, 3, 16, 16), d / "vit.onnx"),
        "bert": import_onnx(Bert(), tokens(8), d / "bert.onnx"),
        "gpt": import_onnx(Gpt(), tokens(8), d / "gpt.onnx"),
        "gpt1": import_onnx(Gpt(), tokens(1), d / "gpt1.onnx"),
    }


@pytest.mark.parametrize("name", ["vit", "bert"])
@pytest.mark.parametrize("arch_name", TEMPLATES)
def test_fast_equals_full_on_every_layer(models: dict[str, Graph], name: str, arch_name: str) -> None:
    g = models[name]
    arch = template(arch_name)
    full, fast = estimate(g, arch, Mode.FULL, unsupported="error"), estimate(g, arch, Mode.FAST, unsupported="error")
    assert [(lp.name, lp.cycles) for lp in fast.layers] == [(lp.name, lp.cycles) for lp in full.layers]
    # every node is in the report, timed (GEMM, vector) or free (views, fused activations); nothing skipped
    assert [lp.name for lp in full.layers] == [n.name for n in g if n.op is not OpKind.INPUT] and not full.skipped
    assert all(lp.cycles == 0 for lp in full.layers if lp.kind is LayerKind.FREE)
    # every layer with work takes time (an embedding gather is memory traffic only: free at unlimited bandwidth)
    assert all(lp.cycles > 0 for lp in full.timed() if lp.op != "embedding" or arch.dram_bytes_per_cycle)
    kinds = {lp.op: lp.kind for lp in full.layers}
    assert kinds["softmax"] is kinds["layernorm"] is LayerKind.VECTOR and kinds["matmul"] is LayerKind.GEMM
    assert kinds["gelu"] is LayerKind.FREE  # fused into the linear layer before it
    assert 0.0 < full.non_gemm_share < 1.0
    assert full.seconds == pytest.approx(full.total_cycles / (arch.clock_mhz * 1e6))


def test_gemm_views_have_the_ir_macs(models: dict[str, Graph]) -> None:
    for g in models.values():
        for shape in workload(g):
            assert shape.macs == layer_cost(g[shape.name]).macs, shape.name
    qk = next(s for s in workload(models["gpt"]) if s.op is OpKind.MATMUL)
    assert (qk.groups, qk.npx, qk.window, qk.filters) == (2, 8, 16, 8)  # heads x (S x d) x (d x S)


def _decode_attention(g: Graph, kv_len: int) -> tuple[LayerShape, LayerShape, list[LayerShape]]:
    shapes = {s.name: s for s in with_kv_cache(g, kv_len)}
    att = attention_products(g)[0]
    return shapes[att.score], shapes[att.context], [shapes[n] for n in att.between]


def test_decode_gives_every_attention_the_kv_cache(models: dict[str, Graph], tmp_path: Path) -> None:
    g, kv = models["gpt1"], 24
    attentions = attention_products(g)
    assert len(attentions) == 2 and all("softmax" in a.between[-1] for a in attentions)
    score, context, between = _decode_attention(g, kv)
    assert (score.groups, score.npx, score.window, score.filters) == (2, 1, 16, kv)  # QK^T: kv keys
    assert (context.groups, context.npx, context.window, context.filters) == (2, 1, kv, 16)  # AV: window kv
    assert score.weight_elems == context.weight_elems == 2 * 16 * kv  # the cached K and V: B-operand traffic
    assert all(s.elements == 2 * kv for s in between)  # scale, mask, softmax over heads x kv
    # the same products as the last query row of a prefill over kv tokens
    prefill = _prefill_attention(kv, tmp_path)
    assert score.macs * kv == prefill["score"].macs and context.macs * kv == prefill["context"].macs
    # layers outside the attentions are those of the one-token graph
    one = {s.name: s for s in workload(g)}
    rewritten = {n for a in attentions for n in (a.score, a.context, *a.between)}
    assert all(s == one[s.name] for s in with_kv_cache(g, kv) if s.name not in rewritten)


def _prefill_attention(kv: int, tmp_path: Path) -> dict[str, LayerShape]:
    torch.manual_seed(0)
    g = import_onnx(Gpt(), tokens(kv), tmp_path / f"prefill{kv}.onnx")
    att = attention_products(g)[0]
    shapes = {s.name: s for s in workload(g)}
    return {"score": shapes[att.score], "context": shapes[att.context]}


def _attention_graph(queries: int, keys: int) -> Graph:
    g = Graph("attention")
    q, k, v = g.add_input("q", (2, queries, 8)), g.add_input("kt", (2, 8, keys)), g.add_input("v", (2, keys, 8))
    s = g.add_node("scores", OpKind.MATMUL, [q, k])
    p = g.add_node("probs", OpKind.SOFTMAX, [s])
    o = g.add_node("context", OpKind.MATMUL, [p, v])
    g.set_outputs([o])
    return propagate_shapes(g)


def test_a_graph_with_its_own_kv_cache_is_left_and_a_prefill_graph_is_refused() -> None:
    cached = {s.name: s for s in with_kv_cache(_attention_graph(1, 40), 100)}
    assert cached["scores"].filters == 40 and cached["context"].window == 40
    with pytest.raises(ConfigError, match="one token"):
        with_kv_cache(_attention_graph(6, 6), 100)
    with pytest.raises(ConfigError, match=">= 1"):
        with_kv_cache(_attention_graph(1, 1), 0)


def test_roofline_decode_is_memory_bound_and_prefill_compute_bound(tmp_path: Path) -> None:
    torch.manual_seed(0)
    arch = template("gemmini")
    big = {"vocab": 64, "dim": 128, "heads": 2, "layers": 2, "context": 128}
    prefill = estimate(import_onnx(Gpt(**big), tokens(64), tmp_path / "p.onnx"), arch, Mode.ROOFLINE)
    one = import_onnx(Gpt(**big), tokens(1), tmp_path / "d.onnx")
    decode = estimate(with_kv_cache(one, 64), arch, Mode.ROOFLINE)
    assert prefill.bound is Bound.COMPUTE and decode.bound is Bound.MEMORY
    assert decode.memory_bound_share > 0.8 > prefill.memory_bound_share
    linear = [lp for lp in decode.layers if lp.op == "linear"]
    assert all(lp.bound is Bound.MEMORY for lp in linear)  # one token: every weight byte used once
    # bytes per MAC above the machine balance (16 B/cycle over 256 MACs/cycle) for the decode GEMMs
    assert all(lp.roofline.memory_cycles > lp.roofline.compute_cycles for lp in linear)
    # the fast model agrees: a decoded token costs far more than a prompt token (the weights are read for one)
    per_prompt_token = estimate(import_onnx(Gpt(**big), tokens(64), tmp_path / "p2.onnx"), arch).total_cycles / 64
    assert estimate(with_kv_cache(one, 64), arch).total_cycles > 8 * per_prompt_token


def test_an_architecture_without_a_vector_unit_errors_or_skips_loudly(
    models: dict[str, Graph], caplog: pytest.LogCaptureFixture
) -> None:
    bare = load_architecture(gemmini_without_vector_unit())
    with pytest.raises(UnsupportedOnArchError, match="vector unit"):
        estimate(models["bert"], bare, unsupported="error")
    with caplog.at_level(logging.WARNING):
        report = estimate(models["bert"], bare, unsupported="skip")
    assert report.skipped and "skipped" in caplog.text
    assert all(lp.kind is not LayerKind.VECTOR for lp in report.layers)


# -- the CLI ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("gpt_files")
    out = {}
    for s in (1, 8):
        import_onnx(Gpt(), tokens(s), d / f"gpt{s}.onnx")
        out[s] = d / f"gpt{s}.onnx"
    return out


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["estimate", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_decode_and_prefill(gpt_files: dict[int, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([str(gpt_files[1]), "--arch", "gemmini", "--phase", "decode", "--kv-len", "32", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["workload"] == {"phase": "decode", "seq_len": 1, "kv_len": 32, "attentions": 2}
    assert data["bound"] == "memory" and data["skipped"] == [] and data["seconds"] == pytest.approx(data["total_cycles"] / 1e9)
    assert sum(lp["cycles"] for lp in data["layers"] if lp["kind"] == "vector") == pytest.approx(
        data["non_gemm_share"] * data["total_cycles"])  # fmt: skip
    scores = [lp for lp in data["layers"] if lp["op"] == "matmul"]
    assert len(scores) == 4 and all(lp["bound"] == "memory" for lp in scores)
    code, out, _ = _run([str(gpt_files[8]), "--arch", "gemmini", "--seq-len", "8", "--json"], capsys)
    assert code == 0 and json.loads(out)["workload"] == {"phase": "prefill", "seq_len": 8}
    code, out, _ = _run([str(gpt_files[8]), "--arch", "systolic"], capsys)  # table
    assert code == 0 and "non-GEMM layers" in out and "free layers" in out


@pytest.mark.parametrize("argv, message", [
    (["8", "--phase", "decode", "--kv-len", "16"], "sequence length 1"),
    (["8", "--seq-len", "16"], "exported with sequence length 8"),
    (["1", "--phase", "decode"], "needs --kv-len"),
    (["8", "--kv-len", "16"], "applies to --phase decode"),
    (["1", "--phase", "decode", "--kv-len", "0"], "positive integer"),
    (["1", "--phase", "decode", "--kv-len", "4", "--input-shape", "1"], "either --input-shape"),
])
def test_cli_lm_options_give_one_line_errors(gpt_files: dict[int, Path], argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code, _, err = _run([str(gpt_files[int(argv[0])]), "--arch", "gemmini", *argv[1:]], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_seq_len_on_a_model_without_token_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    import_onnx(ViT(), torch.zeros(1, 3, 16, 16), tmp_path / "vit.onnx")
    code, _, err = _run([str(tmp_path / "vit.onnx"), "--arch", "gemmini", "--seq-len", "17"], capsys)
    assert code == 2 and "not token ids" in err


def test_embedding_is_memory_traffic_only(models: dict[str, Graph]) -> None:
    emb = next(s for s in workload(models["gpt"]) if s.op is OpKind.EMBEDDING)
    assert emb.taps == 0 and emb.vector_ops == 0 and emb.in_elems == 8 + emb.out_elems
    lp = estimate([emb], template("gemmini"), Mode.FULL).layers[0]
    assert lp.cycles > 0 and lp.bound is Bound.MEMORY and np.isclose(lp.roofline.compute_cycles, 0.0)


def test_decode_aware_gemmini_tiling_is_exact_and_closer_to_the_bandwidth_roof(models: dict[str, Graph]) -> None:
    arch, decode = template("gemmini"), with_kv_cache(models["gpt1"], 64)
    default = estimate(decode, arch, Mode.FAST)
    tiles = {"wb": 8, "arot": 1}
    fast, full = estimate(decode, arch, Mode.FAST, tiles=tiles), estimate(decode, arch, Mode.FULL, tiles=tiles)
    assert [lp.cycles for lp in fast.layers] == [lp.cycles for lp in full.layers]
    assert fast.total_cycles < 0.8 * default.total_cycles
    assert estimate(decode, arch, Mode.ROOFLINE).total_cycles < fast.total_cycles
    # the default is the earlier mapping, instruction for instruction (wb=2 spelled out)
    from accelflow.mapping import map_shape

    gemm = next(s for s in decode if s.kind is LayerKind.GEMM)
    assert str(map_shape(gemm, arch)) == str(map_shape(gemm, arch, {"wb": 2}))
