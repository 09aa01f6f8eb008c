"""Small transformer test models (random weights) imported through ONNX: a ViT, a BERT-style encoder and a
GPT-style decoder with token ids in. The zoo has no transformers yet; these stand in for them."""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from accelflow.frontends import from_onnx
from accelflow.ir import Graph


class ViT(nn.Module):
    """Patch embedding (conv), class token, position embedding, pre-norm encoder layers, head on the class token."""

    def __init__(self, image: int = 16, patch: int = 4, dim: int = 32, heads: int = 2, layers: int = 2,
                 classes: int = 10) -> None:  # fmt: skip
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(layers))  # fmt: skip
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


class Bert(nn.Module):
    """Token and position embeddings, post-norm encoder layers, a tanh pooler on the first token."""

    def __init__(self, vocab: int = 50, seq: int = 8, dim: int = 32, heads: int = 2, layers: int = 2) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(seq, dim)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True)
            for _ in range(layers))  # fmt: skip
        self.pool = nn.Linear(dim, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.tok(ids) + self.pos(torch.arange(ids.shape[1])))
        for block in self.blocks:
            x = block(x)
        return torch.tanh(self.pool(x[:, 0]))


class _GptBlock(nn.Module):
    def __init__(self, dim: int, heads: int, context: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc, self.out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.register_buffer("mask", torch.tril(torch.ones(context, context, dtype=torch.bool)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, d = x.shape[1], x.shape[2]
        q, k, v = (t.view(1, s, self.heads, d // self.heads).transpose(1, 2) for t in self.qkv(self.ln1(x)).split(d, 2))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
        att = att.masked_fill(~self.mask[:s, :s], float("-inf"))
        x = x + self.proj((F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(1, s, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    """GPT-2-style decoder: token + position embeddings, causal pre-norm blocks, tied-size LM head."""

    def __init__(self, vocab: int = 50, dim: int = 32, heads: int = 2, layers: int = 2, context: int = 64) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(_GptBlock(dim, heads, context) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def import_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Graph:
    """Export ``model`` (eval mode, batch 1) with torch's default exporter and read it back into the IR."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), opset_version=18)
    return from_onnx(path)


def tokens(n: int) -> torch.Tensor:
    return torch.zeros(1, n, dtype=torch.long)


def gemmini_without_vector_unit() -> str:
    """The Gemmini template's YAML with its vector unit removed (an architecture that cannot run softmax)."""
    import accelflow.arch

    raw = (Path(accelflow.arch.__file__).parent / "templates" / "gemmini.yaml").read_text()
    raw = raw.replace("functional_units: [mesh, weight_loader, vector]", "functional_units: [mesh, weight_loader]")
    raw = raw.replace("  - {src: exec_controller, dst: vector}\n", "")
    raw = raw.replace("  - {src: vector, dst: spad, kind: data}\n  - {src: vector, dst: acc, kind: data}\n", "")
    return raw[: raw.index("  - name: vector\n")] + raw[raw.index("memory_access_units:"):]
