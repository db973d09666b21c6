"""The PyTorch source back end: a spec as one plain Python file that needs only torch.

``export_source(spec)`` writes a class per block of the spec (``inception_a`` -> ``InceptionA``)
and one ``nn.Module`` for the network, named after the spec. The module tree, and so the
state-dict keys and shapes, are those of ``spec.build()``: archdsl checkpoints load unchanged, and
the forward passes run the same operations in the same order (equal outputs).

Rules:

* each layer kind writes its own constructor call (``LayerKind.source``); the structures
  (sequence, merges, residual, auxiliary heads) are written here: inside a block's class, a
  concat, add or mul merge or a residual gets a forward of its own (``x * self.branch1(x)``,
  stochastic depth as ``drop_path``), elsewhere it is the built model's class, copied (``Sum``,
  ``SplitConcat``, ``Residual``);
* a block called with different arguments is one class with parameters where the calls differ:
  each varying literal is named after the argument (or the input channels, or a knob) that gives
  it in every call, e.g. ``ConvBnReLU(c7, 192, (7, 1), ...)``; a part present in some calls only
  (a projection shortcut) is built under a flag; calls that differ in structure otherwise get
  classes of their own (``Basic``, ``Basic2``);
* a knob (``params``) is a constructor argument of the network, with the spec's value as
  default, when changing it changes only literals equal to it (``num_classes``, ``dropout``);
  every other knob (``width``, ``depth``, ``aux``, ...) is baked in at the value the spec was
  loaded with, and the network's docstring says so.

No torch is imported here.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, replace
from typing import Any

from .. import ir
from ..errors import ErrorSink
from ..inplace import output_is_free, sum_target
from ..layers.activation import ACTIVATIONS, INPLACE_ACTIVATIONS
from ..layers.base import Call, Helper, fmt_shape, same_value, torch_layer
from ..resolve import Resolver
from ..spec import Spec, resolve_params
from .code import (
    MISSING,
    Group,
    Loop,
    Maybe,
    Mismatch,
    Slot,
    Struct,
    Tree,
    flat,
    group,
    is_node,
    layout,
    literal,
    literal_doc,
    merge,
    name_slot,
    slots,
)

__all__ = ["export_source"]

# The structures that are not a block of their own reuse the built model's classes verbatim.
MERGES = {op: torch_layer(name, module="torch_build")
          for op, name in (("cat", "Concat"), ("add", "Sum"), ("mul", "Product"))}
SPLIT_CONCAT = torch_layer("SplitConcat", module="torch_build")
DROP_PATH = torch_layer("drop_path", module="torch_build")
RESIDUAL = torch_layer("Residual", needs=(DROP_PATH,), module="torch_build")

# How a block's residual sum reads; the add is the one line that mirrors
# ``torch_build.Residual.forward``.
RESIDUAL_BODY = "y = self.body(x){scale}"
RESIDUAL_ADD = "y = y + {shortcut}"
RESIDUAL_ADD_INPLACE = "y += {shortcut}"  # the body's output (or its scaled copy) is fresh
# A block's element-wise merge: the operator between the branches' outputs (torch_build's Sum,
# Product).
MERGE_OPS = {"add": "+", "mul": "*"}


class _Identity:
    """An identity branch of a block's add or mul: the input itself, no module."""

    def __repr__(self) -> str:
        return "IDENTITY"


IDENTITY: Any = _Identity()

# Attribute names an nn.Module already has: children so named go through OrderedDict instead.
_MODULE_ATTRS = frozenset((
    "training", "forward", "train", "eval", "state_dict", "load_state_dict", "parameters",
    "buffers", "children", "modules", "apply", "cuda", "cpu", "to", "type", "float", "double",
    "half", "bfloat16", "add_module", "register_buffer", "zero_grad", "register_module",
    "extra_repr", "named_modules", "named_children", "named_parameters", "named_buffers",
    "get_submodule", "requires_grad_", "share_memory", "compile", "dump_patches",
    "call_super_init"))


def export_source(spec: Spec) -> str:
    """The spec's network as the text of one standalone Python file (imports only torch)."""
    return _Exporter(spec).file()


def attr_safe(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and name not in _MODULE_ATTRS


def camel(name: str) -> str:
    """``inception_a`` -> ``InceptionA``; ``resnet50`` -> ``Resnet50``."""
    text = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", name) if p)
    return text if text[:1].isalpha() else f"Net{text}"


@dataclass
class _Param:
    name: str
    values: list[Any]  # one per call of the class


@dataclass
class _Class:
    name: str
    block: str
    template: Struct
    params: list[_Param]


class _Exporter:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.taken: set[str] = set()
        self.variants, self.knobs = _knob_variants(spec, self)
        self.instances: dict[str, list[tuple[ir.Node, dict[str, Any]]]] = {}
        for variant, knobs in self.variants:
            for node in variant.ir.walk():
                if node.block:
                    # Candidate names of a varying literal, in the order of a class's parameters.
                    env = {"in_channels": node.in_shape[0]} if len(node.in_shape) == 3 else {}
                    env.update(node.args)
                    for k, v in knobs.items():
                        env.setdefault(k, v)
                    self.instances.setdefault(node.block, []).append((node, env))
        self.calls: dict[int, Tree] = {}
        self.classes: list[_Class] = []
        self.done: set[str] = set()

    # --- IR -> trees ---------------------------------------------------------------------------
    def tree(self, node: ir.Node, inline: bool = False) -> Tree:
        """What a node exports to, in its parent: a block call is its class's call."""
        if node.block and not inline:
            self.finish(node.block)
            return self.calls[id(node)]
        sub = lambda n: self.tree(n, inline)  # noqa: E731
        if isinstance(node, ir.Layer):
            return node.kind_def.source(node.fields, node.in_shape, node.out_shape)
        if isinstance(node, ir.Seq):
            return self.seq_tree(node, sub)
        if isinstance(node, ir.Merge):
            return self.merge_call(node, sub)
        if isinstance(node, ir.Residual):
            assert node.body is not None
            return Call("Residual", (
                sub(node.body), sub(node.shortcut) if node.shortcut else None, node.scale,
                _first_inplace(sub(node.after)) if node.after else None),
                {"drop_path": float(node.drop_path), "free_body": output_is_free(node.body)},
                {"drop_path": 0.0, "free_body": False}, helpers=(RESIDUAL,))
        if isinstance(node, ir.Aux):
            assert node.head is not None
            return Struct("aux", {"head": sub(node.head), "source": node.source})
        raise TypeError(f"unknown IR node {type(node).__name__}")

    @staticmethod
    def seq_tree(node: ir.Seq, sub: Any) -> Call:
        codes = _after_free(node.items, [sub(c) for c in node.items])
        if node.repeat:
            if all(c == codes[0] for c in codes):
                return Call("nn.Sequential", (Loop(len(codes), codes[0]),))
            if len(codes) > 2 and all(c == codes[1] for c in codes[1:]):
                return Call("nn.Sequential", (codes[0], Loop(len(codes) - 1, codes[1])))
        names = [c.name for c in node.items]
        if names == [str(i) for i in range(len(names))]:
            return Call("nn.Sequential", tuple(codes))
        return Call("nn.Sequential", (Struct("named", dict(zip(names, codes, strict=True))),))

    @staticmethod
    def merge_call(node: ir.Merge, sub: Any) -> Call:
        """A merge as the built model's class: ``Concat(OrderedDict(branch0=...))``."""
        named = Struct("named", {b.name: sub(b) for b in node.branches})
        if node.split:
            return Call("SplitConcat", (named, list(node.split)), helpers=(SPLIT_CONCAT,))
        helper = MERGES[node.op]
        if node.op == "add":  # the sum goes into a branch's output where the built model's does
            return Call(helper.name, (named,), {"into": sum_target(node)}, {"into": -1},
                        helpers=(helper,))
        return Call(helper.name, (named,), helpers=(helper,))

    def merge_tree(self, node: ir.Merge) -> Struct:
        """A block's merge: submodules and a forward of its own where that reads well
        (``torch.cat([self.branch0(x), ...], 1)``, ``x * self.branch1(x)``), else a subclass of
        the built model's class."""
        if node.split or not all(attr_safe(b.name) for b in node.branches):
            return Struct("base", {"call": self.merge_call(node, self.tree)})
        if node.op == "cat":
            return Struct("concat", {b.name: self.tree(b) for b in node.branches})
        # An identity branch is the input itself: no module, and it may be present in some
        # calls only (MobileNetV3's shortcut where the shape is kept), under a flag.
        names = {b.name for b in node.branches}
        fields: dict[str, Any] = {}
        for b in node.branches:
            if _is_identity(b):
                key = "identity"
                while key in names or key in fields:
                    key += "_"
                fields[key] = IDENTITY
            else:
                fields[b.name] = self.tree(b)
        optional = frozenset(k for k, v in fields.items() if v is IDENTITY)
        return Struct(node.op, fields, optional)

    def class_tree(self, node: ir.Node) -> Struct | None:
        """The body of a block's class for one call; None: the block is one layer (no class)."""
        if isinstance(node, ir.Merge):
            return self.merge_tree(node)
        if isinstance(node, ir.Residual):
            assert node.body is not None
            fields: dict[str, Any] = {"body": self.tree(node.body)}
            empty = isinstance(node.shortcut, ir.Seq) and not node.shortcut.items
            if node.shortcut and not empty:  # an empty shortcut is the identity
                fields["shortcut"] = self.tree(node.shortcut)
            fields["scale"] = node.scale
            # The sum is a tensor only the block holds: ``after`` starts in place on it.
            after = _first_inplace(self.tree(node.after)) if node.after else None
            if after is not None and after != Call("nn.Identity"):
                fields["after"] = after
            fields["drop_path"] = float(node.drop_path)
            # The sum goes into the body's output where the built model's does (archdsl.inplace).
            fields["free"] = output_is_free(node.body) or node.scale != 1.0
            helpers = (DROP_PATH,) if node.drop_path else ()
            return Struct("residual", fields, frozenset({"shortcut", "after"}), helpers)
        if isinstance(node, ir.Seq):
            return Struct("seq", {"items": self.seq_tree(node, self.tree)})
        return None

    def finish(self, block: str) -> None:
        """Make the classes of a block from all its calls, and each call's constructor call."""
        if block in self.done:
            return
        self.done.add(block)
        members = self.instances[block]
        trees = [self.class_tree(n) for n, _ in members]
        if trees[0] is None:
            for node, _ in members:
                self.calls[id(node)] = self.tree(node, inline=True)
            return
        for k, idx in enumerate(group(trees)):
            template = merge([trees[i] for i in idx])
            assert isinstance(template, Struct)
            name = self.unique(camel(block) + (str(k + 1) if k else ""))
            params = self.name_params(template, [members[i][1] for i in idx], self.knobs)
            self.classes.append(_Class(name, block, template, params))
            for j, i in enumerate(idx):
                self.calls[id(members[i][0])] = _call(name, params, j)

    def unique(self, name: str) -> str:
        out, n = name, 2
        while out in self.taken:
            out, n = f"{name}{n}", n + 1
        self.taken.add(out)
        return out

    @staticmethod
    def name_params(template: Any, envs: list[dict[str, Any]], knobs: list[str]) -> list[_Param]:
        """Give every varying literal of a class its parameter expression; the parameters."""
        names = [n for n in envs[0] if n not in knobs] + [n for n in knobs if n in envs[0]]
        env = {n: [e[n] for e in envs] for n in names}
        used: dict[str, _Param] = {}
        own: list[_Param] = []
        for slot in slots(template):
            if slot.constant:
                continue
            expr = name_slot(slot, env)
            if expr is None:
                values = [v if v is not MISSING else slot.present[0] for v in slot.values]
                same = next((p for p in own if p.values == values), None)
                if same is None:
                    base = slot.hint if slot.hint.isidentifier() else "value"
                    taken = set(env) | {p.name for p in own}
                    name, n = base, 2
                    while name in taken or keyword.iskeyword(name):
                        name, n = f"{base}{n}", n + 1
                    same = _Param(name, values)
                    own.append(same)
                expr = same.name
            else:
                for word in re.findall(r"[A-Za-z_]\w*", expr):
                    if word in env and word not in used:
                        used[word] = _Param(word, env[word])
            slot.expr = expr
        return [used[n] for n in names if n in used] + own

    # --- trees -> text -------------------------------------------------------------------------
    def doc(self, t: Any) -> Any:
        if isinstance(t, Slot):
            return t.expr if t.expr and not t.constant else literal_doc(t.present[0])
        if isinstance(t, Call):
            items = [("", self.doc(a)) for a in t.args]
            for k, v in t.kwargs.items():
                at_default = k in t.defaults and isinstance(v, Slot) and v.constant and \
                    same_value(v.present[0], t.defaults[k])
                if not at_default:
                    items.append((f"{k}=", self.doc(v)))
            return Group(f"{t.callee}(", items)
        if isinstance(t, Struct) and t.kind == "named":
            if all(attr_safe(k) for k in t.fields):
                return Group("OrderedDict(", [(f"{k}=", self.doc(v)) for k, v in t.fields.items()])
            pairs = [("", Group("(", [("", literal(k)), ("", self.doc(v))])) for k, v in
                     t.fields.items()]
            return Group("OrderedDict([", pairs, "])")
        if isinstance(t, Loop):
            if isinstance(t.count, Slot) and t.count.constant and t.count.present[0] == 1:
                return self.doc(t.item)
            count = self.doc(t.count)
            return Group("*[", [("", self.doc(t.item)), ("", f"for _ in range({flat(count)})")],
                         "]", sep="")
        if is_node(t):
            raise TypeError(f"no text for {t!r}")
        return literal_doc(t)

    def statement(self, lead: str, t: Any, indent: int = 8, tail: str = "") -> str:
        d = self.doc(t)
        return " " * indent + lead + layout(d, indent, indent + len(lead), len(tail)) + tail

    def class_text(self, cls: _Class) -> str:
        t = cls.template
        block = self.spec.program.blocks[cls.block]
        what = f"{cls.block}: {block.doc}." if block.doc else f"The spec's block {cls.block}."
        sig = ", ".join(["self", *(f"{p.name}{_hint(p.values)}" for p in cls.params)])
        init = [f"    def __init__({sig}) -> None:"]
        if len(init[0]) > 100:
            init = ["    def __init__(", *(f"        {s}," for s in sig.split(", ")),
                    "    ) -> None:"]
        if t.kind == "seq":
            seq = self.doc(t.fields["items"])
            seq.open = "super().__init__("
            body = [" " * 8 + layout(seq, 8, 8)]
            return _class(cls.name, "nn.Sequential", what, init + body,
                          _seq_forward(t.fields["items"]))
        if t.kind == "base":
            args = self.doc(t.fields["call"])
            base, args.open = args.open[:-1], "super().__init__("
            return _class(cls.name, base, what, init + [" " * 8 + layout(args, 8, 8)])
        body = ["        super().__init__()"]
        if t.kind in MERGE_OPS:
            body += [self.statement(f"self.{k} = ", v) for k, v in t.fields.items()
                     if not isinstance(v, (Slot, Maybe))]
            flags = {k: v.flag for k, v in t.fields.items() if isinstance(v, Maybe)}
            body += [f"        self.{k} = {flag.expr}" for k, flag in flags.items()]
            return _class(cls.name, "nn.Module", what, init + body, self.merge_forward(t))
        if t.kind == "concat":
            body += [self.statement(f"self.{k} = ", v) for k, v in t.fields.items()]
            outs = ", ".join(f"self.{k}(x)" for k in t.fields)
            forward = [f"        return torch.cat([{outs}], 1)"]
            if len(forward[0]) > 100:
                forward = ["        return torch.cat([", *(f"            self.{k}(x),"
                                                         for k in t.fields), "        ], 1)"]
            return _class(cls.name, "nn.Module", what, init + body, forward)
        return _class(cls.name, "nn.Module", what, init + body + self.residual_init(t),
                      self.residual_forward(t))

    @staticmethod
    def merge_forward(t: Struct) -> list[str]:
        """``return x * self.branch1(x)``; with an identity present in some calls only, its flag
        chooses (addition and multiplication of two tensors do not depend on their order)."""
        op = f" {MERGE_OPS[t.kind]} "
        terms = [("x" if isinstance(v, (Slot, Maybe)) else f"self.{k}(x)",
                  k if isinstance(v, Maybe) else None) for k, v in t.fields.items()]
        flags = [flag for _, flag in terms if flag]
        if not flags:
            return [f"        return {op.join(term for term, _ in terms)}"]
        if len(terms) != 2 or len(flags) != 1:
            raise NotImplementedError("an identity branch present in some calls only, among "
                                      "more than two branches")
        other = next(term for term, flag in terms if not flag)
        return [f"        y = {other}", f"        return x{op}y if self.{flags[0]} else y"]

    def residual_init(self, t: Struct) -> list[str]:
        lines = [self.statement("self.body = ", t.fields["body"])]
        for part in ("shortcut", "after"):
            value = t.fields.get(part)
            if isinstance(value, Maybe):
                flag = value.flag.expr if not value.flag.constant else str(value.flag.present[0])
                lines.append(self.statement(f"self.{part} = ", value.node,
                                            tail=f" if {flag} else None"))
            elif value is not None:
                lines.append(self.statement(f"self.{part} = ", value))
        for name in ("scale", "drop_path"):
            if not t.fields[name].constant:
                lines.append(f"        self.{name} = {t.fields[name].expr}")
        return lines

    @staticmethod
    def residual_forward(t: Struct) -> list[str]:
        scale = t.fields["scale"]
        factor = "" if scale.constant and scale.present[0] == 1.0 else (
            f" * {literal(scale.present[0])}" if scale.constant else " * self.scale")
        parts = {}
        for part, arg in (("shortcut", "x"), ("after", "y")):
            value = t.fields.get(part)
            call = f"self.{part}({arg})"
            parts[part] = (arg if value is None else call if not isinstance(value, Maybe)
                           else f"{arg} if self.{part} is None else {call}")
        shortcut = parts["shortcut"]
        if " if " in shortcut:
            shortcut = f"({shortcut})"
        free = t.fields["free"]
        add = RESIDUAL_ADD_INPLACE if free.constant and free.present[0] else RESIDUAL_ADD
        return [f"        {RESIDUAL_BODY.format(scale=factor)}",
                *_drop_path_lines(t.fields["drop_path"]),
                f"        {add.format(shortcut=shortcut)}",
                f"        return {parts['after']}"]

    def network_text(self, name: str) -> str:
        trees = [Struct("network", dict(zip(
                     [c.name for c in v.ir.items],
                     _after_free(v.ir.items, [self.tree(c) for c in v.ir.items]), strict=True)))
                 for v, _ in self.variants]
        template = merge(trees)
        assert isinstance(template, Struct)
        envs = [{k: v.params[k] for k in self.knobs} for v, _ in self.variants]
        params = self.name_params(template, envs, self.knobs)
        base = self.spec.params
        defaults = [literal(base.get(p.name, p.values[0])) for p in params]
        sig = ", ".join(["self", *(f"{p.name}{_hint(p.values)} = {d}"
                                   for p, d in zip(params, defaults, strict=True))])
        init = [f"    def __init__({sig}) -> None:"]
        items = template.fields
        doc = self.network_doc()
        has_aux = any(isinstance(v, Struct) and v.kind == "aux" for v in items.values())
        if not all(attr_safe(k) for k in items):
            if has_aux:
                raise NotImplementedError("network items need names that are Python attributes "
                                          "when the network has auxiliary heads")
            # Items named "5" (unnamed in the spec): a Sequential keeps them under their names.
            seq = self.doc(Call("nn.Sequential", (Struct("named", items),)))
            seq.open = "super().__init__("
            return _class(name, "nn.Sequential", doc, init + [" " * 8 + layout(seq, 8, 8)])
        init.append("        super().__init__()")
        taps = {a.fields["source"].present[0] for a in items.values()
                if isinstance(a, Struct) and a.kind == "aux" and a.fields["source"].present[0]}
        forward: list[str] = []
        for k, v in items.items():
            if isinstance(v, Struct) and v.kind == "aux":
                named = Call("nn.Sequential", (Struct("named", {"head": v.fields["head"]}),))
                init.append(self.statement(f"self.{k} = ", named))
                source = v.fields["source"].present[0]
                tapped = f"{source}_out" if source else "x"
                forward += ["        if self.training:",
                            f"            aux.append(self.{k}({tapped}))"]
                continue
            init.append(self.statement(f"self.{k} = ", v))
            forward += _step(k, v)
            if k in taps:
                forward.append(f"        {k}_out = x")
        if has_aux:
            forward = ["        aux: list[torch.Tensor] = []", *forward,
                       "        if torch.jit.is_scripting():",
                       "            return x, aux",
                       "        return self._eager_outputs(x, aux)"]
        elif forward[-1].startswith("        x = "):
            forward[-1] = forward[-1].replace("x = ", "return ", 1)
        else:
            forward.append("        return x")
        text = _class(name, "nn.Module", doc, init, forward, typed=not has_aux)
        if has_aux:
            text += ("\n    @torch.jit.unused\n"
                     "    def _eager_outputs(self, x: torch.Tensor, aux: list[torch.Tensor]):\n"
                     "        return (x, *aux) if self.training and aux else x\n")
        return text

    def network_doc(self) -> str:
        spec, doc = self.spec, self.spec.program.doc
        lines = [f"{spec.name}: {_cites(doc.cites)}." if doc.cites else f"{spec.name}."]
        if doc.description:
            lines += ["", doc.description]
        baked = [f"{k}={v}" for k, v in spec.params.items() if k not in self.knobs]
        notes = f"Input {fmt_shape(spec.input_shape)}"
        if baked:
            notes += "; built with " + ", ".join(baked)
        lines += ["", notes + "."]
        if any(isinstance(n, ir.Aux) for n in spec.ir.items):
            lines += ["", "In training mode the auxiliary heads' outputs follow the main output: "
                      "(main, aux...); TorchScript always returns (main, [aux...])."]
        return "\n".join(f"    {line}" if line else "" for line in _wrap(lines)).lstrip()

    def file(self) -> str:
        name = self.unique(camel(self.spec.name))
        network = self.network_text(name)
        classes = [self.class_text(c) for c in self.classes]
        helpers: list[Helper] = []
        for t in [*(c.template for c in self.classes), *self._network_trees()]:
            for h in _helpers(t):
                if h not in helpers:
                    helpers.append(h)
        clash = {h.name for h in helpers} & ({c.name for c in self.classes} | {name})
        if clash:
            raise NotImplementedError(f"a class would take a helper's name: {', '.join(clash)}")
        body = "\n\n".join([*(h.code for h in helpers), *classes, network])
        doc = self.spec.program.doc
        head = [f'"""{self.spec.name}, exported by archdsl from {self.spec.path.name}.']
        if doc.cites:
            head += ["", *_wrap([_cites(doc.cites)])]
        head += ["", "Plain PyTorch: the state dict is the archdsl-built model's, so its "
                 "checkpoints load unchanged.", '"""', ""]
        imports = []
        if "OrderedDict(" in body:
            imports += ["from collections import OrderedDict", ""]
        imports.append("import torch")
        if re.search(r"\bF\.", body):
            imports.append("import torch.nn.functional as F")
        imports += ["from torch import nn", "", f"__all__ = [{literal(name)}]"]
        return "\n".join(head + imports) + "\n\n\n" + body

    def _network_trees(self) -> list[Tree]:
        return [self.tree(c) for v, _ in self.variants for c in v.ir.items]


_INPLACE_CALLEES = frozenset(f"nn.{ACTIVATIONS[a][1]}" for a in INPLACE_ACTIVATIONS)


def _first_inplace(t: Tree) -> Tree:
    """The tree with its first operation in place if that is an activation that can be: the
    exported twin of :func:`archdsl.torch_build.make_first_inplace`, for a part whose input is
    a tensor nobody else reads."""
    if isinstance(t, Call) and t.callee in _INPLACE_CALLEES and not t.args:
        return replace(t, kwargs={**t.kwargs, "inplace": True})
    if isinstance(t, Call) and t.callee == "nn.Sequential" and t.args:
        first = t.args[0]
        if isinstance(first, Struct) and first.kind == "named" and first.fields:
            key = next(iter(first.fields))
            first = Struct("named", {**first.fields, key: _first_inplace(first.fields[key])})
        elif not isinstance(first, (Struct, Loop)):
            first = _first_inplace(first)
        return replace(t, args=(first, *t.args[1:]))
    return t


def _after_free(items: list[ir.Node], codes: list[Tree]) -> list[Tree]:
    """A sequence's item trees, an activation after an item with a free output in place (as
    :func:`archdsl.torch_build._sequence` builds it); with aux heads, which read items' outputs
    again, nothing goes in place."""
    if any(isinstance(item, ir.Aux) for item in items):
        return codes
    return [_first_inplace(code) if i and output_is_free(items[i - 1]) else code
            for i, code in enumerate(codes)]


def _holds_blocks(t: Tree) -> bool:
    """Whether a part is a plain ``nn.Sequential`` of blocks (a repeat, or a nested sequence
    holding exported classes): the forward then runs its modules in its own loop, so that each
    block's input is freed once the block returns, as in a flat hand-written forward."""
    if not (isinstance(t, Call) and t.callee == "nn.Sequential"):
        return False
    parts = [a for arg in t.args for a in (
        arg.fields.values() if isinstance(arg, Struct) and arg.kind == "named" else [arg])]
    return any(isinstance(a, Loop) or (isinstance(a, Call) and not a.callee.startswith("nn."))
               for a in parts)


def _step(name: str, t: Tree) -> list[str]:
    """The forward's lines that run the part ``self.<name>`` on ``x``."""
    if _holds_blocks(t):
        return [f"        for block in self.{name}:", "            x = block(x)"]
    return [f"        x = self.{name}(x)"]


def _seq_forward(items: Tree) -> list[str] | None:
    """A forward for a block class that is an ``nn.Sequential``, where an item holds blocks
    (ResNet's stage: a first block, then ``nn.Sequential`` of the repeats); else None, and
    ``nn.Sequential``'s own forward runs the items."""
    named = items.args[0] if isinstance(items, Call) and len(items.args) == 1 else None
    if not (isinstance(named, Struct) and named.kind == "named"
            and all(attr_safe(k) for k in named.fields)
            and any(_holds_blocks(v) for v in named.fields.values())):
        return None
    return [line for k, v in named.fields.items() for line in _step(k, v)] + ["        return x"]


def _is_identity(node: ir.Node) -> bool:
    """An empty sequence or an ``identity`` layer: the input unchanged, no module state."""
    if isinstance(node, ir.Seq):
        return not node.items
    return isinstance(node, ir.Layer) and node.kind == "identity"


def _drop_path_lines(p: Slot) -> list[str]:
    """Stochastic depth on the residual body, as ``torch_build.Residual.forward`` applies it
    (training mode only, never at 0, so that the random numbers drawn are the same)."""
    if p.constant and p.present[0] == 0.0:
        return []
    rate = literal(p.present[0]) if p.constant else "self.drop_path"
    test = "self.training" if all(v > 0.0 for v in p.present) else \
        "self.drop_path > 0.0 and self.training"
    return [f"        if {test}:", f"            y = drop_path(y, {rate})"]


def _helpers(t: Any) -> list[Helper]:
    """Helpers a tree uses, each after the helpers it needs."""
    out: list[Helper] = []

    def add(h: Helper) -> None:
        for n in h.needs:
            add(n)
        if h not in out:
            out.append(h)

    def walk(x: Any) -> None:
        if isinstance(x, Call):
            for h in x.helpers:
                add(h)
            for a in (*x.args, *x.kwargs.values()):
                walk(a)
        elif isinstance(x, Struct):
            for h in x.helpers:
                add(h)
            for v in x.fields.values():
                walk(v)
        elif isinstance(x, (Loop, Maybe)):
            walk(x.item if isinstance(x, Loop) else x.node)
    walk(t)
    return out


def _call(name: str, params: list[_Param], j: int) -> Call:
    """The call of a class for its j-th instance: flags as keywords, the rest positional."""
    args = tuple(p.values[j] for p in params if not isinstance(p.values[j], bool))
    kwargs = {p.name: p.values[j] for p in params if isinstance(p.values[j], bool)}
    return Call(name, args, kwargs)


def _hint(values: list[Any]) -> str:
    types = {type(v) for v in values}
    if len(types) == 1 and (t := types.pop()) in (int, float, bool, str):
        return f": {t.__name__}"
    return ""


def _class(name: str, base: str, doc: str, init: list[str], forward: list[str] | None = None,
           typed: bool = True) -> str:
    lines = [f"class {name}({base}):", f'    """{doc}"""', "", *init]
    if forward:
        sig = "(self, x: torch.Tensor) -> torch.Tensor:" if typed else "(self, x: torch.Tensor):"
        lines += ["", f"    def forward{sig}", *forward]
    return "\n".join(lines) + "\n"


def _cites(cites: str | list[str]) -> str:
    return "; ".join(cites) if isinstance(cites, list) else cites


def _wrap(lines: list[str], width: int = 92) -> list[str]:
    out = []
    for line in lines:
        words, cur = line.split(" "), ""
        for w in words:
            if cur and len(cur) + 1 + len(w) > width:
                out.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}" if cur else w
        out.append(cur)
    return out


# --- knobs ------------------------------------------------------------------------------------


def _trial(value: Any) -> Any:
    """Another value of a numeric knob, to see what it changes."""
    if isinstance(value, int):
        return value + 1
    return value + 0.25 if value < 0.75 else value - 0.25


def _knob_variants(spec: Spec, ex: _Exporter) -> tuple[list[tuple[Spec, dict]], list[str]]:
    """The spec, and one variant per knob that becomes a constructor argument; the knobs."""
    raw = spec.program.params
    candidates = [
        k for k, v in spec.params.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
        and not any(k in str(val.value) for other, val in raw.items() if other != k)
    ]
    def whole(s: Spec) -> Struct:
        return Struct("network", {c.name: ex.tree(c, inline=True) for c in s.ir.items})

    base_tree = whole(spec)
    accepted: list[tuple[str, Spec]] = []
    for k in candidates:
        other = _resolved_with(spec, k, _trial(spec.params[k]))
        if other is None:
            continue
        try:
            pairs = _differences(base_tree, whole(other))
        except Mismatch:
            continue
        if all(same_value(a, spec.params[k]) and same_value(b, other.params[k]) for a, b in pairs):
            accepted.append((k, other))
    knobs = [k for k, _ in accepted]
    base_knobs = {k: spec.params[k] for k in knobs}
    variants = [(spec, base_knobs)] + [(o, {**base_knobs, k: o.params[k]}) for k, o in accepted]
    return variants, knobs


def _resolved_with(spec: Spec, knob: str, value: Any) -> Spec | None:
    sink = ErrorSink()
    params = resolve_params(spec.program, {**spec.params, knob: value}, sink)
    root = None if sink.errors else Resolver(spec.program, params, sink).network(spec.input_shape)
    if sink.errors or root is None:
        return None
    return Spec(spec.program, params, spec.input_shape, root)


def _differences(a: Tree, b: Tree) -> list[tuple[Any, Any]]:
    """The literals in which two trees of one structure differ (Mismatch if they do not)."""
    return [(s.values[0], s.values[1]) for s in slots(merge([a, b])) if not s.constant]
