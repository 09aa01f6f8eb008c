"""Training and evaluation loops on a small real data set (sklearn digits) with a zoo MLP."""

from __future__ import annotations

import pytest
import torch

from accelflow.data import load
from accelflow.errors import ConfigError
from accelflow.train import OptimizerKind, SchedulerKind, TrainRecipe, evaluate, train
from accelflow.zoo import create

# Tiny models gain nothing from intra-op threads; one thread also keeps timings stable on a busy machine.
THREADS = 1
RECIPE = TrainRecipe(epochs=12, batch_size=64, lr=3e-3, seed=0)


def test_mlp_on_digits_reaches_85_percent() -> None:
    splits = load("digits")
    model = create("digits_mlp", seed=0)
    result = train(model, splits, RECIPE, progress=False, num_threads=THREADS)
    assert result.test_accuracy > 0.85
    assert result.epochs == len(result.history) == RECIPE.epochs
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.history[-1].lr == pytest.approx(0.0, abs=1e-9)  # cosine decays to zero
    assert result.val_accuracy == result.history[-1].val_accuracy
    assert evaluate(model, splits.test) == pytest.approx(result.test_accuracy)
    assert not model.training


def test_same_seed_gives_identical_weights() -> None:
    splits = load("digits", limit_train=400)
    recipe = TrainRecipe(epochs=2, batch_size=32, lr=1e-2, optimizer="sgd", seed=7)
    states = []
    for _ in range(2):
        model = create("digits_mlp", seed=7)
        train(model, splits, recipe, progress=False, num_threads=THREADS)
        states.append(model.state_dict())
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name]), name
    other = create("digits_mlp", seed=7)
    train(other, splits, TrainRecipe(epochs=2, batch_size=32, lr=1e-2, optimizer="sgd", seed=8),
          progress=False, num_threads=THREADS)
    assert any(not torch.equal(t, other.state_dict()[n]) for n, t in states[0].items())


def test_train_restores_global_torch_state() -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    train(create("digits_mlp"), load("digits", limit_train=100), TrainRecipe(epochs=1), progress=False,
          num_threads=1)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_evaluate_restores_training_mode() -> None:
    model = create("digits_mlp").train()
    acc = evaluate(model, load("digits").test, batch_size=100)
    assert 0.0 <= acc <= 1.0 and model.training


def test_recipe_fields_are_validated_and_typed() -> None:
    recipe = TrainRecipe(optimizer="adamw", scheduler="none")
    assert recipe.optimizer is OptimizerKind.ADAMW and recipe.scheduler is SchedulerKind.NONE
    assert recipe.to_dict()["optimizer"] == "adamw"
    with pytest.raises(ConfigError, match="optimizers"):
        TrainRecipe(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="label_smoothing"):
        TrainRecipe(label_smoothing=1.0)
    with pytest.raises(ConfigError, match="epochs"):
        TrainRecipe(epochs=0)
