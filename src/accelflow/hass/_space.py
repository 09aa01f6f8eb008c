"""The HASS search space: a weight magnitude threshold per conv and an activation threshold per ReLU.

Trials sample *normalised* variables so one range suits every layer: ``w:<conv>`` is the fraction of that
conv's weights to prune (mapped to the magnitude threshold at that quantile of ``|w|``), ``a:<relu>`` the
activation threshold as a multiple of the mean positive output of that ReLU on calibration data. Results
always report the absolute thresholds (``|w| < t -> 0``, ``x <= t -> 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import optuna
import torch
import torch.fx
from torch import nn

from accelflow.hass._errors import HassError
from accelflow.sparsity import conv_layers, mask_weights
from accelflow.zoo import activation_names, replace_activations, symbolic_trace

__all__ = ["FLOOR", "Objective", "SamplerKind", "Thresholds", "ThresholdSpace", "build_space", "conv_input_activations"]

# Ops between a ReLU and a conv that keep zeros zero and nonzeros nonzero-or-max (so the ReLU threshold
# still controls the conv's input zeros).
_PASSTHROUGH_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.Identity, nn.Dropout)

#: Lower end of the sampled (log-scale) ranges; a parameter at or below it means threshold 0.
FLOOR = 1e-3


class Objective(StrEnum):
    """What a search maximises (subject to the accuracy bound and the device's resources)."""

    THROUGHPUT = "throughput"  # images/s on the device
    THROUGHPUT_PER_DSP = "throughput_per_dsp"  # images/s per DSP used


class SamplerKind(StrEnum):
    """Optuna samplers: TPE (single objective), Gaussian-process BO (single objective; the accuracy bound
    modelled by its own GP, constrained expected improvement), NSGA-II (accuracy/throughput Pareto front),
    random."""

    TPE = "tpe"
    GP = "gp"
    NSGA2 = "nsga2"
    RANDOM = "random"


@dataclass(frozen=True)
class Thresholds:
    """Absolute thresholds: ``weight[conv]`` magnitude (``|w| < t`` pruned), ``activation[relu]`` cut-off."""

    weight: Mapping[str, float] = field(default_factory=dict)
    activation: Mapping[str, float] = field(default_factory=dict)

    def apply(self, model: nn.Module) -> nn.Module:
        """A pruned, thresholded copy of ``model`` (the original is untouched)."""
        acts = {k: v for k, v in self.activation.items()}
        model = replace_activations(model, acts) if acts else model
        return mask_weights(model, {k: v for k, v in self.weight.items() if v > 0})

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {"weight": dict(self.weight), "activation": dict(self.activation)}

    @staticmethod
    def from_dict(data: Mapping[str, Mapping[str, float]]) -> Thresholds:
        return Thresholds(dict(data.get("weight", {})), dict(data.get("activation", {})))


def conv_input_activations(model: nn.Module) -> dict[str, str]:
    """``{conv name: activation name}`` for convs whose input comes straight from a ReLU/ReLU6/ThresholdReLU
    (possibly through max pooling); convs fed by an addition, the image, etc. are absent."""
    acts = set(activation_names(model))
    modules = dict(model.named_modules())
    traced = symbolic_trace(model)  # ThresholdReLU and PadConv2d stay modules
    links: dict[str, str] = {}
    for node in traced.graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.Conv1d | nn.Conv2d):
            continue
        source = node.args[0]
        while isinstance(source, torch.fx.Node) and source.op == "call_module":
            if source.target in acts:
                links[str(node.target)] = str(source.target)
                break
            if not isinstance(modules.get(source.target), _PASSTHROUGH_MODULES):
                break
            source = source.args[0]
    return links


@dataclass(frozen=True, eq=False)
class ThresholdSpace:
    """Per-layer search variables and the statistics that map them to absolute thresholds.

    ``weight_magnitudes[conv]`` is the sorted ``|w|`` of the conv; ``activation_scale[relu]`` the mean
    positive output of the ReLU on calibration data; ``feeds[conv]`` the ReLU feeding the conv.
    """

    weight_magnitudes: Mapping[str, np.ndarray]
    activation_scale: Mapping[str, float]
    feeds: Mapping[str, str]
    max_weight_fraction: float = 0.9
    max_activation_ratio: float = 1.0

    @property
    def convs(self) -> tuple[str, ...]:
        return tuple(self.weight_magnitudes)

    @property
    def activations(self) -> tuple[str, ...]:
        return tuple(self.activation_scale)

    def weight_threshold(self, conv: str, fraction: float) -> float:
        """Magnitude below which ``fraction`` of the conv's weights lie (0 for fraction 0)."""
        mags = self.weight_magnitudes[conv]
        if fraction <= 0 or len(mags) == 0:
            return 0.0
        k = min(int(round(fraction * len(mags))), len(mags) - 1)
        return float(mags[k]) if k > 0 else 0.0

    def weight_fraction(self, conv: str, threshold: float) -> float:
        mags = self.weight_magnitudes[conv]
        return float(np.searchsorted(mags, threshold, side="left") / max(len(mags), 1))

    def thresholds(self, params: Mapping[str, float]) -> Thresholds:
        """Absolute thresholds from normalised parameters ``w:<conv>`` / ``a:<relu>`` (missing = 0; values at
        or below :data:`FLOOR`, the lower end of the sampled ranges, mean exactly 0)."""

        def value(key: str) -> float:
            v = float(params.get(key, 0.0))
            return 0.0 if v <= FLOOR * (1 + 1e-9) else v

        weight = {c: self.weight_threshold(c, value(f"w:{c}")) for c in self.convs}
        act = {a: value(f"a:{a}") * s for a, s in self.activation_scale.items()}
        return Thresholds(weight, act)

    def params(self, thresholds: Thresholds) -> dict[str, float]:
        """Normalised parameters reproducing ``thresholds`` (clipped to the search ranges)."""
        out = {f"w:{c}": min(self.weight_fraction(c, thresholds.weight.get(c, 0.0)), self.max_weight_fraction)
               for c in self.convs}
        for a, s in self.activation_scale.items():
            out[f"a:{a}"] = min(thresholds.activation.get(a, 0.0) / s if s > 0 else 0.0, self.max_activation_ratio)
        return {k: max(v, FLOOR) for k, v in out.items()}

    def distributions(self) -> dict[str, optuna.distributions.FloatDistribution]:
        """The fixed search space of :meth:`suggest`, for ask/tell loops (``accelflow.search.optimize``)."""
        out = {f"w:{c}": optuna.distributions.FloatDistribution(FLOOR, self.max_weight_fraction, log=True)
               for c in self.convs}
        out.update({f"a:{a}": optuna.distributions.FloatDistribution(FLOOR, self.max_activation_ratio, log=True)
                    for a in self.activations})
        return out

    def suggest(self, trial: Any) -> Thresholds:
        """Sample one point with an Optuna trial, log-uniform in ``[FLOOR, max]``: most layers of a network
        tolerate only light thresholds, so a uniform prior over ~30 layers almost never meets the bound."""
        params = {f"w:{c}": trial.suggest_float(f"w:{c}", FLOOR, self.max_weight_fraction, log=True)
                  for c in self.convs}
        params.update({f"a:{a}": trial.suggest_float(f"a:{a}", FLOOR, self.max_activation_ratio, log=True)
                       for a in self.activations})
        return self.thresholds(params)

    def uniform(self, weight_threshold: float, activation_threshold: float) -> Thresholds:
        """One absolute weight threshold and one activation threshold for every layer (the baseline)."""
        return Thresholds(dict.fromkeys(self.convs, weight_threshold),
                          dict.fromkeys(self.activations, activation_threshold))


def build_space(model: nn.Module, calibration: np.ndarray, max_weight_fraction: float = 0.9,
                max_activation_ratio: float = 1.0) -> ThresholdSpace:
    """Collect the statistics of ``model`` (trained, eval) on ``calibration`` inputs ``(N, *shape)``."""
    if len(calibration) == 0:
        raise HassError("build_space: calibration data is empty")
    convs = conv_layers(model)
    mags = {n: np.sort(np.abs(c.weight.detach().numpy()).ravel()) for n, c in convs.items()}
    feeds = conv_input_activations(model)
    fed = sorted(set(feeds.values()), key=list(activation_names(model)).index)
    modules = dict(model.named_modules())
    sums: dict[str, list[float]] = {a: [0.0, 0.0] for a in fed}

    def hook(name: str):  # noqa: ANN202 - torch hook signature
        def run(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
            pos = out[out > 0]
            sums[name][0] += float(pos.sum())
            sums[name][1] += float(pos.numel())
        return run

    handles = [modules[a].register_forward_hook(hook(a)) for a in fed]
    try:
        with torch.no_grad():
            model.eval()
            model(torch.as_tensor(calibration))
    finally:
        for h in handles:
            h.remove()
    scale = {a: (s / n if n else 1.0) for a, (s, n) in sums.items()}
    return ThresholdSpace(mags, scale, feeds, max_weight_fraction, max_activation_ratio)
