"""`accelflow inspect MODEL`: layers, shapes, MACs and parameters of a model."""

from __future__ import annotations

import argparse
import json
import sys

from accelflow.errors import ConfigError
from accelflow.frontends import load_model
from accelflow.ir import LayerCost, OpKind, network_cost

__all__ = ["register", "run", "inspect_json", "parse_shape"]


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """'3,224,224' -> (3, 224, 224); the batch dimension is not given."""
    if text is None:
        return None
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise ConfigError(f"--input-shape {text!r}: expected comma-separated positive integers, e.g. 3,224,224") from None
    if not shape or any(d <= 0 for d in shape):
        raise ConfigError(f"--input-shape {text!r}: expected comma-separated positive integers, e.g. 3,224,224")
    return shape


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show layers, shapes, MACs and parameters of a model",
                       description="MODEL is an ONNX file, a PyTorch file model.py[:NAME] or zoo:NAME "
                                   "(zoo:list lists the zoo).")
    p.add_argument("model", help="path to an .onnx file, a PyTorch model file model.py[:NAME], or zoo:NAME")
    p.add_argument("--input-shape", help="input shape without batch, e.g. 3,224,224 (zoo and .py models)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def inspect_json(model: str, input_shape: tuple[int, ...] | None = None) -> dict:
    graph = load_model(model, input_shape)
    costs = network_cost(graph)
    total = sum(costs.values(), LayerCost())
    layers = [
        {
            "name": node.name,
            "op": node.op.value,
            "input_shape": list(node.input_shapes()[0]) if node.inputs else [],
            "output_shape": list(node.shape or ()),
            "macs": cost.macs,
            "params": cost.params,
        }
        for node, cost in costs.items()
        if node.op is not OpKind.INPUT
    ]
    return {"model": model, "total_macs": total.macs, "total_params": total.params, "layers": layers}


def _list_zoo() -> int:
    from rich.console import Console
    from rich.table import Table

    from accelflow.zoo import names, spec

    table = Table(title="accelflow model zoo")
    for col in ("name", "input", "classes", "data set", "description"):
        table.add_column(col)
    for name in names():
        s = spec(name)
        table.add_row(name, "x".join(map(str, s.input_shape)), str(s.num_classes), s.default_dataset or "-",
                      s.description)
    Console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.model in ("zoo:list", "zoo:"):
        return _list_zoo()
    shape = parse_shape(args.input_shape)
    if shape is not None and args.model.lower().endswith(".onnx"):
        raise ConfigError("--input-shape does not apply to ONNX files: they carry their own input shape")
    info = inspect_json(args.model, shape)
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from accelflow.cli._table import Column, print_table

    columns = [Column("layer"), Column("op"), Column("input", True), Column("output", True), Column("MACs", True),
               Column("params", True)]
    rows = [[layer["name"], layer["op"], "x".join(map(str, layer["input_shape"])),
             "x".join(map(str, layer["output_shape"])), f"{layer['macs']:,}", f"{layer['params']:,}"]
            for layer in info["layers"]]  # fmt: skip
    print_table(f"{info['model']}: {info['total_macs']:,} MACs, {info['total_params']:,} parameters", columns, rows)
    return 0
