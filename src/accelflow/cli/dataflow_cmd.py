"""`accelflow dataflow MODEL --device u250`: fold a network onto a layer-pipelined FPGA accelerator."""

from __future__ import annotations

import argparse
import json
import sys

from accelflow.cli._trained import add_train_arguments
from accelflow.dataflow import (
    DataflowDesign,
    LockStep,
    Method,
    apply_sparsity,
    apply_window_samples,
    device_names,
    load_device,
    load_onnx_with_sparsity,
    load_window_samples,
    optimise_folding,
    read_sparsity_from_onnx,
    window_sample_path,
)
from accelflow.errors import ConfigError
from accelflow.frontends import load_model
from accelflow.ir import ChannelSparsity, Graph

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataflow", help="fold a model onto a dataflow (fpgaConvNet-style) FPGA accelerator",
        description="MODEL is an ONNX file, a PyTorch model file model.py[:NAME] or zoo:NAME. Conv layers with "
                    "channel_sparsity_hist histograms (from --sparsity-from, on the model's own ONNX Conv nodes, "
                    "or measured on --data images) and >= 10% zero products may be built sparse; the optimiser "
                    "builds each such conv sparse or dense, whichever folds faster; other layers are dense.",
    )  # fmt: skip
    p.add_argument("model", help="path to an .onnx file, a model file model.py[:NAME], or zoo:NAME")
    p.add_argument("--device", default="u250", help=f"FPGA device ({', '.join(device_names())}) or a YAML file")
    p.add_argument("--sparsity-from", metavar="FILE.onnx", help="read channel_sparsity_hist Conv attributes")
    p.add_argument("--data", default=None,
                   help="measure the zero-product histograms of the trained model (ReLU zeros, padding) on this "
                        "image data set's training images (a zoo model is trained on it first, from the cache)")
    p.add_argument("--weights", default=None, metavar="FILE.pt", help="with --data: a model file's state dict")
    add_train_arguments(p, "with --data: ")
    p.add_argument("--calibration-size", type=int, default=100, help="with --data: images measured (default 100)")
    p.add_argument("--export", default=None, metavar="FILE.onnx",
                   help="with --data: write the model with the measured channel_sparsity_hist on every Conv")
    p.add_argument("--method", default="greedy", choices=[m.value for m in Method], help="folding optimiser")
    p.add_argument("--batch", type=int, default=256, help="images per batch (default 256)")
    p.add_argument("--bits", type=int, default=16, help="data and weight width in bits (default 16)")
    p.add_argument("--utilisation", type=float, default=0.9, help="max fraction of each resource (default 0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the annealing optimiser")
    p.add_argument("--node-budget", type=int, default=2_000_000,
                   help="nodes the exhaustive search may visit before giving up (default 2,000,000)")
    p.add_argument("--fast", action="store_true",
                   help="greedy without its re-target rounds: seconds faster on ImageNet-size networks, "
                        "designs up to a third slower")
    p.add_argument("--lockstep", default="mean", choices=[m.value for m in LockStep],
                   help="sparse lock-step cost: REFERENCE mean (default), our expected maximum, or 'sampled' "
                        "(exact lock-step maximum over sampled windows; needs FILE.windows.npz beside the ONNX)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _table(design: DataflowDesign, dense: DataflowDesign) -> None:
    from rich.console import Console

    from accelflow.cli._table import Column, print_table

    columns = [Column("layer"), Column("op"), *(Column(c, True) for c in ("ci", "co", "cg", "fine", "cycles", "dsp",
                                                                           "lut", "bram18")), Column("sparsity")]
    rows = []
    for layer in design.layers:
        f, r = layer.folding, layer.resources
        rows.append([
            layer.name, layer.op.value, str(f.coarse_in), str(f.coarse_out), str(f.coarse_group), str(f.fine),
            f"{layer.cycles_per_image:,.0f}", f"{r.dsp:,}", f"{r.lut:,}", f"{r.bram18:,}",
            f"{layer.sparsity:.1%}" + (" (sparse)" if layer.sparse else " (built dense)" if f.dense else ""),
        ])  # fmt: skip
    print_table(f"{design.network} on {design.device.name} ({design.device.clock_mhz:g} MHz)", columns, rows)
    console = Console()
    r = design.resources
    console.print(
        f"throughput {design.throughput_images_per_s:,.1f} images/s (dense design: "
        f"{dense.throughput_images_per_s:,.1f}); DSP {r.dsp:,}, LUT {r.lut:,}, FF {r.ff:,}, BRAM18 {r.bram18:,}, "
        f"URAM {r.uram:,}; binding resource: {design.binding_resource.value}"
    )


def _measured(args: argparse.Namespace) -> tuple[Graph, dict[str, ChannelSparsity]]:
    """The trained MODEL's graph annotated with histograms measured on ``--data`` training images (window
    samples too under the sampled lock-step model), written to ``--export`` when asked."""
    from accelflow.cli._trained import train_recipe, trained_model
    from accelflow.data import load
    from accelflow.frontends import from_pytorch
    from accelflow.hass import WINDOW_POSITIONS, calibration_batches, calibration_images
    from accelflow.sparsity import annotate_graph, export_sparsity_onnx, measure_sparsity

    if args.sparsity_from:
        raise ConfigError("--data measures the histograms; --sparsity-from reads them: give one of the two")
    if args.calibration_size < 1:
        raise ConfigError(f"--calibration-size must be >= 1, got {args.calibration_size}")
    if args.export is not None and not args.export.endswith(".onnx"):
        raise ConfigError(f"--export {args.export!r}: the file name must end in .onnx")
    t = trained_model(args.model, args.weights, args.data, progress=not args.json, train=train_recipe(args))
    splits = load(t.dataset)
    shape = tuple(splits.info.input_shape)
    images = calibration_images(splits, args.calibration_size, args.seed)
    positions = WINDOW_POSITIONS if LockStep(args.lockstep) is LockStep.SAMPLED else 0
    stats = measure_sparsity(t.module, calibration_batches(images), window_positions=positions)
    if args.export is not None:
        export_sparsity_onnx(t.module, shape, stats, args.export)
    graph = annotate_graph(from_pytorch(t.module, shape, name=t.name), stats)
    return graph, {n.name: a for n in graph if (a := n.annotation(ChannelSparsity)) is not None}


def run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    if args.node_budget < 1:
        raise ConfigError(f"--node-budget must be >= 1, got {args.node_budget}")
    device = load_device(args.device)
    sparsity: dict[str, ChannelSparsity] = {}
    if args.data is not None:
        graph, sparsity = _measured(args)
    elif given := [o for o, v in (("--weights", args.weights is not None), ("--train", args.train),
                                  ("--export", args.export is not None)) if v]:
        raise ConfigError(f"{' and '.join(given)} only {'goes' if len(given) == 1 else 'go'} with --data (the "
                          "images the histograms are measured on)")
    elif args.model.lower().endswith(".onnx"):
        graph, sparsity = load_onnx_with_sparsity(args.model)  # its own histograms, if any
    else:
        graph = load_model(args.model)
    if args.sparsity_from:
        sparsity = read_sparsity_from_onnx(args.sparsity_from)
        if not sparsity:
            raise ConfigError(f"{args.sparsity_from}: no Conv node carries channel_sparsity_hist")
        apply_sparsity(graph, sparsity)
    source = args.sparsity_from or (args.model if sparsity else None)
    if LockStep(args.lockstep) is LockStep.SAMPLED and source and window_sample_path(source).exists():
        apply_window_samples(graph, load_window_samples(window_sample_path(source)))
    common = dict(batch=args.batch, data_bits=args.bits, weight_bits=args.bits, utilisation=args.utilisation,
                  lockstep=LockStep(args.lockstep), refine=not args.fast, node_budget=args.node_budget)  # fmt: skip
    method = Method(args.method)
    design = optimise_folding(graph, device, method, seed=args.seed, **common)  # type: ignore[arg-type]
    dense = design
    if sparsity:
        dense = optimise_folding(graph, device, method, seed=args.seed, use_sparsity=False, **common)  # type: ignore[arg-type]
    if args.json:
        out = design.to_dict()
        out["dense_throughput_images_per_s"] = dense.throughput_images_per_s
        out["method"] = method.value
        out["sparsity_source"] = args.sparsity_from or (
            f"measured on {args.calibration_size} {args.data} training images" if args.data
            else args.model if sparsity else None)
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _table(design, dense)
    return 0
