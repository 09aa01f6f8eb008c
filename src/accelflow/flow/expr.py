"""Objective and predicate expressions over a state's metrics, e.g. ``hls_csim.accuracy - resources.dsp / 1e4``.

Expressions are parsed once with :mod:`ast` and only arithmetic, comparisons, ``and``/``or``/``not``,
numbers, ``stage.metric`` references and the functions ``min``, ``max``, ``abs`` are allowed; nothing is
``eval``-ed. :meth:`Expression.metric_keys` lists the metrics an expression reads, so the engine can check a
flow before it runs.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accelflow.flow.errors import ExpressionError
from accelflow.flow.state import MetricKey

__all__ = ["Expression"]

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_FUNCS: dict[str, Callable[..., float]] = {"min": min, "max": max, "abs": abs}


def _check(node: ast.AST, text: str, keys: list[MetricKey]) -> None:
    """Refuse anything outside the small grammar; collect metric references."""
    if isinstance(node, ast.Expression):
        _check(node.body, text, keys)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        pass
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        keys.append(MetricKey(node.value.id, node.attr))
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, text, keys)
        _check(node.right, text, keys)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        _check(node.operand, text, keys)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, text, keys)
    elif isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
        _check(node.left, text, keys)
        for c in node.comparators:
            _check(c, text, keys)
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
          and not node.keywords):
        for a in node.args:
            _check(a, text, keys)
    else:
        raise ExpressionError(
            f"expression {text!r}: {ast.unparse(node)!r} is not allowed; use numbers, stage.metric "
            f"references, + - * / ** comparisons, and/or/not, min/max/abs"
        )


@dataclass(frozen=True)
class Expression:
    """A parsed expression; ``evaluate(metrics)`` returns a float (or bool for predicates)."""

    text: str
    _tree: ast.Expression = field(init=False, repr=False, compare=False)
    _keys: tuple[MetricKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"expression {self.text!r} does not parse: {exc.msg}") from None
        keys: list[MetricKey] = []
        _check(tree, self.text, keys)
        object.__setattr__(self, "_tree", tree)
        object.__setattr__(self, "_keys", tuple(dict.fromkeys(keys)))

    def metric_keys(self) -> tuple[MetricKey, ...]:
        return self._keys

    def evaluate(self, metrics: Mapping[str, Mapping[str, float]]) -> Any:
        return self._eval(self._tree.body, metrics)

    def _eval(self, node: ast.AST, metrics: Mapping[str, Mapping[str, float]]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            try:
                return float(metrics[node.value.id][node.attr])
            except KeyError:
                have = [f"{s}.{n}" for s, v in metrics.items() for n in v]
                raise ExpressionError(
                    f"expression {self.text!r}: metric {node.value.id}.{node.attr} is not recorded (have {have})"
                ) from None
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, metrics), self._eval(node.right, metrics))
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, metrics)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, metrics) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, metrics)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comp, metrics)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return _FUNCS[node.func.id](*(self._eval(a, metrics) for a in node.args))
        raise ExpressionError(f"expression {self.text!r}: cannot evaluate {ast.unparse(node)!r}")
