"""Flow-level search: score definition, ask/tell loop with a resumable SQLite study, grid reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelflow.flow.errors import FlowValidationError
from accelflow.flow.search import (
    ORDERS,
    Candidate,
    Evaluation,
    SearchSpace,
    grid_candidates,
    grid_search,
    metaml_score,
    search_flows,
)
from accelflow.search import SearchError


def test_metaml_score_is_accuracy_plus_relative_savings() -> None:
    base = {"dsp": 100, "lut": 1000, "ff": 2000, "bram18": 0}
    design = {"dsp": 10, "lut": 500, "ff": 2000, "bram18": 4}
    assert metaml_score(0.75, design, base) == pytest.approx(0.75 + 0.9 + 0.5 + 0.0)
    assert metaml_score(0.75, base, base) == pytest.approx(0.75)


def _toy(c: Candidate) -> Evaluation:
    """A closed-form landscape: longer orders save more, larger tolerances save more but cost accuracy."""
    saving = 0.3 * len(c.order) + sum(10 * t for t in c.tolerances.values())
    acc = 0.8 - sum(t ** 2 * 40 for t in c.tolerances.values())
    return Evaluation(c, acc + saving, acc, {"dsp": 1.0 - saving / 2}, 0.0)


def test_grid_enumerates_relevant_tolerances_only() -> None:
    grid = list(grid_candidates())
    assert len(grid) == 4 + 16 + 16 + 16 + 64 + 4 + 4  # Q, SP, SQ, PQ, SPQ, S, P
    assert {c.order for c in grid} == set(ORDERS)
    assert all(set(c.tolerances) == set(c.order) for c in grid)


def test_search_is_resumable_and_counts_budget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = search_flows(_toy, SearchSpace(), n_random=2, n_guided=3, storage=url, study_name="t")
    assert len(first.evaluations) == 5
    calls: list[Candidate] = []

    def counting(c: Candidate) -> Evaluation:
        calls.append(c)
        return _toy(c)

    again = search_flows(counting, SearchSpace(), n_random=2, n_guided=6, storage=url, study_name="t")
    assert len(calls) == 3 and len(again.evaluations) == 8  # only the missing trials were evaluated
    best = again.best
    assert best.score == max(e.score for e in again.evaluations)
    grid = grid_search(_toy, grid_candidates())
    assert grid.best.candidate.order == "SPQ" and best.score <= grid.best.score + 1e-9


def test_space_validation() -> None:
    with pytest.raises(FlowValidationError):
        SearchSpace(orders=("SX",))
    with pytest.raises(FlowValidationError):
        SearchSpace(tolerance_low=0.05, tolerance_high=0.01)


def test_search_space_generated_from_task_fields() -> None:
    import optuna

    from accelflow.flow import build_task
    from accelflow.flow.search import param_distributions
    from accelflow.flow.tasks.compress_tasks import Prune, Scale

    dists = param_distributions(Prune, ["tolerance", "finetune_epochs"])
    assert isinstance(dists["tolerance"], optuna.distributions.FloatDistribution)
    assert (dists["tolerance"].low, dists["tolerance"].high) == (0.0, 0.5)
    assert isinstance(dists["finetune_epochs"], optuna.distributions.IntDistribution)
    assert param_distributions(Scale, ["method"])["method"].choices == ("stepwise", "bayesian")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask(dists)
    task = build_task(Prune, trial.params, "trial")  # a sampled point is a valid task
    assert 0.0 <= task.tolerance <= 0.5
    with pytest.raises(FlowValidationError, match="no search range"):
        param_distributions(Prune, ["structured"])


def test_tolerance_step_restricts_search_to_grid_levels() -> None:
    space = SearchSpace(tolerance_step=0.01)
    res = search_flows(_toy, space, n_random=2, n_guided=6)
    levels = {0.01, 0.02, 0.03, 0.04}
    assert all(min(abs(t - v) for v in levels) < 1e-9 for e in res.evaluations for t in e.candidate.tolerances.values())
    with pytest.raises(FlowValidationError, match="tolerance_step"):
        SearchSpace(tolerance_step=0.007)


@pytest.mark.parametrize("sampler", ["gp", "tpe"])
def test_samplers_stay_in_the_space(sampler: str) -> None:
    space = SearchSpace(tolerance_step=0.01)
    res = search_flows(_toy, space, n_random=2, n_guided=4, sampler=sampler)
    assert len(res.evaluations) == 6
    assert all(e.candidate.order in ORDERS and set(e.candidate.tolerances) == set(e.candidate.order)
               for e in res.evaluations)


def test_gp_search_reaches_the_grid_best_of_the_same_space() -> None:
    space = SearchSpace(tolerance_step=0.01)
    grid = grid_search(_toy, grid_candidates(space))
    res = search_flows(_toy, space, n_random=2, n_guided=18, sampler="gp", seed=3)
    assert res.best.score >= grid.best.score - 1e-9  # 20 points instead of the grid's 124


def test_unknown_sampler_is_rejected() -> None:
    with pytest.raises(SearchError, match="allowed: gp, tpe"):
        search_flows(_toy, SearchSpace(), n_random=1, n_guided=1, sampler="cmaes")
