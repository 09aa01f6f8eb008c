"""Transformers: a vision transformer (ViT/DeiT layout), a BERT encoder and a GPT-2 decoder.

Attention is written out as plain operations, not ``F.scaled_dot_product_attention``: linear projections,
a per-head split by ``unflatten`` and ``transpose``, ``q @ k^T`` scaled, an optional causal mask applied with
``torch.where``, softmax (an ``nn.Softmax`` module), ``@ v``, heads merged, output projection. Both ONNX
exporters then write MatMul/Softmax graphs that every backend reads, and ``FlopCounterMode`` counts the two
activation products as the IR does. No tensor shape ever reads the batch size, so an import with batch 1
runs at any batch.

Every activation (GELU, the pooler's tanh) and every softmax is its own module. Dropout is left out: the
models are their inference graphs (training here never needs it at these sizes).

Published figures these layouts reproduce: ViT-Ti/16 (DeiT-Ti) 5.72 M parameters, 1.26 G MACs at 224x224;
BERT-Tiny (Turc et al. 2019, L=2, H=128, A=2) 4.39 M parameters without the classifier; GPT-2 small
124.4 M parameters (tied LM head).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from accelflow.errors import ConfigError

__all__ = [
    "MultiHeadAttention",
    "EncoderBlock",
    "VisionTransformer",
    "BertEncoder",
    "GPT2",
    "vit_tiny",
    "vit_nano",
    "bert_tiny",
    "gpt2_tiny",
    "gpt2_small",
]


def _check_heads(dim: int, heads: int) -> None:
    if heads < 1 or dim % heads:
        raise ConfigError(f"model width {dim} must be a multiple of the number of heads {heads}")


class MultiHeadAttention(nn.Module):
    """Self-attention over (N, S, D): ``softmax(q k^T / sqrt(d_head) [masked]) v`` per head, then a linear
    projection. ``fused_qkv`` computes q, k and v with one linear layer (ViT, GPT-2) instead of three (BERT)."""

    def __init__(self, dim: int, heads: int, fused_qkv: bool = True) -> None:
        super().__init__()
        _check_heads(dim, heads)
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.fused_qkv = fused_qkv
        if fused_qkv:
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(N, S, D) -> (N, heads, S, D / heads)."""
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (S, S), boolean: True where a query may attend to a key (a causal mask), or None."""
        if self.fused_qkv:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            q, k, v = self.query(x), self.key(x), self.value(x)
        scores = (self._split(q) @ self._split(k).transpose(-2, -1)) * self.scale
        if mask is not None:
            scores = torch.where(mask, scores, float("-inf"))
        out = self.softmax(scores) @ self._split(v)
        return self.proj(out.transpose(1, 2).flatten(2))


class _MLP(nn.Module):
    """Linear D -> hidden, GELU (``approximate="tanh"`` for GPT-2), linear hidden -> D."""

    def __init__(self, dim: int, hidden: int, approximate: str = "none") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.gelu = nn.GELU(approximate=approximate)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.gelu(self.fc1(x)))


class EncoderBlock(nn.Module):
    """A transformer layer. Pre-LN (ViT, GPT-2): ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``. Post-LN (BERT):
    ``ln1(x + attn(x))``, then ``ln2(x + mlp(x))``."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, *, pre_norm: bool = True, eps: float = 1e-6,
                 fused_qkv: bool = True, gelu_approximate: str = "none") -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.ln1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim, heads, fused_qkv=fused_qkv)
        self.ln2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = _MLP(dim, mlp_dim, gelu_approximate)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attn(self.ln1(x), mask)
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + self.mlp(x))


def _init_transformer(model: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear and embedding weights, zero biases, as ViT/BERT/GPT-2 do."""
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.trunc_normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


# ------------------------------------------------------------------------------------------------ ViT


class VisionTransformer(nn.Module):
    """ViT (Dosovitskiy et al. 2021): patchify conv (``patch_size`` x ``patch_size``, stride the same), class
    token prepended, learned position embeddings added, ``depth`` pre-LN encoder blocks, final LayerNorm,
    linear head on the class token."""

    def __init__(self, *, image_size: int = 224, patch_size: int = 16, in_channels: int = 3, dim: int = 192,
                 depth: int = 12, heads: int = 3, mlp_dim: int = 768, num_classes: int = 1000) -> None:
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            raise ConfigError(f"ViT image size {image_size} must be a multiple of the patch size {patch_size}")
        if depth < 1:
            raise ConfigError(f"ViT depth must be >= 1, got {depth}")
        _check_heads(dim, heads)
        tokens = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        _init_transformer(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, tokens, D)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


# ----------------------------------------------------------------------------------------------- BERT


class BertEncoder(nn.Module):
    """BERT (Devlin et al. 2019) for sequence classification, token ids (N, S) in: word + position +
    segment-0 embeddings, LayerNorm, ``layers`` post-LN encoder blocks (separate q/k/v, GELU), pooler
    (linear + tanh on the first token), linear classifier. No padding mask: every token attends to all."""

    def __init__(self, *, vocab_size: int = 30522, max_positions: int = 512, dim: int = 128, layers: int = 2,
                 heads: int = 2, mlp_dim: int = 512, num_classes: int = 2) -> None:
        super().__init__()
        if layers < 1:
            raise ConfigError(f"BERT needs at least one layer, got {layers}")
        self.word = nn.Embedding(vocab_size, dim)
        self.position = nn.Embedding(max_positions, dim)
        self.segment = nn.Embedding(2, dim)
        self.embed_norm = nn.LayerNorm(dim, eps=1e-12)
        self.blocks = nn.ModuleList(
            EncoderBlock(dim, heads, mlp_dim, pre_norm=False, eps=1e-12, fused_qkv=False) for _ in range(layers)
        )
        self.pooler = nn.Linear(dim, dim)
        self.pooler_act = nn.Tanh()
        self.classifier = nn.Linear(dim, num_classes)
        _init_transformer(self)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.word(ids) + self.position.weight[: ids.shape[1]] + self.segment.weight[0]
        x = self.embed_norm(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.pooler_act(self.pooler(x[:, 0])))


# ---------------------------------------------------------------------------------------------- GPT-2


class GPT2(nn.Module):
    """GPT-2 (Radford et al. 2019), token ids (N, S) in, next-token logits (N, S, vocab) out: token +
    position embeddings, ``layers`` pre-LN blocks with causal self-attention and a tanh-GELU MLP, final
    LayerNorm, LM head tied to the token embedding (``x @ wte^T``)."""

    def __init__(self, *, vocab_size: int = 50257, max_positions: int = 1024, dim: int = 768, layers: int = 12,
                 heads: int = 12) -> None:
        super().__init__()
        if layers < 1:
            raise ConfigError(f"GPT-2 needs at least one layer, got {layers}")
        self.wte = nn.Embedding(vocab_size, dim)
        self.wpe = nn.Embedding(max_positions, dim)
        self.blocks = nn.ModuleList(
            EncoderBlock(dim, heads, 4 * dim, eps=1e-5, gelu_approximate="tanh") for _ in range(layers)
        )
        self.ln_f = nn.LayerNorm(dim, eps=1e-5)
        _init_transformer(self)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        seq = ids.shape[1]
        x = self.wte(ids) + self.wpe.weight[:seq]
        # causal mask: query i attends to keys j <= i; built from the sequence length, so exporters with
        # static shapes write it as a constant
        positions = torch.arange(seq, device=ids.device)
        mask = positions[:, None] >= positions
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x) @ self.wte.weight.T


# ------------------------------------------------------------------------------------------- builders


def vit_tiny(*, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224) -> VisionTransformer:
    """ViT-Ti/16 (DeiT-Ti): patch 16, width 192, 12 blocks of 3 heads, MLP 768; 1.26 G MACs and 5.72 M
    parameters at 3x224x224."""
    return VisionTransformer(image_size=input_size, patch_size=16, in_channels=in_channels, dim=192, depth=12,
                             heads=3, mlp_dim=768, num_classes=num_classes)


def vit_nano(*, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, patch_size: int = 7,
             dim: int = 64, depth: int = 4, heads: int = 4, mlp_dim: int = 128) -> VisionTransformer:
    """A ViT for 1x28x28 images: 7x7 patches (16 tokens + class token), width 64, 4 blocks of 4 heads,
    MLP 128; 2.4 M MACs, 0.14 M parameters; 87% on Fashion-MNIST after 5 epochs, minutes on a CPU
    (``patch_size=4``: 50 tokens, 7.9 M MACs, about 3x the training time)."""
    return VisionTransformer(image_size=input_size, patch_size=patch_size, in_channels=in_channels, dim=dim,
                             depth=depth, heads=heads, mlp_dim=mlp_dim, num_classes=num_classes)


def bert_tiny(*, num_classes: int = 2, vocab_size: int = 30522, max_positions: int = 512) -> BertEncoder:
    """BERT-Tiny (L=2, H=128, A=2, uncased vocabulary of 30,522) with a classifier head; 4.39 M parameters
    before the classifier."""
    return BertEncoder(vocab_size=vocab_size, max_positions=max_positions, dim=128, layers=2, heads=2,
                       mlp_dim=512, num_classes=num_classes)


def gpt2_tiny(*, vocab_size: int = 50257, max_positions: int = 128, dim: int = 128, layers: int = 2,
              heads: int = 2) -> GPT2:
    """A two-layer GPT-2 of width 128 (2 heads) over GPT-2's vocabulary, up to 128 tokens."""
    return GPT2(vocab_size=vocab_size, max_positions=max_positions, dim=dim, layers=layers, heads=heads)


def gpt2_small(*, vocab_size: int = 50257, max_positions: int = 1024) -> GPT2:
    """GPT-2 small: 12 layers, width 768, 12 heads, 1,024 positions; 124.4 M parameters."""
    return GPT2(vocab_size=vocab_size, max_positions=max_positions, dim=768, layers=12, heads=12)
