"""Every kind of bad spec is refused with all its errors, each located as file:line:col."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import SPECS

import archdsl
from archdsl import SpecErrors

HEAD = "name: bad\ninput: [3, 32, 32]\n"


def errors_of(path: Path, **kw: object) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        archdsl.load(path, **kw)
    return [str(e) for e in info.value.errors]


def test_paper_inception_resnet_v2_names_both_depths() -> None:
    errs = errors_of(SPECS / "inception_resnet_v2_paper.yaml")
    assert len(errs) == 2, errs
    b, c = errs
    # Figure 17 expands to 1154 where Reduction-A gives 1152; Figure 19 to 2048 where
    # Reduction-B gives 1152 + 384 + 288 + 320 = 2144.
    assert "ir_b (repeat 1 of 10): residual add: body gives 1154 channels, shortcut carries 1152" \
        in b
    assert "(and in 9 more repeats)" in b
    assert "ir_c (repeat 1 of 5): residual add: body gives 2048 channels, shortcut carries 2144" \
        in c
    text = (SPECS / "inception_resnet_v2_paper.yaml").read_text().splitlines()
    for err in errs:
        _, line, col = err.split(":")[:3]
        # The location is the residual of the faulty block.
        assert text[int(line) - 1][int(col) - 1:].startswith("residual:")


def test_malformed_yaml(write_spec) -> None:
    path = write_spec(HEAD + "network:\n  - conv 3x3 16\n  - [conv 1x1\n")
    (err,) = errors_of(path)
    assert err.startswith(f"{path}:6:1: malformed YAML")


def test_python_tag_is_refused_and_not_run(write_spec, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_spec(HEAD + f'network:\n  - !!python/object/apply:os.system ["touch {marker}"]\n')
    (err,) = errors_of(path)
    assert err.startswith(f"{path}:4:5: tags (!...) are not allowed")
    assert "not allowed" in err
    assert not marker.exists()


def test_include_outside_the_library(write_spec, tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("blocks: {b: [conv 1x1 8]}\n")
    path = write_spec(HEAD + "include: [../outside.yaml]\nnetwork: [conv 3x3 8]\n",
                      name="lib/spec.yaml")
    (err,) = errors_of(path)
    assert err.startswith(f"{path}:3:11: include '../outside.yaml': outside the spec's library")
    # Named explicitly as a library folder, the same include is allowed.
    spec = archdsl.load(path, library=[tmp_path])
    assert spec.output_shape == (8, 32, 32)


def test_include_through_a_symlink_is_refused(write_spec, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "blocks.yaml").write_text("blocks: {b: [conv 1x1 8]}\n")
    path = write_spec(HEAD + "include: [link/blocks.yaml]\nnetwork: [b]\n", name="lib/spec.yaml")
    os.symlink(outside, path.parent / "link")
    (err,) = errors_of(path)
    assert "outside the spec's library" in err


def test_eval_style_expressions_are_refused(write_spec, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_spec(HEAD + f"""\
        params: {{n: 4}}
        network:
          - conv 3x3 $(__import__("os").system("touch {marker}"))
          - conv 3x3 $((1).__class__)
          - conv 3x3 $(open("/etc/passwd"))
          - conv 3x3 $(n ** 99999)
          - conv 3x3 $(lambda:1)
        """.replace("        ", ""))
    errs = errors_of(path)
    assert [e.split(": ")[0] for e in errs] == [f"{path}:{n}:14" for n in range(5, 10)]
    assert "calling a method is not allowed" in errs[0]
    assert "attribute access is allowed only on 'in'" in errs[1]
    assert "function 'open' is not allowed" in errs[2]
    assert "too large" in errs[3]
    assert "lambda is not allowed" in errs[4]
    assert not marker.exists()


def test_unknown_layer_kind_suggests(write_spec) -> None:
    path = write_spec(HEAD + "network:\n  - conv 3x3 8\n  - maxpol 3x3 /2\n")
    (err,) = errors_of(path)
    assert err == (f"{path}:5:5: unknown layer kind or block 'maxpol'; "
                   "did you mean 'maxpool' or 'avgpool'?")


def test_unknown_field_and_bad_value(write_spec) -> None:
    path = write_spec(
        HEAD + "network:\n  - conv 3x3 8 filtres=3\n  - {conv: {filters: -2, kernel: 3}}\n"
    )
    errs = errors_of(path)
    assert errs[0].startswith(f"{path}:4:16: conv: no field 'filtres' (a conv has ")
    assert errs[0].endswith("did you mean 'filters'?")
    assert errs[1].startswith(f"{path}:5:22: conv: filters:")


def test_block_arguments_unknown_missing_and_recursion(write_spec) -> None:
    path = write_spec(HEAD + """\
        blocks:
          b:
            args: [k, m]
            seq: [conv 3x3 $k, conv 1x1 $m]
          r1: [conv 1x1 8, r2]
          r2: [r1]
        network:
          - b k=8 mm=3
          - b m=2
          - r1
        """.replace("        ", ""))
    errs = errors_of(path)
    assert errs == [
        f"{path}:8:8: r1 (line 12) > r2 (line 7): block 'r1' calls itself (r1 -> r2 -> r1)",
        f"{path}:10:5: block 'b' needs argument(s) m",
        f"{path}:10:11: block 'b' has no argument 'mm' (it takes k, m); did you mean 'm'?",
        f"{path}:11:5: block 'b' needs argument(s) k",
    ]


def test_concat_of_different_sizes_and_valid_conv_too_big(write_spec) -> None:
    path = write_spec(HEAD + """\
        network:
          - concat:
              - conv 3x3 8
              - conv 3x3 8 /2
          - conv 40x40 8 V
        """.replace("        ", ""))
    errs = errors_of(path)
    assert errs[0] == (f"{path}:4:5: concat: branches must agree in size except channels: "
                       "branch0 gives 8x32x32, branch1 gives 8x16x16")
    assert errs[1] == (f"{path}:7:5: conv: a 40x40 window does not fit the input grid 32x32 "
                       "(input 16x32x32)")
    assert len(errs) == 2


def test_residual_mismatch_inside_a_repeated_block(write_spec) -> None:
    path = write_spec(HEAD + """\
        blocks:
          res:
            residual:
              body: [conv 3x3 16, conv 1x1 17 linear]
              after: relu
        network:
          - conv 3x3 16
          - res x3
        """.replace("        ", ""))
    (err,) = errors_of(path)
    assert err == (f"{path}:5:5: res (repeat 1 of 3): residual add: body gives 17 channels, "
                   "shortcut carries 16 (and in 2 more repeats)")


def test_huge_network_is_refused_unless_allowed(write_spec) -> None:
    path = write_spec(HEAD + "network:\n  - conv 3x3 100000\n  - conv 3x3 100000\n")
    (err,) = errors_of(path)
    assert err.startswith(f"{path}:4:3: the network has 90,002,900,000 parameters")
    assert "--allow-large" in err
    # Allowed explicitly, it resolves (nothing is allocated: the IR has no tensors).
    assert archdsl.load(path, allow_large=True).param_count() == 90_002_900_000


def test_alias_bomb_is_refused(write_spec) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    path = write_spec("\n".join(lines) + "\n" + HEAD + "network: [conv 3x3 8]\n")
    (err,) = errors_of(path)
    assert "the document expands to more than 50000 values" in err


def test_unknown_parameter_override(write_spec) -> None:
    path = write_spec(HEAD + "params: {width: 1.0}\nnetwork: [conv 3x3 8]\n")
    (err,) = errors_of(path, widht=2)
    assert "unknown parameter 'widht'" in err and "did you mean 'width'" in err


def test_duplicate_keys(write_spec) -> None:
    path = write_spec(HEAD + "network: [conv 3x3 8]\nnetwork: [conv 3x3 9]\n")
    (err,) = errors_of(path)
    assert err.startswith(f"{path}:4:1: duplicate key 'network' (first at line 3)")


def test_a_line_separator_quoted_from_the_spec_stays_on_the_error_line(write_spec, capsys):
    # U+2028 ends a line for str.splitlines and many readers: the message must escape it, or
    # the text after it is an unlocated line.
    from archdsl.cli import main

    path = write_spec("name: x\ninput: [3, 8, 8]\ndefa\u2028ults:\n  conv: {act: relu}\n"
                      "network: [conv 3x3 4]\n")
    for command in ("validate", "cost"):
        assert main([command, str(path)]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert lines and all(line.startswith(str(path)) for line in lines[:-1]), lines
