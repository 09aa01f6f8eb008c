"""A network as the list of layer views the performance model times (its workload), and the decode rewrite.

:func:`workload` gives every node of a graph its :class:`LayerShape` and kind; activations fused into their
producer's output stage become free. :func:`with_kv_cache` is the language-model decode phase: the graph is
imported with one token, and every attention (a product of two activations whose result, through
element-wise operators and softmax, is the first operand of another product of two activations) is given a
KV cache of ``kv_len`` keys: the score product gets ``kv_len`` filters, the context product a window of
``kv_len``, and the element-wise/softmax layers between them ``kv_len`` times their elements. The cached K
and V are the B operands of the two products, so their reads are B-operand (``weight_elems``) traffic.
Both are pure functions of the graph; the graph is not changed.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from accelflow.errors import ConfigError
from accelflow.ir import (
    ACTIVATION_OPS,
    BINARY_OPS,
    REDUCE_OPS,
    UNARY_OPS,
    Graph,
    Node,
    OpKind,
    ReduceAttrs,
    TransposeAttrs,
    propagate_shapes,
)
from accelflow.mapping._layer import LayerKind, LayerShape, layer_shape

__all__ = ["Phase", "Attention", "workload", "attention_products", "with_kv_cache"]

_PRODUCTS = frozenset({OpKind.MATMUL, OpKind.EINSUM})
#: Operators that may sit between the score product and the context product (scale, mask, softmax).
_BETWEEN = ACTIVATION_OPS | UNARY_OPS | BINARY_OPS | REDUCE_OPS | {
    OpKind.SOFTMAX, OpKind.WHERE, OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.EXPAND}  # fmt: skip


class Phase(enum.StrEnum):
    """Language-model inference phase (the spelling of vLLM and LLM-perf tools)."""

    PREFILL = "prefill"  # the prompt: every token at once, as the model was imported
    DECODE = "decode"  # one new token attending to a KV cache


def _fused(node: Node, shapes: dict[Node, LayerShape]) -> bool:
    """An activation is applied in its producer's output stage when it is the producer's only user."""
    if node.op not in ACTIVATION_OPS or len(node.inputs) != 1:
        return False
    producer = node.inputs[0]
    before = shapes.get(producer)
    if before is None or len(producer.users) != 1 or producer in producer.graph.outputs:
        return False
    return before.kind is not LayerKind.FREE or producer.op in ACTIVATION_OPS  # timed, or a fused chain


def workload(graph: Graph) -> tuple[LayerShape, ...]:
    """Every non-input node of ``graph`` in execution order, with its kind (shapes propagated if missing)."""
    if any(n.shape is None for n in graph):
        propagate_shapes(graph)
    shapes: dict[Node, LayerShape] = {}
    for node in graph:
        if node.op is OpKind.INPUT:
            continue
        shape = layer_shape(node)
        if _fused(node, shapes):
            shape = dataclasses.replace(shape, kind=LayerKind.FREE)
        shapes[node] = shape
    return tuple(shapes.values())


@dataclass(frozen=True)
class Attention:
    """One attention: the score product (QK^T), the context product (AV) and the nodes between them."""

    score: str
    context: str
    between: tuple[str, ...]


def _activation(node: Node) -> bool:
    return node.op is not OpKind.CONSTANT


def _to_context(node: Node, path: dict[Node, None], seen: set[Node]) -> Node | None:
    """The product whose first operand ``node``'s value reaches through :data:`_BETWEEN` nodes (recording
    the nodes on the way in ``path``), or None."""
    found: Node | None = None
    for user in node.users:
        if user in seen:
            continue
        seen.add(user)
        if user.op in _PRODUCTS and len(user.inputs) == 2 and user.inputs[0] is node and _activation(user.inputs[1]):
            found = found or user
        elif user.op in _BETWEEN:
            hit = _to_context(user, path, seen)
            if hit is not None:
                path[user] = None
                found = found or hit
    return found


def attention_products(graph: Graph) -> tuple[Attention, ...]:
    """Every attention of ``graph``: a product of two activations feeding, through element-wise operators and
    softmax, the first operand of another product of two activations."""
    if any(n.shape is None for n in graph):
        propagate_shapes(graph)
    found: list[Attention] = []
    taken: set[Node] = set()
    for node in graph:
        if node.op not in _PRODUCTS or len(node.inputs) != 2 or not all(map(_activation, node.inputs)) or node in taken:
            continue
        path: dict[Node, None] = {}
        context = _to_context(node, path, set())
        if context is not None:
            taken.add(context)
            order = [n.name for n in graph if n in path]
            found.append(Attention(node.name, context.name, tuple(order)))
    return tuple(found)


def _keyed_last(node: Node, keyed: set[Node]) -> bool:
    """Whether ``node``'s output still has the key axis as its last axis, given which inputs have it."""
    if not any(i in keyed for i in node.inputs):
        return False
    if node.op in REDUCE_OPS:
        a = node.attrs
        assert isinstance(a, ReduceAttrs)
        rank = len(node.inputs[0].shape or ())
        return rank - 1 not in {ax % rank for ax in a.axes}
    if node.op is OpKind.TRANSPOSE:
        a = node.attrs
        assert isinstance(a, TransposeAttrs)
        if a.perm[-1] != len(a.perm) - 1:
            raise ConfigError(f"decode: cannot follow the key axis through {node.name!r} (a transpose moving it)")
    if node.op is OpKind.RESHAPE and node.shape and node.inputs[0].shape and node.shape[-1] != node.inputs[0].shape[-1]:
        raise ConfigError(f"decode: cannot follow the key axis through {node.name!r} (a reshape merging it)")
    return True


def _elems(node: Node) -> int:
    n = 1
    for d in node.shape or ():
        n *= d
    return n


def with_kv_cache(graph: Graph, kv_len: int) -> tuple[LayerShape, ...]:
    """The decode workload of ``graph`` (imported with one token): each attention attends to ``kv_len`` keys.

    Attentions whose score product already has more than one key (the graph carries a KV cache) are left as
    they are. Raises :class:`ConfigError` if ``kv_len`` < 1 or an attention has more than one query (the
    graph was imported with more than one token)."""
    if kv_len < 1:
        raise ConfigError(f"decode: the KV cache length must be >= 1, got {kv_len}")
    shapes = {s.name: s for s in workload(graph)}
    for att in attention_products(graph):
        score, context = shapes[att.score], shapes[att.context]
        node = graph[att.score]
        assert node.shape is not None
        if node.op is OpKind.MATMUL and len(node.shape) > 1 and node.shape[-2] > 1:
            raise ConfigError(f"decode: attention {att.score!r} has {node.shape[-2]} queries; decode needs the model "
                              "imported with one token (sequence length 1)")  # fmt: skip
        if score.filters != 1:
            continue  # the graph carries its own KV cache
        scale = kv_len
        shapes[att.score] = dataclasses.replace(
            score, filters=scale, channels=score.groups * scale, macs=score.macs * scale,
            weight_elems=score.weight_elems * scale, out_elems=score.out_elems * scale)  # fmt: skip
        keyed = {node}
        for name in att.between:
            between = graph[name]
            s = shapes[name]
            in_elems = sum(_elems(i) * (scale if i in keyed else 1) for i in between.inputs)
            if _keyed_last(between, keyed):
                keyed.add(between)
                shapes[name] = dataclasses.replace(s, npx=s.npx * scale, in_elems=in_elems, out_elems=s.out_elems * scale)
            else:  # a reduction over the keys: each output now reduces kv_len times as many inputs
                extra = 1 if between.op is OpKind.REDUCE_MEAN else 0
                shapes[name] = dataclasses.replace(s, in_elems=in_elems, taps=(s.taps - extra) * scale + extra)
        shapes[att.context] = dataclasses.replace(
            context, window=context.window * scale, macs=context.macs * scale, in_elems=context.in_elems * scale,
            weight_elems=context.weight_elems * scale)  # fmt: skip
    return tuple(shapes.values())
