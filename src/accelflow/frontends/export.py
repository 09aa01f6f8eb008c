"""Export a PyTorch module to ONNX quietly (the importers' other route, and for users' toolchains)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from accelflow.errors import ModelImportError

__all__ = ["export_onnx"]


def export_onnx(model: nn.Module, input_shape: Sequence[int], path: str | Path, opset: int = 18,
                dtype: str = "float32") -> Path:
    """Write ``model`` (eval mode, batch 1, static shapes) to ``path`` with torch's default exporter.

    ``dtype`` is the input's element type: ``"float32"``, or ``"int64"`` for token ids (a zoo spec's
    ``input_dtype``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if dtype not in ("float32", "int64"):
        raise ModelImportError(f"cannot export with input dtype {dtype!r}: use 'float32' or 'int64'")
    example = torch.zeros(1, *[int(d) for d in input_shape], dtype=getattr(torch, dtype))
    sink = io.StringIO()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), (example,), str(path), opset_version=opset, verbose=False)
    except Exception as exc:
        raise ModelImportError(f"cannot export {type(model).__name__} to ONNX: {exc}") from exc
    finally:
        quiet.setLevel(level)
    return path
