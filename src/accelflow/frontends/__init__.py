"""Importers into the network IR: PyTorch modules (torch.fx) and ONNX files, and a model locator.

``load_model("zoo:resnet18")`` or ``load_model("net.onnx")`` is what the CLI uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from accelflow.errors import ConfigError, ModelImportError
from accelflow.frontends.export import export_onnx
from accelflow.frontends.onnx import SUPPORTED_ONNX_OPS, from_onnx
from accelflow.frontends.pytorch import SUPPORTED_FUNCTIONS, SUPPORTED_MODULES, from_pytorch
from accelflow.ir import Graph

__all__ = [
    "export_onnx",
    "from_onnx",
    "from_pytorch",
    "load_model",
    "SUPPORTED_ONNX_OPS",
    "SUPPORTED_MODULES",
    "SUPPORTED_FUNCTIONS",
]


def load_model(spec: str, input_shape: Sequence[int] | None = None) -> Graph:
    """Load ``zoo:NAME`` (our PyTorch definition, traced) or a path to an ``.onnx`` file into the IR.

    ``input_shape`` (without batch) overrides the zoo model's default input shape; ONNX files carry
    their own static input shape.
    """
    if spec.startswith("zoo:"):
        from accelflow.zoo import create  # the zoo imports torch models lazily
        from accelflow.zoo import spec as zoo_spec

        name = spec[4:]
        info = zoo_spec(name)
        shape = tuple(input_shape) if input_shape else info.input_shape
        kwargs = {"in_channels": shape[0]} if input_shape and info.family not in ("mlp", "tcn") else {}
        return from_pytorch(create(name, **kwargs), shape, name=name)
    if ".py" in spec and spec.split(":")[0].endswith(".py"):
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


#: Names looked up in a model file when ``file.py`` is given without ``:NAME``.
MODEL_FILE_NAMES = ("model", "build_model", "MODEL")


def _from_python_file(spec: str, input_shape: Sequence[int] | None) -> Graph:
    """``model.py[:NAME]``: NAME is an ``nn.Module`` instance or a function returning one; the input shape
    comes from ``input_shape`` or the file's ``INPUT_SHAPE``. The file is executed: load only trusted code."""
    import runpy

    from torch import nn

    file, _, attr = spec.partition(":")
    path = Path(file)
    if not path.is_file():
        raise ModelImportError(f"{file}: no such file")
    try:
        namespace = runpy.run_path(str(path), run_name="accelflow_model_file")
    except Exception as exc:  # the user's code may raise anything
        raise ModelImportError(f"{file}: running the model file failed: {type(exc).__name__}: {exc}") from exc
    names = [attr] if attr else [n for n in MODEL_FILE_NAMES if n in namespace]
    if not names or names[0] not in namespace:
        wanted = attr or " or ".join(MODEL_FILE_NAMES)
        found = sorted(k for k, v in namespace.items() if isinstance(v, nn.Module) or
                       (callable(v) and not k.startswith("_") and not isinstance(v, type)))
        raise ModelImportError(f"{file}: no {wanted!r} defined; candidates: {found}")
    obj = namespace[names[0]]
    try:
        model = obj if isinstance(obj, nn.Module) else obj()
    except Exception as exc:
        raise ModelImportError(f"{file}:{names[0]}() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ModelImportError(f"{file}:{names[0]} is not an nn.Module (got {type(model).__name__})")
    shape = tuple(input_shape) if input_shape else namespace.get("INPUT_SHAPE")
    if not shape:
        raise ConfigError(f"{file}: give the input shape with --input-shape C,H,W or INPUT_SHAPE in the file")
    return from_pytorch(model, tuple(int(d) for d in shape), name=path.stem)
