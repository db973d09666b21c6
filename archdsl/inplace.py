"""Where a built network may work in place, decided on the IR (no torch).

The torch builder and the exported source make the same choice from this one rule: a residual
sum goes into the body's output, and an activation after a layer runs in place, only when that
output is a tensor that no one else reads and whose backward does not read it (torchvision's
``out = self.bn3(out); out += identity``). Convolution, linear and batch norm save their input,
pooling its input or indices, and a concatenation nothing, so their outputs qualify; an
activation does not (ReLU's backward reads its output), nor dropout (the identity in eval) or a
flatten (a view). A layer with a fused activation ends in that activation.
"""

from __future__ import annotations

from . import ir

_FREE_KINDS = ("conv", "sepconv", "linear", "batchnorm", "maxpool", "avgpool",
               "adaptive_avgpool")


def output_is_free(node: ir.Node) -> bool:
    """Whether an in-place operation on the node's output is safe."""
    if isinstance(node, ir.Layer):
        if node.kind not in _FREE_KINDS:
            return node.kind == "gap" and not node.fields.flatten and not node.fields.mean
        return not getattr(node.fields, "act", None)
    if isinstance(node, ir.Seq):
        return bool(node.items) and output_is_free(node.items[-1])
    if isinstance(node, ir.Merge):
        # A concatenation, sum or product is a new tensor (or a sum made in a free branch's
        # output), and none of them saves its result for backward; one branch is passed through.
        return node.op == "cat" or len(node.branches) != 1 or output_is_free(node.branches[0])
    if isinstance(node, ir.Residual):  # the sum is fresh, and an addition saves nothing
        return node.after is None or output_is_free(node.after)
    return False


def sum_target(node: ir.Merge) -> int:
    """The branch of an add merge whose output may take the sum in place, or -1.

    The output must be one nobody else reads (:func:`output_is_free`) and of the
    sum's full shape (not a broadcast one); and adding into it must keep the order of the
    additions: any branch of two (a + b is b + a exactly), else only the first.
    """
    candidates = range(len(node.branches)) if len(node.branches) == 2 else range(1)
    for i in candidates:
        branch = node.branches[i]
        if output_is_free(branch) and tuple(branch.out_shape) == tuple(node.out_shape):
            return i
    return -1
