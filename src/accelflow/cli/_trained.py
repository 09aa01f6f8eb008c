"""MODEL arguments that name a trained PyTorch model (what `hass` and `dataflow --data` run on real images):
a zoo model trained through the weights cache, the user's model file with its state dict, or an ONNX file."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from accelflow.errors import ConfigError

if TYPE_CHECKING:  # the CLI registers its arguments without importing torch
    from torch import nn

    from accelflow.train import TrainRecipe

#: Epochs of ``--train`` by default: those of :data:`accelflow.train.FALLBACK_RECIPE` (checked by the tests).
DEFAULT_TRAIN_EPOCHS = 5

__all__ = ["TrainedModel", "add_train_arguments", "train_recipe", "trained_model"]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """The module (eval mode), a name for reports, the data set it was trained on and, for a zoo model, the
    training cache's test accuracy."""

    module: nn.Module
    name: str
    dataset: str
    test_accuracy: float | None = None


def trained_model(spec: str, weights: str | None, data: str | None, *, progress: bool,
                  train: TrainRecipe | None = None) -> TrainedModel:
    """``spec``: zoo:NAME (or NAME), ``model.py[:NAME]`` with ``weights`` (or trained once on ``data`` with the
    recipe ``train``, through the weights cache), or ``model.onnx``; the user's models need ``data``, a zoo
    model defaults to its own data set and is trained on first use."""
    from accelflow.frontends import is_user_model, load_torch_model
    from accelflow.zoo import names
    from accelflow.zoo import spec as zoo_spec

    if is_user_model(spec):
        if data is None:
            from accelflow.data import dataset_names

            raise ConfigError(f"{spec}: your own model needs --data, the image data set it was trained on "
                              f"(one of {', '.join(dataset_names())})")
        if train is not None:
            return _train_model_file(spec, weights, data, train, progress=progress)
        loaded = load_torch_model(spec, weights)
        return TrainedModel(loaded.module, loaded.name, data)
    name = spec[4:] if spec.startswith("zoo:") else spec
    if name not in names():
        raise ConfigError(f"unknown model {spec!r}: expected zoo:NAME (known: {', '.join(names())}), a PyTorch "
                          "model file model.py[:NAME] or an .onnx file")
    if train is not None:
        raise ConfigError(f"--train is for a model file; zoo model {name!r} is trained on first use anyway")
    if weights is not None:
        raise ConfigError(f"--weights is for a model file; zoo model {name!r} takes its weights from the training "
                          "cache (to use your own weights of it, define it in a model file)")
    dataset = data or zoo_spec(name).default_dataset
    if dataset is None:
        raise ConfigError(f"zoo model {name!r} has no default data set; pass --data (e.g. fashion_mnist)")
    from accelflow.train import cached_model

    model, cache = cached_model(name, dataset, progress=progress)
    return TrainedModel(model, name, dataset, cache.test_accuracy)


def _train_model_file(spec: str, weights: str | None, data: str, recipe: TrainRecipe, *,
                      progress: bool) -> TrainedModel:
    """``model.py[:NAME]`` built from its seed and trained once on ``data`` with ``recipe``
    (:func:`accelflow.train.cached_training`): a second run, or another command on the same file, data and
    recipe, loads the trained weights; editing the file trains again."""
    from accelflow.data import load
    from accelflow.frontends import is_model_file, seeded_model_file
    from accelflow.train import cached_training

    if not is_model_file(spec):
        raise ConfigError(f"{spec}: --train trains a PyTorch model file (net.py[:NAME]); an ONNX file carries its "
                          "trained weights")
    if weights is not None:
        raise ConfigError(f"{spec}: give --weights (trained weights to load) or --train (train the file's model "
                          "once, through the weights cache), not both")
    loaded, sha256 = seeded_model_file(spec)
    module, info = cached_training(loaded.module, load(data), recipe, name=loaded.name, source=sha256,
                                   progress=progress)
    return TrainedModel(module.eval(), loaded.name, data, info.test_accuracy)


def add_train_arguments(p: argparse.ArgumentParser, when: str = "") -> None:
    """``--train`` and ``--train-epochs``, read back by :func:`train_recipe`."""
    p.add_argument("--train", action="store_true",
                   help=f"{when}train a model file's module (built from seed 0) on the data set first, once: the "
                        "weights cache keeps the result, keyed by the file's contents, the data and the recipe")
    p.add_argument("--train-epochs", type=int, default=DEFAULT_TRAIN_EPOCHS, metavar="N",
                   help=f"with --train: passes over the training split (default {DEFAULT_TRAIN_EPOCHS}, Adam, "
                        "cosine schedule; a small set such as digits_image needs ~30)")


def train_recipe(args: argparse.Namespace) -> TrainRecipe | None:
    """The recipe ``--train`` asks for, or None without it."""
    from accelflow.train import FALLBACK_RECIPE

    if not args.train:
        return None
    if args.train_epochs < 1:
        raise ConfigError(f"--train-epochs must be >= 1, got {args.train_epochs}")
    return dataclasses.replace(FALLBACK_RECIPE, epochs=args.train_epochs)
