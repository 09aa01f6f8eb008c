"""Auto-pruning on the trained digits MLP: bisection logic, tolerance, masks, structured pruning."""

import numpy as np
import pytest
import torch
from torch import nn

from accelflow.compress import PruneConfig, auto_prune, prunable_layers, prune_magnitude, weight_sparsity
from accelflow.data import Splits
from accelflow.errors import ConfigError
from accelflow.train import TrainRecipe, evaluate

QUICK = TrainRecipe(epochs=2, batch_size=64, lr=1e-3)


def test_auto_prune_bisection(digits: tuple[nn.Module, Splits]) -> None:
    model, splits = digits
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = PruneConfig(tolerance_points=2.0, start_rate=0.5, min_step=0.05, finetune=QUICK)
    res = auto_prune(model, splits, cfg)
    rates = [t.rate for t in res.trials]
    assert rates[0] == 0.5
    # bisection: each step halves and moves up after an accepted rate, down after a rejected one
    for i in range(1, len(rates)):
        step = 0.25 / 2 ** (i - 1)
        assert abs(abs(rates[i] - rates[i - 1]) - step) < 1e-12
        assert (rates[i] > rates[i - 1]) == res.trials[i - 1].accepted
    assert 0.25 / 2 ** (len(rates) - 1) < cfg.min_step <= 0.25 / 2 ** (len(rates) - 2)
    accepted = [t for t in res.trials if t.accepted]
    assert accepted, "50 % pruning of the digits MLP should be accepted at 2 points"
    assert res.rate == max(t.rate for t in accepted)
    assert (res.reference_accuracy - res.accuracy) * 100 <= cfg.tolerance_points + 1e-9
    assert res.accuracy == evaluate(res.model, splits.val)
    assert abs(res.sparsity - res.rate) < 0.01  # per-layer magnitude pruning at the same rate
    # the input model is untouched and the result has plain (baked) weights
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any("weight_orig" in k for k in res.model.state_dict())


def test_masks_stay_fixed_during_finetune(digits: tuple[nn.Module, Splits]) -> None:
    model, splits = digits
    untuned = prune_magnitude(model, 0.7)
    tuned = prune_magnitude(model, 0.7, splits=splits, finetune=QUICK)
    for (_, a), (_, b) in zip(prunable_layers(untuned), prunable_layers(tuned), strict=True):
        assert torch.equal(a.weight == 0, b.weight == 0)
        assert not torch.equal(a.weight, b.weight)  # but the kept weights were retrained
    assert abs(weight_sparsity(tuned) - 0.7) < 0.01


def test_structured_pruning_removes_whole_neurons(digits: tuple[nn.Module, Splits]) -> None:
    model, _ = digits
    pruned = prune_magnitude(model, 0.5, structured=True)
    layers = prunable_layers(pruned)
    for i, (name, mod) in enumerate(layers):
        dead = (mod.weight == 0).all(dim=1)
        if i == len(layers) - 1:
            assert not dead.any(), "the output layer keeps all its neurons"
            continue
        assert int(dead.sum()) == round(0.5 * mod.weight.shape[0]), name
        assert torch.all(mod.bias[dead] == 0)
        # the removed neurons are those with the smallest L1 norm
        norms = dict(model.named_modules())[name].weight.abs().sum(dim=1)
        assert norms[dead].max() <= norms[~dead].min()
    x = torch.as_tensor(np.random.default_rng(0).random((5, 64), dtype=np.float32))
    h = pruned.layers.relu1(pruned.layers.fc1(x))
    assert torch.all(h[:, (pruned.layers.fc1.weight == 0).all(dim=1)] == 0)


def test_global_scope_uses_one_threshold(digits: tuple[nn.Module, Splits]) -> None:
    from accelflow.compress import PruneScope

    model, _ = digits
    pruned = prune_magnitude(model, 0.7, scope=PruneScope.GLOBAL)
    assert abs(weight_sparsity(pruned) - 0.7) < 0.001
    kept = torch.cat([m.weight[m.weight != 0].abs() for _, m in prunable_layers(pruned)])
    orig = {n: m.weight for n, m in prunable_layers(model)}
    dropped = torch.cat([orig[n][m.weight == 0].abs() for n, m in prunable_layers(pruned)])
    assert dropped.max() <= kept.min()
    per_layer = [float((m.weight == 0).float().mean()) for _, m in prunable_layers(pruned)]
    assert max(per_layer) - min(per_layer) > 0.05  # layers end up with different sparsities


def test_gradual_rates_cubic_schedule() -> None:
    from accelflow.compress import gradual_rates

    rates = gradual_rates(0.9, 4)
    assert len(rates) == 4 and rates[-1] == 0.9
    assert all(a < b for a, b in zip(rates, rates[1:], strict=False))
    steps = [b - a for a, b in zip([0.0, *rates], rates, strict=False)]
    assert all(a > b for a, b in zip(steps, steps[1:], strict=False))  # large steps first
    assert gradual_rates(0.5, 1) == [0.5]


def test_gradual_auto_prune_keeps_earlier_zeros(digits: tuple[nn.Module, Splits]) -> None:
    from accelflow.compress import PruneScope

    model, splits = digits
    with pytest.raises(ConfigError, match="steps"):
        PruneConfig(steps=0)
    with pytest.raises(ConfigError, match="finetune"):
        PruneConfig(steps=2, finetune=None)
    cfg = PruneConfig(
        tolerance_points=3.0, start_rate=0.8, min_step=0.3, finetune=QUICK, steps=3, scope=PruneScope.GLOBAL
    )
    res = auto_prune(model, splits, cfg)
    assert [t.rate for t in res.trials] == [0.8]  # next step 0.1 < min_step: one candidate
    # the candidate reached the requested sparsity after three prune/fine-tune rounds
    cand = res.model if res.trials[0].accepted else None
    if cand is not None:
        assert abs(weight_sparsity(cand) - 0.8) < 0.002
        assert res.accuracy == evaluate(cand, splits.val)
