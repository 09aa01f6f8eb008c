"""Fuzz every input path: ONNX files (a broken corpus plus byte- and proto-level mutations), architecture
YAML and specs (and estimating a small network on every architecture that loads), flow YAML, device
tables and CLI options.

usage: .venv/bin/python benchmarks/bench_fuzz.py [--quick] [--seed N]

Each case must either succeed or raise an ``accelflow.errors.AccelflowError`` subclass; a CLI case must
exit with 0 or 2, and with 2 print exactly one line and no traceback. Anything else is a failure, recorded
(deduplicated by target, exception type and message) in ``benchmarks/results/fuzz.json``. Inputs come from
hypothesis; the run records every case instead of stopping at the first failure.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.resources
import io
import json
import logging
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from accelflow.arch import load_architecture, parse_arch_spec, template_names
from accelflow.cli.main import main as cli_main
from accelflow.errors import AccelflowError
from accelflow.flow import parse_flow
from accelflow.flow.search_file import parse_flow_search
from accelflow.frontends import from_onnx
from accelflow.perf import Mode, estimate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "benchmarks" / "fuzz_corpus"
RESULTS = ROOT / "benchmarks" / "results" / "fuzz.json"
FLOWS = sorted((ROOT / "examples" / "flows").glob("*.yaml"))
FLOW_SEARCHES = sorted((ROOT / "examples" / "flow_search").glob("*.yaml"))
DEVICES = ["u250", "u200", "vu9p", "u50", "zcu102", "zcu104", "zc706"]

#: Budget per target: (full run, --quick / test subset).
BUDGET = {"onnx_corpus": (None, None), "onnx_bytes": (1200, 25), "onnx_proto": (1200, 25), "arch_yaml": (900, 25),
          "arch_spec": (400, 15), "flow_yaml": (900, 25), "flow_search_yaml": (400, 15), "device_yaml": (150, 5), "cli": (400, 12)}


class Recorder:
    """Counts cases per target and keeps one example of each distinct failure."""

    def __init__(self) -> None:
        self.cases: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.failures: dict[tuple[str, str, str], dict[str, Any]] = {}

    def run(self, target: str, case: str, fn: Callable[[], Any]) -> Any:
        self.cases[target] += 1
        try:
            out = fn()
        except AccelflowError as exc:
            self.outcomes[f"{target}:{type(exc).__name__}"] += 1
            return None
        except Exception as exc:  # the finding: anything but our error classes
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(frame.filename).name}:{frame.lineno}"
            self.fail(target, case, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                      traceback.format_exc(limit=-3), where)
            return None
        self.outcomes[f"{target}:{out if isinstance(out, str) and out.startswith('exit') else 'ok'}"] += 1
        return out

    def fail(self, target: str, case: str, what: str, detail: str = "", where: str = "") -> None:
        """Distinct failures: by target, exception type and raising line (or message, for CLI checks)."""
        key = (target, what.split(":")[0], where or what[:120])
        entry = self.failures.setdefault(key, {"target": target, "error": what[:300], "raised_at": where,
                                               "example": case[:600], "detail": detail[-1500:], "count": 0})
        entry["count"] += 1

    def summary(self) -> dict[str, Any]:
        return {"cases": sum(self.cases.values()), "cases_per_target": dict(self.cases),
                "outcomes": dict(sorted(self.outcomes.items())), "distinct_failures": len(self.failures),
                "failures": sorted(self.failures.values(), key=lambda f: (f["target"], -f["count"]))}


def _run_hypothesis(n: int, seed: int, strategy: st.SearchStrategy[Any], body: Callable[[Any], None]) -> None:
    @settings(max_examples=n, deadline=None, database=None, derandomize=False, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def _inner(x: Any) -> None:
        body(x)

    from hypothesis import seed as hseed

    hseed(seed)(_inner)()


# -- generic structure mutations (YAML documents) ------------------------------------------------------

SCALARS = st.one_of(st.integers(-(2**40), 2**40), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.none(), st.booleans(), st.lists(st.integers(-5, 70), max_size=4),
                    st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(draw: Callable[[st.SearchStrategy[Any]], Any], obj: Any) -> Any:
    obj = copy.deepcopy(obj)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(obj) if p]
        if not paths:
            return draw(SCALARS)
        path = draw(st.sampled_from(paths))
        parent = obj
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["set", "set", "delete", "add", "duplicate"]))
        key = path[-1]
        if op == "set":
            parent[key] = draw(SCALARS)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(SCALARS)
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return obj


def _yaml_text(draw: Callable[[st.SearchStrategy[Any]], Any], base: Any) -> str:
    text = yaml.safe_dump(_mutate(draw, base), sort_keys=False)
    if draw(st.integers(0, 9)) == 0:  # raw text damage: cut or splice characters
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.text(max_size=6)) + text[i + draw(st.integers(0, 20)):]
    return text if "\n" in text else text + "\n"


def _with_alarm(seconds: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a case taking longer than ``seconds`` raises TimeoutError (recorded as a failure)."""

    def _raise(_sig: int, _frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _template_docs() -> list[dict[str, Any]]:
    files = importlib.resources.files("accelflow.arch").joinpath("templates")
    return [yaml.safe_load(files.joinpath(f"{n}.yaml").read_text()) for n in template_names()]


# -- ONNX -------------------------------------------------------------------------------------------------

#: Valid models the proto mutations start from: a plain CNN, a tf2onnx-style one (unequal pads, a Pad
#: node folded into the next Conv, auto_pad SAME) so the Pad folding is mutated too, and a GPT-style block
#: on token ids (embedding, layer norm, attention with the batch axis merged and moved, GELU, a shape chain).
BASES = ("valid.onnx", "keras_style_pads.onnx", "transformer.onnx")


def _valid_model(base: str = BASES[0]) -> onnx.ModelProto:
    return onnx.load(str(CORPUS / base))


ONNX_OPS = ["Conv", "Relu", "MaxPool", "AveragePool", "Gemm", "MatMul", "Add", "Mul", "Flatten", "Reshape",
            "Concat", "Softmax", "Clip", "Sigmoid", "GlobalAveragePool", "BatchNormalization", "LSTM", "Gather",
            "Transpose", "Resize", "Where", "Greater", "Identity", "ReduceMean", "Squeeze", "Pad", "NotAnOp",
            "LayerNormalization", "Split", "Slice", "Erf", "Div", "Sub", "Pow", "Einsum", "Expand", "Cast", "CumSum",
            "GatherElements", "ConvTranspose", "InstanceNormalization", "ReduceL2", "Shape", "Tile", "Range",
            "ConstantOfShape", "Loop", "Unsqueeze", "Equal", "Not"]
ATTR_VALUES = st.one_of(st.integers(-3, 9), st.lists(st.integers(-2, 9), max_size=5), st.floats(-2, 9),
                        st.text(max_size=5), st.lists(st.floats(-1, 3), min_size=1, max_size=3))


@st.composite
def onnx_proto_case(draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    m = _valid_model(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["attr", "op", "rewire", "init", "dims", "drop_node", "output"]))
        nodes = list(m.graph.node)
        if not nodes:
            break
        n = draw(st.sampled_from(nodes))
        if kind == "attr":
            name = draw(st.sampled_from(["kernel_shape", "strides", "pads", "group", "axis", "transB", "alpha",
                                         "dilations", "ceil_mode", "auto_pad", "beta", "min", "mode", "value",
                                         "perm", "epsilon", "equation", "num_outputs", "to", "keepdims"]))
            kept = [a for a in n.attribute if a.name != name]
            del n.attribute[:]
            value = draw(ATTR_VALUES)
            attr = (helper.make_attribute(name, value) if value != [] else
                    helper.make_attribute(name, [], attr_type=onnx.AttributeProto.INTS))
            n.attribute.extend([*kept, attr])
        elif kind == "op":
            n.op_type = draw(st.sampled_from(ONNX_OPS))
        elif kind == "rewire" and len(n.input):
            names = [o for x in nodes for o in x.output] + [t.name for t in m.graph.initializer] + ["x", "ghost"]
            n.input[draw(st.integers(0, len(n.input) - 1))] = draw(st.sampled_from(names))
        elif kind == "init" and len(m.graph.initializer):
            i = draw(st.integers(0, len(m.graph.initializer) - 1))
            name = m.graph.initializer[i].name
            shape = tuple(draw(st.lists(st.integers(0, 12), max_size=4)))
            dtype = draw(st.sampled_from([np.float32, np.int64, np.float16, np.int8]))
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.ones(shape, dtype), name))
        elif kind == "dims":
            shape = m.graph.input[0].type.tensor_type.shape
            del shape.dim[:]
            for d in draw(st.lists(st.one_of(st.integers(-2, 40), st.just("N")), max_size=5)):
                dim = shape.dim.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = d
        elif kind == "drop_node":
            m.graph.node.remove(n)
        elif kind == "output":
            m.graph.output[0].name = draw(st.sampled_from([o for x in nodes for o in x.output] + ["zzz"]))
    return m.SerializeToString()


@st.composite
def onnx_bytes_case(draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    data = bytearray(_VALID_BYTES)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 16))]
    return bytes(data)


_VALID_BYTES = (CORPUS / "valid.onnx").read_bytes() if (CORPUS / "valid.onnx").exists() else b""


# -- CLI ---------------------------------------------------------------------------------------------------

def run_cli(argv: list[str]) -> tuple[int, str]:
    """Run ``accelflow ARGV`` in this process; returns (exit code, stderr). Exceptions propagate."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(argv)
        except SystemExit as exc:  # argparse usage errors and --help
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def check_cli(rec: Recorder, target: str, argv: list[str]) -> None:
    def _call() -> str:
        code, err = run_cli(argv)
        problem = None
        if code not in (0, 2):
            problem = f"exit code {code}"
        elif "Traceback" in err:
            problem = "traceback on stderr"
        elif code == 2 and err.count("\n") != 1:
            problem = f"{err.count(chr(10))} lines on stderr"
        if problem:
            rec.fail(target, " ".join(argv), f"CLI: {problem}", err[-800:])
        return f"exit{code}"

    rec.run(target, " ".join(argv), _call)


WORDS = st.one_of(st.text(max_size=10), st.sampled_from(["", "-1", "0", "1", "8", "3.5", "nan", "1e99", "--", "-x"]))


@st.composite
def cli_case(draw: Callable[[st.SearchStrategy[Any]], Any], onnx_file: str, tmp: str) -> list[str]:
    models = [onnx_file, "zoo:nosuch", "missing.onnx", "model.pt", str(CORPUS / "empty_graph.onnx"),
              str(CORPUS / "truncated_half.onnx"), draw(st.text(max_size=12))]
    model = draw(st.sampled_from(models))
    cmd = draw(st.sampled_from(["inspect", "estimate", "dataflow", "sweep", "run", "nosuchcommand"]))
    if cmd == "inspect":
        argv = ["inspect", model] + draw(st.sampled_from([[], ["--json"], ["--input-shape", draw(WORDS)]]))
    elif cmd == "estimate":
        spec = draw(st.one_of(st.sampled_from([*template_names(), "systolic:rows=4,cols=4", "systolic:rows=0",
                                               "systolic:dataflow=zz", "gemmini:dim=-1", "a.yaml"]),
                              st.builds(lambda n, k, v: f"{n}:{k}={v}", st.sampled_from([*template_names(), "x"]),
                                        st.sampled_from(["rows", "cols", "dim", "ifmap_kb", "bad", ""]), WORDS)))
        argv = ["estimate", model, "--arch", spec, "--mode", draw(st.sampled_from(["fast", "roofline", "slow"]))]
        if draw(st.booleans()):
            argv += ["--tile", draw(WORDS)]
    elif cmd == "dataflow":
        dev = draw(st.one_of(st.sampled_from(DEVICES), WORDS))
        argv = ["dataflow", model, "--device", dev]
        for opt in ("--batch", "--bits", "--utilisation"):
            if draw(st.integers(0, 3)) == 0:
                argv += [opt, draw(WORDS)]
        if draw(st.integers(0, 3)) == 0:
            argv += ["--method", draw(st.sampled_from(["greedy", "anneal", "bogus"]))]
    elif cmd == "sweep":
        argv = ["sweep", model, "--arch", draw(st.sampled_from(["systolic", "gemmini", "nope"])),
                "--storage", f"sqlite:///{tmp}/fuzz.db", "--out", f"{tmp}/sweep", "--json"]
        for _ in range(draw(st.integers(0, 2))):
            argv += ["--param", draw(st.one_of(st.sampled_from(["rows=4", "cols=2,4", "rows=0", "dim=4", "x=1"]),
                                               WORDS))]
        if draw(st.booleans()):
            argv += [draw(st.sampled_from(["--workers", "--trials", "--scheduler"])), draw(WORDS)]
    elif cmd == "run":
        argv = ["run", draw(st.sampled_from([*map(str, FLOWS), "missing.yaml", onnx_file])), "--check"]
    else:
        argv = [cmd, model]
    return argv


# -- the campaign -------------------------------------------------------------------------------------------

def campaign(quick: bool, seed: int = 0, only: tuple[str, ...] = ()) -> Recorder:
    logging.disable(logging.WARNING)  # library warnings are expected on bad input; keep the output short
    rec = Recorder()
    pick = 1 if quick else 0

    def n_of(target: str) -> int:
        return int(BUDGET[target][pick] or 0)

    def want(target: str) -> bool:
        return not only or target in only

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if want("onnx_corpus"):
            for path in sorted(CORPUS.glob("*.onnx")):
                rec.run("onnx_corpus", path.name, lambda p=path: from_onnx(p))
                check_cli(rec, "cli_corpus", ["inspect", str(path)])
                check_cli(rec, "cli_corpus", ["estimate", str(path), "--arch", "systolic:rows=4,cols=4"])
        for target, strategy in (("onnx_bytes", onnx_bytes_case()), ("onnx_proto", onnx_proto_case())):
            if not want(target):
                continue
            file = tmp / f"{target}.onnx"

            def body(data: bytes, target: str = target, file: Path = file) -> None:
                file.write_bytes(data)
                graph = rec.run(target, data.hex()[:400], lambda: from_onnx(file))
                if graph is not None and target == "onnx_proto":  # imported: the CLI paths must hold too
                    check_cli(rec, "cli_onnx", ["inspect", str(file), "--json"])

            _run_hypothesis(n_of(target), seed, strategy, body)
        if want("arch_yaml"):
            docs = _template_docs()
            tiny = from_onnx(CORPUS / "valid.onnx")

            def arch_body(d: Any) -> None:
                text = _yaml_text(d.draw, d.draw(st.sampled_from(docs)))
                arch = rec.run("arch_yaml", text, lambda: load_architecture(text))
                if arch is not None:  # it loaded: estimating a small network on it must hold too
                    rec.run("arch_estimate", text, lambda: _with_alarm(20, lambda: estimate(tiny, arch, Mode.FAST)))

            _run_hypothesis(n_of("arch_yaml"), seed, st.data(), arch_body)
        if want("arch_spec"):
            spec = st.one_of(st.text(max_size=30), st.builds(
                lambda n, kv: n + ":" + ",".join(kv), st.sampled_from([*template_names(), "x", ""]),
                st.lists(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(
                    ["rows", "cols", "dataflow", "ifmap_kb", "dim", "array", "pcus", "bandwidth_words_per_cycle", "q"]),
                    WORDS), max_size=3)))
            _run_hypothesis(n_of("arch_spec"), seed, spec, lambda s: rec.run("arch_spec", s, lambda: parse_arch_spec(s)))
        if want("flow_yaml"):
            flows = [yaml.safe_load(p.read_text()) for p in FLOWS]
            _run_hypothesis(n_of("flow_yaml"), seed, st.data(), lambda d: (
                lambda text: rec.run("flow_yaml", text, lambda: parse_flow(text, "fuzz.yaml")))(
                    _yaml_text(d.draw, d.draw(st.sampled_from(flows)))))
        if want("flow_search_yaml"):
            searches = [yaml.safe_load(p.read_text()) for p in FLOW_SEARCHES]
            _run_hypothesis(n_of("flow_search_yaml"), seed, st.data(), lambda d: (
                lambda text: rec.run("flow_search_yaml", text, lambda: parse_flow_search(text, "fuzz.yaml")))(
                    _yaml_text(d.draw, d.draw(st.sampled_from(searches)))))
        if want("device_yaml"):
            table = yaml.safe_load((ROOT / "src/accelflow/dataflow/devices/devices.yaml").read_text())
            base = {"fuzzdev": table["zcu102"]}
            onnx_file = str(CORPUS / "valid.onnx")

            def device_body(d: Any) -> None:
                path = tmp / "device.yaml"
                path.write_text(_yaml_text(d.draw, base))
                check_cli(rec, "device_yaml", ["dataflow", onnx_file, "--device", str(path)])

            _run_hypothesis(n_of("device_yaml"), seed, st.data(), device_body)
        if want("cli"):
            _run_hypothesis(n_of("cli"), seed, cli_case(str(CORPUS / "valid.onnx"), str(tmp)),
                            lambda argv: check_cli(rec, "cli", argv))
    logging.disable(logging.NOTSET)
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few cases per target (smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=[], choices=list(BUDGET) + ["cli_corpus"], help="targets to run")
    args = ap.parse_args()
    start = time.perf_counter()
    rec = campaign(args.quick, args.seed, tuple(args.only))
    doc = {"quick": args.quick, "seed": args.seed, "wall_seconds": round(time.perf_counter() - start, 1),
           **rec.summary()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick and not args.only:
        RESULTS.write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: doc[k] for k in ("cases", "cases_per_target", "distinct_failures", "wall_seconds")}, indent=1))
    for f in doc["failures"]:
        print(f"FAIL [{f['target']}] x{f['count']} at {f['raised_at']}: {f['error']}\n    e.g. {f['example'][:200]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
