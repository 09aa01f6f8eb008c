"""Architecture description language: templates, validation errors, safe expressions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from accelflow.arch import (
    ArchError,
    Expr,
    ExprError,
    load_architecture,
    parse_arch_spec,
    template,
    template_names,
    template_parameters,
)
from accelflow.errors import ConfigError

TINY = """
name: tiny
mapper: systolic
parameters: {lat: 3}
fetch: {name: fetch, issue_width: 1, latency_cycles: 1}
execute_stages:
  - {name: ex, capacity: 1, latency_cycles: 0, functional_units: [alu]}
functional_units:
  - name: alu
    operations:
      add: {latency_cycles: lat}
edges:
  - {src: fetch, dst: ex}
roofline: {peak_macs_per_cycle: 1}
"""


def test_every_template_builds_with_paths_ending_in_units() -> None:
    for name in template_names():
        arch = template(name)
        assert arch.operations, name
        for op in arch.operations:
            path = arch.path(op)
            assert path[0] == arch.fetch.name and path[-1] in {u.name for u in arch.units}


def test_template_options_and_spec_strings() -> None:
    arch = parse_arch_spec("systolic:rows=16,cols=8,dataflow=os,bandwidth_words_per_cycle=4")
    assert (arch.param("rows"), arch.param("cols"), arch.param("dataflow")) == (16, 8, "os")
    assert arch.peak_macs_per_cycle == 128 and arch.dram_bytes_per_cycle == 4
    assert template("systolic").dram_bytes_per_cycle is None  # unlimited by default
    assert template_parameters("gemmini")["dim"] == 16
    with pytest.raises(ConfigError, match="no parameter 'depth'"):
        template("gemmini", depth=3)
    with pytest.raises(ConfigError, match="dataflow"):
        template("systolic", dataflow="rs")
    with pytest.raises(ConfigError, match="unknown architecture template"):
        parse_arch_spec("tpu")


def test_yaml_roundtrip_from_file_and_string(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    a, b = load_architecture(path), load_architecture(TINY)
    assert a == b  # equality by value; the source is not compared
    assert a.source == str(path)
    assert a.unit("alu").operations[0].latency.constant() == 3  # parameter substituted


def _broken(tmp_path: Path, mutate) -> str:
    data = yaml.safe_load(TINY)
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ArchError) as info:
        load_architecture(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_validation_errors_name_file_object_and_field(tmp_path: Path) -> None:
    msg = _broken(tmp_path, lambda d: d["functional_units"][0].update(capacity=[1]))
    assert "functional_units[0] (alu)" in msg and "capacity" in msg
    msg = _broken(tmp_path, lambda d: d["execute_stages"][0].update(colour="red"))
    assert "execute_stages[0] (ex)" in msg and "colour" in msg
    msg = _broken(tmp_path, lambda d: d["edges"].append({"src": "fetch", "dst": "nowhere"}))
    assert "edges[1]" in msg and "'dst'" in msg and "nowhere" in msg
    msg = _broken(tmp_path, lambda d: d["execute_stages"][0].update(functional_units=["fpu"]))
    assert "functional_units" in msg and "fpu" in msg
    msg = _broken(tmp_path, lambda d: d["functional_units"][0]["operations"]["add"].update(latency_cycles="lat +"))
    assert "operations.add.latency_cycles" in msg
    msg = _broken(tmp_path, lambda d: d["execute_stages"][0].update(capacity=0))
    assert "capacity" in msg and ">= 1" in msg
    msg = _broken(tmp_path, lambda d: d.update(edges=[]))
    assert "alu" in msg and "edges" in msg  # unit unreachable from fetch
    msg = _broken(tmp_path, lambda d: d.pop("roofline"))
    assert "roofline" in msg


def test_expressions_are_safe_and_integer() -> None:
    e = Expr.parse("2*rows + cols + n - 2")
    assert e({"rows": 4, "cols": 4, "n": 10}) == 20
    assert Expr.parse("ceil_div(n, 16) + max(a, 1)")({"n": 17, "a": 0}) == 3
    assert e.bind({"rows": 4, "cols": 4}).names == {"n"}
    for bad in ("__import__('os').system('true')", "n.real", "[1, 2]", "1.5 * n", "lambda: 1", "open('x')"):
        with pytest.raises(ExprError):
            Expr.parse(bad)


def test_user_yaml_file_equals_shipped_template(tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("accelflow.arch").joinpath("templates", "gemmini.yaml").read_text()
    path = tmp_path / "my_gemmini.yaml"
    path.write_text(text.replace("dram_latency_cycles: 80", "dram_latency_cycles: 20"))
    mine = parse_arch_spec(str(path))
    assert mine == template("gemmini", dram_latency_cycles=20)
    assert mine != template("gemmini")
