"""From the parsed program to the IR: evaluate every value, call blocks, infer every shape.

Errors do not stop the pass: each is recorded with its location and the chain of block calls
that led to it (``ir_b (repeat 3 of 10)``), and the pass goes on where it can, so that one run
of ``archdsl validate`` reports everything wrong with a spec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from . import ir
from .errors import SITE, ErrorSink, Loc, SpecErrors
from .expr import IN_NAME, ShapeView, evaluate_value
from .layers import KINDS
from .layers.base import Fields, LayerError, Shape, fmt_shape
from .names import UniqueNames
from .program import Program
from .syntax import (
    Ast,
    AuxAst,
    BrokenAst,
    CallAst,
    LayerAst,
    MergeAst,
    ResidualAst,
    SeqAst,
    Val,
    field_messages,
)

MAX_REPEAT = 10_000
# IR nodes (layers and structures) one resolution may make. Repeats multiply (``a x10000`` of a
# block of ``b x10000``), so the budget is spent while resolving, before the tree is built:
# 100,000 nodes take about 2 s and 60 MB; the largest shipped spec has under 500.
MAX_NODES = 100_000
# Levels of the IR tree (structures and block calls within each other): every pass over the IR,
# and torch's forward, recurses once or more per level. Shipped specs use under 10.
MAX_DEPTH = 100
_FIELD_CACHE_SIZE = 200_000
_CALL_CACHE_SIZE = 50_000


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
    def __init__(self, prog: Program, params: dict[str, Any], sink: ErrorSink,
                 max_nodes: int = MAX_NODES) -> None:
        self.prog = prog
        self.params = params
        self.sink = sink
        self.max_nodes = max_nodes
        self.made = 0  # IR nodes made or copied so far (see ``spend``)
        self.depth = 0  # nodes being resolved within each other
        self.top_outputs: dict[str, Shape] = {}  # the network's items so far (aux ``from:``)
        # Defaults live in the knob scope: evaluated once here, never in a block's scope.
        self.defaults: dict[str, dict[str, tuple[Any, Loc]]] = {}
        for kind, fields in prog.defaults.items():
            values = self.defaults.setdefault(kind, {})
            for fname, val in fields.items():
                try:
                    values[fname] = (self.value(val, params), val.loc)
                except SpecErrors as exc:
                    sink.extend(exc, "defaults")

    def network(self, shape: Shape) -> ir.Seq | None:
        assert self.prog.network is not None
        env = dict(self.params)
        env[IN_NAME] = ShapeView(shape)
        ctx = Ctx(env, top=True)
        return self.seq(self.prog.network, shape, ctx, "", "")

    # --- values ------------------------------------------------------------------------------
    @staticmethod
    def value(val: Val, env: dict[str, Any]) -> Any:
        return evaluate_value(val.value, env)

    def error(self, loc: Loc, msg: str, ctx: Ctx) -> None:
        self.sink.add(loc, msg, ctx.where)

    def spend(self, nodes: int, loc: Loc) -> None:
        """Count IR nodes against the budget; over it, stop the whole pass (located where the
        expansion happened), with the errors found so far."""
        self.made += nodes
        if self.made > self.max_nodes:
            over = SpecErrors.one(loc, f"the network expands to more than {self.max_nodes:,} "
                                       f"layers and structures (nested repeats multiply); "
                                       f"--allow-large raises the limit tenfold")
            raise SpecErrors(self.sink.errors + over.errors)

    def shape_error(self, loc: Loc, msg: str, ctx: Ctx) -> None:
        """An error about shapes: meaningless, so not reported, when shapes are guessed."""
        if not ctx.guessing:
            self.sink.add(loc, msg, ctx.where)

    def number(self, val: Val, ctx: Ctx, what: str) -> Any:
        """A value that must be a number; None (reported) when it is not."""
        try:
            value = self.value(val, ctx.env)
        except SpecErrors as exc:
            self.sink.extend(exc, ctx.where)
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error(val.loc, f"{what} must be a number, got {value!r}", ctx)
            return None
        return value

    # --- nodes -------------------------------------------------------------------------------
    def node(self, ast: Ast, shape: Shape, ctx: Ctx, name: str, path: str) -> ir.Node | None:
        """One node of a sequence, expanding ``xN`` repeats into a sequence of N copies."""
        if ast.repeat is None:
            return self.one(ast, shape, ctx, name, path)
        n = self.number(ast.repeat, ctx, "a repeat count")
        if n is None:
            return None
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        if not isinstance(n, int) or not 0 <= n <= MAX_REPEAT:
            self.error(ast.repeat.loc, f"repeat count must be a whole number 0..{MAX_REPEAT}, "
                                       f"got {n!r}", ctx)
            return None
        items: list[ir.Node] = []
        cur = shape
        clean = False
        label = self.site(ast) if isinstance(ast, CallAst) else (
            ast.kind if isinstance(ast, LayerAst) else "repeat")
        for i in range(n):
            prev = items[-1] if items else None
            child: ir.Node | None = None
            if isinstance(ast, CallAst) and not ctx.guessing:
                child = self.cached_call(ast, cur, ctx, str(i), join(path, str(i)))
            if child is not None:
                clean = True
                self.spend(ir.node_count(child), ast.loc)
            elif prev is not None and prev.in_shape == cur and clean:
                # The same node on the same input resolves the same way: copy it (the main
                # saving when a search resolves thousands of variants).
                self.spend(ir.node_count(prev), ast.loc)
                child = ir.relocate(prev, str(i), join(path, str(i)))
                if isinstance(ast, CallAst):
                    self.remember(ast, cur, ctx, child)
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
        self.spend(1, ast.loc)
        if self.depth >= MAX_DEPTH:
            parts = ctx.where.split(" > ")
            if len(parts) > 6:  # the first and last calls say enough
                parts[2:-2] = [f"... {len(parts) - 4} more"]
            self.sink.add(ast.loc, f"the network nests deeper than {MAX_DEPTH} levels "
                                   f"(structures and block calls within each other)",
                          " > ".join(parts))
            return None
        self.depth += 1
        try:
            return self.one_node(ast, shape, ctx, name, path, in_repeat)
        finally:
            self.depth -= 1

    def one_node(self, ast: Ast, shape: Shape, ctx: Ctx, name: str, path: str,
                 in_repeat: bool) -> ir.Node | None:
        if isinstance(ast, LayerAst):
            return self.layer(ast, shape, ctx, name, path)
        if isinstance(ast, CallAst):
            return self.call(ast, shape, ctx, name, path, in_repeat)
        if isinstance(ast, SeqAst):
            return self.seq(ast, shape, replace(ctx, top=False), name, path)
        if isinstance(ast, MergeAst):
            return self.merge(ast, shape, ctx, name, path)
        if isinstance(ast, AuxAst):
            return self.aux(ast, shape, ctx, name, path)
        if isinstance(ast, ResidualAst):
            return self.residual(ast, shape, ctx, name, path)
        assert isinstance(ast, BrokenAst)  # its error was reported when the spec was read
        return None

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
        """``when:`` leaves a node out of a sequence or merge; anywhere else it is an error."""
        if ast is None or ast.when is None:
            return False
        self.error(ast.when.loc, "when: only the items of a sequence and the branches of a "
                                 "concat, add or mul can be left out", ctx)
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
        head_ctx = replace(ctx, top=False, env={**ctx.env, IN_NAME: ShapeView(tapped)})
        head = self.one(ast.head, tapped, head_ctx, "head", join(path, "head"))
        if head is None:
            return None
        return ir.Aux(name, path, ast.loc, tapped, shape, head=head, source=source)

    def seq(self, ast: SeqAst, shape: Shape, ctx: Ctx, name: str, path: str) -> ir.Seq | None:
        """A sequence; an empty one (``[]``, ``x0``, every item ``when: false``) is the
        identity."""
        items: list[ir.Node] = []
        names = UniqueNames()
        cur = shape
        broken = False
        for i, item in enumerate(ast.items):
            if not self.included(item, ctx):
                continue
            child_name = names.unique(self.default_name(item, i, ctx))
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

    def merge(self, ast: MergeAst, shape: Shape, ctx: Ctx, name: str,
              path: str) -> ir.Node | None:
        sub = replace(ctx, top=False)
        kept = [(i, b) for i, b in enumerate(ast.branches) if self.included(b, sub)]
        what = {"cat": "concat", "add": "add", "mul": "mul"}[ast.op]
        if not kept:
            self.error(ast.loc, f"{what}: every branch is left out (when: false)", ctx)
            return None
        split = self.split_sizes(ast, shape, len(kept), ctx) if ast.split is not None else None
        if ast.split is not None and split is None:
            return None
        branches: list[ir.Node] = []
        names = UniqueNames()
        broken = False
        for k, (i, b) in enumerate(kept):
            bname = names.unique(b.name or f"branch{i}")
            part = shape if split is None else (split[k], *shape[1:])
            child = self.node(b, part, sub, bname, join(path, bname))
            if child is None:
                broken = True
            else:
                branches.append(child)
        if broken:
            return None
        out = self.merged_shape(ast, what, branches, ctx)
        return ir.Merge(name, path, ast.loc, shape, out, op=ast.op, branches=branches,
                        split=tuple(split) if split else None)

    def split_sizes(self, ast: MergeAst, shape: Shape, n: int, ctx: Ctx) -> list[int] | None:
        assert ast.split is not None
        try:
            value = self.value(ast.split, ctx.env)
        except SpecErrors as exc:
            self.sink.extend(exc, ctx.where)
            return None
        channels = shape[0]
        if value is True:
            if channels % n:
                self.shape_error(ast.split.loc, f"split: {channels} channels do not divide into "
                                                f"{n} equal parts", ctx)
                return None
            return [channels // n] * n
        if not (isinstance(value, list) and len(value) == n
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            self.error(ast.split.loc, f"split: true (equal parts) or a list of {n} positive "
                                      f"channel counts, one per branch; got {value!r}", ctx)
            return None
        if sum(value) != channels:
            self.shape_error(ast.split.loc, f"split: {' + '.join(map(str, value))} = "
                                            f"{sum(value)} channels, the input has {channels}",
                             ctx)
            return None
        return value

    def merged_shape(self, ast: MergeAst, what: str, branches: list[ir.Node],
                     ctx: Ctx) -> Shape:
        first = branches[0].out_shape
        sizes = ", ".join(f"{x.name} gives {fmt_shape(x.out_shape)}" for x in branches)
        if ast.op == "cat":
            for b in branches[1:]:
                if b.out_shape[1:] != first[1:] or len(b.out_shape) != len(first):
                    self.shape_error(
                        ast.loc, f"concat: branches must agree in size except channels: {sizes}",
                        ctx)
                    break  # go on with the first branch's size, so that later blocks are checked
            return (sum(b.out_shape[0] for b in branches),) + first[1:]
        out: Shape = first
        for b in branches[1:]:
            joined = broadcast(out, b.out_shape)
            if joined is None:
                self.shape_error(ast.loc, f"{what}: branch shapes must be equal or broadcast "
                                          f"(sizes of 1 stretch): {sizes}", ctx)
                return first
            out = joined
        return out

    def residual(self, ast: ResidualAst, shape: Shape, ctx: Ctx, name: str,
                 path: str) -> ir.Node | None:
        # Inside a residual, ``in`` is the residual's input: what the body must give back.
        sub = replace(ctx, top=False, env={**ctx.env, IN_NAME: ShapeView(shape)})
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
            scale = self.number(ast.scale, ctx, "residual scale")
            if scale is None:
                return None
            if not math.isfinite(scale):
                self.error(ast.scale.loc, f"residual scale must be a finite number, got {scale}",
                           ctx)
                return None
        drop = 0.0
        if ast.drop_path is not None:
            drop = self.number(ast.drop_path, ctx, "drop_path")
            if drop is None:
                return None
            if not 0 <= drop < 1:
                self.error(ast.drop_path.loc, f"drop_path is the chance of dropping the body, "
                                              f"from 0 up to (not including) 1; got {drop}", ctx)
                return None
        after = None
        if ast.after is not None:
            after = self.one(ast.after, carried, sub, "after", join(path, "after"))
            if after is None:
                return None
        out = after.out_shape if after else carried
        return ir.Residual(name, path, ast.loc, shape, out, body=body, shortcut=shortcut,
                           scale=float(scale), after=after, drop_path=float(drop))

    def site(self, ast: CallAst) -> str:
        """A block call in a message's chain, with where it is (shown when calls nest)."""
        main = next(iter(self.prog.sources), "")
        at = str(ast.loc.line) if ast.loc.file == main else f"{ast.loc.file}:{ast.loc.line}"
        return f"{ast.block}{SITE}{at}{SITE}"

    def call(self, ast: CallAst, shape: Shape, ctx: Ctx, name: str, path: str,
             in_repeat: bool) -> ir.Node | None:
        block = self.prog.blocks[ast.block]
        where = ctx.where if in_repeat else _chain(ctx.where, self.site(ast))
        if ast.block in ctx.stack:
            cycle = " -> ".join(ctx.stack[ctx.stack.index(ast.block):] + (ast.block,))
            self.error(ast.loc, f"block {ast.block!r} calls itself ({cycle})", ctx)
            return None
        if not ast.ok or block.body is None or self.misplaced_when(block.body, ctx):
            return None  # a bad call or a broken block: reported when the spec was read
        args = self.bind_args(ast, block.args, ctx, where)
        if args is None:
            return None
        key = None if ctx.guessing else self.call_key(ast, args, shape, name, path)
        if key is not None and (hit := self.prog.call_cache.get(key)) is not None:
            self.spend(ir.node_count(hit), ast.loc)
            return hit  # resolved before, with the same values: IR nodes are never changed
        env = dict(self.params)
        env.update(args)
        env[IN_NAME] = ShapeView(shape)
        sub = Ctx(env, where, ctx.stack + (ast.block,), guessing=ctx.guessing)
        errors_before = len(self.sink.errors)
        node = self.one(block.body, shape, sub, name, path)
        if node is not None:
            if isinstance(block.body, CallAst):
                node = ir.relocate(node, name, path)  # the callee's node may be shared
            node.block = ast.block
            node.args = args
            if key is not None and len(self.sink.errors) == errors_before:
                self.store(key, node)
        return node

    # --- resolved calls, kept by the program for later resolutions -----------------------------
    def call_key(self, ast: CallAst, args: dict[str, Any], shape: Shape, name: str,
                 path: str) -> tuple | None:
        """What a call's result depends on: the block, its arguments, its input, its place, and
        the knobs the block reads (None when a value cannot be keyed)."""
        knobs = self.prog.blocks[ast.block].knobs
        try:
            return (ast.block, repr(args), shape, name, path,
                    repr([self.params[k] for k in knobs]))
        except (KeyError, TypeError):
            return None

    def cached_call(self, ast: CallAst, shape: Shape, ctx: Ctx, name: str,
                    path: str) -> ir.Node | None:
        if not ast.ok:
            return None
        try:
            args = self.quiet_args(ast, ctx)
        except SpecErrors:
            return None  # resolving it reports the error
        key = self.call_key(ast, args, shape, name, path)
        return None if key is None else self.prog.call_cache.get(key)

    def remember(self, ast: CallAst, shape: Shape, ctx: Ctx, node: ir.Node) -> None:
        try:
            key = self.call_key(ast, self.quiet_args(ast, ctx), shape, node.name, node.path)
        except SpecErrors:
            return
        if key is not None:
            self.store(key, node)

    def quiet_args(self, ast: CallAst, ctx: Ctx) -> dict[str, Any]:
        sink, self.sink = self.sink, ErrorSink()
        try:
            args = self.bind_args(ast, self.prog.blocks[ast.block].args, ctx, "")
        finally:
            self.sink = sink
        if args is None:
            raise SpecErrors([])
        return args

    def store(self, key: tuple, node: ir.Node) -> None:
        cache = self.prog.call_cache
        if len(cache) >= _CALL_CACHE_SIZE:
            cache.clear()
        cache[key] = node

    def bind_args(self, ast: CallAst, declared: dict[str, Val | None], ctx: Ctx,
                  where: str) -> dict[str, Any] | None:
        """The call's arguments, evaluated in the caller's scope; defaults in the knobs' and the
        earlier arguments' (the call was checked against the block when the spec was read)."""
        given = dict(zip(declared, ast.positional, strict=False))
        given.update(ast.args)
        args: dict[str, Any] = {}
        try:
            for n, default in declared.items():
                if n in given:
                    args[n] = self.value(given[n], ctx.env)
                else:
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
        for fname, (value, loc) in self.defaults.get(ast.kind, {}).items():
            raw[fname], locs[fname] = value, loc
        try:
            for fname, val in ast.fields.items():
                raw[fname] = val.value if val.literal else self.value(val, ctx.env)
                locs[fname] = val.loc
        except SpecErrors as exc:
            self.sink.extend(exc, ctx.where)
            return None
        fields = self.validated(ast, raw, locs, ctx)
        if fields is None:
            return None
        try:
            fields = kind.prepare(fields, shape)
            out = kind.infer(fields, shape)
        except LayerError as exc:
            self.shape_error(ast.loc, f"{exc} (input {fmt_shape(shape)})", ctx)
            return None
        return ir.Layer(name, path, ast.loc, shape, out, kind=ast.kind, fields=fields)

    def validated(self, ast: LayerAst, raw: dict[str, Any], locs: dict[str, Loc],
                  ctx: Ctx) -> Fields | None:
        """The kind's field model for these values (validated once per distinct values)."""
        cache = self.prog.field_cache
        key = (ast.kind, repr(raw))
        hit = cache.get(key)
        if hit is not None:
            return hit
        kind = KINDS[ast.kind]
        try:
            fields = kind.fields.model_validate(raw)
        except ValidationError as exc:
            for field, msg in field_messages(exc, skip_missing=False).items():
                if msg == "Extra inputs are not permitted":
                    msg = f"no such field (a {ast.kind} has {', '.join(kind.fields.model_fields)})"
                shown = f" (got {raw[field]!r})" if field in raw and "; or " in msg else ""
                self.error(locs.get(field, ast.loc), f"{ast.kind}: {field}: {msg}{shown}", ctx)
            return None
        if len(cache) >= _FIELD_CACHE_SIZE:
            cache.clear()
        cache[key] = fields
        return fields


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """The shape of an element-wise op on ``a`` and ``b`` (sizes of 1 stretch), or None."""
    if len(a) != len(b):
        return None
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(out)



def _chain(where: str, part: str) -> str:
    return f"{where} > {part}" if where else part


def _mismatch(body: Shape, carried: Shape) -> str:
    if body[:1] != carried[:1] and body[1:] == carried[1:]:
        return f"body gives {body[0]} channels, shortcut carries {carried[0]}"
    return f"body gives {fmt_shape(body)}, shortcut carries {fmt_shape(carried)}"
