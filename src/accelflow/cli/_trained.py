"""MODEL arguments that name a trained PyTorch model (what `hass` and `dataflow --data` run on real images):
a zoo model trained through the weights cache, the user's model file with its state dict, or an ONNX file."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from accelflow.errors import ConfigError

__all__ = ["TrainedModel", "trained_model"]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """The module (eval mode), a name for reports, the data set it was trained on and, for a zoo model, the
    training cache's test accuracy."""

    module: nn.Module
    name: str
    dataset: str
    test_accuracy: float | None = None


def trained_model(spec: str, weights: str | None, data: str | None, *, progress: bool) -> TrainedModel:
    """``spec``: zoo:NAME (or NAME), ``model.py[:NAME]`` with ``weights``, or ``model.onnx``; the user's models
    need ``data``, a zoo model defaults to its own data set and is trained on first use."""
    from accelflow.frontends import is_user_model, load_torch_model
    from accelflow.zoo import names
    from accelflow.zoo import spec as zoo_spec

    if is_user_model(spec):
        if data is None:
            from accelflow.data import dataset_names

            raise ConfigError(f"{spec}: your own model needs --data, the image data set it was trained on "
                              f"(one of {', '.join(dataset_names())})")
        loaded = load_torch_model(spec, weights)
        return TrainedModel(loaded.module, loaded.name, data)
    name = spec[4:] if spec.startswith("zoo:") else spec
    if name not in names():
        raise ConfigError(f"unknown model {spec!r}: expected zoo:NAME (known: {', '.join(names())}), a PyTorch "
                          "model file model.py[:NAME] or an .onnx file")
    if weights is not None:
        raise ConfigError(f"--weights is for a model file; zoo model {name!r} takes its weights from the training "
                          "cache (to use your own weights of it, define it in a model file)")
    dataset = data or zoo_spec(name).default_dataset
    if dataset is None:
        raise ConfigError(f"zoo model {name!r} has no default data set; pass --data (e.g. fashion_mnist)")
    from accelflow.train import cached_model

    model, cache = cached_model(name, dataset, progress=progress)
    return TrainedModel(model, name, dataset, cache.test_accuracy)
