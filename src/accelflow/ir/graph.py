"""The network IR: a :class:`Graph` of :class:`Node` objects kept in topological order.

Links stay correct by construction: setting a node's inputs updates the producers' ``users``; edits go
through :meth:`Graph.add_node`, :meth:`Graph.replace_all_uses` and :meth:`Graph.erase_node`; erasing a node
that is still used is refused; :meth:`Graph.check` verifies every invariant.

Example::

    g = Graph("tiny")
    x = g.add_input("x", (16,))
    fc = g.add_node("fc", OpKind.LINEAR, [x], LinearAttrs(16, 4),
                    params={"weight": np.zeros((4, 16), np.float32)})
    g.set_outputs([fc])
    propagate_shapes(g)  # from accelflow.ir
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from accelflow.errors import GraphError
from accelflow.ir.ops import Attrs, OpKind

__all__ = ["Node", "Graph"]

A = TypeVar("A")


class Node:
    """One operation. ``shape`` is the output shape without batch, set by shape propagation.

    ``params`` holds constant tensors by role (``"weight"``, ``"bias"``); ``annotations`` holds typed
    frozen records attached by analyses (sparsity histograms, folding, precision), one per record type.
    """

    __slots__ = ("name", "op", "attrs", "params", "shape", "annotations", "_inputs", "_users", "graph")

    def __init__(
        self,
        graph: Graph,
        name: str,
        op: OpKind,
        attrs: Attrs | None = None,
        params: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.graph = graph
        self.name = name
        self.op = op
        self.attrs = attrs
        self.params: dict[str, np.ndarray] = dict(params or {})
        self.shape: tuple[int, ...] | None = None
        self.annotations: dict[type, Any] = {}
        self._inputs: tuple[Node, ...] = ()
        self._users: dict[Node, None] = {}  # insertion-ordered set

    # -- links ---------------------------------------------------------------------------------
    @property
    def inputs(self) -> tuple[Node, ...]:
        return self._inputs

    @inputs.setter
    def inputs(self, new: Sequence[Node]) -> None:
        for old in self._inputs:
            old._users.pop(self, None)
        self._inputs = tuple(new)
        for producer in self._inputs:
            if producer.graph is not self.graph:
                raise GraphError(f"node {self.name!r}: input {producer.name!r} belongs to another graph")
            producer._users[self] = None

    @property
    def users(self) -> tuple[Node, ...]:
        return tuple(self._users)

    # -- typed annotations ---------------------------------------------------------------------
    def annotate(self, record: object) -> None:
        """Attach a frozen record, replacing any earlier record of the same type."""
        self.annotations[type(record)] = record

    def annotation(self, kind: type[A]) -> A | None:
        return self.annotations.get(kind)

    # -- convenience ---------------------------------------------------------------------------
    @property
    def weight(self) -> np.ndarray | None:
        return self.params.get("weight")

    @property
    def bias(self) -> np.ndarray | None:
        return self.params.get("bias")

    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        shapes = []
        for producer in self._inputs:
            if producer.shape is None:
                raise GraphError(f"node {self.name!r}: shape of input {producer.name!r} is not known yet")
            shapes.append(producer.shape)
        return tuple(shapes)

    def __repr__(self) -> str:
        args = ", ".join(n.name for n in self._inputs)
        return f"Node({self.name}: {self.op.value}({args}) -> {self.shape})"


class Graph:
    """A directed acyclic graph of nodes kept in a valid topological order."""

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self._nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        self._outputs: tuple[Node, ...] = ()

    # -- building ------------------------------------------------------------------------------
    def add_input(self, name: str, shape: Sequence[int]) -> Node:
        node = self._make(name, OpKind.INPUT, None, None)
        node.shape = tuple(int(d) for d in shape)
        self._insert(node, index=sum(1 for n in self._nodes if n.op is OpKind.INPUT))
        return node

    def add_node(
        self,
        name: str,
        op: OpKind,
        inputs: Sequence[Node],
        attrs: Attrs | None = None,
        params: dict[str, np.ndarray] | None = None,
        *,
        after: Node | None = None,
    ) -> Node:
        """Append a node (or insert it right after ``after``); its inputs must already be in the graph."""
        node = self._make(name, op, attrs, params)
        position = len(self._nodes) if after is None else self._nodes.index(after) + 1
        for producer in inputs:
            if producer.graph is not self or producer.name not in self._by_name:
                raise GraphError(f"node {name!r}: input {producer.name!r} is not in graph {self.name!r}")
            if self._nodes.index(producer) >= position:
                raise GraphError(f"node {name!r}: input {producer.name!r} would come after its user")
        node.inputs = inputs
        self._insert(node, position)
        return node

    def unique_name(self, base: str) -> str:
        if base not in self._by_name:
            return base
        i = 1
        while f"{base}_{i}" in self._by_name:
            i += 1
        return f"{base}_{i}"

    def set_outputs(self, outputs: Sequence[Node]) -> None:
        for node in outputs:
            if self._by_name.get(node.name) is not node:
                raise GraphError(f"output {node.name!r} is not in graph {self.name!r}")
        self._outputs = tuple(outputs)

    def replace_all_uses(self, old: Node, new: Node) -> None:
        """Make every user of ``old`` (and the graph outputs) read ``new`` instead."""
        for user in old.users:
            user.inputs = [new if n is old else n for n in user.inputs]
        self._outputs = tuple(new if n is old else n for n in self._outputs)

    def erase_node(self, node: Node) -> None:
        if node.users:
            raise GraphError(
                f"cannot erase {node.name!r}: still used by {', '.join(u.name for u in node.users)}"
            )
        if node in self._outputs:
            raise GraphError(f"cannot erase {node.name!r}: it is a graph output")
        node.inputs = ()
        self._nodes.remove(node)
        del self._by_name[node.name]

    def bypass(self, node: Node) -> None:
        """Remove a single-input node, connecting its users to its input (Dropout, Identity)."""
        if len(node.inputs) != 1:
            raise GraphError(f"cannot bypass {node.name!r}: it has {len(node.inputs)} inputs")
        self.replace_all_uses(node, node.inputs[0])
        self.erase_node(node)

    # -- reading -------------------------------------------------------------------------------
    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(self._nodes)

    @property
    def inputs(self) -> tuple[Node, ...]:
        return tuple(n for n in self._nodes if n.op is OpKind.INPUT)

    @property
    def outputs(self) -> tuple[Node, ...]:
        return self._outputs

    def __iter__(self) -> Iterator[Node]:
        return iter(tuple(self._nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    def __getitem__(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no node named {name!r} in graph {self.name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def find(self, *ops: OpKind) -> list[Node]:
        return [n for n in self._nodes if n.op in ops]

    def compute_nodes(self) -> list[Node]:
        """Convolutions, linear layers and matrix products, in execution order."""
        return self.find(OpKind.CONV, OpKind.LINEAR, OpKind.MATMUL)

    # -- invariants ----------------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`GraphError` if links, order, names or outputs are inconsistent."""
        seen: set[Node] = set()
        for node in self._nodes:
            if self._by_name.get(node.name) is not node:
                raise GraphError(f"name table out of date for {node.name!r}")
            if node.graph is not self:
                raise GraphError(f"node {node.name!r} belongs to another graph")
            for producer in node.inputs:
                if producer not in seen:
                    raise GraphError(f"node {node.name!r} reads {producer.name!r} before it is computed")
                if node not in producer._users:
                    raise GraphError(f"{producer.name!r} does not list user {node.name!r}")
            for user in node.users:
                if node not in user.inputs or self._by_name.get(user.name) is not user:
                    raise GraphError(f"{node.name!r} lists stale user {user.name!r}")
            if node.op is OpKind.INPUT and node.inputs:
                raise GraphError(f"input node {node.name!r} has inputs")
            seen.add(node)
        if not self._outputs:
            raise GraphError(f"graph {self.name!r} has no outputs")
        for out in self._outputs:
            if out not in seen:
                raise GraphError(f"output {out.name!r} is not in the graph")

    # -- internals -----------------------------------------------------------------------------
    def _make(self, name: str, op: OpKind, attrs: Attrs | None, params: dict[str, np.ndarray] | None) -> Node:
        if not name:
            raise GraphError("node names must be non-empty")
        if name in self._by_name:
            raise GraphError(f"duplicate node name {name!r} in graph {self.name!r}")
        return Node(self, name, op, attrs, params)

    def _insert(self, node: Node, index: int) -> None:
        self._nodes.insert(index, node)
        self._by_name[node.name] = node

    def __repr__(self) -> str:
        lines = [f"Graph {self.name!r} ({len(self._nodes)} nodes)"]
        lines += [f"  {n!r}" for n in self._nodes]
        lines.append(f"  outputs: {', '.join(n.name for n in self._outputs)}")
        return "\n".join(lines)


def topological_names(nodes: Iterable[Node]) -> list[str]:
    return [n.name for n in nodes]
