"""A user's own model as a PyTorch module: a Python file that defines it and a state-dict file with its
trained weights, or an ONNX file (:func:`load_torch_model`).

``model.py[:NAME]`` names an ``nn.Module`` instance or a function returning one (``NAME`` defaults to the
first of :data:`MODEL_FILE_NAMES` the file defines); the file may also set ``INPUT_SHAPE`` (without the
batch) and ``INPUT_DTYPE`` (``"float32"``, the default, or ``"int64"`` for a language model's token ids;
``INPUT_SHAPE`` is then the sequence length). The file is executed (as a module whose ``__name__`` is not ``"__main__"``): load only trusted code. Weights are read with ``torch.load(weights_only=True)``,
which never runs code from the weights file.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from accelflow._model_import import module_name_for
from accelflow.errors import ModelImportError

__all__ = [
    "MODEL_FILE_NAMES",
    "ModelFile",
    "is_model_file",
    "is_user_model",
    "load_model_file",
    "load_torch_model",
    "load_weights",
    "module_name_for",
    "MODEL_FILE_SEED",
    "seeded_model_file",
]

#: Names looked up in a model file when ``file.py`` is given without ``:NAME``.
MODEL_FILE_NAMES = ("model", "build_model", "MODEL")

#: Seed of a model file's initial weights (:func:`seeded_model_file`), so the same file builds the same
#: untrained model and the weights cache, keyed by those weights, finds its training again.
MODEL_FILE_SEED = 0

#: Element types a model file's ``INPUT_DTYPE`` may name.
INPUT_DTYPES = ("float32", "int64")

#: Keys under which common checkpoint layouts keep the state dict (``{"state_dict": ..., "epoch": ...}``).
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


@dataclass(frozen=True, eq=False)
class ModelFile:
    """What a model file gave: the module, the file's ``INPUT_SHAPE`` (None when it sets none), a name
    for reports (the file's stem, or ``stem.NAME`` when a name was given) and the file's ``INPUT_DTYPE``."""

    module: nn.Module
    input_shape: tuple[int, ...] | None
    name: str
    input_dtype: str = "float32"


def is_model_file(spec: str) -> bool:
    """True for ``something.py`` or ``something.py:NAME``."""
    return spec.partition(":")[0].endswith(".py")


def load_model_file(spec: str) -> ModelFile:
    """Run ``model.py[:NAME]`` and return the module it defines (in eval mode).

    The file is imported as a module named after its absolute path (:func:`module_name_for`), executed
    afresh on each call; classes it defines can then be pickled, and unpickled in any process that has
    imported accelflow (worker processes, a resumed run's saved states), which imports the same file by that
    name (:mod:`accelflow._model_import`)."""
    file, _, attr = spec.partition(":")
    path = Path(file)
    if not path.is_file():
        raise ModelImportError(f"{file}: no such file")
    name = module_name_for(path)
    sys.modules.pop(name, None)  # a fresh run, as the file may have changed
    try:
        namespace = vars(importlib.import_module(name))
    except Exception as exc:  # the user's code may raise anything
        sys.modules.pop(name, None)
        raise ModelImportError(f"{file}: running the model file failed: {type(exc).__name__}: {exc}") from exc
    names = [attr] if attr else [n for n in MODEL_FILE_NAMES if n in namespace]
    if not names or names[0] not in namespace:
        wanted = attr or " or ".join(MODEL_FILE_NAMES)
        found = sorted(k for k, v in namespace.items() if isinstance(v, nn.Module) or
                       (callable(v) and not k.startswith("_") and not isinstance(v, type)))
        raise ModelImportError(f"{file}: no {wanted!r} defined; candidates: {found}")
    obj = namespace[names[0]]
    try:
        module = obj if isinstance(obj, nn.Module) else obj()
    except Exception as exc:
        raise ModelImportError(f"{file}:{names[0]}() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ModelImportError(f"{file}:{names[0]} is not an nn.Module (got {type(module).__name__})")
    shape = namespace.get("INPUT_SHAPE")
    try:
        input_shape = None if shape is None else tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ModelImportError(f"{file}: INPUT_SHAPE must be a sequence of ints such as (1, 28, 28), "
                               f"got {shape!r}") from None
    dtype = namespace.get("INPUT_DTYPE", "float32")
    if dtype not in INPUT_DTYPES:
        raise ModelImportError(f"{file}: INPUT_DTYPE must be one of {', '.join(map(repr, INPUT_DTYPES))}, "
                               f"got {dtype!r}")
    return ModelFile(module.eval(), input_shape, f"{path.stem}.{attr}" if attr else path.stem, str(dtype))


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load the state dict saved in ``path`` into ``module`` (strictly: every key and shape must match).

    ``path`` holds ``torch.save(model.state_dict(), path)``, or a checkpoint dict keeping it under
    ``state_dict``, ``model_state_dict`` or ``model``; a ``module.`` prefix (``nn.DataParallel``) is dropped.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"{path}: no such weights file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().split(". ")[0].rstrip(".") or type(exc).__name__
        raise ModelImportError(
            f"{path}: not a state dict readable with torch.load(weights_only=True) ({first}); save the weights "
            "with torch.save(model.state_dict(), FILE) (whole pickled modules are not loaded: they run code)"
        ) from None
    state = _state_dict_of(loaded, path)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = [f"{label}: {_few(items)}" for label, items in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if items]
        raise ModelImportError(f"{path}: weights do not fit the model ({'; '.join(parts)})")
    module.load_state_dict(state, strict=True)
    return module.eval()


def _state_dict_of(loaded: Any, path: Path) -> dict[str, Any]:
    import torch

    if isinstance(loaded, Mapping) and not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        for key in _CHECKPOINT_KEYS:
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        keys = sorted(map(str, loaded))[:6] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise ModelImportError(f"{path}: expected a state dict (parameter name -> tensor), or a checkpoint with "
                               f"one under {' / '.join(_CHECKPOINT_KEYS)}; found {keys}")
    return dict(loaded)


def _few(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def is_user_model(spec: str) -> bool:
    """True for what :func:`load_torch_model` takes: a model file ``net.py[:NAME]`` or an ``.onnx`` file."""
    return is_model_file(spec) or spec.lower().endswith(".onnx")


def seeded_model_file(spec: str, weights: str | Path | None = None) -> tuple[ModelFile, str]:
    """The model of ``net.py[:NAME]`` built from :data:`MODEL_FILE_SEED` (torch's global random state is left
    as it was; ``weights`` loaded when given) and the sha256 of ``net.py``, which, with the initial weights,
    keys the file's training in the weights cache (:func:`accelflow.train.cached_training`)."""
    import hashlib

    import torch

    with torch.random.fork_rng():
        torch.manual_seed(MODEL_FILE_SEED)
        loaded = load_torch_model(spec, weights)
    return loaded, hashlib.sha256(Path(spec.partition(":")[0]).read_bytes()).hexdigest()


def load_torch_model(spec: str, weights: str | Path | None = None) -> ModelFile:
    """The user's model as a PyTorch module: ``net.py[:NAME]`` (with the state dict ``weights`` loaded when
    given), or ``net.onnx`` converted through the IR (:func:`~accelflow.frontends.ir_to_torch.to_torch`; its
    weights are the file's, BatchNorm folded into the convs, and ``weights`` must be None)."""
    from accelflow.errors import ConfigError

    if is_model_file(spec):
        loaded = load_model_file(spec)
        return loaded if weights is None else ModelFile(load_weights(loaded.module, weights), loaded.input_shape,
                                                        loaded.name, loaded.input_dtype)
    if not spec.lower().endswith(".onnx"):
        raise ConfigError(f"{spec}: expected a PyTorch model file net.py[:NAME] or an .onnx file")
    if weights is not None:
        raise ConfigError(f"{spec}: an ONNX file carries its own weights; weights {str(weights)!r} apply to a "
                          "PyTorch model file")
    from accelflow.frontends.ir_to_torch import to_torch
    from accelflow.frontends.onnx import from_onnx
    from accelflow.ir import InputAttrs

    path = Path(spec)
    if not path.is_file():
        raise ModelImportError(f"{spec}: no such file")
    graph = from_onnx(path)
    if len(graph.inputs) != 1 or graph.inputs[0].shape is None:
        raise ModelImportError(f"{spec}: expected one input with a static shape, got "
                               f"{[(n.name, n.shape) for n in graph.inputs]}")
    (inp,) = graph.inputs
    dtype = inp.attrs.dtype.value if isinstance(inp.attrs, InputAttrs) else "float32"
    return ModelFile(to_torch(graph), tuple(graph.inputs[0].shape), path.stem, dtype)
