"""The surface syntax of network nodes, parsed once into a small AST.

A node is written in one of three ways:

* one line: ``conv 3x3 96 /2 V``, ``reduction_a k=192 l=192 m=256 n=384``, ``ir_a x5``,
  ``conv 1x1 $in.channels linear as up``: a layer kind or block name, then tokens;
* a list: a sequence of nodes (a branch of a concat is a list when it has several layers); an
  empty list is the identity;
* a mapping with one node key and optional ``name``, ``repeat`` and ``when``:
  ``{conv: {filters: 64, kernel: 1x7}}``, ``{concat: [...]}``, ``{add: [...]}``,
  ``{mul: [...]}``, ``{residual: {body: ..., scale: 0.17}}``, ``{seq: [...]}``,
  ``{aux: [...]}`` (an auxiliary head) or a block call ``{reduction_a: {k: 192}}``.

Everything is interpreted here, when the spec is read: kinds, words and field names of one-line
layers, literal field values, block names and call arguments, and the syntax of every
expression. Only expression values are left for the resolver, so a typo in a block that is never
called is still reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import ValidationError

from .errors import ErrorSink, Loc, SpecErrors
from .expr import Template, has_expr, old_syntax_hint, template
from .layers import KINDS
from .layers.base import LayerKind, parse_scalar
from .names import name_problem
from .source import YMap, YNode, YScalar, YSeq
from .suggest import did_you_mean

MERGE_OPS = {"concat": "cat", "add": "add", "mul": "mul"}
STRUCTURES = ("seq", "residual", "aux", *MERGE_OPS)
REPEAT_RE = re.compile(r"^x(\d+|\$.+)$")
KEYVAL_RE = re.compile(r"^([A-Za-z_]\w*)=(.*)$")
NODE_META = ("name", "repeat", "when", "from")


@dataclass
class Val:
    """A value as written, with its expressions parsed (a :class:`Template`, maybe inside lists
    and mappings), and where it was written."""

    value: Any
    loc: Loc
    literal: bool = field(init=False)  # no expression inside: the value is final as written

    def __post_init__(self) -> None:
        self.literal = not _has_template(self.value)


def _has_template(raw: Any) -> bool:
    if isinstance(raw, Template):
        return True
    if isinstance(raw, list):
        return any(_has_template(r) for r in raw)
    if isinstance(raw, dict):
        return any(_has_template(r) for r in raw.values())
    return False


@dataclass
class NodeAst:
    loc: Loc
    name: str | None = None
    repeat: Val | None = None
    when: Val | None = None  # left out when this evaluates false


@dataclass
class LayerAst(NodeAst):
    kind: str = ""
    fields: dict[str, Val] = field(default_factory=dict)  # one-line tokens and mapping fields


@dataclass
class CallAst(NodeAst):
    block: str = ""
    args: dict[str, Val] = field(default_factory=dict)
    positional: list[Val] = field(default_factory=list)
    ok: bool = True  # false when its arguments do not fit the block (reported when read)


@dataclass
class SeqAst(NodeAst):
    items: list[Ast] = field(default_factory=list)


@dataclass
class MergeAst(NodeAst):
    """Branches joined by ``op``: ``cat`` (along channels), ``add`` or ``mul`` (element-wise,
    broadcasting). With ``split``, the branches share out the input's channels instead of each
    seeing all of it (ShuffleNet's channel split)."""

    op: str = "cat"
    branches: list[Ast] = field(default_factory=list)
    split: Val | None = None  # true: equal parts; a list: channels per branch


@dataclass
class ResidualAst(NodeAst):
    body: Ast | None = None
    shortcut: Ast | None = None
    scale: Val | None = None
    after: Ast | None = None
    drop_path: Val | None = None  # stochastic depth: the chance of dropping the body (training)


@dataclass
class AuxAst(NodeAst):
    head: Ast | None = None
    source: Val | None = None  # ``from:``: the earlier item whose output the head reads


@dataclass
class BrokenAst(NodeAst):
    """A node that could not be parsed (its error is reported); the resolver goes on past it."""


Ast = Union[LayerAst, CallAst, SeqAst, MergeAst, ResidualAst, AuxAst, BrokenAst]


class Parser:
    """Parses node syntax; ``blocks`` is every block name in the spec and its libraries.

    Every template parsed is recorded in ``templates`` so that the caller can check the names
    it reads against the scope it is written in.
    """

    def __init__(self, blocks: set[str], sink: ErrorSink) -> None:
        self.blocks = blocks
        self.sink = sink
        self.templates: list[Template] = []

    def val(self, y: YNode) -> Val:
        """A YAML value with its expressions parsed."""
        return Val(self._raw(y), y.loc)

    def _raw(self, y: YNode) -> Any:
        if isinstance(y, YSeq):
            return [self._raw(i) for i in y.items]
        if isinstance(y, YMap):
            return {k: self._raw(v) for k, (_, v) in y.items.items()}
        return self.text_value(y.value, y.loc, y.plain)

    def text_value(self, value: Any, loc: Loc, plain: bool = True) -> Any:
        if not isinstance(value, str) or not has_expr(value):
            return value
        parsed = template(value, loc if plain else _unshifted(loc))
        if isinstance(parsed, Template):
            self.templates.append(parsed)
        return parsed

    def node(self, y: YNode) -> Ast:
        try:
            if isinstance(y, YScalar):
                return self.line(y)
            if isinstance(y, YSeq):
                return SeqAst(y.loc, items=self.items(y))
            return self.mapping(y)
        except SpecErrors as exc:
            self.sink.extend(exc)
            return BrokenAst(y.loc)

    def items(self, y: YSeq) -> list[Ast]:
        return [self.node(i) for i in y.items]

    # --- one-line form -----------------------------------------------------------------------
    def line(self, y: YScalar) -> Ast:
        if not isinstance(y.value, str) or not y.value.strip():
            raise SpecErrors.one(y.loc, f"expected a layer or block, got {y.value!r}")
        if (at := y.value.find("${")) >= 0:
            raise SpecErrors.one(y.loc.shifted(at) if y.plain else y.loc,
                                 old_syntax_hint(y.value, at))
        tokens = [(t, y.loc.shifted(off) if y.plain else y.loc) for t, off in split_tokens(y.value)]
        name = repeat = None
        if len(tokens) >= 2 and tokens[-2][0] == "as":
            name = self.check_name(tokens[-1][0], tokens[-1][1])
            tokens = tokens[:-2]
        if len(tokens) >= 2 and REPEAT_RE.match(tokens[-1][0]):
            text, loc = tokens.pop()
            repeat = Val(self.token_value(text[1:], loc.shifted(1)), loc)
        if not tokens:
            raise SpecErrors.one(y.loc, f"{y.value!r} names no layer or block")
        head, head_loc = tokens[0]
        rest = tokens[1:]
        if "(" in head and not head.startswith("$"):
            raise SpecErrors.one(head_loc, old_call_hint(head, rest))
        if head in self.blocks:
            call = CallAst(y.loc, name, repeat, block=head)
            for text, loc in rest:
                if m := KEYVAL_RE.match(text):
                    key = m.group(1)
                    if key in call.args:
                        raise SpecErrors.one(loc, f"argument {key!r} given twice")
                    call.args[key] = Val(self.token_value(m.group(2), loc.shifted(len(key) + 1)),
                                         loc)
                elif call.args:
                    raise SpecErrors.one(loc, "a positional argument follows a named one")
                else:
                    call.positional.append(Val(self.token_value(text, loc), loc))
            return call
        if head in KINDS:
            kind = KINDS[head]
            layer = LayerAst(y.loc, name, repeat, kind=head)
            positional = list(kind.positional)
            for text, loc in rest:
                for key, value in self.layer_token(kind, text, loc, positional).items():
                    layer.fields[key] = Val(value, loc)
            check_literal_fields(kind, layer.fields)
            return layer
        raise self.unknown(head, head_loc)

    def token_value(self, text: str, loc: Loc) -> Any:
        """A token's value: a template when it holds expressions, else a number, bool or word."""
        return self.text_value(text, loc) if has_expr(text) else parse_scalar(text)

    def layer_token(self, kind: LayerKind, text: str, loc: Loc,
                    positional: list[str]) -> dict[str, Any]:
        """The fields one token of a one-line layer sets (values may be templates)."""
        if m := KEYVAL_RE.match(text):
            return {m.group(1): self.token_value(m.group(2), loc.shifted(len(m.group(1)) + 1))}
        if has_expr(text):
            if text.startswith("/") and "stride" in kind.fields.model_fields:
                return {"stride": self.token_value(text[1:], loc.shifted(1))}
            value = self.token_value(text, loc)
            if not (isinstance(value, Template) and value.whole is not None):
                raise SpecErrors.one(loc, f"{kind.name}: {text!r}: an expression inside a token; "
                                          f"write field=$(...) (fields: "
                                          f"{', '.join(kind.fields.model_fields)})")
            if not positional:
                raise SpecErrors.one(loc, f"{kind.name}: {text!r}: nothing left for a bare value "
                                          f"to fill; write field={text}")
            return {positional.pop(0): value}
        got = kind.read_token(text, positional)
        if got is None:
            raise SpecErrors.one(loc, f"{kind.name}: unexpected {text!r}; it reads: "
                                      f"{kind.token_help()}")
        return got

    # --- mapping form ------------------------------------------------------------------------
    def mapping(self, y: YMap) -> Ast:
        ast = self._mapping(y)
        if "when" in y.items:
            ast.when = self.val(y.get("when"))
        if "from" in y.items:
            if not isinstance(ast, AuxAst):
                raise SpecErrors.one(y.key_loc("from"), "from: only an aux head reads the output "
                                                        "of an earlier node")
            ast.source = self.val(y.get("from"))
        return ast

    def _mapping(self, y: YMap) -> Ast:
        name = repeat = None
        keys = [k for k in y.items if k not in NODE_META]
        if "name" in y.items:
            n = y.get("name")
            name = self.check_name(n.plain_value(), n.loc)
        if "repeat" in y.items:
            repeat = self.val(y.get("repeat"))
        if len(keys) != 1:
            what = "no node key" if not keys else f"several node keys ({', '.join(keys)})"
            raise SpecErrors.one(
                y.loc, f"a node mapping needs exactly one of {', '.join(STRUCTURES)}, a layer "
                f"kind or a block name; found {what}"
            )
        key = keys[0]
        key_loc = y.key_loc(key)
        body = y.get(key)
        if key == "seq":
            if not isinstance(body, YSeq):
                raise SpecErrors.one(body.loc, "seq takes a list of nodes")
            return SeqAst(y.loc, name, repeat, items=self.items(body))
        if key in MERGE_OPS:
            return self.merge(key, body, y.loc, name, repeat)
        if key == "residual":
            return self.residual(body, key_loc, name, repeat)
        if key == "aux":
            if isinstance(body, YSeq):
                if not body.items:
                    raise SpecErrors.one(body.loc, "aux takes the head's nodes")
                return AuxAst(y.loc, name, repeat, head=SeqAst(body.loc, items=self.items(body)))
            return AuxAst(y.loc, name, repeat, head=self.node(body))
        if key in self.blocks:
            args: dict[str, Val] = {}
            if isinstance(body, YMap):
                args = {k: self.val(v) for k, (_, v) in body.items.items()}
            elif not (isinstance(body, YScalar) and body.value is None):
                raise SpecErrors.one(body.loc, f"block {key!r} takes a mapping of arguments")
            return CallAst(y.loc, name, repeat, block=key, args=args)
        if key in KINDS:
            if isinstance(body, YMap):
                fields = {k: self.val(v) for k, (_, v) in body.items.items()}
                check_literal_fields(KINDS[key], fields)
                return LayerAst(y.loc, name, repeat, kind=key, fields=fields)
            if isinstance(body, YScalar):
                # ``conv: 3x3 64 /2`` -- the one-line tokens under a key.
                if body.value is None:
                    return LayerAst(y.loc, name, repeat, kind=key)
                # Columns of a plain scalar's tokens point into the file; a quoted one's do not.
                start = body.loc.shifted(-len(key) - 1) if body.plain else body.loc
                line = YScalar(f"{key} {body.value}", start, body.plain)
                layer = self.line(line)
                layer.name, layer.repeat = name, repeat
                return layer
            raise SpecErrors.one(body.loc, f"{key} takes a mapping of fields")
        raise self.unknown(key, key_loc)

    def merge(self, key: str, body: YNode, loc: Loc, name: str | None,
              repeat: Val | None) -> MergeAst:
        split = None
        if isinstance(body, YMap):
            extra = set(body.items) - {"branches", "split"}
            if extra:
                bad = sorted(extra)[0]
                raise SpecErrors.one(body.key_loc(bad), f"{key} has no field {bad!r} "
                                                        "(branches, split)")
            if (ysplit := body.get("split")) is not None:
                split = self.val(ysplit)
            branches = body.get("branches")
            if branches is None:
                raise SpecErrors.one(body.loc, f"{key} needs 'branches'")
            body = branches
        if not isinstance(body, YSeq) or not body.items:
            raise SpecErrors.one(body.loc, f"{key} takes a list of branches")
        return MergeAst(loc, name, repeat, op=MERGE_OPS[key], branches=self.items(body),
                        split=split)

    def residual(self, body: YNode, loc: Loc, name: str | None, repeat: Val | None) -> Ast:
        if isinstance(body, YSeq):
            return ResidualAst(loc, name, repeat, body=SeqAst(body.loc, items=self.items(body)))
        if not isinstance(body, YMap):
            raise SpecErrors.one(body.loc, "residual takes a body list or a mapping with 'body'")
        known = ("body", "shortcut", "scale", "after", "drop_path")
        extra = set(body.items) - set(known)
        if extra:
            bad = sorted(extra)[0]
            raise SpecErrors.one(
                body.key_loc(bad), f"residual has no field {bad!r} ({', '.join(known)})"
            )
        if "body" not in body.items:
            raise SpecErrors.one(body.loc, "residual needs a 'body'")
        res = ResidualAst(loc, name, repeat, body=self.node(body.get("body")))
        if (sc := body.get("shortcut")) is not None and not (
            isinstance(sc, YScalar) and sc.value in (None, "identity")
        ):
            res.shortcut = self.node(sc)
        for key in ("scale", "drop_path"):
            if (v := body.get(key)) is not None:
                setattr(res, key, self.val(v))
        if (after := body.get("after")) is not None and not (
            isinstance(after, YScalar) and after.value is None
        ):
            res.after = self.node(after)
        return res

    # --- helpers -----------------------------------------------------------------------------
    def check_name(self, value: Any, loc: Loc) -> str:
        if (problem := name_problem(value)) is not None:
            raise SpecErrors.one(loc, problem)
        return value

    def unknown(self, word: str, loc: Loc) -> SpecErrors:
        known = list(KINDS) + sorted(self.blocks) + list(STRUCTURES) + ["choice"]
        return SpecErrors.one(loc, f"unknown layer kind or block {word!r}"
                                   f"{did_you_mean(word, known, sep='; ')}")


def _unshifted(loc: Loc) -> Loc:
    """Quoted or multi-line text: columns inside it do not match the file, so every expression
    in it is located at the start of the value."""
    return _FixedLoc(loc.file, loc.line, loc.col)


class _FixedLoc(Loc):
    def shifted(self, cols: int) -> Loc:
        return self


def check_literal_fields(kind: LayerKind, fields: dict[str, Val]) -> None:
    """Check field names, and the values written literally, when the spec is read.

    Values with expressions, and whether required fields are there (defaults may give them), are
    checked when the layer is resolved.
    """
    known = kind.fields.model_fields
    errors = SpecErrors([])
    for key, val in fields.items():
        if key not in known:
            errors.errors.append(SpecErrors.one(
                val.loc, f"{kind.name}: no field {key!r} (a {kind.name} has "
                         f"{', '.join(known)}){did_you_mean(key, list(known), sep='; ')}"
            ).errors[0])
    literal = {k: v.value for k, v in fields.items() if k in known and v.literal}
    try:
        kind.fields.model_validate(literal)
    except ValidationError as exc:
        for msg_field, msgs in field_messages(exc).items():
            if msg_field in literal:
                errors.errors.append(SpecErrors.one(
                    fields[msg_field].loc, f"{kind.name}: {msg_field}: {msgs}").errors[0])
    if errors.errors:
        raise SpecErrors(errors.errors)


def field_messages(exc: ValidationError, skip_missing: bool = True) -> dict[str, str]:
    """One message per field from a pydantic error (a field with several admissible types fails
    once per type)."""
    by_field: dict[str, list[str]] = {}
    for err in exc.errors():
        if skip_missing and err["type"] == "missing":
            continue
        name = str(err["loc"][0]) if err["loc"] else ""
        msgs = by_field.setdefault(name, [])
        if err["msg"] not in msgs:
            msgs.append(err["msg"])
    return {k: "; or ".join(v) for k, v in by_field.items()}


def old_call_hint(head: str, rest: list[tuple[str, Loc]]) -> str:
    """The message for ``block(a, k=v)``, with the new spelling ``block a k=v``."""
    callee, _, inner = head.partition("(")
    args = " ".join(a.strip() for a in inner.rstrip(")").split(",") if a.strip())
    more = " ".join(t for t, _ in rest)
    new = " ".join(p for p in (callee, args, more) if p)
    return (f"block arguments are written after the name, without parentheses or commas "
            f"(YAML splits a flow list at commas): write {new!r}")


def split_tokens(text: str) -> list[tuple[str, int]]:
    """Split a one-line node on spaces, keeping ``(...)`` whole (``$(a + b)``)."""
    tokens: list[tuple[str, int]] = []
    depth = 0
    start: int | None = None
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
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
