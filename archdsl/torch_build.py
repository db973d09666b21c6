"""The PyTorch back end: the IR becomes an ``nn.Module`` with readable, spec-ordered names.

The module tree mirrors the IR: a sequence is a :class:`Sequence`, a merge a :class:`Concat`,
:class:`Sum`, :class:`Product` or :class:`SplitConcat`, a residual sum a :class:`Residual`, and
each layer the module its kind builds. Forward passes are plain code over submodules (no
interpretation of the graph per call), so the result runs like a hand-written model, traces
with ``torch.compile(fullgraph=True)`` and scripts with TorchScript.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn.modules import module as _module

from . import ir
from .inplace import output_is_free, sum_target
from .layers.activation import ACTIVATIONS, INPLACE_ACTIVATIONS


class Sequence(nn.Sequential):
    """Items in order, each reading the previous one's output: an ``nn.Sequential`` (same names,
    same state dict) that frees each intermediate tensor as early as a hand-written forward.

    A plain ``nn.Sequential`` nested in another keeps its input alive until it returns, since
    the outer loop's variable still holds it: ResNet's repeated blocks (a sequence inside the
    stage) then kept each block's input through the next ones. That cost resnet50 4 % at batch 1
    on CPU, from thousands of extra page faults a pass as freed buffers went back to the system
    (``tools/bench_forward.py``). So the loop hands a nested sequence its input in a list that
    the callee empties (:func:`_run_owned`), rather than calling it; a sequence with hooks is
    called as usual, so its hooks fire. Compiled (TorchScript, ``torch.compile``), the graph's
    buffers are planned by the compiler: there the plain loop runs, with fewer guards.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if torch.jit.is_scripting():
            for item in self:
                x = item(x)
            return x
        return self._forward_owned(x)

    @torch.jit.unused
    def _forward_owned(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return super().forward(x)
        return _run_owned(self, [x])


def _run_owned(seq: nn.Sequential, box: list[torch.Tensor]) -> torch.Tensor:
    """Run the sequence on ``box``'s only tensor, which the caller no longer holds."""
    x = box.pop()
    for item in seq:
        if _inline(item):
            box.append(x)
            del x  # the callee now holds the only reference
            x = _run_owned(item, box)
        else:
            x = item(x)
    return x


# The containers whose forward is only "each item on the previous one's output".
_PLAIN_SEQUENCES = (Sequence, nn.Sequential)


def _inline(item: nn.Module) -> bool:
    """Whether calling ``item`` is exactly running its items in turn: a plain sequence (ours or
    a layer's ``nn.Sequential``) with no hooks of its own nor global ones: the test
    ``nn.Module.__call__`` makes before it goes straight to ``forward``."""
    return (
        type(item) in _PLAIN_SEQUENCES
        and "forward" not in item.__dict__
        and not (item._forward_hooks or item._forward_pre_hooks or item._backward_hooks
                 or item._backward_pre_hooks or _module._global_forward_hooks
                 or _module._global_forward_pre_hooks or _module._global_backward_hooks
                 or _module._global_backward_pre_hooks)
    )


class Concat(nn.Sequential):
    """Branches side by side on the same input, joined along channels (the "Filter concat").

    A ``Sequential`` subclass so that the branches keep their names (``branch0`` ...) and
    TorchScript can unroll the loop over them.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        outs: list[torch.Tensor] = []
        for branch in self:
            outs.append(branch(x))
        return torch.cat(outs, 1)


class Sum(nn.Sequential):
    """Branches on the same input, added element-wise (sizes of 1 broadcast).

    ``into`` is the branch whose output takes the sum in place (-1: none), chosen by
    :func:`archdsl.inplace.sum_target` so that the result is the same bit for bit: MobileNet's
    ``result += input``.
    """

    def __init__(self, branches: OrderedDict[str, nn.Module], into: int = -1) -> None:
        super().__init__(branches)
        self.into = into

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        outs: list[torch.Tensor] = []
        for branch in self:
            outs.append(branch(x))
        if self.into >= 0:
            out = outs[self.into]
            for i, y in enumerate(outs):
                if i != self.into:
                    out += y
            return out
        out = outs[0]
        for y in outs[1:]:
            out = out + y
        return out


class Product(nn.Sequential):
    """Branches on the same input, multiplied element-wise: ``x * gate(x)`` is squeeze-and-
    excitation (the gate's C x 1 x 1 broadcasts over the grid)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out: torch.Tensor | None = None
        for branch in self:
            y = branch(x)
            out = y if out is None else out * y
        assert out is not None
        return out


class SplitConcat(nn.Sequential):
    """Each branch takes its own slice of the input's channels; the outputs are concatenated
    (ShuffleNet v2's channel split)."""

    def __init__(self, branches: OrderedDict[str, nn.Module], sizes: list[int]) -> None:
        super().__init__(branches)
        self.sizes = sizes

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        parts = torch.split(x, self.sizes, 1)
        outs: list[torch.Tensor] = []
        for i, branch in enumerate(self):
            outs.append(branch(parts[i]))
        return torch.cat(outs, 1)


class Residual(nn.Module):
    """``after(shortcut(x) + scale * body(x))``; an absent shortcut is the identity.

    Like a hand-written block, it decides at construction what a forward pass does, and adds in
    place where autograd allows it: when the body's output is a fresh tensor whose backward does
    not read it (``free_body``, from :mod:`archdsl.inplace`: torchvision's
    ``out = bn3(...); out += identity``), the
    scale multiplies it and the shortcut is added into it; else the scaled product, itself fresh,
    takes the sum, and an unscaled sum is out of place. The block's input ``x`` is never changed.
    The sum is then a tensor only this block holds, so ``after`` works on it in place.
    An absent shortcut or ``after`` is registered as an ``nn.Identity`` (module names stay those
    of the IR's structure) but never called.
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module | None, scale: float,
                 after: nn.Module | None, drop_path: float = 0.0,
                 free_body: bool = False) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.after = after if after is not None else nn.Identity()
        self.scale = scale
        self.drop_path = drop_path
        self.scaled = scale != 1.0
        self.identity_shortcut = shortcut is None
        self.has_after = after is not None
        self.free_body = free_body  # archdsl.inplace.output_is_free of the body

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.body(x)
        fresh = self.free_body or self.scaled  # a tensor the sum may go into
        if self.scaled:
            y = y.mul_(self.scale) if self.free_body else y * self.scale
        if self.drop_path > 0.0 and self.training:
            y = drop_path(y, self.drop_path)  # a product: fresh, and not saved for backward
            fresh = True
        s = x if self.identity_shortcut else self.shortcut(x)
        if fresh:
            y += s
        else:
            y = s + y
        if self.has_after:
            y = self.after(y)
        return y

    def extra_repr(self) -> str:
        drop = f", drop_path={self.drop_path:g}" if self.drop_path else ""
        return f"scale={self.scale:g}{drop}"


def drop_path(y: torch.Tensor, p: float) -> torch.Tensor:
    """Stochastic depth (Huang et al. 2016): drop the whole residual body of each sample with
    chance ``p``, and scale the kept ones by 1 / (1 - p) so the expectation is unchanged."""
    keep = 1.0 - p
    mask = torch.empty((y.shape[0],) + (1,) * (y.dim() - 1), dtype=y.dtype, device=y.device)
    return y * mask.bernoulli_(keep).div_(keep)


_INPLACE_CAPABLE = tuple(getattr(nn, ACTIVATIONS[a][1]) for a in INPLACE_ACTIVATIONS)


def make_first_inplace(module: nn.Module) -> None:
    """Switch the module's first operation to in place if it is an activation that can be.

    For a module whose input is a tensor nobody else reads (see :mod:`archdsl.inplace`).
    """
    if isinstance(module, _INPLACE_CAPABLE):
        module.inplace = True
    elif type(module) in _PLAIN_SEQUENCES and len(module) > 0:
        make_first_inplace(module[0])  # not in a merge: its branches share their input


def _sequence(node: ir.Seq, items: OrderedDict[str, nn.Module]) -> Sequence:
    """Items in sequence; an activation that follows an item with a free output works in place
    (timm's ``ReLU(inplace=True)`` between the separable convolutions of Xception)."""
    for before, item in zip(node.items, list(items.values())[1:], strict=False):
        if output_is_free(before):
            make_first_inplace(item)
    return Sequence(items)


class WithAux(nn.Sequential):
    """The network's sequence when it has auxiliary heads (GoogLeNet, Inception-v3).

    The items keep their names and order (module paths stay the IR paths); the heads sit at the
    positions ``aux_at``; head k reads ``saved[reads[k]]``, the output of an earlier item kept
    in the forward pass (the items at ``keep``, -1 being the input). The main path goes on
    unchanged past a head.
    As in torchvision, the heads run in training mode only: ``model(x)`` is the main output in
    eval mode and ``(main, aux_1, aux_2, ...)`` (heads in spec order) in training mode. Scripted
    with TorchScript, which needs one return type, it always returns ``(main, [aux...])``.
    """

    def __init__(self, items: OrderedDict[str, nn.Module], aux_at: list[int],
                 taps: list[int]) -> None:
        super().__init__(items)
        self.aux_at = aux_at
        self.keep = sorted(set(taps))
        self.reads = [self.keep.index(t) for t in taps]

    def forward(self, x: torch.Tensor):  # noqa: ANN201, D102 -- see the class docstring
        aux: list[torch.Tensor] = []
        saved: list[torch.Tensor] = []
        if -1 in self.keep:
            saved.append(x)
        for i, item in enumerate(self):
            if i in self.aux_at:
                if self.training:
                    aux.append(item(saved[self.reads[self.aux_at.index(i)]]))
            else:
                x = item(x)
                if i in self.keep:
                    saved.append(x)
        if torch.jit.is_scripting():
            return x, aux
        return self._eager_outputs(x, aux)

    @torch.jit.unused
    def _eager_outputs(self, x: torch.Tensor, aux: list[torch.Tensor]):  # noqa: ANN202
        return (x, *aux) if self.training and aux else x


def build_module(node: ir.Node) -> nn.Module:
    """Build the module for an IR node and everything below it."""
    if isinstance(node, ir.Layer):
        return node.kind_def.build(node.fields, node.in_shape, node.out_shape)
    if isinstance(node, ir.Seq):
        items = OrderedDict((c.name, build_module(c)) for c in node.items)
        aux_at = [i for i, c in enumerate(node.items) if isinstance(c, ir.Aux)]
        # With aux heads, an item's output may be read again by a head: nothing goes in place.
        return WithAux(items, aux_at, _taps(node)) if aux_at else _sequence(node, items)
    if isinstance(node, ir.Aux):
        assert node.head is not None
        return nn.Sequential(OrderedDict(head=build_module(node.head)))
    if isinstance(node, ir.Merge):
        branches = OrderedDict((b.name, build_module(b)) for b in node.branches)
        if node.split:
            return SplitConcat(branches, list(node.split))
        if node.op == "add":
            return Sum(branches, sum_target(node))
        return {"cat": Concat, "mul": Product}[node.op](branches)
    if isinstance(node, ir.Residual):
        assert node.body is not None
        after = build_module(node.after) if node.after else None
        if after is not None:
            make_first_inplace(after)  # it reads the sum, which only the block holds
        return Residual(
            build_module(node.body),
            build_module(node.shortcut) if node.shortcut else None,
            node.scale,
            after,
            node.drop_path,
            output_is_free(node.body),
        )
    raise TypeError(f"unknown IR node {type(node).__name__}")


def _taps(seq: ir.Seq) -> list[int]:
    """For each aux head of the sequence, the index of the item whose output it reads (-1: the
    sequence's input)."""
    last, where, taps = -1, {}, []
    for i, item in enumerate(seq.items):
        if isinstance(item, ir.Aux):
            taps.append(where[item.source] if item.source is not None else last)
        else:
            last = where[item.name] = i
    return taps
