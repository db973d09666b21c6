"""Expressions in specs: ``$name``, ``$in.channels`` and ``$(any expression)``.

The syntax is chosen so that specs stay plain YAML: ``$`` and parentheses mean nothing to YAML,
so ``[conv 1x1 $k, conv 3x3 $(2 * l)]`` is an ordinary flow list to every YAML tool. (An
expression with a comma or brackets, ``$(max(a, b))``, belongs in block context or quotes when it
stands inside a flow list, as any YAML text with commas does.)

Spec text is never handed to Python's ``eval``: an expression is parsed with :mod:`ast` once, when
the spec is read (so a typo is reported even in a block nobody calls), and only a whitelist of
node types, names and functions is interpreted. Every value an expression builds is bounded
(numbers, string and list sizes, exponents, ``round`` digits, nesting), so no spec can hang the
evaluator or exhaust memory.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Loc, SpecErrors
from .suggest import did_you_mean

IN_NAME = "in_"  # ``in`` is a Python keyword; ``in.channels`` is read as ``in_.channels``
_IN_RE = re.compile(r"(?<![\w.])in(?=\s*\.)")
_NAME_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
MAX_INT = 10**18
MAX_ITEMS = 10_000  # elements of a list, characters of a string
MAX_SOURCE = 2_000  # characters of one expression
MAX_DEPTH = 50  # nesting of one expression's syntax tree
MAX_EXPONENT = 64


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


class ExprError(Exception):
    pass


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 20):
        raise ExprError("round: digits must be a whole number from -20 to 20")
    return round(x, ndigits)


def _log(x: Any, base: Any = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _unique(items: Any) -> list[Any]:
    """The distinct items in first-seen order (RegNet's stage widths from its block widths)."""
    seen: list[Any] = []
    for item in _as_list(items, "unique"):
        if item not in seen:
            seen.append(item)
    return seen


def _count(items: Any, value: Any) -> int:
    return _as_list(items, "count").count(value)


def _range(*args: Any) -> list[int]:
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise ExprError("range takes whole numbers")
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise ExprError(f"range of {len(r)} numbers is over the limit of {MAX_ITEMS}")
    return list(r)


def _as_list(items: Any, fn: str) -> list[Any]:
    if not isinstance(items, list):
        raise ExprError(f"{fn} takes a list")
    return items


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "round": _round,
    "min": min,
    "max": max,
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "sqrt": math.sqrt,
    "log": _log,
    "log2": math.log2,
    "len": len,
    "sum": sum,
    "sorted": sorted,
    "range": _range,
    "unique": _unique,
    "count": _count,
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
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


@dataclass(frozen=True)
class ShapeView:
    """What ``$in.…`` sees: the input shape of the enclosing block or residual."""

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


_SHAPE_ATTRS = ("channels", "height", "width", "features")


# --- finding expressions in text ---------------------------------------------------------------

@dataclass(frozen=True)
class Expr:
    """One parsed expression: its text as written and the names it reads."""

    source: str
    tree: ast.Expression
    names: frozenset[str]  # free names, ``in`` spelled IN_NAME


@dataclass(frozen=True)
class Template:
    """A scalar that holds expressions: ``$k``, ``conv 1x1 $(2 * k)``, ``/$s``.

    ``parts`` alternates literal text and expressions; a template that is exactly one expression
    keeps the expression's type (``repeat: $n`` is a number), any other is formatted into text.
    """

    parts: tuple[str | Expr, ...]
    loc: Loc
    offsets: tuple[int, ...] = ()  # column of each part inside the scalar

    @property
    def whole(self) -> Expr | None:
        return self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], Expr) else None

    @property
    def names(self) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for p in self.parts:
            if isinstance(p, Expr):
                out |= p.names
        return out

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else _written(p.source) for p in self.parts)

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        if (single := self.whole) is not None:
            return evaluate(single, env, self.loc)
        out = []
        for part, off in zip(self.parts, self.offsets, strict=True):
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(_format(evaluate(part, env, self.loc.shifted(off))))
        return "".join(out)


def _written(source: str) -> str:
    return f"${source}" if _NAME_RE.fullmatch(source) else f"$({source})"


def has_expr(text: str) -> bool:
    return "$" in text


def template(text: str, loc: Loc) -> Template | str:
    """Parse the expressions in a scalar; text without ``$`` is returned as it is.

    Raises SpecErrors, located at the offending character, for the old ``${...}`` syntax, an
    unclosed ``$(``, a lone ``$`` and expressions that do not parse.
    """
    if "$" not in text:
        return text
    parts: list[str | Expr] = []
    offsets: list[int] = []
    lit_start = i = 0
    n = len(text)
    while i < n:
        if text[i] != "$":
            i += 1
            continue
        if i > lit_start:
            parts.append(text[lit_start:i])
            offsets.append(lit_start)
        here = loc.shifted(i)
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "{":
            raise SpecErrors.one(here, old_syntax_hint(text, i))
        if nxt == "(":
            end = _closing_paren(text, i + 1)
            if end < 0:
                raise SpecErrors.one(here, f"unclosed $( in {text!r}")
            source, next_i = text[i + 2:end], end + 1
        elif m := _NAME_RE.match(text, i + 1):
            source, next_i = m.group(0), m.end()
        else:
            raise SpecErrors.one(here, "a '$' starts an expression: $name or $(expression)")
        parts.append(compile_expr(source, here))
        offsets.append(i)
        lit_start = i = next_i
    if lit_start < n:
        parts.append(text[lit_start:])
        offsets.append(lit_start)
    return Template(tuple(parts), loc, tuple(offsets))


def old_syntax_hint(text: str, at: int) -> str:
    """The message for ``${...}``, with the new spelling of the expression."""
    end = text.find("}", at)
    inner = text[at + 2:end].strip() if end > 0 else "..."
    return (f"'${{{inner}}}' is the old expression syntax (YAML reads braces as a mapping); "
            f"write {_written(inner)}")


def _closing_paren(text: str, open_at: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``open_at``, skipping quoted strings; -1 if none."""
    depth = 0
    quote = ""
    for j in range(open_at, len(text)):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def compile_expr(source: str, loc: Loc) -> Expr:
    """Parse one expression (cached by text) or raise a located SpecErrors."""
    try:
        return _compile(source)
    except ExprError as exc:
        raise SpecErrors.one(loc, f"expression {_written(source)}: {exc}") from None


@functools.lru_cache(maxsize=8192)
def _compile(source: str) -> Expr:
    """Parsed once per distinct text: a spec repeats its expressions in every block call, and a
    search resolves the same program thousands of times. The tree is only read, never changed."""
    if len(source) > MAX_SOURCE:
        raise ExprError(f"longer than {MAX_SOURCE} characters")
    text = _IN_RE.sub(IN_NAME, source.strip())
    if not text:
        raise ExprError("empty")
    if _nesting(text) > MAX_DEPTH:
        raise ExprError(f"nested more than {MAX_DEPTH} deep")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        raise ExprError("not a valid expression") from None
    if _depth(tree) > MAX_DEPTH:
        raise ExprError(f"nested more than {MAX_DEPTH} deep")
    _check_nodes(tree)
    return Expr(source, tree, frozenset(_free_names(tree)))


def _nesting(text: str) -> int:
    """Bracket depth, checked before Python's parser sees the text (it recurses on it)."""
    depth = most = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            most = max(most, depth)
        elif ch in ")]}":
            depth -= 1
    # A long chain of binary operators nests as deeply as brackets do.
    ops = sum(text.count(op) for op in "+-*/%<>&|")
    return max(most, ops // 4)


def _depth(node: ast.AST) -> int:
    best, stack = 0, [(node, 1)]
    while stack:
        cur, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(cur))
    return best


_ALLOWED = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.Attribute, ast.BinOp,
    ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.List, ast.Tuple, ast.Call,
    ast.Subscript, ast.Slice, ast.ListComp, ast.comprehension, ast.keyword,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)


def _check_nodes(tree: ast.AST) -> None:
    """Refuse, when the spec is read, every construct the evaluator does not interpret."""
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExprError(f"{type(node).__name__.lower()} is not allowed in a spec expression")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                what = f"function {node.func.id!r}" if isinstance(node.func, ast.Name) \
                    else "calling a method"
                raise ExprError(f"{what} is not allowed; spec expressions may call "
                                f"{', '.join(sorted(FUNCTIONS))}")
            if any(kw.arg is None for kw in node.keywords) or any(
                    isinstance(a, ast.Starred) for a in node.args):
                raise ExprError("*args and **kwargs are not allowed")
        elif isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == IN_NAME):
                raise ExprError("attribute access is allowed only on 'in' (in.channels, ...)")
            if node.attr not in _SHAPE_ATTRS:
                raise ExprError(f"in.{node.attr}: the input has only {', '.join(_SHAPE_ATTRS)}")
        elif isinstance(node, ast.comprehension):
            if node.is_async or len(node.ifs) > 1 or not isinstance(node.target, ast.Name):
                raise ExprError("a list comprehension takes one name and at most one 'if'")
        elif isinstance(node, ast.ListComp) and len(node.generators) != 1:
            raise ExprError("a list comprehension takes one 'for'")
        elif isinstance(node, ast.Constant) and not isinstance(
                node.value, (int, float, str, bool)):
            raise ExprError(f"constant {node.value!r} is not allowed")


def _free_names(tree: ast.AST) -> set[str]:
    bound = {n.target.id for n in ast.walk(tree)
             if isinstance(n, ast.comprehension) and isinstance(n.target, ast.Name)}
    return {n.id for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            and n.id not in FUNCTIONS and n.id not in bound}


# --- evaluating --------------------------------------------------------------------------------

def evaluate(expr: Expr, env: Mapping[str, Any], loc: Loc) -> Any:
    """Evaluate a parsed expression; errors are located at ``loc``."""
    try:
        return _Eval(env).visit(expr.tree.body)
    except ExprError as exc:
        raise SpecErrors.one(loc, f"expression {_written(expr.source)}: {exc}") from None
    except (ArithmeticError, TypeError, ValueError, IndexError, KeyError,
            RecursionError, MemoryError) as exc:
        what = str(exc) or type(exc).__name__
        raise SpecErrors.one(loc, f"expression {_written(expr.source)}: {what}") from None


def evaluate_value(raw: Any, env: Mapping[str, Any]) -> Any:
    """A value as parsed (maybe holding templates, in lists and mappings) evaluated in ``env``."""
    if isinstance(raw, Template):
        return raw.evaluate(env)
    if isinstance(raw, list):
        return [evaluate_value(r, env) for r in raw]
    if isinstance(raw, dict):
        return {k: evaluate_value(v, env) for k, v in raw.items()}
    return raw


def templates_in(raw: Any) -> list[Template]:
    """Every template inside a parsed value."""
    if isinstance(raw, Template):
        return [raw]
    if isinstance(raw, list):
        return [t for r in raw for t in templates_in(r)]
    if isinstance(raw, dict):
        return [t for r in raw.values() for t in templates_in(r)]
    return []


def unknown_name_message(name: str, known: list[str]) -> str:
    if name == IN_NAME:
        return "'in' (the block input) is not known here"
    return f"unknown name {name!r}{did_you_mean(name, known, sep='; ')}"


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Eval:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env

    def visit(self, node: ast.AST) -> Any:
        return getattr(self, "visit_" + type(node).__name__)(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return _bounded(node.value)

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.env:
            return self.env[node.id]
        names = [n for n in self.env if n != IN_NAME]
        raise ExprError(unknown_name_message(node.id, names))

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        view = self.visit(node.value)
        try:
            return getattr(view, node.attr)
        except IndexError:
            raise ExprError(f"in.{node.attr}: the input {view.shape} has no such axis") from None

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = type(node.op)
        if op not in _BINOPS:
            raise ExprError(f"operator {op.__name__} is not allowed")
        if op is ast.Pow and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise ExprError("exponent too large")
        if op is ast.Mod and isinstance(left, str):
            raise ExprError("string formatting with % is not allowed")
        if op is ast.Mult:
            _check_repeat(left, right)
            _check_repeat(right, left)
        if op is ast.Add and isinstance(left, (str, list)) and isinstance(right, (str, list)):
            _check_size(len(left) + len(right))
        return _bounded(_BINOPS[op](left, right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return +value
        if isinstance(node.op, ast.Not):
            return not value
        raise ExprError("operator ~ is not allowed")

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        # Short-circuit as Python does, so ``n > 0 and widths[n - 1]`` is safe.
        is_and = isinstance(node.op, ast.And)
        value: Any = is_and
        for v in node.values:
            value = self.visit(v)
            if bool(value) != is_and:
                return value
        return value

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            if not _CMPOPS[type(op_node)](left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_List(self, node: ast.List) -> list[Any]:
        return _bounded([self.visit(e) for e in node.elts])

    visit_Tuple = visit_List

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        value = self.visit(node.value)
        if not isinstance(value, (list, str)):
            raise ExprError("only lists and text can be indexed")
        if isinstance(node.slice, ast.Slice):
            parts = [None if p is None else self.visit(p)
                     for p in (node.slice.lower, node.slice.upper, node.slice.step)]
            return value[slice(*parts)]
        index = self.visit(node.slice)
        if not isinstance(index, int) or isinstance(index, bool):
            raise ExprError(f"an index must be a whole number, got {index!r}")
        if not -len(value) <= index < len(value):
            raise ExprError(f"index {index} is outside a list of {len(value)}")
        return value[index]

    def visit_ListComp(self, node: ast.ListComp) -> list[Any]:
        gen = node.generators[0]
        items = self.visit(gen.iter)
        if not isinstance(items, list):
            raise ExprError("a comprehension runs over a list (e.g. range(n))")
        assert isinstance(gen.target, ast.Name)
        out = []
        outer = self.env
        for item in items:
            self.env = {**outer, gen.target.id: item}
            try:
                if all(self.visit(cond) for cond in gen.ifs):
                    out.append(self.visit(node.elt))
            finally:
                self.env = outer
        return _bounded(out)

    def visit_Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        args = [self.visit(a) for a in node.args]
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords if kw.arg}
        return _bounded(FUNCTIONS[node.func.id](*args, **kwargs))


def _check_repeat(seq: Any, times: Any) -> None:
    if isinstance(seq, (str, list)) and isinstance(times, int):
        _check_size(len(seq) * max(times, 0))


def _check_size(n: int) -> None:
    if n > MAX_ITEMS:
        raise ExprError(f"a value of {n} items is over the limit of {MAX_ITEMS}")


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ExprError("result is too large")
    if isinstance(value, (str, list)):
        _check_size(len(value))
    return value
