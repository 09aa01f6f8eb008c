"""Importers into the network IR: PyTorch modules (torch.export) and ONNX files, and a model locator.

``load_model("zoo:resnet18")``, ``load_model("net.py:build")`` or ``load_model("net.onnx")`` is what the CLI
uses; :func:`load_torch_model` gives the PyTorch module itself (for training and HASS): a model file with
its state dict, or an ONNX file back through the IR (:func:`to_torch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from accelflow.errors import ConfigError, ModelImportError
from accelflow.frontends.export import export_onnx
from accelflow.frontends.ir_to_torch import to_torch
from accelflow.frontends.model_file import (
    MODEL_FILE_NAMES,
    MODEL_FILE_SEED,
    ModelFile,
    is_model_file,
    is_user_model,
    load_model_file,
    load_torch_model,
    load_weights,
    seeded_model_file,
)
from accelflow.frontends.onnx import SUPPORTED_ONNX_OPS, from_onnx
from accelflow.frontends.pytorch import SUPPORTED_TORCH_OPS, from_pytorch
from accelflow.ir import Graph

__all__ = [
    "export_onnx",
    "MODEL_FILE_NAMES",
    "MODEL_FILE_SEED",
    "ModelFile",
    "is_model_file",
    "is_user_model",
    "load_model_file",
    "load_torch_model",
    "load_weights",
    "seeded_model_file",
    "to_torch",
    "from_onnx",
    "from_pytorch",
    "load_model",
    "SUPPORTED_ONNX_OPS",
    "SUPPORTED_TORCH_OPS",
]


def load_model(spec: str, input_shape: Sequence[int] | None = None) -> Graph:
    """Load ``zoo:NAME`` (our PyTorch definition, exported), a PyTorch file ``model.py[:NAME]`` or a path to
    an ``.onnx`` file into the IR.

    ``input_shape`` (without batch) overrides the zoo model's default input shape (a language model's
    sequence length); ONNX files carry their own static input shape. Token models get int64 inputs (the zoo
    spec's ``input_dtype``, a model file's ``INPUT_DTYPE``).
    """
    if spec.startswith("zoo:"):
        from accelflow.zoo import create, options  # the zoo imports torch models lazily
        from accelflow.zoo import spec as zoo_spec

        name = spec[4:]
        info = zoo_spec(name)
        shape = tuple(input_shape) if input_shape else info.input_shape
        kwargs: dict[str, int] = {}
        if input_shape and info.family not in ("mlp", "tcn", "lm"):
            kwargs["in_channels"] = shape[0]
            if info.family == "vit" and len(shape) == 3:
                kwargs["input_size"] = shape[1]  # its position table has one entry per patch
        model = create(name, **{k: v for k, v in kwargs.items() if k in options(name)})
        return from_pytorch(model, shape, name=name, input_dtype=info.input_dtype)
    if is_model_file(spec):
        return _from_python_file(spec, input_shape)
    path = Path(spec)
    if path.suffix.lower() != ".onnx":
        raise ConfigError(
            f"model {spec!r}: expected an .onnx file, a PyTorch file model.py[:NAME] or zoo:NAME "
            "(see `accelflow inspect zoo:list`)"
        )
    if not path.exists():
        raise ModelImportError(f"{spec}: no such file")
    return from_onnx(path)


def _from_python_file(spec: str, input_shape: Sequence[int] | None) -> Graph:
    """``model.py[:NAME]`` (see :func:`load_model_file`); the input shape comes from ``input_shape`` or the
    file's ``INPUT_SHAPE``. The file is executed: load only trusted code."""
    loaded = load_model_file(spec)
    shape = tuple(input_shape) if input_shape else loaded.input_shape
    if not shape:
        raise ConfigError(f"{spec.partition(':')[0]}: give the input shape with --input-shape C,H,W or "
                          "INPUT_SHAPE in the file")
    return from_pytorch(loaded.module, tuple(int(d) for d in shape), name=Path(spec.partition(":")[0]).stem,
                        input_dtype=loaded.input_dtype)
