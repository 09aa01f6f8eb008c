"""Recognise decomposed functions (GELU, SiLU, hard-swish, layer norm) and replace them with one node.

Exporters and converters spell these functions out in element-wise steps, in many orders: GELU as
``x * 0.5 * (1 + erf(x / sqrt 2))`` or ``0.5 * x * (1 + tanh(0.79788 * (x + 0.044715 * x^3)))``, layer norm
as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div. Rather than match each spelling, :func:`fuse_functions`
finds every region of element-wise nodes (and trailing-axis means) fed by one activation ``x`` and leaving
through one node ``y``, evaluates it on test values, and replaces it when it computes a known function to
1e-5. The per-channel scale and shift after a fused layer norm become its weight and bias.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from accelflow.ir.execute import EXEC_RULES
from accelflow.ir.graph import Graph, Node
from accelflow.ir.interpret import infer_shape
from accelflow.ir.ops import (
    ACTIVATION_OPS,
    BINARY_OPS,
    UNARY_OPS,
    GeluAttrs,
    LayerNormAttrs,
    OpKind,
    ReduceAttrs,
)

__all__ = ["fuse_functions"]

#: Operators a decomposed function is made of.
_ELEMENTWISE = (ACTIVATION_OPS | UNARY_OPS | BINARY_OPS) - {OpKind.PRELU, OpKind.CAST}
_MAX_REGION = 24
_TOLERANCE = 1e-5


def _gelu_erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


#: Element-wise candidates: (function, op, attrs).
_FUNCTIONS: tuple[tuple[Callable[[np.ndarray], np.ndarray], OpKind, object], ...] = (
    (_gelu_erf, OpKind.GELU, GeluAttrs(False)),
    (_gelu_tanh, OpKind.GELU, GeluAttrs(True)),
    (lambda x: x / (1 + np.exp(-x)), OpKind.SILU, None),
    (lambda x: x * np.clip(x + 3, 0, 6) / 6, OpKind.HARDSWISH, None),
)


def _scalar_constant(node: Node) -> bool:
    return node.op is OpKind.CONSTANT and node.params["value"].size == 1 and \
        np.issubdtype(node.params["value"].dtype, np.floating)


def _trailing_mean(node: Node, rank: int) -> bool:
    a = node.attrs
    return node.op is OpKind.REDUCE_MEAN and isinstance(a, ReduceAttrs) and a.keepdims and \
        tuple(sorted(ax % rank for ax in a.axes)) == tuple(range(rank - len(a.axes), rank))


def _region(graph: Graph, x: Node) -> tuple[list[Node], Node] | None:
    """The largest region of element-wise nodes (and trailing means) computed from ``x`` and scalar
    constants alone, if it leaves through exactly one node (the others used only inside)."""
    rank = len(x.shape or ())
    members: dict[Node, None] = {}
    frontier = [u for u in x.users]
    while frontier and len(members) < _MAX_REGION:
        node = frontier.pop(0)
        if node in members or not (node.op in _ELEMENTWISE or _trailing_mean(node, rank)):
            continue
        if not all(p is x or p in members or _scalar_constant(p) for p in node.inputs):
            continue
        if node.shape is None or len(node.shape) != rank:
            continue
        members[node] = None
        frontier.extend(node.users)
    order = [n for n in graph if n in members]
    # drop members whose inputs were admitted later (keep a closed, topologically ordered region)
    exits = [n for n in order if n in graph.outputs or any(u not in members for u in n.users)]
    if len(order) < 3 or len(exits) != 1 or exits[0] is not order[-1]:
        return None
    return order, exits[0]


def _evaluate(order: list[Node], x: Node, value: np.ndarray) -> np.ndarray:
    values: dict[Node, np.ndarray] = {x: value}
    for node in order:
        args = [values[p] if p in values else EXEC_RULES[OpKind.CONSTANT](p, []) for p in node.inputs]
        with np.errstate(all="ignore"):
            values[node] = EXEC_RULES[node.op](node, args)
    return values[order[-1]]


def _replace(graph: Graph, order: list[Node], exit_node: Node, x: Node, op: OpKind, attrs: object,
             params: dict[str, np.ndarray] | None = None) -> Node:
    fused = graph.add_node(graph.unique_name(exit_node.name), op, [x], attrs, params, after=exit_node)  # type: ignore[arg-type]
    infer_shape(fused)
    graph.replace_all_uses(exit_node, fused)
    for node in reversed(order):
        constants = [p for p in node.inputs if p.op is OpKind.CONSTANT]
        graph.erase_node(node)
        for c in constants:
            if not c.users and c not in graph.outputs:
                graph.erase_node(c)
    return fused


def _layernorm_eps(order: list[Node], x: Node, shape: tuple[int, ...]) -> float | None:
    """The epsilon of a decomposed layer norm over the last axis, or None when the region is not one."""
    means = [n for n in order if n.op is OpKind.REDUCE_MEAN]
    if len(means) != 2 or len(means[0].attrs.axes) != 1:  # type: ignore[union-attr]
        return None
    rng = np.random.default_rng(0)
    probe = (rng.standard_normal((2, *shape)) * 0.01).astype(np.float32)  # small variance: epsilon shows
    got = _evaluate(order, x, probe)
    candidates = sorted({float(c.params["value"].reshape(-1)[0]) for n in order for c in n.inputs
                         if _scalar_constant(c) and 0 < float(c.params["value"].reshape(-1)[0]) < 0.1})
    for eps in candidates:
        centred = probe - probe.mean(axis=-1, keepdims=True)
        want = centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + eps)
        if got.shape == want.shape and np.allclose(got, want, atol=1e-4, rtol=1e-4):
            return eps
    return None


def _absorb_affine(graph: Graph, norm: Node) -> None:
    """A layer norm's sole user multiplying by, then adding, a constant along the last axis: its weight and bias."""
    d = (norm.shape or (0,))[-1]
    for role, op in (("weight", OpKind.MUL), ("bias", OpKind.ADD)):
        users = norm.users
        if len(users) != 1 or users[0].op is not op or norm in graph.outputs:
            return
        user = users[0]
        const = next((p for p in user.inputs if p is not norm), None)
        if const is None or const.op is not OpKind.CONSTANT or user.shape != norm.shape:
            return
        value = const.params["value"]
        if value.size != d or value.shape[-1:] != (d,) or not np.issubdtype(value.dtype, np.floating):
            return
        if role == "bias" and "weight" not in norm.params:
            norm.params["weight"] = np.ones(d, np.float32)
        norm.params[role] = value.reshape(d).astype(np.float32)
        graph.replace_all_uses(user, norm)
        graph.erase_node(user)
        if not const.users and const not in graph.outputs:
            graph.erase_node(const)


def fuse_functions(graph: Graph) -> Graph:
    """Replace decomposed GELU, SiLU, hard-swish and layer-norm regions with single nodes (in place)."""
    changed = True
    while changed:
        changed = False
        for x in graph:
            if x.op is OpKind.CONSTANT or x.shape is None or not x.users:
                continue
            found = _region(graph, x)
            if found is None:
                continue
            order, exit_node = found
            if any(n.op is OpKind.REDUCE_MEAN for n in order):
                eps = _layernorm_eps(order, x, x.shape)
                if eps is not None:
                    norm = _replace(graph, order, exit_node, x, OpKind.LAYERNORM, LayerNormAttrs(-1, eps))
                    _absorb_affine(graph, norm)
                    changed = True
                    break
                continue
            probe = np.random.default_rng(0).uniform(-6, 6, (1, *x.shape)).astype(np.float32)
            got = _evaluate(order, x, probe)
            for fn, op, attrs in _FUNCTIONS:
                if got.shape == probe.shape and np.allclose(got, fn(probe.astype(np.float64)), atol=_TOLERANCE,
                                                            rtol=_TOLERANCE):
                    _replace(graph, order, exit_node, x, op, attrs)
                    changed = True
                    break
            if changed:
                break
    return graph
