"""The Dask executor on a local cluster of two single-threaded worker processes."""

from __future__ import annotations

import pytest

pytest.importorskip("dask.distributed")

from accelflow.search import DaskExecutor, create_study, enqueue_grid, grid_space, optimize  # noqa: E402

from ._worker import Slow, value_of  # noqa: E402


def _boom(params: dict[str, int]) -> float:
    raise RuntimeError(f"no {params['a']}")


@pytest.mark.slow  # ~17 s to start the cluster on 2 busy cores; run by `make bench`
def test_dask_local_cluster_runs_a_study(tmp_path):
    study = create_study("dask", storage=tmp_path / "d.db")
    grid = {"a": [0, 1, 2], "b": [0, 1]}
    enqueue_grid(study, grid)
    with DaskExecutor(n_workers=2) as ex:
        assert ex.n_workers == 2
        res = optimize(study, Slow(0.05), grid_space(grid), n_trials=6, executor=ex, progress=False)
        assert res.completed == 6 and all(t.value == value_of(t.params) for t in study.trials)
        bad = create_study("boom", storage=tmp_path / "d.db")
        res = optimize(bad, _boom, grid_space({"a": [1]}), n_trials=1, executor=ex, progress=False)
        assert res.failed == 1 and bad.trials[0].user_attrs["error"] == "RuntimeError: no 1"
