"""A tiny, safe integer expression language for latencies, sizes and addresses.

Expressions such as ``"2*rows + cols + n - 2"`` or ``"ceil_div(bytes, 16)"`` are parsed with :mod:`ast`
and only a whitelist of nodes is accepted (integer constants, names, ``+ - * // % **``, unary minus,
comparisons, ``a if c else b``, calls of ``min``, ``max``, ``ceil_div``). The checked tree is compiled
once; evaluating it is then as fast as a Python lambda. Arbitrary code is never executed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accelflow.errors import ConfigError

__all__ = ["Expr", "ExprError", "ceil_div"]


class ExprError(ConfigError):
    """An expression uses a construct or a name that is not allowed."""


def ceil_div(a: int, b: int) -> int:
    """Integer division rounding up (``ceil(a / b)`` without floats)."""
    return -(-a // b)


_FUNCS: dict[str, Callable[..., int]] = {"min": min, "max": max, "ceil_div": ceil_div}
_GLOBALS: dict[str, Any] = {"__builtins__": {}, **_FUNCS}
_ALLOWED = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call, ast.IfExp,
    ast.Compare, ast.BoolOp, ast.And, ast.Or,
    ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub, ast.UAdd,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)  # fmt: skip


@dataclass(frozen=True)
class Expr:
    """A checked integer expression; ``names`` are the free variables it needs."""

    source: str
    names: frozenset[str] = field(compare=False)
    _code: Any = field(compare=False, repr=False)

    @staticmethod
    def parse(source: str | int, where: str = "expression") -> Expr:
        text = str(source).strip()
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ExprError(f"{where}: cannot parse {text!r}: {exc.msg}") from None
        names: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED):
                raise ExprError(f"{where}: {type(node).__name__} is not allowed in {text!r}")
            if isinstance(node, ast.Constant) and not isinstance(node.value, int):
                raise ExprError(f"{where}: only integer constants are allowed in {text!r}")
            if isinstance(node, ast.Call):
                if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
                    raise ExprError(f"{where}: only calls of {sorted(_FUNCS)} are allowed in {text!r}")
            elif isinstance(node, ast.Name) and node.id not in _FUNCS:
                names.add(node.id)
        code = compile(tree, f"<{where}>", "eval")
        return Expr(text, frozenset(names), code)

    def __call__(self, env: Mapping[str, int]) -> int:
        try:
            return int(eval(self._code, _GLOBALS, env))  # noqa: S307 (the AST was checked in parse)
        except NameError as exc:
            raise ExprError(f"{self.source!r}: {exc}; known names: {sorted(env)}") from None

    def bind(self, env: Mapping[str, int], where: str = "expression") -> Expr:
        """Substitute the known names of ``env`` as constants (partial evaluation)."""
        if not self.names & set(env):
            return self
        tree = ast.parse(self.source, mode="eval")

        class _Sub(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> ast.AST:
                if node.id in env:
                    return ast.copy_location(ast.Constant(int(env[node.id])), node)
                return node

        new = ast.fix_missing_locations(_Sub().visit(tree))
        return Expr.parse(ast.unparse(new), where)

    @property
    def is_constant(self) -> bool:
        return not self.names

    def constant(self) -> int:
        if self.names:
            raise ExprError(f"{self.source!r} is not a constant: needs {sorted(self.names)}")
        return self({})

    def __str__(self) -> str:
        return self.source
