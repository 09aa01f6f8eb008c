"""Fine-tuning keeps the pruning pattern and leaves the original model alone."""

from __future__ import annotations

import pytest
import torch

from accelflow.hass import FineTune, HassError, Thresholds


def test_finetune_keeps_masks(trained, digits) -> None:
    thr = Thresholds({"3": 0.05}, {"2": 0.1})
    before = trained[3].weight.detach().clone()
    pruned = thr.apply(trained)
    tuned = FineTune(digits.train, steps=5, batch_size=32)(trained, thr)
    assert not tuned.training
    assert torch.equal(trained[3].weight, before)  # original untouched
    zero = pruned[3].weight == 0
    assert bool(zero.any()) and bool((tuned[3].weight[zero] == 0).all())  # pruned weights stay pruned
    assert not torch.equal(tuned[0].weight, trained[0].weight)  # and the others did train


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"batch_size": 0}, {"lr": 0.0}])
def test_finetune_rejects_empty_recipes(digits, kwargs) -> None:
    with pytest.raises(HassError, match="steps >= 1, batch_size >= 1 and lr > 0"):
        FineTune(digits.train, **kwargs)


@pytest.mark.parametrize("kwargs", [{"distill": -0.1}, {"distill": 1.5}, {"temperature": 0.0}])
def test_finetune_rejects_bad_distillation(digits, kwargs) -> None:
    with pytest.raises(HassError, match="0 <= distill <= 1 and temperature > 0"):
        FineTune(digits.train, **kwargs)


def _kl_to(teacher: torch.nn.Module, student: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.kl_div(torch.log_softmax(student(x), 1), torch.log_softmax(teacher(x), 1),
                                                reduction="batchmean", log_target=True))


def test_distillation_pulls_the_pruned_model_towards_the_dense_one(trained, digits) -> None:
    """Pure distillation (no labels) can only learn from the teacher: on held-out images the pruned
    model's outputs must move towards the dense model's, and the teacher must stay as it was."""
    thr = Thresholds({"0": 0.2, "3": 0.1, "7": 0.1}, {"2": 0.3, "5": 0.3})
    x = torch.as_tensor(digits.val.x)
    before = trained[0].weight.detach().clone()
    pruned = thr.apply(trained)
    tuned = FineTune(digits.train, steps=60, batch_size=64, lr=2e-3, distill=1.0)(trained, thr)
    assert torch.equal(trained[0].weight, before) and not trained.training
    assert _kl_to(trained, tuned, x) < 0.1 * _kl_to(trained, pruned, x)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_cached_finetuning_is_reloaded_not_rerun(trained, digits, tmp_path, caplog) -> None:
    """A second call with the same recipe, thresholds, model and data loads the stored tuned weights (the
    log says so and no new entry appears); changing any of them tunes again into a new entry."""
    thr = Thresholds({"3": 0.05}, {"2": 0.1})
    tune = FineTune(digits.train, steps=5, batch_size=32, cache_dir=tmp_path)
    first = tune(trained, thr)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    with caplog.at_level("INFO", logger="accelflow.hass._finetune"):
        again = tune(trained, thr)
    assert "loaded fine-tuned weights" in caplog.text and not again.training
    assert _same(first, again) and len(list(tmp_path.glob("*.pt"))) == 1
    other_thr = Thresholds({"3": 0.06}, {"2": 0.1})
    other_recipe = FineTune(digits.train, steps=6, batch_size=32, cache_dir=tmp_path)
    other_model = thr.apply(trained)  # other weights, same architecture
    keys = {tune.cache_key(trained, thr), tune.cache_key(trained, other_thr), other_recipe.cache_key(trained, thr),
            tune.cache_key(other_model, thr)}
    assert len(keys) == 4
    other_recipe(trained, thr)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_a_corrupt_finetune_entry_is_retuned(trained, digits, tmp_path) -> None:
    thr = Thresholds({"3": 0.05}, {"2": 0.1})
    tune = FineTune(digits.train, steps=5, batch_size=32, cache_dir=tmp_path)
    first = tune(trained, thr)
    weights = next(tmp_path.glob("*.pt"))
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, as by a crash mid-write
    again = tune(trained, thr)
    assert _same(first, again)  # tuned again (deterministic), not loaded from the broken file
    assert len(weights.read_bytes()) > 100  # and the entry rewritten


def test_gradual_pruning_ends_at_the_full_thresholds(trained, digits) -> None:
    """With a ramp the thresholds rise during tuning; the returned model must be exactly what the full
    thresholds make of it (the evaluator re-applies them), with activation cut-offs at their values and
    at least the weights below the threshold pruned, and the original left alone."""
    thr = Thresholds({"0": 0.2, "3": 0.1}, {"2": 0.3, "5": 0.3})
    before = trained[3].weight.detach().clone()
    tuned = FineTune(digits.train, steps=40, batch_size=32, lr=2e-3, ramp=0.5)(trained, thr)
    assert torch.equal(trained[3].weight, before)
    assert tuned[2].threshold == 0.3 and tuned[5].threshold == 0.3
    again = thr.apply(tuned)
    for name in ("0", "3"):
        w = tuned.get_submodule(name).weight
        assert torch.equal(again.get_submodule(name).weight, w)  # nothing left below the threshold
        assert float((w == 0).float().mean()) > 0.05
    assert FineTune(digits.train, ramp=0.5).recipe()["ramp"] == 0.5


def test_gradual_pruning_differs_from_one_shot(trained, digits) -> None:
    """The ramp changes what is learnt (pruning starts from the unpruned network), it is not a no-op."""
    thr = Thresholds({"0": 0.2, "3": 0.1}, {"2": 0.3})
    one_shot = FineTune(digits.train, steps=40, batch_size=32, lr=2e-3)(trained, thr)
    gradual = FineTune(digits.train, steps=40, batch_size=32, lr=2e-3, ramp=0.5)(trained, thr)
    assert not torch.equal(one_shot[3].weight, gradual[3].weight)


@pytest.mark.parametrize("ramp", [-0.1, 1.5])
def test_finetune_rejects_a_bad_ramp(digits, ramp) -> None:
    with pytest.raises(HassError, match="0 <= ramp <= 1"):
        FineTune(digits.train, ramp=ramp)
