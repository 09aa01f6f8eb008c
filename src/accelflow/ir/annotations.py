"""Typed frozen records that analyses attach to nodes with ``node.annotate(record)``.

Records shared across packages live here so that producers and consumers agree on one layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ChannelSparsity"]


@dataclass(frozen=True, eq=False)
class ChannelSparsity:
    """Per-input-channel histogram of zero products per convolution window (HASS statistic).

    ``hist[c, z]`` is the probability that a window of input channel ``c`` (K*K activation x weight
    products against one filter) has exactly ``z`` zero products, ``z = 0..K*K``; rows sum to 1. This is
    the fpgaConvNet layout, exported to ONNX as the Conv attribute ``channel_sparsity_hist``
    (flattened, length C_in x (K*K+1)).
    """

    hist: np.ndarray
    source: str = field(default="measured", compare=False)

    def __post_init__(self) -> None:
        h = np.asarray(self.hist, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] < 2:
            raise ValueError(f"sparsity histogram must be (channels, K*K+1), got {h.shape}")
        if np.any(h < -1e-9) or not np.allclose(h.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("sparsity histogram rows must be probabilities summing to 1")
        object.__setattr__(self, "hist", h)

    @classmethod
    def from_onnx_attribute(cls, values: object, in_channels: int, kernel_size: int,
                            source: str = "onnx") -> ChannelSparsity:
        """Parse the flattened ``channel_sparsity_hist`` attribute (C_in x (K*K+1) floats).

        Rows stored as float32 are renormalised; a wrong length, negative entries or rows that do not
        sum to 1 (within 1e-4) raise ``ValueError`` saying what was expected.
        """
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        width = kernel_size + 1
        if flat.size != in_channels * width:
            raise ValueError(f"channel_sparsity_hist has {flat.size} values; expected C_in x (K*K+1) = "
                             f"{in_channels} x {width}")
        hist = flat.reshape(in_channels, width)
        sums = hist.sum(axis=1, keepdims=True)
        if np.any(hist < 0) or np.any(np.abs(sums - 1) > 1e-4):
            raise ValueError("channel_sparsity_hist rows must be probabilities summing to 1 (per input channel)")
        return cls(hist / sums, source=source)

    @property
    def channels(self) -> int:
        return int(self.hist.shape[0])

    @property
    def kernel_size(self) -> int:
        return int(self.hist.shape[1] - 1)

    @property
    def mean_sparsity(self) -> float:
        """Average fraction of zero products over all windows and channels."""
        z = np.arange(self.hist.shape[1])
        return float((self.hist @ z).mean() / self.kernel_size)
