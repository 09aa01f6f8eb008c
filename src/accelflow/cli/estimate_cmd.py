"""`accelflow estimate MODEL --arch ARCH`: latency of a network on an accelerator description.

Language models: ``--phase prefill --seq-len S`` times the prompt (the model imported with S tokens);
``--phase decode --kv-len L`` one generated token attending to a KV cache of L keys (the model imported
with one token, its attentions given L keys by :func:`accelflow.mapping.with_kv_cache`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from accelflow.arch import parse_arch_spec
from accelflow.errors import ConfigError
from accelflow.ir import DType, Graph, InputAttrs
from accelflow.mapping import LayerShape, Phase, attention_products, with_kv_cache
from accelflow.perf import Mode, PerfReport, estimate

__all__ = ["register", "run", "parse_tiles"]

log = logging.getLogger(__name__)


def parse_tiles(text: str | None) -> dict[str, int]:
    """'ti=16,px=32' -> {'ti': 16, 'px': 32}."""
    tiles: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        key, eq, value = item.partition("=")
        try:
            tiles[key.strip()] = int(value)
        except ValueError:
            raise ConfigError(f"--tile {item!r}: expected NAME=INT, e.g. ti=16") from None
        if not eq:
            raise ConfigError(f"--tile {item!r}: expected NAME=INT, e.g. ti=16")
    return tiles


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "estimate", help="estimate the latency of a model on an accelerator",
        description="MODEL is an ONNX file, a PyTorch file model.py[:NAME] or zoo:NAME; ARCH a YAML file or a "
                    "template with options, e.g. systolic:rows=16,cols=16,dataflow=ws, gemmini, ultratrail, "
                    "plasticine. Language models (token-id input): --phase prefill --seq-len S times the prompt; "
                    "--phase decode --kv-len L one new token attending to L cached keys (an ONNX file must then "
                    "have been exported with sequence length 1).",
    )  # fmt: skip
    p.add_argument("model", help="path to an .onnx file, model.py[:NAME], or zoo:NAME")
    p.add_argument("--arch", required=True, help="architecture YAML path or template[:key=value,...]")
    p.add_argument("--mode", default="fast", choices=[m.value for m in Mode], help="evaluation mode (default fast)")
    p.add_argument("--tile", help="override the mapper's default tiling, e.g. ti=16 (gemmini), px=32 (plasticine), "
                                  "ve=512 (vector elements per chunk, every template)")  # fmt: skip
    p.add_argument("--input-shape", help="input shape without batch, e.g. 3,112,112 (zoo models and model files)")
    p.add_argument("--phase", default=Phase.PREFILL.value, choices=[ph.value for ph in Phase],
                   help="language-model phase: prefill (the prompt, default) or decode (one token with a KV cache)")
    p.add_argument("--seq-len", type=_positive, metavar="S",
                   help="prompt length in tokens (prefill; decode: the default --kv-len)")
    p.add_argument("--kv-len", type=_positive, metavar="L", help="decode: keys in the KV cache the new token attends to")
    p.add_argument("--unsupported", default="error", choices=("error", "skip"),
                   help="a layer the architecture cannot run: stop with an error (default) or leave it untimed "
                        "and list it")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _token_input(graph: Graph, model: str) -> int:
    """The sequence length of a language model's token-id input (its first axis)."""
    first = graph.inputs[0] if graph.inputs else None
    attrs = first.attrs if first is not None else None
    if first is None or first.shape is None or not isinstance(attrs, InputAttrs) or attrs.dtype is not DType.INT64:
        raise ConfigError(f"{model}: --seq-len and --phase decode apply to language models (token ids in, int64); "
                          "this model's input is not token ids")  # fmt: skip
    return first.shape[0]


def _load(args: argparse.Namespace, tokens: int | None) -> Graph:
    from accelflow.cli.inspect_cmd import parse_shape  # imports the frontends (torch): only to load a model
    from accelflow.frontends import load_model

    shape = parse_shape(args.input_shape)
    if tokens is None:
        return load_model(args.model, shape)
    if shape is not None:
        raise ConfigError("give either --input-shape or --seq-len/--phase decode, not both")
    rebuilt = not args.model.lower().endswith(".onnx")  # zoo models and model files are traced at any length
    graph = load_model(args.model, (tokens,) if rebuilt else None)
    length = _token_input(graph, args.model)
    if length != tokens:
        if args.phase == Phase.DECODE:
            raise ConfigError(f"{args.model}: exported with sequence length {length}; --phase decode needs an export "
                              "with sequence length 1 (the new token; the cache length comes from --kv-len): export "
                              "with a (1, 1) token-id input")  # fmt: skip
        raise ConfigError(f"{args.model}: exported with sequence length {length} but --seq-len {tokens}: ONNX shapes are "
                          f"static; export with {tokens} tokens or leave out --seq-len")  # fmt: skip
    return graph


def _workload(args: argparse.Namespace) -> tuple[Graph | tuple[LayerShape, ...], dict[str, Any]]:
    if args.phase == Phase.PREFILL:
        if args.kv_len is not None:
            raise ConfigError("--kv-len applies to --phase decode; prefill attends to the prompt's own tokens")
        graph = _load(args, args.seq_len)
        info: dict[str, Any] = {"phase": "prefill"}
        if args.seq_len is not None:
            info["seq_len"] = args.seq_len
        return graph, info
    kv_len = args.kv_len if args.kv_len is not None else args.seq_len
    if kv_len is None:
        raise ConfigError("--phase decode needs --kv-len L (the keys in the KV cache; or --seq-len S for the cache "
                          "after a prompt of S tokens)")  # fmt: skip
    graph = _load(args, 1)
    attentions = attention_products(graph)
    if not attentions:
        raise ConfigError(f"{args.model}: --phase decode found no attention (a product of two activations feeding "
                          "softmax and a second product of two activations)")  # fmt: skip
    shapes = {s.name: s for s in with_kv_cache(graph, kv_len)}
    if any(shapes[a.score].filters != kv_len for a in attentions):
        log.warning("%s carries its own KV cache in some attentions; those keep their key count", args.model)
    return tuple(shapes.values()), {"phase": "decode", "seq_len": 1, "kv_len": kv_len, "attentions": len(attentions)}


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:,.2f} {unit}"
    return f"{seconds / 1e-9:,.1f} ns"


def _table(report: PerfReport, model: str, info: dict[str, Any]) -> None:
    from rich.console import Console

    from accelflow.cli._table import Column, print_table

    phase = "" if info.get("phase") == "prefill" and "seq_len" not in info else \
        ", " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "attentions")  # fmt: skip
    columns = [Column("layer"), Column("op"), Column("kind"), Column("cycles", True), Column("time", True),
               Column("instructions", True), Column("iterations evaluated", True), Column("utilisation", True),
               Column("bound")]  # fmt: skip
    timed = report.timed()
    rows = [[lp.name, lp.op, lp.kind.value, f"{lp.cycles:,}", _duration(lp.seconds(report.clock_mhz)),
             f"{lp.instructions:,}", f"{lp.iterations_evaluated:,}", f"{lp.utilisation:.1%}",
             lp.bound.value if lp.bound else ""] for lp in timed]  # fmt: skip
    total = ["total", "", "", f"{report.total_cycles:,}", _duration(report.seconds), f"{report.instructions_total:,}",
             f"{report.iterations_evaluated:,}", "", report.bound.value]  # fmt: skip
    print_table(f"{model} on {report.arch} ({report.mode.value} mode{phase})", columns, rows, [total])
    console = Console()
    console.print(f"{report.total_cycles:,} cycles = {_duration(report.seconds)} at {report.clock_mhz:g} MHz; "
                  f"non-GEMM layers {report.non_gemm_share:.1%} of the time; {report.bound.value}-bound by the "
                  f"roofline ({report.memory_bound_share:.1%} of the time in memory-bound layers); "
                  f"{len(report.layers) - len(timed)} free layers (views, fused activations) not shown",
                  soft_wrap=True)  # fmt: skip
    console.print(f"instructions evaluated: {report.instructions_evaluated:,} of {report.instructions_total:,}; "
                  f"wall time {report.wall_seconds:.2f} s", soft_wrap=True)  # fmt: skip
    if report.skipped:
        console.print(f"not supported on {report.arch}, not timed: {', '.join(report.skipped)}")


def run(args: argparse.Namespace) -> int:
    arch = parse_arch_spec(args.arch)  # bad architecture -> ConfigError -> exit 2 before loading the model
    tiles = parse_tiles(args.tile)
    model, info = _workload(args)
    report = estimate(model, arch, Mode(args.mode), tiles=tiles, unsupported=args.unsupported)
    if args.json:
        sys.stdout.write(json.dumps({**report.to_dict(), "workload": info}, indent=2) + "\n")
    else:
        _table(report, args.model, info)
    return 0
