"""hls4ml boundary: PyTorch model + typed :class:`HlsConfig` -> written, compiled project; C simulation.

The only place that spells precisions as C++ strings. Every layer's result/weight/bias/accum type is set
explicitly (hls4ml's 'auto' silently widens accumulators). Compiled projects are cached in
``<outdir>/<key>/`` where ``key`` hashes the weights, the configuration and the hls4ml version, so a
repeated conversion of the same design loads the shared library instead of running g++ again.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from accelflow.data import ArraySplit
from accelflow.errors import ConfigError
from accelflow.hls._config import HlsConfig, HlsError, LayerPrecision
from accelflow.train import weights_digest

__all__ = ["HlsProject", "convert", "csim_predict", "csim_accuracy", "hls_layer_name", "torch_predict"]

log = logging.getLogger(__name__)
_COMPUTE_KEYS = ("weight", "bias", "accum")


def hls_layer_name(ir_name: str) -> str:
    """hls4ml's name for an IR node (torch.fx module path with dots replaced by underscores)."""
    return ir_name.replace(".", "_")


@dataclass(frozen=True)
class HlsProject:
    """A written and compiled hls4ml project: ``path`` holds the C++ sources and the shared library.

    ``precisions`` are the hls4ml types actually used per hls4ml layer name (read back after conversion);
    ``compile_seconds`` is 0 when the compiled library came from the cache.
    """

    path: Path
    key: str
    config: HlsConfig
    input_shape: tuple[int, ...]
    precisions: dict[str, dict[str, str]]
    compile_seconds: float
    hls_model: Any = field(repr=False, compare=False)


def _hls_config(model: nn.Module, input_shape: tuple[int, ...], config: HlsConfig) -> dict[str, Any]:
    import hls4ml

    cfg: dict[str, Any] = hls4ml.utils.config_from_pytorch_model(
        model,
        input_shape=input_shape,
        granularity="name",
        backend=config.backend.value,
        default_precision=config.default_precision.to_hls(),
        default_reuse_factor=1,
    )
    cfg["Model"]["Strategy"] = config.strategy.value
    known = {hls_layer_name(k): k for k in config.precision}
    if config.precision and not set(known) & set(cfg["LayerName"]):
        raise ConfigError(
            f"none of the precision keys {sorted(config.precision)[:5]} names a layer of the model; "
            f"hls4ml layers: {sorted(cfg['LayerName'])}"
        )
    for hname, layer_cfg in cfg["LayerName"].items():
        ir_name = known.get(hname, hname)
        prec = layer_cfg.setdefault("Precision", {})
        compute = any(k in prec for k in _COMPUTE_KEYS)
        lp: LayerPrecision = config.precision_for(ir_name, compute)
        default = config.default_precision
        for key in list(prec):
            if key == "table":  # activation look-up tables: keep hls4ml's (unused by ReLU)
                continue
            value = getattr(lp, key, None) if key in ("result", "weight", "bias", "accum") else None
            prec[key] = (value or lp.result if key == "result" else value or default).to_hls()
        if "ReuseFactor" in layer_cfg:
            layer_cfg["ReuseFactor"] = config.reuse_for(ir_name)
    return cfg


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """hls4ml prints its progress to stdout; route it to the debug log instead."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    if buf.getvalue():
        log.debug("hls4ml: %s", buf.getvalue().strip())


def _refuse_leading_flatten(model: nn.Module, shape: tuple[int, ...]) -> None:
    """hls4ml 1.x's PyTorch converter mis-orders the input of a model whose first operation flattens a
    multi-dimensional input (measured: C-sim of flatten + dense on (1,28,28) equals the model on images with
    H and W swapped; on (2,4,4) and (3,5) it matches no simple permutation), so its C simulation would
    silently disagree with the model. Refuse such models instead."""
    if len(shape) < 2:
        return
    from accelflow.frontends import from_pytorch
    from accelflow.ir import OpKind

    graph = from_pytorch(model, shape)
    (inp,) = graph.inputs
    if any(user.op is OpKind.FLATTEN for user in inp.users):
        raise HlsError(
            f"the model flattens its {shape} input first; hls4ml reads such inputs in a different order, so "
            "its C simulation would not match the model. Drop the flatten and feed flat inputs "
            f"(shape ({int(np.prod(shape))},)) instead"
        )


def _refuse_attention(model: nn.Module, shape: tuple[int, ...]) -> None:
    """Name the reason when the model multiplies two activations (attention): hls4ml 1.x's PyTorch converter
    maps dense, conv, activation, pooling and reshape layers, not transformers."""
    from accelflow.frontends import from_pytorch
    from accelflow.ir import OpKind

    try:
        graph = from_pytorch(model, shape)
    except Exception:  # the generic message of the caller then stands
        return
    products = graph.find(OpKind.MATMUL, OpKind.EINSUM)
    if products:
        raise HlsError(
            f"hls4ml converts MLPs and CNNs; node {products[0].name!r} multiplies two activations (attention's "
            f"Q K^T or scores x V, {len(products)} such products in the model), which hls4ml's PyTorch converter "
            "does not support"
        )


def convert(
    model: nn.Module, input_shape: Sequence[int], config: HlsConfig, outdir: str | Path
) -> HlsProject:
    """Convert ``model`` (eval mode, CPU) to an hls4ml project under ``outdir``, write and compile it.

    ``input_shape`` excludes the batch (``(64,)`` or ``(1, 28, 28)`` channels-first as in PyTorch).
    Compilation (g++, 10-25 s) is skipped when ``outdir`` already holds a project with the same key.
    """
    import hls4ml

    model = model.eval().cpu()
    shape = tuple(int(s) for s in input_shape)
    _refuse_leading_flatten(model, shape)
    try:
        cfg = _hls_config(model, shape, config)
    except Exception as exc:  # hls4ml raises bare exceptions for unsupported layers
        if isinstance(exc, ConfigError):
            raise
        _refuse_attention(model, shape)
        raise HlsError(f"hls4ml could not read the model: {exc}") from exc
    cfg_text = json.dumps({k: v for k, v in cfg.items() if k != "PytorchModel"}, sort_keys=True, default=str)
    meta = f"{cfg_text}|{shape}|{config.io_type}|{config.part}|{config.clock_period_ns}|{hls4ml.__version__}"
    key = hashlib.sha256((weights_digest(model) + meta).encode()).hexdigest()[:16]
    path = Path(outdir) / key
    try:
        with _quiet():
            hm = hls4ml.converters.convert_from_pytorch_model(
                model,
                output_dir=str(path),
                project_name="myproject",
                backend=config.backend.value,
                hls_config=cfg,
                io_type=config.io_type.value,
                part=config.part,
                clock_period=config.clock_period_ns,
            )
    except Exception as exc:
        raise HlsError(f"hls4ml conversion failed: {exc}") from exc
    libs = sorted((path / "firmware").glob("myproject-*.so"))
    t0 = time.perf_counter()
    if libs:
        hm._top_function_lib = ctypes.cdll.LoadLibrary(str(libs[-1]))
        seconds = 0.0
        log.info("hls4ml project %s loaded from cache", path)
    else:
        try:
            with _quiet():
                hm.compile()
        except Exception as exc:
            raise HlsError(f"hls4ml compile (g++) failed in {path}: {exc}") from exc
        seconds = time.perf_counter() - t0
        log.info("hls4ml project %s compiled in %.1f s", path, seconds)
    precisions = {
        layer.name: {
            k.removeprefix(layer.name + "_"): str(v.precision) for k, v in layer.get_layer_precision().items()
        }
        for layer in hm.get_layers()
    }
    return HlsProject(path, key, config, shape, precisions, seconds, hm)


def csim_predict(project: HlsProject, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Bit-accurate C-simulation outputs (float32, (N, classes)) for inputs ``x`` (N, *input_shape)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if tuple(x.shape[1:]) != project.input_shape:
        raise ConfigError(f"csim input shape {x.shape[1:]} != project input shape {project.input_shape}")
    outs = []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        try:
            with _quiet():
                y = project.hls_model.predict(chunk.reshape(len(chunk), -1))
        except Exception as exc:
            raise HlsError(f"hls4ml C simulation failed for {project.path}: {exc}") from exc
        outs.append(np.asarray(y, dtype=np.float32).reshape(len(chunk), -1))
    return np.concatenate(outs)


def csim_accuracy(project: HlsProject, split: ArraySplit, limit: int | None = None) -> float:
    """Top-1 accuracy in [0, 1] of the compiled design on ``split`` (first ``limit`` samples if given)."""
    n = len(split) if limit is None else min(limit, len(split))
    y = csim_predict(project, split.x[:n])
    return float((y.argmax(axis=1) == split.y[:n]).mean())


def torch_predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Float outputs of ``model`` (eval mode, no gradients) for numpy inputs."""
    with torch.inference_mode():
        return model.eval()(torch.as_tensor(x, dtype=torch.float32)).numpy()
