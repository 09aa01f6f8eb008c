"""Search-with-slack-then-fine-tune (``recover``) on the tiny digits CNN: the returned design meets the
bound after fine-tuning, bisection keeps to its budget, and fine-tuning wins back what pruning cost."""

from __future__ import annotations

import pytest

from accelflow.hass import FineTune, HassError, Thresholds, accuracy, pareto_order, recover


def test_pareto_order_keeps_the_front_fastest_first() -> None:
    points = [("a", 0.90, 10.0), ("b", 0.95, 8.0), ("c", 0.80, 9.0), ("d", 0.97, 5.0), ("e", 0.95, 7.0)]
    # c is dominated by a (faster and more accurate), e by b
    assert pareto_order(points) == ["a", "b", "d"]
    assert pareto_order([]) == []


def _candidates(evaluator) -> list[Thresholds]:
    """Uniform weight pruning, most aggressive first (the order a front gives: fastest first)."""
    mags = sorted(abs(w) for c in evaluator.space.convs for w in evaluator.space.weight_magnitudes[c])
    fractions = (0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1)
    return [evaluator.space.uniform(float(mags[int(f * len(mags))]), 0.0) for f in fractions]


def test_recover_meets_the_bound_after_finetuning(evaluator, digits) -> None:
    candidates = _candidates(evaluator)
    finetune = FineTune(digits.train, steps=60, batch_size=64, lr=2e-3)
    got = recover(evaluator, candidates, finetune, max_accuracy_drop=1.0, max_tries=3)
    assert got.found and got.evaluation is not None and got.model is not None and got.rank is not None
    assert 1 <= len(got.tried) <= 3
    # checked independently of the evaluation it returns: the tuned, thresholded model on validation
    tuned_acc = accuracy(got.evaluation.thresholds.apply(got.model), evaluator.validation)
    assert 100 * (evaluator.base_accuracy - tuned_acc) <= 1.0 + 1e-9
    assert got.evaluation.accuracy == pytest.approx(tuned_acc)
    # of the tried candidates that pass, the returned one is the fastest after fine-tuning
    passing = [thr for _, drop, held, thr in got.tried if drop <= 1.0 + 1e-9 and held <= 1.0 + 1e-9]
    assert got.evaluation.throughput == max(passing)
    # bisection: after a pass it only tries more aggressive candidates, after a failure only milder ones
    for (r0, d0, _, _), (r1, _, _, _) in zip(got.tried, got.tried[1:], strict=False):
        assert (r1 < r0) if d0 <= 1.0 + 1e-9 else (r1 > r0)
    # fine-tuning is what made the chosen candidate pass: untuned, it drops more
    assert evaluator(candidates[got.rank]).accuracy_drop > got.evaluation.accuracy_drop


def test_recover_checks_the_holdout_and_can_find_nothing(evaluator, digits) -> None:
    finetune = FineTune(digits.train, steps=5, batch_size=32)
    got = recover(evaluator, _candidates(evaluator)[:2], finetune, max_accuracy_drop=-50.0,
                  holdout=digits.test, max_tries=2)
    assert not got.found and got.model is None
    # the midpoint failed, and after a failure bisection only tries milder candidates: none are left
    assert [rank for rank, *_ in got.tried] == [1]
    with pytest.raises(HassError, match="max_tries"):
        recover(evaluator, _candidates(evaluator), finetune, max_accuracy_drop=1.0, max_tries=0)


def test_search_with_slack_is_won_back_by_finetuning(trained, evaluator, digits, tmp_path) -> None:
    """``finetune_slack``: the study searches within bound + slack (and is stored so), the returned design
    meets the final bound after fine-tuning, checked on its own tuned weights."""
    from accelflow.hass import HassError, SearchSettings, run_search

    bound, slack = 0.5, 20.0
    settings = SearchSettings(max_accuracy_drop=bound, trials=6, storage=f"sqlite:///{tmp_path / 's.db'}",
                              startup_trials=3, seed=2, finetune_slack=slack, finetune_tries=2)
    with pytest.raises(HassError, match="needs finetune"):
        run_search(evaluator, settings)
    finetune = FineTune(digits.train, steps=60, batch_size=64, lr=2e-3)
    result = run_search(evaluator, settings, finetune=finetune)
    assert result.accuracy_drop <= bound and result.max_accuracy_drop == bound
    assert result.extra["finetune_slack"] == slack and result.extra["recover_candidates"] >= 1
    # the study holds trials beyond the final bound: the widened one is what it searched and stored
    assert any(t.accuracy_drop > bound for t in result.trials)
    untuned_best = max(t.throughput_images_per_s for t in result.trials if t.accuracy_drop <= bound)
    # with this seed the fastest candidate on the front comes back within the bound after fine-tuning
    assert result.finetuned and result.model is not None and result.extra["recover_rank"] == 0
    assert result.throughput_images_per_s > untuned_best
    acc = accuracy(result.design_model(trained), evaluator.validation)  # its own tuned weights
    assert 100 * (evaluator.base_accuracy - acc) <= bound + 1e-9
    assert acc == pytest.approx(result.accuracy)
