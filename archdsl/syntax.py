"""The surface syntax of network nodes, parsed into a small AST.

A node is written in one of three ways:

* one line: ``conv 3x3 96 /2 V``, ``reduction_a(k=192, l=192, m=256, n=384)``, ``ir_a x5``,
  ``conv 1x1 ${in.channels} linear as up``;
* a list: a sequence of nodes (a branch of a concat is a list when it has several layers);
* a mapping with one node key and optional ``name`` and ``repeat``:
  ``{conv: {filters: 64, kernel: 1x7}}``, ``{concat: [...]}``,
  ``{residual: {body: ..., scale: 0.17}}``, ``{seq: [...]}``,
  or a block call ``{reduction_a: {k: 192}}``;
  ``{aux: [...]}`` is an auxiliary head: a side branch whose output is an extra network output
  (on the current tensor, or with ``from: NAME`` on the output of an earlier item).

Any mapping may carry ``when: ${expr}``: when false, the node is left out (a knob can switch
auxiliary heads or optional layers off).

Values stay unevaluated here (they may hold ``${...}``); the resolver evaluates them per call.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Union

from .errors import ErrorSink, Loc, SpecErrors
from .layers import KINDS
from .layers.base import parse_scalar
from .source import YMap, YNode, YScalar, YSeq

STRUCTURES = ("concat", "residual", "seq", "aux")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REPEAT_RE = re.compile(r"^x(\d+|\$\{[^{}]*\})$")


@dataclass
class Val:
    """A value as written (maybe holding ``${...}``) and where it was written."""

    value: Any
    loc: Loc


@dataclass
class NodeAst:
    loc: Loc
    name: str | None = None
    repeat: Val | None = None
    when: Val | None = None  # left out when this evaluates false


@dataclass
class LayerAst(NodeAst):
    kind: str = ""
    tokens: list[Val] = field(default_factory=list)  # one-line form
    fields: dict[str, Val] = field(default_factory=dict)  # mapping form


@dataclass
class CallAst(NodeAst):
    block: str = ""
    args: dict[str, Val] = field(default_factory=dict)
    positional: list[Val] = field(default_factory=list)


@dataclass
class SeqAst(NodeAst):
    items: list[Ast] = field(default_factory=list)


@dataclass
class ConcatAst(NodeAst):
    branches: list[Ast] = field(default_factory=list)


@dataclass
class ResidualAst(NodeAst):
    body: Ast | None = None
    shortcut: Ast | None = None
    scale: Val | None = None
    after: Ast | None = None


@dataclass
class AuxAst(NodeAst):
    head: Ast | None = None
    source: Val | None = None  # ``from:``: the earlier item whose output the head reads


Ast = Union[LayerAst, CallAst, SeqAst, ConcatAst, ResidualAst, AuxAst]


def to_val(node: YNode) -> Val:
    return Val(node.plain_value(), node.loc)


class Parser:
    """Parses node syntax; ``blocks`` is every block name in the spec and its libraries."""

    def __init__(self, blocks: set[str], sink: ErrorSink) -> None:
        self.blocks = blocks
        self.sink = sink

    def node(self, y: YNode) -> Ast | None:
        try:
            if isinstance(y, YScalar):
                return self.line(y)
            if isinstance(y, YSeq):
                return SeqAst(y.loc, items=self.items(y))
            return self.mapping(y)
        except SpecErrors as exc:
            self.sink.extend(exc)
            return None

    def items(self, y: YSeq) -> list[Ast]:
        return [a for a in (self.node(i) for i in y.items) if a is not None]

    # --- one-line form -----------------------------------------------------------------------
    def line(self, y: YScalar) -> Ast:
        if not isinstance(y.value, str) or not y.value.strip():
            raise SpecErrors.one(y.loc, f"expected a layer or block, got {y.value!r}")
        tokens = [(t, y.loc.shifted(off) if y.plain else y.loc) for t, off in split_tokens(y.value)]
        name = repeat = None
        if len(tokens) >= 2 and tokens[-2][0] == "as":
            name = self.check_name(tokens[-1][0], tokens[-1][1])
            tokens = tokens[:-2]
        if len(tokens) >= 2 and (m := REPEAT_RE.match(tokens[-1][0])):
            repeat = Val(_number_or_text(m.group(1)), tokens[-1][1])
            tokens = tokens[:-1]
        head, head_loc = tokens[0]
        rest = [Val(t, loc) for t, loc in tokens[1:]]
        callee, _, arg_text = head.partition("(")
        if arg_text:
            if not arg_text.endswith(")"):
                raise SpecErrors.one(head_loc, f"unclosed '(' in {head!r}")
            if callee not in self.blocks:
                raise self.unknown(callee, head_loc)
            if rest:
                raise SpecErrors.one(
                    rest[0].loc, f"unexpected {rest[0].value!r} after a block call"
                )
            args, positional = parse_call_args(arg_text[:-1], head_loc.shifted(len(callee) + 1))
            return CallAst(y.loc, name, repeat, block=callee, args=args, positional=positional)
        if callee in self.blocks:
            if rest:
                raise SpecErrors.one(
                    rest[0].loc, f"unexpected {rest[0].value!r}: block arguments go in (...)"
                )
            return CallAst(y.loc, name, repeat, block=callee)
        if callee in KINDS:
            return LayerAst(y.loc, name, repeat, kind=callee, tokens=rest)
        raise self.unknown(callee, head_loc)

    # --- mapping form ------------------------------------------------------------------------
    def mapping(self, y: YMap) -> Ast:
        ast = self._mapping(y)
        if "when" in y.items:
            ast.when = to_val(y.get("when"))
        if "from" in y.items:
            if not isinstance(ast, AuxAst):
                raise SpecErrors.one(y.key_loc("from"), "from: only an aux head reads the output "
                                                        "of an earlier node")
            ast.source = to_val(y.get("from"))
        return ast

    def _mapping(self, y: YMap) -> Ast:
        name = repeat = None
        keys = [k for k in y.items if k not in ("name", "repeat", "when", "from")]
        if "name" in y.items:
            n = y.get("name")
            name = self.check_name(n.plain_value(), n.loc)
        if "repeat" in y.items:
            repeat = to_val(y.get("repeat"))
        if len(keys) != 1:
            what = "no node key" if not keys else f"several node keys ({', '.join(keys)})"
            raise SpecErrors.one(
                y.loc, f"a node mapping needs exactly one of concat, residual, seq, aux, a layer "
                f"kind or a block name; found {what}"
            )
        key = keys[0]
        key_loc = y.key_loc(key)
        body = y.get(key)
        if key == "seq":
            if not isinstance(body, YSeq):
                raise SpecErrors.one(body.loc, "seq takes a list of nodes")
            return SeqAst(y.loc, name, repeat, items=self.items(body))
        if key == "concat":
            if not isinstance(body, YSeq) or not body.items:
                raise SpecErrors.one(body.loc, "concat takes a list of branches")
            return ConcatAst(y.loc, name, repeat, branches=self.items(body))
        if key == "residual":
            return self.residual(body, y.loc, name, repeat)
        if key == "aux":
            if isinstance(body, YSeq):
                if not body.items:
                    raise SpecErrors.one(body.loc, "aux takes the head's nodes")
                return AuxAst(y.loc, name, repeat, head=SeqAst(body.loc, items=self.items(body)))
            return AuxAst(y.loc, name, repeat, head=self.node(body))
        if key in self.blocks:
            args: dict[str, Val] = {}
            if isinstance(body, YMap):
                args = {k: to_val(v) for k, (_, v) in body.items.items()}
            elif not (isinstance(body, YScalar) and body.value is None):
                raise SpecErrors.one(body.loc, f"block {key!r} takes a mapping of arguments")
            return CallAst(y.loc, name, repeat, block=key, args=args)
        if key in KINDS:
            if isinstance(body, YMap):
                fields = {k: Val(v.plain_value(), v.loc) for k, (_, v) in body.items.items()}
                return LayerAst(y.loc, name, repeat, kind=key, fields=fields)
            if isinstance(body, YScalar):
                # ``conv: 3x3 64 /2`` -- the one-line arguments under a key.
                if body.value is None:
                    return LayerAst(y.loc, name, repeat, kind=key)
                line = YScalar(f"{key} {body.value}", body.loc, plain=False)
                layer = self.line(line)
                layer.name, layer.repeat = name, repeat
                return layer
            raise SpecErrors.one(body.loc, f"{key} takes a mapping of fields")
        raise self.unknown(key, key_loc)

    def residual(self, body: YNode, loc: Loc, name: str | None, repeat: Val | None) -> Ast:
        if isinstance(body, YSeq):
            return ResidualAst(loc, name, repeat, body=SeqAst(body.loc, items=self.items(body)))
        if not isinstance(body, YMap):
            raise SpecErrors.one(body.loc, "residual takes a body list or a mapping with 'body'")
        extra = set(body.items) - {"body", "shortcut", "scale", "after"}
        if extra:
            bad = sorted(extra)[0]
            raise SpecErrors.one(
                body.key_loc(bad), f"residual has no field {bad!r} (body, shortcut, scale, after)"
            )
        if "body" not in body.items:
            raise SpecErrors.one(body.loc, "residual needs a 'body'")
        res = ResidualAst(loc, name, repeat, body=self.node(body.get("body")))
        if (sc := body.get("shortcut")) is not None and not (
            isinstance(sc, YScalar) and sc.value in (None, "identity")
        ):
            res.shortcut = self.node(sc)
        if (scale := body.get("scale")) is not None:
            res.scale = to_val(scale)
        if (after := body.get("after")) is not None and not (
            isinstance(after, YScalar) and after.value is None
        ):
            res.after = self.node(after)
        return res

    # --- helpers -----------------------------------------------------------------------------
    def check_name(self, value: Any, loc: Loc) -> str:
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise SpecErrors.one(loc, f"{value!r} is not a valid name (letters, digits, _)")
        return value

    def unknown(self, word: str, loc: Loc) -> SpecErrors:
        known = list(KINDS) + sorted(self.blocks) + list(STRUCTURES)
        close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return SpecErrors.one(loc, f"unknown layer kind or block {word!r}{hint}")


def split_tokens(text: str) -> list[tuple[str, int]]:
    """Split a one-line node on spaces, keeping ``(...)`` and ``${...}`` whole."""
    tokens: list[tuple[str, int]] = []
    depth = 0
    start: int | None = None
    for i, ch in enumerate(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth = max(0, depth - 1)
        if ch.isspace() and depth == 0:
            if start is not None:
                tokens.append((text[start:i], start))
                start = None
        elif start is None:
            start = i
    if start is not None:
        tokens.append((text[start:], start))
    return tokens


def parse_call_args(text: str, loc: Loc) -> tuple[dict[str, Val], list[Val]]:
    """``k=192, l=${x}`` -> named arguments (and positional ones, in order)."""
    named: dict[str, Val] = {}
    positional: list[Val] = []
    depth = 0
    start = 0
    parts: list[tuple[str, int]] = []
    for i, ch in enumerate(text + ","):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append((text[start:i], start))
            start = i + 1
    for part, off in parts:
        stripped = part.strip()
        if not stripped:
            continue
        where = loc.shifted(off + len(part) - len(part.lstrip()))
        key, eq, value = stripped.partition("=")
        if eq and NAME_RE.match(key.strip()):
            if key.strip() in named:
                raise SpecErrors.one(where, f"argument {key.strip()!r} given twice")
            named[key.strip()] = Val(_number_or_text(value.strip()), where)
        else:
            if named:
                raise SpecErrors.one(where, "a positional argument follows a named one")
            positional.append(Val(_number_or_text(stripped), where))
    return named, positional


def _number_or_text(text: str) -> Any:
    return text if "${" in text else parse_scalar(text)
