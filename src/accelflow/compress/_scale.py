"""Width scaling: rebuild a chain-structured model with narrower hidden layers, and MetaML's auto-scaling.

Supported models: chains of Linear/Conv2d (groups=1) with element-wise activations, BatchNorm, pooling,
dropout, a global average pool and one flatten in between — the zoo's jet_dnn, digits_mlp, lenet5 and vgg7,
and such chains read from ONNX (Keras-style files too: their unequal pads make PadConv2d layers, rebuilt as
PadConv2d). Models with residual additions or concatenations (ResNets, MobileNets) raise
:class:`CompressError`. The narrower model is warm-started from the channels with the largest L1 norm and
then retrained (ours: MetaML retrains).
"""

from __future__ import annotations

import copy
import enum
import logging
import time
from dataclasses import dataclass

import optuna
import torch
from torch import fx, nn

from accelflow.compress._common import CompressError, evaluate_on, fit
from accelflow.data import Splits
from accelflow.errors import ConfigError
from accelflow.train import TrainRecipe
from accelflow.zoo import PadConv2d, ThresholdReLU, symbolic_trace

__all__ = [
    "ScaleMethod",
    "ScaleConfig",
    "ScaleTrial",
    "ScaleResult",
    "scale_widths",
    "auto_scale",
    "layer_widths",
]

log = logging.getLogger(__name__)
_PASS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Hardswish,
    nn.Sigmoid,
    nn.Tanh,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.Dropout,
    nn.Identity,
    nn.Flatten,
    nn.Softmax,
    nn.AdaptiveAvgPool2d,
    ThresholdReLU,
)
#: Functions and tensor methods that keep the channel axis (``mean`` only over spatial axes: a global average pool, the form
#: :func:`~accelflow.frontends.to_torch` writes for GlobalAveragePool).
_PASS_FUNCTIONS = ("flatten", "relu", "reshape", "view", "mean", "size", "contiguous")


class ScaleMethod(enum.StrEnum):
    STEPWISE = "stepwise"  # factors 1 - i/8, stop after max_failures consecutive failures
    BAYESIAN = "bayesian"  # Optuna TPE over [min_factor, max_factor]


@dataclass(frozen=True)
class ScaleConfig:
    """Auto-scaling settings; constructing one does no work.

    A factor is accepted when the retrained accuracy is at least ``reference * (1 - tolerance_relative)``
    (0.02 = 2 % relative). ``retrain`` is the recipe for every candidate. The Bayesian variant runs
    ``n_trials`` Optuna trials (``n_startup`` random) over ``[min_factor, max_factor]``.
    """

    tolerance_relative: float = 0.02
    method: ScaleMethod = ScaleMethod.STEPWISE
    max_failures: int = 3
    retrain: TrainRecipe = TrainRecipe(epochs=5, lr=2e-3)
    n_trials: int = 10
    n_startup: int = 2
    min_factor: float = 0.125
    max_factor: float = 0.99
    seed: int = 0
    eval_split: str = "val"

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", ScaleMethod(self.method))
        if not 0.0 <= self.tolerance_relative < 1.0:
            raise ConfigError(
                f"ScaleConfig.tolerance_relative must be in [0, 1), got {self.tolerance_relative}"
            )
        if not 0.0 < self.min_factor < self.max_factor <= 1.0:
            raise ConfigError(
                f"need 0 < min_factor < max_factor <= 1, got {self.min_factor}, {self.max_factor}"
            )


@dataclass(frozen=True)
class ScaleTrial:
    factor: float
    accuracy: float
    accepted: bool
    widths: tuple[int, ...]
    seconds: float


@dataclass(frozen=True)
class ScaleResult:
    """Smallest accepted width factor, its retrained model and widths (output widths of the dense/conv
    layers); the original model with factor 1.0 if none was accepted."""

    model: nn.Module
    factor: float
    accuracy: float
    reference_accuracy: float
    widths: tuple[int, ...]
    trials: tuple[ScaleTrial, ...]


def _chain(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules in execution order; refuses graphs that are not a simple chain."""
    try:
        traced = symbolic_trace(model)  # a PadConv2d (from a Keras-style ONNX file) stays one conv
    except Exception as exc:
        raise CompressError(f"scale_widths: cannot trace {type(model).__name__}: {exc}") from exc
    mods = dict(model.named_modules())
    chain: list[tuple[str, nn.Module]] = []
    for node in traced.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        if len(node.users) > 1 or sum(isinstance(a, fx.Node) for a in node.args) > 1:
            raise CompressError(
                f"scale_widths supports chain-structured models only; {node.name} has a branch or join "
                "(supported: jet_dnn, digits_mlp, lenet5, vgg7)"
            )
        if node.op == "call_module":
            mod = mods[str(node.target)]
            if not isinstance(mod, (nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d, *_PASS)):
                raise CompressError(f"scale_widths: unsupported layer {node.target} ({type(mod).__name__})")
            if isinstance(mod, nn.Conv2d) and mod.groups != 1:
                raise CompressError(f"scale_widths: grouped convolution {node.target} is not supported")
            chain.append((str(node.target), mod))
        elif node.op in ("call_function", "call_method"):  # torch.mean(x, ...) or x.mean(...)
            fn = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
            if fn not in _PASS_FUNCTIONS or (fn == "mean" and not _spatial_mean(node)):
                raise CompressError(f"scale_widths: unsupported function {fn} at node {node.name} (supported: "
                                    f"{', '.join(_PASS_FUNCTIONS)}; mean over spatial axes only)")
    return chain


def _spatial_mean(node: fx.Node) -> bool:
    """A ``torch.mean`` over the spatial axes of an NCHW tensor only (2, 3 or -2, -1)."""
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    dims = (dims,) if isinstance(dims, int) else dims
    return isinstance(dims, tuple | list) and len(dims) > 0 and set(dims) <= {2, 3, -1, -2}


def layer_widths(model: nn.Module) -> tuple[int, ...]:
    """Output widths (features or channels) of the dense/conv layers in execution order."""
    return tuple(
        m.out_features if isinstance(m, nn.Linear) else m.out_channels
        for _, m in _chain(model)
        if isinstance(m, nn.Linear | nn.Conv2d)
    )


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, new)


def scale_widths(model: nn.Module, factor: float) -> nn.Module:
    """Copy of ``model`` with every hidden dense/conv width multiplied by ``factor`` (rounded, >= 1); the
    output layer keeps its width. Kept channels are those with the largest L1 weight norm, so the copy
    computes a sub-network of the original (retrain it)."""
    if not 0.0 < factor <= 1.0:
        raise ConfigError(f"width factor must be in (0, 1], got {factor}")
    new_model = copy.deepcopy(model)
    chain = _chain(new_model)
    compute = [i for i, (_, m) in enumerate(chain) if isinstance(m, nn.Linear | nn.Conv2d)]
    keep_in: torch.Tensor | None = None  # kept output channels of the previous compute layer
    for pos, (name, mod) in enumerate(chain):
        with torch.no_grad():
            if isinstance(mod, nn.Linear | nn.Conv2d):
                w = mod.weight.detach()
                if keep_in is not None:
                    in_dim = w.shape[1]
                    if in_dim != len(prev_out_total := _prev_total(chain, pos)):
                        block = in_dim // len(prev_out_total)  # flatten after conv: channel-major blocks
                        idx = (keep_in[:, None] * block + torch.arange(block)[None, :]).reshape(-1)
                    else:
                        idx = keep_in
                    w = w[:, idx]
                last = pos == compute[-1]
                n_out = w.shape[0] if last else max(1, int(round(w.shape[0] * factor)))
                norms = w.abs().reshape(w.shape[0], -1).sum(dim=1)
                keep = torch.sort(torch.argsort(norms, descending=True, stable=True)[:n_out]).values
                w = w[keep]
                bias = mod.bias.detach()[keep] if mod.bias is not None else None
                if isinstance(mod, nn.Linear):
                    new: nn.Module = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
                elif isinstance(mod, PadConv2d):
                    new = PadConv2d(w.shape[1], w.shape[0], mod.kernel_size, mod.pads, mod.stride, mod.dilation,
                                    bias=bias is not None)
                else:
                    new = nn.Conv2d(
                        w.shape[1],
                        w.shape[0],
                        mod.kernel_size,
                        mod.stride,
                        mod.padding,
                        mod.dilation,
                        1,
                        bias is not None,
                        mod.padding_mode,
                    )
                new.weight.copy_(w)
                if bias is not None:
                    new.bias.copy_(bias)
                _set(new_model, name, new)
                keep_in = keep
            elif isinstance(mod, nn.BatchNorm2d | nn.BatchNorm1d) and keep_in is not None:
                bn = type(mod)(len(keep_in), mod.eps, mod.momentum, mod.affine, mod.track_running_stats)
                if mod.affine:
                    bn.weight.copy_(mod.weight[keep_in])
                    bn.bias.copy_(mod.bias[keep_in])
                if mod.track_running_stats:
                    bn.running_mean.copy_(mod.running_mean[keep_in])
                    bn.running_var.copy_(mod.running_var[keep_in])
                _set(new_model, name, bn)
    if hasattr(new_model, "widths"):  # zoo MLP records its widths
        widths = layer_widths(new_model)
        new_model.widths = (model.widths[0], *widths)  # type: ignore[union-attr]
    return new_model.eval()


def _prev_total(chain: list[tuple[str, nn.Module]], pos: int) -> range:
    """Output width (before scaling) of the compute layer preceding position ``pos``."""
    for _, m in reversed(chain[:pos]):
        if isinstance(m, nn.Linear):
            return range(m.out_features)
        if isinstance(m, nn.Conv2d):
            return range(m.out_channels)
    raise CompressError("no compute layer before position")


def auto_scale(model: nn.Module, splits: Splits, config: ScaleConfig = ScaleConfig()) -> ScaleResult:
    """MetaML auto-scaling: smallest common width factor of the hidden layers whose retrained model keeps
    accuracy within ``tolerance_relative`` of ``model``'s (stepwise 1 - i/8 or Bayesian, see ScaleConfig)."""
    layer_widths(model)  # fail early on unsupported models
    reference = evaluate_on(model, splits, config.eval_split)
    trials: list[ScaleTrial] = []
    best: tuple[float, nn.Module, float] | None = None

    def attempt(factor: float) -> tuple[bool, float]:
        nonlocal best
        t0 = time.perf_counter()
        cand = scale_widths(model, factor)
        fit(cand, splits, config.retrain)
        acc = evaluate_on(cand, splits, config.eval_split)
        ok = acc >= reference * (1.0 - config.tolerance_relative)
        trials.append(ScaleTrial(factor, acc, ok, layer_widths(cand), time.perf_counter() - t0))
        log.info(
            "scale factor %.3f: accuracy %.4f (reference %.4f) %s",
            factor,
            acc,
            reference,
            "accepted" if ok else "rejected",
        )
        if ok and (best is None or factor < best[0]):
            best = (factor, cand, acc)
        return ok, acc

    if config.method is ScaleMethod.STEPWISE:
        failures = 0
        for i in range(1, 8):
            ok, _ = attempt(1.0 - i / 8.0)
            failures = 0 if ok else failures + 1
            if failures >= config.max_failures:
                break
    else:
        sampler = optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=config.n_startup)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for _ in range(config.n_trials):
            trial = study.ask()
            f = trial.suggest_float("factor", config.min_factor, config.max_factor)
            ok, acc = attempt(f)
            # accepted: smaller is better; rejected: penalised by how far accuracy fell short
            study.tell(trial, f if ok else 1.0 + (reference - acc))
    if best is None:
        return ScaleResult(
            copy.deepcopy(model).eval(), 1.0, reference, reference, layer_widths(model), tuple(trials)
        )
    factor, cand, acc = best
    return ScaleResult(cand.eval(), factor, acc, reference, layer_widths(cand), tuple(trials))
