"""Auxiliary heads (``aux:``), reading an earlier output (``from:``) and leaving nodes out
(``when:``): shapes, counts, the torch model in training and eval mode, TorchScript and
torch.compile, located errors, and Inception-v3's head against timm and torchvision.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
import torchvision
from conftest import SPECS

import archdsl
from archdsl import SpecErrors
from archdsl.schema import spec_schema

TINY = """
name: tiny
input: [3, 16, 16]
params: {aux: true}
network:
  - conv 3x3 8 relu as stem
  - {aux: [gap, linear 5], name: early, when: $aux}
  - conv 3x3 12 /2 relu as body
  - {aux: [conv 1x1 4, gap, linear 3], name: late, from: stem, when: $aux}
  - gap
  - linear 10 as fc
"""


def errors_of(path: Path, **kw: object) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        archdsl.load(path, **kw)
    return [str(e) for e in info.value.errors]


def located(err: str, path: Path, text: str, starts: str) -> bool:
    """The error names ``path:line:col`` and the spec has ``starts`` there."""
    if not err.startswith(str(path) + ":"):
        return False
    line, col = err[len(str(path)) + 1:].split(":")[:2]
    return text.splitlines()[int(line) - 1][int(col) - 1:].startswith(starts)


def test_heads_are_side_outputs(write_spec) -> None:
    spec = archdsl.load(write_spec(TINY))
    assert spec.aux_output_shapes == {"early": (5,), "late": (3,)}
    assert spec.output_shape == (10,)
    by_name = {n.name: n for n in spec.top_level()}
    # The main path goes on unchanged past a head; "late" reads the stem's 8x16x16 output.
    assert by_name["early"].out_shape == by_name["stem"].out_shape == (8, 16, 16)
    assert by_name["late"].in_shape == (8, 16, 16) and by_name["late"].out_shape == (12, 8, 8)
    heads = 8 * 5 + 5 + (8 * 4 + 4) + 4 * 3 + 3
    plain = archdsl.load(write_spec(TINY), aux=False)
    assert spec.param_count() == plain.param_count() + heads
    assert [n.name for n in plain.top_level()] == ["stem", "body", "gap", "fc"]


def test_model_returns_heads_in_training_mode_only(write_spec) -> None:
    spec = archdsl.load(write_spec(TINY))
    model = spec.build()
    x = torch.randn(2, 3, 16, 16)
    model.train()
    main, early, late = model(x)
    # Each head is its module applied to the tensor it taps; the main path is the plain net.
    stem = model.stem(x)
    torch.testing.assert_close(early, model.early(stem))
    torch.testing.assert_close(late, model.late(stem))
    torch.testing.assert_close(main, model.fc(model.gap(model.body(stem))))
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    torch.testing.assert_close(out, main)
    paths = dict(model.named_modules())
    assert {"early", "early.head", "late.head.0"} <= set(paths)
    assert sum(p.numel() for p in model.parameters()) == spec.param_count()


def test_scripts_and_compiles(write_spec) -> None:
    model = archdsl.load(write_spec(TINY)).build()
    x = torch.randn(2, 3, 16, 16)
    scripted = torch.jit.script(model)
    model.train()
    scripted.train()
    main, heads = scripted(x)  # TorchScript needs one return type: (main, [heads])
    eager = model(x)
    torch.testing.assert_close(main, eager[0])
    for a, b in zip(heads, eager[1:], strict=True):
        torch.testing.assert_close(a, b)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    assert len(compiled(x)) == 3
    model.eval()
    torch.testing.assert_close(compiled(x), model(x))


def test_when_leaves_out_items_and_branches(write_spec) -> None:
    path = write_spec("""
        name: w
        input: [3, 8, 8]
        params: {wide: false}
        network:
          - {conv: 1x1 4, when: $wide}
          - concat:
              - conv 1x1 2
              - {conv: 1x1 3, when: $wide}
          - {conv: 1x1 5, when: $(not wide), name: narrow}
        """)
    spec = archdsl.load(path)
    # Unnamed items keep the name of their place in the list, whatever is left out before them.
    assert [n.name for n in spec.top_level()] == ["1", "narrow"]
    assert spec.top_level()[0].out_shape == (2, 8, 8)
    wide = archdsl.load(path, wide=True)
    assert [n.out_shape[0] for n in wide.top_level()] == [4, 5]


BAD = {
    # body text, the text the error points at, words of the message
    "in_block": ("blocks:\n  b:\n    seq: [conv 1x1 4, {aux: [gap]}]\nnetwork: [b]\n",
                 "{aux", "only in the network's own sequence"),
    "repeated": ("network:\n  - conv 1x1 4\n  - {aux: [gap], repeat: 2}\n",
                 "{aux", "only in the network's own sequence"),
    "unknown_from": ("network:\n  - conv 1x1 4 as a\n  - {aux: [gap], from: b}\n  - gap as b\n",
                     "b}", "'b' is not an earlier item"),
    "from_not_aux": ("network:\n  - {conv: 1x1 4, from: x}\n", "from", "only an aux head"),
    "when_type": ("network:\n  - {conv: 1x1 4, when: maybe}\n", "maybe", "expected true or"),
    "when_in_residual": ("network:\n  - residual:\n      body: {conv: 1x1 3, when: false}\n",
                         "false", "when: only the items"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_errors_are_located(write_spec, case: str) -> None:
    body, starts, words = BAD[case]
    text = "name: bad\ninput: [3, 8, 8]\n" + body
    path = write_spec(text)
    errs = errors_of(path)
    assert any(words in e and located(e, path, text, starts) for e in errs), errs


def test_schema_knows_aux_when_and_from() -> None:
    node = spec_schema()["$defs"]["node"]
    mapping = next(s for s in node["anyOf"] if s.get("type") == "object")
    assert {"aux", "when", "from"} <= set(mapping["properties"])


# --- Inception-v3's auxiliary head -----------------------------------------------------------

def test_inception_v3_aux_head_is_timms_and_torchvisions() -> None:
    spec = archdsl.load(SPECS / "inception_v3.yaml", aux=True)
    assert spec.aux_output_shapes == {"aux_logits": (1000,)}
    reference = timm.create_model("inception_v3", pretrained=False, aux_logits=True)
    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    published = 27_161_264  # reference-numbers.md
    assert spec.param_count() == published
    assert sum(p.numel() for p in reference.parameters()) == published
    assert sum(p.numel() for p in tv.parameters()) == published
    model = spec.build()
    ours, theirs = model.state_dict(), reference.state_dict()
    with torch.no_grad():
        for (k, a), (r, b) in zip(ours.items(), theirs.items(), strict=True):
            assert a.shape == b.shape, (k, r)
            a.copy_(b)
    x = torch.randn(2, 3, 299, 299)
    model.train()
    reference.train()
    with torch.no_grad():
        main, aux = model(x)
        ref_main, ref_aux = reference(x)
    torch.testing.assert_close(main, ref_main, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(aux, ref_aux, atol=1e-4, rtol=1e-4)
    model.eval()
    reference.eval()
    with torch.no_grad():
        # timm returns (main, aux) in both modes; archdsl, like torchvision, only in training.
        torch.testing.assert_close(model(x[:1]), reference(x[:1])[0], atol=1e-4, rtol=1e-4)
