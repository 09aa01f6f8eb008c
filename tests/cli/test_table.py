"""Tables printed to a pipe (80 columns) keep every digit; names fold instead."""

from __future__ import annotations

import re

from accelflow.cli._table import Column, print_table
from accelflow.cli.main import main


def test_numbers_are_never_cut_when_piped(capsys) -> None:
    name = "encoder.layers.11.attention.self.query_key_value_projection"
    rows = [[name, "linear", *(f"{10**12 + i:,}" for i in range(6))]]
    print_table("wide", [Column("layer"), Column("op"), *(Column(f"c{i}", True) for i in range(6))], rows)
    out = capsys.readouterr().out
    assert all(f"{10**12 + i:,}" in out for i in range(6))
    assert name not in out and "query_key" in out.replace("│", "").replace(" ", "").replace("\n", "")  # folded


def test_estimate_table_keeps_its_numbers(capsys) -> None:
    assert main(["estimate", "zoo:resnet18", "--arch", "gemmini"]) == 0
    out = capsys.readouterr().out
    total = re.search(r"^([\d,]+) cycles =", out, re.M)
    assert total is not None and total.group(1) in out.split("total", 1)[1]
