"""A small, safe evaluator for the ``${...}`` expressions of specs.

Specs may do arithmetic on parameters and on the input shape (``${in.channels}``,
``${div(64 * width)}``), but spec text is never handed to Python's ``eval``: the expression is
parsed with :mod:`ast` and only a whitelist of node types, names and functions is interpreted.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Loc, SpecErrors

EXPR_RE = re.compile(r"\$\{([^{}]*)\}")
# ``in`` is a Python keyword; ``in.channels`` is rewritten to an ordinary name before parsing.
_IN_RE = re.compile(r"(?<![\w.])in(?=\s*\.)")
_IN_NAME = "in_"
_MAX_INT = 10**18


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping more than 10%.

    The rule MobileNet and most width-multiplied networks use, so that scaled channel counts stay
    hardware-friendly.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "round": round,
    "min": min,
    "max": max,
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "div": make_divisible,
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


@dataclass(frozen=True)
class ShapeView:
    """What ``${in.…}`` sees: the input shape of the enclosing block."""

    shape: tuple[int, ...]

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @property
    def features(self) -> int:
        return math.prod(self.shape)


_SHAPE_ATTRS = {"channels", "height", "width", "features"}


class ExprError(Exception):
    pass


def evaluate(source: str, env: Mapping[str, Any], loc: Loc) -> Any:
    """Evaluate one expression (the text between ``${`` and ``}``)."""
    text = _IN_RE.sub(_IN_NAME, source.strip())
    try:
        tree = _parse(text)
    except SyntaxError:
        raise SpecErrors.one(loc, f"expression ${{{source}}}: not a valid expression") from None
    try:
        return _Eval(env).visit(tree.body)
    except ExprError as exc:
        raise SpecErrors.one(loc, f"expression ${{{source}}}: {exc}") from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise SpecErrors.one(loc, f"expression ${{{source}}}: {exc}") from None


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> ast.Expression:
    """Parsed once per distinct text: a spec repeats its expressions in every block call, and a
    cost search loads the same spec many times. The tree is only read, never changed."""
    return ast.parse(text, mode="eval")


def has_expr(text: str) -> bool:
    return "${" in text


def interpolate(text: str, env: Mapping[str, Any], loc: Loc) -> Any:
    """Resolve ``${...}`` in a string: a lone expression keeps its type, others become text."""
    whole = EXPR_RE.fullmatch(text.strip())
    if whole:
        return evaluate(whole.group(1), env, loc)
    if "${" in EXPR_RE.sub("", text):
        raise SpecErrors.one(loc, f"unclosed or nested ${{...}} in {text!r}")

    def one(m: re.Match[str]) -> str:
        value = evaluate(m.group(1), env, loc.shifted(m.start()))
        return _format(value)

    return EXPR_RE.sub(one, text)


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Eval:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExprError(f"{type(node).__name__.lower()} is not allowed in a spec expression")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        if isinstance(node.value, (int, float, str, bool)):
            return node.value
        raise ExprError(f"constant {node.value!r} is not allowed")

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            return self.env[node.id]
        if node.id == _IN_NAME:
            raise ExprError("'in' (the block input) is not known here")
        names = [n for n in self.env if n != _IN_NAME]
        close = difflib.get_close_matches(node.id, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ExprError(f"unknown name {node.id!r}{hint}")

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if isinstance(node.value, ast.Name) and node.value.id == _IN_NAME:
            view = self.visit(node.value)
            if node.attr not in _SHAPE_ATTRS:
                raise ExprError(f"in.{node.attr}: the input has only {sorted(_SHAPE_ATTRS)}")
            try:
                return getattr(view, node.attr)
            except IndexError:
                raise ExprError(
                    f"in.{node.attr}: the input {view.shape} has no such axis"
                ) from None
        raise ExprError("attribute access is allowed only on 'in' (in.channels, in.height, ...)")

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise ExprError(f"operator {type(node.op).__name__} is not allowed")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
            raise ExprError("exponent too large")
        return _bounded(op(left, right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return +value
        if isinstance(node.op, ast.Not):
            return not value
        raise ExprError("operator not allowed")

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        values = [self.visit(v) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            op = _CMPOPS.get(type(op_node))
            if op is None:
                raise ExprError(f"comparison {type(op_node).__name__} is not allowed")
            right = self.visit(right_node)
            if not op(left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_List(self, node: ast.List) -> list[Any]:
        return [self.visit(e) for e in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> list[Any]:
        return [self.visit(e) for e in node.elts]

    def visit_Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = f"function {node.func.id!r}" if isinstance(node.func, ast.Name) \
                else "calling a method"
            raise ExprError(
                f"{what} is not allowed; spec expressions may call {', '.join(sorted(FUNCTIONS))}"
            )
        args = [self.visit(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise ExprError("**kwargs is not allowed")
            kwargs[kw.arg] = self.visit(kw.value)
        return _bounded(FUNCTIONS[node.func.id](*args, **kwargs))


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and abs(value) > _MAX_INT:
        raise ExprError("result is too large")
    return value
