"""Flow-search files and `accelflow flow-search`: validation before anything runs, evaluation on worker
processes through the shared search layer, resumption from the stored study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelflow.cli.main import main
from accelflow.flow.errors import FlowValidationError
from accelflow.flow.search import Candidate, Evaluation, SearchSpace, search_flows
from accelflow.flow.search_file import load_flow_search, parse_flow_search
from accelflow.search import ProcessPoolExecutor, SerialExecutor

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flow_search" / "metaml_pro_digits.yaml"

SMALL = """
name: tiny
start: {model: digits_mlp, dataset: digits, pretrained: true}
tasks:
  P: {task: prune, params: {finetune_epochs: 1, batch_size: 64, min_step: 0.2}}
  Q: {task: quantize, params: {calibration_samples: 200, eval_samples: 144}}
search: {orders: [Q, PQ], tolerance: [0.01, 0.04], trials: 3, random_trials: 2}
"""


def test_example_file_validates() -> None:
    problem = load_flow_search(EXAMPLE)
    assert problem.space.orders == ("Q", "SP", "SQ", "PQ", "SPQ", "S", "P")
    flow = problem.candidate_flow(Candidate("SPQ", {"S": 0.01, "P": 0.02, "Q": 0.03}))
    assert [s.task.name for s in flow.steps] == ["scale", "prune", "quantize", "emulate", "estimate"]
    assert [s.task.tolerance for s in flow.steps[:3]] == [0.01, 0.02, 0.03]  # type: ignore[attr-defined]


@pytest.mark.parametrize("text, needle", [
    (SMALL.replace("trials: 3", "trials: 0"), "search.trials"),
    (SMALL.replace("orders: [Q, PQ]", "orders: [Q, PX]"), "'search'"),
    (SMALL.replace("Q: {task: quantize", "S: {task: scale}\n  X: {task: quantize"), "unknown ['X']"),
    (SMALL.replace("finetune_epochs: 1", "finetune_epochz: 1"), "tasks.P"),
    (SMALL.replace("task: quantize", "task: quantise"), "unknown task 'quantise'"),
    (SMALL.replace("tolerance: [0.01, 0.04]", "tolerance: [0.01, 0.9]"), "tolerance"),
    (SMALL.replace("search:", "serach:"), "serach"),
    (SMALL.replace("random_trials: 2}", "random_trials: 2, sampler: cmaes}"), "sampler"),
    ("[1, 2]", "mapping"),
])
def test_bad_files_are_rejected_naming_the_field(text: str, needle: str) -> None:
    with pytest.raises(FlowValidationError) as exc:
        parse_flow_search(text, "bad.yaml")
    assert "bad.yaml" in str(exc.value) and needle in str(exc.value)


def test_measure_must_record_what_the_score_reads() -> None:
    from accelflow.flow.schema import initial_state

    problem = parse_flow_search(SMALL + "measure: [{task: emulate}]\n", "m.yaml")
    with pytest.raises(FlowValidationError, match=r"m.yaml: .*resources.dsp"):
        problem.check(initial_state(problem.spec.start))


def toy(c: Candidate) -> Evaluation:
    """Module-level (picklable) closed-form landscape."""
    import os

    acc = 0.9 - sum(t ** 2 for t in c.tolerances.values())
    return Evaluation(c, acc + len(c.order), acc, {"dsp": 1.0}, 0.0, {"pid": float(os.getpid())})


def test_search_runs_on_worker_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with ProcessPoolExecutor(2) as ex:
        res = search_flows(toy, SearchSpace(), n_random=2, n_guided=4, storage=url, study_name="p", executor=ex)
    assert len(res.evaluations) == 6
    import os

    pids = {e.details["pid"] for e in res.evaluations}
    assert os.getpid() not in pids  # evaluated in the workers, told by this process
    # a later call on the same study only tops it up
    more = search_flows(toy, SearchSpace(), n_random=2, n_guided=5, storage=url, study_name="p",
                        executor=SerialExecutor())
    assert len(more.evaluations) == 7 and sum(e.details["pid"] == os.getpid() for e in more.evaluations) == 1


def test_cli_flow_search_two_workers_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(SMALL)
    db = tmp_path / "studies.db"
    assert main(["flow-search", str(path), "--workers", "2", "--storage", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["trials"]) == 3 and out["workers"] == 2
    base = out["baseline"]
    for t in out["trials"]:
        assert t["order"] in ("Q", "PQ")
        assert t["resources"]["lut"] < base["lut"]  # every candidate quantises, so it is smaller
        assert t["score"] == pytest.approx(t["accuracy"] + sum(
            (base[k] - t["resources"][k]) / base[k] for k in ("dsp", "lut", "ff", "bram18") if base[k] > 0))
    assert out["best"]["score"] == max(t["score"] for t in out["trials"])
    # same file, same study: resumes, evaluating only the one missing trial
    assert main(["flow-search", str(path), "--trials", "4", "--storage", str(db), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert len(again["trials"]) == 4 and again["study"] == out["study"]
    assert {json.dumps(t, sort_keys=True) for t in out["trials"]} <= {json.dumps(t, sort_keys=True)
                                                                     for t in again["trials"]}


def test_cli_rejects_bad_file_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(SMALL.replace("trials: 3", "trials: -1"))
    assert main(["flow-search", str(path)]) == 2
    err = capsys.readouterr().err
    assert "b.yaml" in err and "search.trials" in err and "Traceback" not in err
