"""Hardware-aware refinement after TPE; baselines selected with the same hold-out check as the search."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelflow.hass import (
    Objective,
    SearchSettings,
    Thresholds,
    accuracy,
    run_search,
    scan_uniform_grid,
    slowest_layer_baseline,
    uniform_baseline,
)
from accelflow.hass._refine import rank_moves


def test_moves_rank_the_bottleneck_conv_first(evaluator) -> None:
    ev = evaluator(Thresholds())
    moves = rank_moves(evaluator.space, ev)
    convs = [lay for lay in ev.design.layers if lay.name in evaluator.space.weight_magnitudes]
    slowest = max(convs, key=lambda lay: lay.cycles_per_image).name
    feed = evaluator.space.feeds.get(slowest)
    assert set(moves[:2]) == {f"w:{slowest}", f"a:{feed}"} if feed else moves[0] == f"w:{slowest}"
    assert set(moves) == set(evaluator.space.distributions())  # every conv and every feeding ReLU


def test_refinement_adds_trials_and_keeps_the_bound(trained, evaluator, tmp_path: Path) -> None:
    bound = 1.0
    settings = SearchSettings(max_accuracy_drop=bound, trials=2, refine_trials=5, startup_trials=2,
                              storage=f"sqlite:///{tmp_path / 'r.db'}", seed=0)
    result = run_search(evaluator, settings)
    sources = [t.source for t in result.trials]
    assert sources.count("refine") == 5 and len(sources) == 7
    assert result.accuracy_drop <= bound
    independent = accuracy(result.thresholds.apply(trained), evaluator.validation)
    assert 100 * (evaluator.base_accuracy - independent) <= bound
    # the refinement starts from the best feasible trial and only raises thresholds: it never ends below it
    tpe_best = max(t.throughput_images_per_s for t in result.trials[:2] if t.feasible)
    assert result.throughput_images_per_s >= tpe_best - 1e-6
    again = run_search(evaluator, settings)  # complete study: nothing more runs
    assert len(again.trials) == 7


def test_baselines_meet_the_bound_on_the_holdout(trained, evaluator, digits) -> None:
    bound = 0.5
    ref = accuracy(trained, digits.test)

    def held(r) -> float:  # noqa: ANN001
        return 100 * (ref - accuracy(r.thresholds.apply(trained), digits.test))

    grid = [(0.0, 0.0), (0.5, 2.0), (0.6, 2.5), (0.0, 0.01), (0.005, 0.0)]
    uni = uniform_baseline(evaluator, bound, grid=grid, holdout=digits.test)
    assert uni.accuracy_drop <= bound and held(uni) <= bound
    numbers = {t.number: t for t in uni.trials}
    assert not numbers[1].feasible and {0, 3, 4} <= set(numbers)
    assert 2 not in numbers  # (0.6, 2.5) is at least as aggressive as the failed (0.5, 2.0): skipped
    heur = slowest_layer_baseline(evaluator, bound, weight_step=0.2, activation_step=0.3, max_steps=3,
                                  holdout=digits.test)
    assert heur.accuracy_drop <= bound and held(heur) <= bound


def test_uniform_local_midpoints_never_lose(evaluator) -> None:
    grid = [(0.0, 0.0), (0.0, 0.2), (0.02, 0.0), (0.02, 0.2)]
    coarse = uniform_baseline(evaluator, 1.0, grid=grid, select="objective")
    fine = uniform_baseline(evaluator, 1.0, grid=grid, local=True, select="objective")
    assert fine.method == "uniform_hw"
    assert any(t.number >= len(grid) for t in fine.trials)  # midpoints around the best pair were tried
    assert fine.throughput_images_per_s >= coarse.throughput_images_per_s and fine.accuracy_drop <= 1.0


def test_uniform_selects_most_zero_products_without_looking_at_hardware(evaluator) -> None:
    grid = [(0.0, 0.0), (0.0, 0.2), (0.02, 0.0), (0.02, 0.2), (0.05, 0.4)]
    blind = uniform_baseline(evaluator, 1.0, grid=grid)
    assert blind.method == "uniform"
    feasible = [t for t in blind.trials if t.feasible]
    assert blind.zero_products == pytest.approx(max(t.zero_products for t in feasible))
    assert 0.0 < blind.zero_products < 1.0
    # zero products are the MAC-weighted mean of the per-conv sparsities of the chosen design
    macs = evaluator.conv_macs
    weighted = sum(macs[lay.name] * lay.sparsity for lay in blind.layers if lay.name in macs) / sum(macs.values())
    assert blind.zero_products == pytest.approx(weighted)
    aware = uniform_baseline(evaluator, 1.0, grid=grid, select="objective")
    assert aware.throughput_images_per_s >= blind.throughput_images_per_s


def test_uniform_grid_scan_matches_brute_force(evaluator) -> None:
    """Without skipping, the scan returns exactly the grid pairs a brute-force evaluation finds within the
    bound; skipping dominated pairs only drops pairs that broke it or sit beyond a pair that did."""
    grid = [(w, a) for w in (0.0, 0.02, 0.05, 0.1) for a in (0.0, 0.3, 0.8)]
    bound = 1.0
    brute = {(w, a) for w, a in grid if evaluator(evaluator.space.uniform(w, a)).feasible(bound)}
    assert 0 < len(brute) < len(grid)  # the grid crosses the bound, so the check means something

    def pairs(evals):
        conv, act = evaluator.space.convs[0], evaluator.space.activations[0]
        return {(e.thresholds.weight.get(conv, 0.0), e.thresholds.activation.get(act, 0.0)) for e in evals}

    assert pairs(scan_uniform_grid(evaluator, grid, bound, skip_dominated=False)) == brute
    assert pairs(scan_uniform_grid(evaluator, grid, bound)) <= brute


def test_give_back_lowers_the_least_relevant_parameter(evaluator) -> None:
    from accelflow.hass._refine import RefineSettings, _give_back

    space = evaluator.space
    params = {k: 0.3 for k in space.distributions()}
    current = evaluator(space.thresholds(params))
    ranked = rank_moves(space, current)
    calls: list[dict[str, float]] = []

    def run(p: dict[str, float]):  # noqa: ANN202
        calls.append(p)
        return evaluator(space.thresholds(p))

    tried: set[str] = set()
    back = _give_back(ranked, params, current, tried, RefineSettings(moves_per_round=2), run, 5, 100.0,
                      Objective.THROUGHPUT)
    assert 1 <= len(calls) <= 2 and tried <= set(ranked[-2:])
    lowered = [k for k in params if calls[0][k] < params[k]]
    assert lowered == [ranked[-1]]  # the bottom of the hardware ranking is given back first
    if back is not None:
        key, new_params, ev = back
        assert ev.accuracy_drop < current.accuracy_drop and new_params[key] < params[key]


def test_a_stalled_move_is_escalated_at_once(evaluator, tmp_path: Path) -> None:
    """With ``escalate``, a gain threshold nothing can meet and a bound nothing breaks, the first-ranked move
    is retried straight away at steps 0.05, 0.1, 0.2 (``max_step``) before any other move: a line search
    along it. Without it (the default), the next move is tried instead."""
    import optuna

    from accelflow.hass._refine import RefineSettings, refine_study

    space = evaluator.space
    start = {k: 0.1 for k in space.distributions()}
    settings = SearchSettings(max_accuracy_drop=100.0, trials=1, storage=None)
    study = optuna.create_study(direction="maximize")
    first = rank_moves(space, evaluator(space.thresholds(start)))[0]
    used = refine_study(study, evaluator, settings, 4, start, RefineSettings(min_gain=10.0, escalate=True),
                        holdout=None)
    assert used == 4
    raised = [{k: round(t.params[k] - start[k], 6) for k in start if t.params[k] != start[k]} for t in study.trials]
    assert raised[:3] == [{first: 0.05}, {first: 0.1}, {first: 0.2}]
    assert first not in raised[3]  # then the next move
    plain = optuna.create_study(direction="maximize")
    refine_study(plain, evaluator, settings, 2, start, RefineSettings(min_gain=10.0), holdout=None)
    assert [set(t.params[k] != start[k] for k in start) for t in plain.trials] == [{True, False}] * 2
    assert len({next(k for k in start if t.params[k] != start[k]) for t in plain.trials}) == 2
