"""The spec language: both node forms, blocks and arguments, expressions, knobs and includes."""

from __future__ import annotations

import pytest
from conftest import SPECS
from torch_checks import check_every_shape

import archdsl
from archdsl.ir import Merge, Residual, Seq


def layer_fields(spec: archdsl.Spec) -> list[tuple[str, dict]]:
    return [(lay.kind, lay.fields.model_dump()) for lay in spec.ir.layers()]


def test_one_line_and_mapping_forms_are_the_same_layer(write_spec) -> None:
    short = write_spec("""
        name: a
        input: [3, 35, 35]
        network:
          - conv 1x7 192 /2 V nobias bn relu
          - maxpool 3x3 /2 ceil
          - avgpool 3x3 exclude_pad
          - conv 3x3 64 padding=2 dilation=2 groups=4 bias
          - gap
          - dropout 0.2
          - linear 10
    """, "short.yaml")
    long = write_spec("""
        name: a
        input: [3, 35, 35]
        network:
          - conv: {filters: 192, kernel: [1, 7], stride: 2, padding: valid, bias: false,
                   norm: batchnorm, act: relu}
          - maxpool: {kernel: 3, stride: 2, ceil_mode: true}
          - avgpool: {kernel: 3, count_include_pad: false}
          - conv: {filters: 64, kernel: 3, padding: [2, 2], dilation: 2, groups: 4, bias: true}
          - gap: {}
          - dropout: {p: 0.2}
          - linear: {features: 10}
    """, "long.yaml")
    a, b = archdsl.load(short), archdsl.load(long)
    assert layer_fields(a) == layer_fields(b)
    assert a.output_shape == (10,)
    check_every_shape(a)  # rectangular kernel, valid, ceil mode, dilation, groups vs torch


def test_blocks_arguments_defaults_and_expressions(write_spec) -> None:
    path = write_spec("""
        name: b
        input: [3, 32, 32]
        params: {width: 2, num_classes: 5}
        defaults: {conv: {norm: batchnorm, act: relu}}
        blocks:
          pair:
            args: {k: 8, m: null}            # k defaults to 8, m is required
            concat:
              - conv 1x1 $(k * width)
              - [conv 1x1 $k, conv 3x3 $(m + in.channels)]
          expand:
            residual:
              body: [conv 3x3 16, conv 1x1 $in.channels linear]
              scale: $(1 / width)
              after: relu
        network:
          - pair m=4                          # 16 + (3 + 4) = 23 channels
          - pair 4 1 x2                       # positional; repeats see each other's output
          - expand x$width
          - gap
          - linear $num_classes
    """)
    spec = archdsl.load(path)
    top = spec.top_level()
    assert top[0].out_shape == (23, 32, 32)
    assert top[0].args == {"k": 8, "m": 4}
    # repeat 1 sees 23 channels: 8 + (23 + 1); repeat 2 sees 32: 8 + (32 + 1).
    assert isinstance(top[1], Seq) and top[1].repeat == 2
    assert [n.out_shape[0] for n in top[1].items] == [32, 41]
    res = top[2].items[0]
    assert isinstance(res, Residual) and res.scale == 0.5 and res.out_shape == (41, 32, 32)
    assert top[2].repeat == 2
    assert isinstance(top[0], Merge) and top[0].op == "cat"
    check_every_shape(spec)
    # Knobs from Python change the expressions that use them.
    wide = archdsl.load(path, width=3, num_classes=7)
    assert wide.top_level()[0].out_shape == (24 + 7, 32, 32)
    assert wide.top_level()[2].repeat == 3 and wide.output_shape == (7,)


def test_width_knob_rounds_channels(write_spec) -> None:
    path = write_spec("""
        name: w
        input: [3, 32, 32]
        params: {width: 1.0}
        defaults: {conv: {width: $width, norm: batchnorm, act: relu}}
        network:
          - conv 3x3 64
          - residual: [conv 3x3 48, conv 1x1 $in.channels linear width=1]
          - gap
          - linear 10
    """)
    channels = [lay.fields.filters for lay in archdsl.load(path, width=0.75).ir.layers()
                if lay.kind == "conv"]
    assert channels == [48, 40, 48]  # 36 rounds to 40 (a multiple of 8); expansion follows


def test_include_shares_the_stem_of_figure_3() -> None:
    v4 = archdsl.load(SPECS / "inception_v4.yaml")
    stem = v4.top_level()[0]
    assert stem.block == "stem_v4" and stem.out_shape == (384, 35, 35)
    assert "archdsl:lib/inception.yaml" in v4.sources  # the package library's file


def test_in_refers_to_the_block_input(write_spec) -> None:
    path = write_spec("""
        name: c
        input: [5, 20, 30]
        blocks:
          probe: [conv 1x1 $(in.channels * 10 + in.height // 10)]
        network:
          - conv 1x1 $in.width
          - probe
    """)
    spec = archdsl.load(path)
    assert [n.out_shape[0] for n in spec.top_level()] == [30, 302]


@pytest.mark.slow
def test_schema_accepts_the_library_and_rejects_bad_fields() -> None:
    import jsonschema

    from archdsl.schema import spec_schema
    from archdsl.source import load_file

    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted(SPECS.rglob("*.yaml")):
        root, _ = load_file(path, str(path))
        jsonschema.validate(root.plain_value(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"network": [{"conv": {"filters": "many", "kernel": 3}}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"netwrok": []}, schema)
