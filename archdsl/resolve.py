"""From the parsed program to the IR: evaluate every value, call blocks, infer every shape.

Errors do not stop the pass: each is recorded with its location and the chain of block calls
that led to it (``ir_b (repeat 3 of 10)``), and the pass goes on where it can, so that one run
of ``archdsl validate`` reports everything wrong with a spec.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from . import ir
from .errors import ErrorSink, Loc, SpecErrors
from .expr import _IN_NAME, ShapeView, has_expr, interpolate
from .layers import KINDS
from .layers.base import LayerError, Shape, fmt_shape
from .program import Program
from .syntax import Ast, AuxAst, CallAst, ConcatAst, LayerAst, ResidualAst, SeqAst, Val

MAX_REPEAT = 10_000


@dataclass(frozen=True)
class Ctx:
    env: dict[str, Any]
    where: str = ""  # the chain of block calls, for messages
    stack: tuple[str, ...] = ()  # blocks being expanded, to catch recursion
    top: bool = False  # in the network's own sequence (layers are named by kind there)
    # After a broken node the real shape is unknown; the rest is still checked for errors that
    # do not depend on shapes (arguments, fields, recursion), with shape errors held back.
    guessing: bool = False


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Resolver:
    def __init__(self, prog: Program, params: dict[str, Any], sink: ErrorSink) -> None:
        self.prog = prog
        self.params = params
        self.sink = sink
        self.top_outputs: dict[str, Shape] = {}  # the network's items so far (aux ``from:``)

    def network(self, shape: Shape) -> ir.Seq | None:
        assert self.prog.network is not None
        env = dict(self.params)
        env[_IN_NAME] = ShapeView(shape)
        ctx = Ctx(env, top=True)
        return self.seq(self.prog.network, shape, ctx, "", "")

    # --- values ------------------------------------------------------------------------------
    def value(self, val: Val, env: dict[str, Any]) -> Any:
        return self._eval(val.value, env, val.loc)

    def _eval(self, raw: Any, env: dict[str, Any], loc: Loc) -> Any:
        if isinstance(raw, str) and has_expr(raw):
            return interpolate(raw, env, loc)
        if isinstance(raw, list):
            return [self._eval(r, env, loc) for r in raw]
        if isinstance(raw, dict):
            return {k: self._eval(v, env, loc) for k, v in raw.items()}
        return raw

    def error(self, loc: Loc, msg: str, ctx: Ctx) -> None:
        self.sink.add(loc, msg, ctx.where)

    def shape_error(self, loc: Loc, msg: str, ctx: Ctx) -> None:
        """An error about shapes: meaningless, so not reported, when shapes are guessed."""
        if not ctx.guessing:
            self.sink.add(loc, msg, ctx.where)

    # --- nodes -------------------------------------------------------------------------------
    def node(self, ast: Ast, shape: Shape, ctx: Ctx, name: str, path: str) -> ir.Node | None:
        """One node of a sequence, expanding ``xN`` repeats into a sequence of N copies."""
        if ast.repeat is None:
            return self.one(ast, shape, ctx, name, path)
        try:
            n = self.value(ast.repeat, ctx.env)
        except SpecErrors as exc:
            self.sink.extend(exc, ctx.where)
            return None
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_REPEAT:
            self.error(ast.repeat.loc, f"repeat count must be a whole number 1..{MAX_REPEAT}, "
                                       f"got {n!r}", ctx)
            return None
        items: list[ir.Node] = []
        cur = shape
        clean = False
        label = ast.block if isinstance(ast, CallAst) else (
            ast.kind if isinstance(ast, LayerAst) else "repeat")
        for i in range(n):
            prev = items[-1] if items else None
            if prev is not None and prev.in_shape == cur and clean:
                # The same node on the same input resolves the same way: copy it (the main
                # saving when a search resolves thousands of variants).
                child: ir.Node | None = ir.relocate(prev, str(i), join(path, str(i)))
            else:
                where = _chain(ctx.where, f"{label} (repeat {i + 1} of {n})")
                sub = replace(ctx, where=where, top=False)
                errors_before = len(self.sink.errors)
                child = self.one(ast, cur, sub, str(i), join(path, str(i)), in_repeat=True)
                clean = len(self.sink.errors) == errors_before
            if child is None:
                return None
            items.append(child)
            cur = child.out_shape
        return ir.Seq(name, path, ast.loc, shape, cur, items=items, repeat=n)

    def one(self, ast: Ast, shape: Shape, ctx: Ctx, name: str, path: str,
            in_repeat: bool = False) -> ir.Node | None:
        if isinstance(ast, LayerAst):
            return self.layer(ast, shape, ctx, name, path)
        if isinstance(ast, CallAst):
            return self.call(ast, shape, ctx, name, path, in_repeat)
        if isinstance(ast, SeqAst):
            return self.seq(ast, shape, replace(ctx, top=False), name, path)
        if isinstance(ast, ConcatAst):
            return self.concat(ast, shape, ctx, name, path)
        if isinstance(ast, AuxAst):
            return self.aux(ast, shape, ctx, name, path)
        return self.residual(ast, shape, ctx, name, path)

    def included(self, ast: Ast, ctx: Ctx) -> bool:
        """False when the node's ``when:`` is false (it is then left out of its sequence)."""
        if ast.when is None:
            return True
        try:
            keep = self.value(ast.when, ctx.env)
        except SpecErrors as exc:
            self.sink.extend(exc, ctx.where)
            return False
        if not isinstance(keep, (bool, int)):
            self.error(ast.when.loc, f"when: expected true or false, got {keep!r}", ctx)
            return False
        return bool(keep)

    def misplaced_when(self, ast: Ast | None, ctx: Ctx) -> bool:
        """``when:`` leaves a node out of a sequence or concat; anywhere else it is an error."""
        if ast is None or ast.when is None:
            return False
        self.error(ast.when.loc, "when: only the items of a sequence and the branches of a "
                                 "concat can be left out", ctx)
        return True

    def aux(self, ast: AuxAst, shape: Shape, ctx: Ctx, name: str, path: str) -> ir.Node | None:
        """An auxiliary head on the current tensor; the main path goes on unchanged."""
        if not ctx.top:
            self.error(ast.loc, "aux: auxiliary heads are allowed only in the network's own "
                                "sequence (not in blocks, repeats or branches)", ctx)
            return None
        assert ast.head is not None
        if self.misplaced_when(ast.head, ctx):
            return None
        source, tapped = None, shape
        if ast.source is not None:
            source = ast.source.value
            if source not in self.top_outputs:
                known = ", ".join(self.top_outputs) or "none"
                self.error(ast.source.loc, f"aux from: {source!r} is not an earlier item of the "
                                           f"network (earlier items: {known})", ctx)
                return None
            tapped = self.top_outputs[source]
        head_ctx = replace(ctx, top=False, env={**ctx.env, _IN_NAME: ShapeView(tapped)})
        head = self.one(ast.head, tapped, head_ctx, "head", join(path, "head"))
        if head is None:
            return None
        return ir.Aux(name, path, ast.loc, tapped, shape, head=head, source=source)

    def seq(self, ast: SeqAst, shape: Shape, ctx: Ctx, name: str, path: str) -> ir.Seq | None:
        items: list[ir.Node] = []
        used: set[str] = set()
        cur = shape
        broken = False
        for i, item in enumerate(ast.items):
            if not self.included(item, ctx):
                continue
            child_name = _unique(self.default_name(item, i, ctx), used)
            child = self.node(item, cur, ctx, child_name, join(path, child_name))
            if child is None:
                # The shape after a broken node is unknown: go on guessing it is unchanged.
                broken = True
                ctx = replace(ctx, guessing=True)
                continue
            items.append(child)
            cur = child.out_shape
            if ctx.top and not isinstance(child, ir.Aux):
                self.top_outputs[child.name] = cur
        if not ast.items:
            self.error(ast.loc, "an empty sequence", ctx)
            return None
        if broken:
            return None
        return ir.Seq(name, path, ast.loc, shape, cur, items=items)

    @staticmethod
    def default_name(ast: Ast, index: int, ctx: Ctx) -> str:
        if ast.name:
            return ast.name
        if isinstance(ast, CallAst):
            return ast.block
        if isinstance(ast, LayerAst) and ctx.top:
            return ast.kind
        if isinstance(ast, AuxAst):
            return "aux"
        return str(index)

    def concat(self, ast: ConcatAst, shape: Shape, ctx: Ctx, name: str,
               path: str) -> ir.Node | None:
        sub = replace(ctx, top=False)
        branches: list[ir.Node] = []
        used: set[str] = set()
        broken = False
        for i, b in enumerate(ast.branches):
            if not self.included(b, sub):
                continue
            bname = _unique(b.name or f"branch{i}", used)
            child = self.node(b, shape, sub, bname, join(path, bname))
            if child is None:
                broken = True
            else:
                branches.append(child)
        if broken or not branches:
            return None
        first = branches[0]
        for b in branches[1:]:
            if b.out_shape[1:] != first.out_shape[1:] or len(b.out_shape) != len(first.out_shape):
                sizes = ", ".join(f"{x.name} gives {fmt_shape(x.out_shape)}" for x in branches)
                self.shape_error(
                    ast.loc, f"concat: branches must agree in size except channels: {sizes}", ctx
                )
                break  # go on with the first branch's size, so that later blocks are checked
        out = (sum(b.out_shape[0] for b in branches),) + first.out_shape[1:]
        return ir.Concat(name, path, ast.loc, shape, out, branches=branches)

    def residual(self, ast: ResidualAst, shape: Shape, ctx: Ctx, name: str,
                 path: str) -> ir.Node | None:
        # Inside a residual, ``in`` is the residual's input: what the body must give back.
        sub = replace(ctx, top=False, env={**ctx.env, _IN_NAME: ShapeView(shape)})
        assert ast.body is not None
        if any(self.misplaced_when(a, ctx) for a in (ast.body, ast.shortcut, ast.after)):
            return None
        body = self.one(ast.body, shape, sub, "body", join(path, "body"))
        shortcut = None
        if ast.shortcut is not None:
            shortcut = self.one(ast.shortcut, shape, sub, "shortcut", join(path, "shortcut"))
            if shortcut is None:
                return None
        if body is None:
            return None
        carried = shortcut.out_shape if shortcut else shape
        if body.out_shape != carried:
            self.shape_error(ast.loc, "residual add: " + _mismatch(body.out_shape, carried), ctx)
            # Go on with the shortcut's shape, so that later blocks are still checked.
        scale = 1.0
        if ast.scale is not None:
            try:
                scale = self.value(ast.scale, ctx.env)
            except SpecErrors as exc:
                self.sink.extend(exc, ctx.where)
            if isinstance(scale, bool) or not isinstance(scale, (int, float)):
                self.error(ast.scale.loc, f"residual scale must be a number, got {scale!r}", ctx)
                scale = 1.0
        after = None
        if ast.after is not None:
            after = self.one(ast.after, carried, sub, "after", join(path, "after"))
            if after is None:
                return None
        out = after.out_shape if after else carried
        return ir.Residual(name, path, ast.loc, shape, out, body=body, shortcut=shortcut,
                           scale=float(scale), after=after)

    def call(self, ast: CallAst, shape: Shape, ctx: Ctx, name: str, path: str,
             in_repeat: bool) -> ir.Node | None:
        block = self.prog.blocks[ast.block]
        where = ctx.where if in_repeat else _chain(ctx.where, ast.block)
        if ast.block in ctx.stack:
            cycle = " -> ".join(ctx.stack[ctx.stack.index(ast.block):] + (ast.block,))
            self.error(ast.loc, f"block {ast.block!r} calls itself ({cycle})", ctx)
            return None
        args = self.bind_args(ast, block.args, ctx, where)
        if args is None or block.body is None or self.misplaced_when(block.body, ctx):
            return None
        env = dict(self.params)
        env.update(args)
        env[_IN_NAME] = ShapeView(shape)
        sub = Ctx(env, where, ctx.stack + (ast.block,), guessing=ctx.guessing)
        node = self.one(block.body, shape, sub, name, path)
        if node is not None:
            node.block = ast.block
            node.args = args
        return node

    def bind_args(self, ast: CallAst, declared: dict[str, Val | None], ctx: Ctx,
                  where: str) -> dict[str, Any] | None:
        ok = True
        given: dict[str, Val] = {}
        names = list(declared)
        if len(ast.positional) > len(names):
            extra = ast.positional[len(names)]
            self.sink.add(extra.loc, f"block {ast.block!r} takes {len(names)} arguments "
                                     f"({', '.join(names) or 'none'}), got {len(ast.positional)}",
                          where)
            ok = False
        given.update(zip(names, ast.positional, strict=False))
        for key, val in ast.args.items():
            if key not in declared:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.sink.add(val.loc, f"block {ast.block!r} has no argument {key!r} "
                                       f"(it takes {', '.join(names) or 'none'}){hint}", where)
                ok = False
            elif key in given:
                self.sink.add(val.loc, f"argument {key!r} given twice", where)
                ok = False
            else:
                given[key] = val
        missing = [n for n in names if n not in given and declared[n] is None]
        if missing:
            self.sink.add(ast.loc, f"block {ast.block!r} needs argument(s) {', '.join(missing)}",
                          where)
            ok = False
        if not ok:
            return None
        args: dict[str, Any] = {}
        try:
            for n in names:
                if n in given:
                    args[n] = self.value(given[n], ctx.env)  # the caller's scope
                else:
                    default = declared[n]
                    assert default is not None
                    args[n] = self.value(default, {**self.params, **args})
        except SpecErrors as exc:
            self.sink.extend(exc, where)
            return None
        return args

    # --- layers ------------------------------------------------------------------------------
    def layer(self, ast: LayerAst, shape: Shape, ctx: Ctx, name: str, path: str) -> ir.Layer | None:
        kind = KINDS[ast.kind]
        raw: dict[str, Any] = {}
        locs: dict[str, Loc] = {}
        try:
            for fname, val in self.prog.defaults.get(ast.kind, {}).items():
                raw[fname], locs[fname] = self.value(val, ctx.env), val.loc
            positional = list(kind.positional)
            for tok in ast.tokens:
                value = self.value(tok, ctx.env)
                text = value if isinstance(value, str) else _fmt(value)
                got = kind.read_token(text, positional)
                if got is None:
                    raise SpecErrors.one(
                        tok.loc, f"{ast.kind}: unexpected {text!r}; it reads: {kind.token_help()}")
                for k, v in got.items():
                    raw[k], locs[k] = v, tok.loc
            for fname, val in ast.fields.items():
                raw[fname], locs[fname] = self.value(val, ctx.env), val.loc
        except SpecErrors as exc:
            self.sink.extend(exc, ctx.where)
            return None
        try:
            fields = kind.fields.model_validate(raw)
        except ValidationError as exc:
            # A field with several admissible types fails once per type: one line per field.
            by_field: dict[str, list[str]] = {}
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else ""
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = f"no such field (a {ast.kind} has {', '.join(kind.fields.model_fields)})"
                msgs = by_field.setdefault(field, [])
                if msg not in msgs:
                    msgs.append(msg)
            for field, msgs in by_field.items():
                shown = repr(raw[field]) if field in raw else ""
                got = f" (got {shown})" if shown and len(msgs) > 1 else ""
                self.error(locs.get(field, ast.loc),
                           f"{ast.kind}: {field}: {'; or '.join(msgs)}{got}", ctx)
            return None
        try:
            fields = kind.prepare(fields, shape)
            out = kind.infer(fields, shape)
        except LayerError as exc:
            self.shape_error(ast.loc, f"{exc} (input {fmt_shape(shape)})", ctx)
            return None
        return ir.Layer(name, path, ast.loc, shape, out, kind=ast.kind, fields=fields)


def _chain(where: str, part: str) -> str:
    return f"{where} > {part}" if where else part


def _unique(name: str, used: set[str]) -> str:
    out, n = name, 2
    while out in used:
        out, n = f"{name}_{n}", n + 1
    used.add(out)
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _mismatch(body: Shape, carried: Shape) -> str:
    if body[:1] != carried[:1] and body[1:] == carried[1:]:
        return f"body gives {body[0]} channels, shortcut carries {carried[0]}"
    return f"body gives {fmt_shape(body)}, shortcut carries {fmt_shape(carried)}"
