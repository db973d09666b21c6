"""The constructs of modern CNNs: each one's shapes against torch's, its parameters and fvcore
count against the built model's (at two input sizes), and located errors for its bad uses."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from torch_checks import check_every_shape

import archdsl
from archdsl.cost.check import check_fvcore

NET = """
name: constructs
input: [3, 24, 24]
params: {widths: [8, 16, 32], se: 0.25, drop: 0.2, n: 1}
defaults:
  conv: {norm: batchnorm, act: relu}
blocks:
  se:                                       # squeeze-and-excitation: x * gate(x)
    args: {r: 0.25}
    mul:
      - identity
      - - gap keepdims
        - conv 1x1 $(max(1, int(in.channels * r))) nonorm bias   # commas: block style
        - conv 1x1 $in.channels nonorm bias act=hardsigmoid
  shuffle_unit:                             # ShuffleNet v2, Figure 3(c)
    seq:
      - concat:
          split: true
          branches:
            - []
            - [conv 1x1 $(in.channels // 2), conv 3x3 $(in.channels // 2) depthwise noact,
               conv 1x1 $(in.channels // 2)]
      - shuffle 2
  preact:                                   # He et al. 2016b: BN-ReLU before each conv
    args: {c: null}
    residual:
      body: [batchnorm relu, conv 3x3 $c nonorm noact, batchnorm hardswish,
             conv 3x3 $c nonorm noact]
      drop_path: $drop
  option_a:                                 # CIFAR ResNets' parameter-free shortcut
    args: {c: null}
    residual:
      body: [conv 3x3 $c /2, conv 3x3 $c noact]
      shortcut: [maxpool 1x1 /2, pad_channels $c both]
      after: relu
network:
  - conv 3x3 $(widths[0]) act=hardswish
  - se
  - shuffle_unit x2
  - preact $(widths[0])
  - preact $(widths[0]) x$(n - 1)           # depth 0 when n = 1
  - []
  - option_a $(widths[len(widths) - 2])
  - add: [conv 1x1 $(int(sqrt(256))), [conv 3x3 16, pad_channels $(2 ** int(log2(16))) end]]
  - concat:
      split: [4, 12]
      branches:
        - identity
        - conv 1x1 $(int(log(8, 2)))
  - gap
  - linear 10
"""


def _spec(input_hw: int | None = None, **knobs) -> archdsl.Spec:
    folder = Path(tempfile.mkdtemp())
    path = folder / "constructs.yaml"
    path.write_text(NET)
    shape = None if input_hw is None else (3, input_hw, input_hw)
    return archdsl.load(path, input=shape, **knobs)


@pytest.mark.parametrize("hw", [24, 31])
def test_shapes_params_and_fvcore_equal_torch_and_fvcore(hw: int) -> None:
    spec = _spec(hw)
    check_every_shape(spec)  # a hook on every module; parameters equal
    check = check_fvcore(spec, spec.cost())
    assert check.ok, check.lines()
    model = spec.build()
    buffers = sum(b.numel() for b in model.buffers())
    assert buffers == spec.cost().total.buffers


def test_the_constructs_resolve_as_written() -> None:
    spec = _spec()
    items = {n.name: n for n in spec.top_level()}
    assert items["se"].op == "mul" and items["se"].out_shape == (8, 24, 24)
    gate = items["se"].branches[1]
    assert gate.items[1].out_shape == (2, 1, 1)  # int(8 * 0.25) squeeze channels
    assert items["shuffle_unit"].items[0].items[0].split == (4, 4)
    assert items["preact_2"].repeat == 0 and items["preact_2"].items == []
    assert items["5"].items == [] and items["5"].out_shape == (8, 24, 24)  # [] is the identity
    assert items["option_a"].out_shape == (16, 12, 12)
    assert items["7"].out_shape == (16, 12, 12)  # add: 1x1 conv of sqrt(256) = 16 filters
    assert items["8"].split == (4, 12) and items["8"].out_shape == (4 + 3, 12, 12)


def test_pad_channels_puts_zeros_where_asked() -> None:
    spec = _spec()
    model = spec.build().eval()
    shortcut = dict(model.named_modules())["option_a.shortcut"]
    x = torch.randn(2, 8, 6, 6)
    y = shortcut(x)
    assert y.shape == (2, 16, 3, 3)
    assert torch.equal(y[:, 4:12], x[:, :, ::2, ::2])  # 4 zero maps before, 4 after
    assert not y[:, :4].any() and not y[:, 12:].any()


def test_channel_shuffle_interleaves_groups() -> None:
    spec = _spec()
    model = spec.build().eval()
    shuffle = dict(model.named_modules())["shuffle_unit.0.1"]
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert shuffle(x).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_drop_path_drops_whole_bodies_in_training_only() -> None:
    torch.manual_seed(0)
    spec = _spec(drop=0.5)
    block = dict(spec.build().named_modules())["preact"]
    x = torch.randn(64, 8, 5, 5)
    block.eval()
    with torch.no_grad():
        body = block.body(x)
        assert torch.allclose(block(x), x + body)
        block.train()
        block.body.eval()  # batch norm on running statistics: only the drop is random
        out = block(x)
    dropped = [torch.allclose(out[i], x[i]) for i in range(64)]
    kept = [torch.allclose(out[i], x[i] + 2 * body[i], atol=1e-5) for i in range(64)]
    assert all(d or k for d, k in zip(dropped, kept, strict=True))
    assert 10 < sum(dropped) < 54  # about half of 64 dropped


@pytest.mark.parametrize(("edit", "message"), [
    ("split: [4, 12]", "split: 4 + 14 = 18 channels, the input has 16"),
    ("add: [conv 1x1 $(int(sqrt(256)))", "add: branch shapes must be equal or broadcast"),
    ("pad_channels $c both", "pad_channels: 4 channels is fewer than the input's 8"),
    ("shuffle 2", "shuffle: 3 groups must divide the 8 channels"),
    ("drop_path: $drop", "drop_path is the chance of dropping the body"),
    ("- - gap keepdims", "mul: branch shapes must be equal or broadcast"),
])
def test_bad_uses_are_located(tmp_path, edit: str, message: str) -> None:
    bad = {
        "split: [4, 12]": "split: [4, 14]",
        "add: [conv 1x1 $(int(sqrt(256)))": "add: [conv 1x1 $(int(sqrt(64)))",
        "pad_channels $c both": "pad_channels 4 both",
        "shuffle 2": "shuffle 3",
        "drop_path: $drop": "drop_path: 1.0",
        "- - gap keepdims": "- - maxpool 3x3 /2",
    }[edit]
    text = NET
    assert edit in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(edit, bad))
    with pytest.raises(archdsl.SpecErrors) as info:
        archdsl.load(path)
    errors = info.value.errors
    assert any(message in e.message for e in errors), [str(e) for e in errors]
    line = next(i + 1 for i, t in enumerate(path.read_text().splitlines()) if bad in t)
    hit = next(e for e in errors if message in e.message)
    # Located on the construct's own line, or the line of the node holding it.
    assert abs(hit.loc.line - line) <= 3, (str(hit), line)
