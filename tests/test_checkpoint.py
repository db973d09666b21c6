"""Checkpoints: the format follows the file name; .pt and .safetensors load back into the same
network from the spec they carry (hash checked); a tampered spec or hash is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SPECS

import archdsl
from archdsl.checkpoint import CheckpointError, read_checkpoint, save
from archdsl.cli import main

SMALL = {"num_classes": 7, "width": 0.25, "input": "3x32x32"}


def _saved(tmp_path: Path, name: str) -> tuple[archdsl.Spec, torch.nn.Module, Path]:
    # A copy of the spec that is deleted after saving: loading must not need the file.
    copy = tmp_path / "work" / "resnet18.yaml"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(SPECS / "resnet18.yaml", copy)
    spec = archdsl.load(copy, **SMALL)
    torch.manual_seed(0)
    model = spec.build().eval()
    for m in model.modules():  # non-trivial statistics, so that buffers are checked too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    target = tmp_path / name
    save(spec, model, target)
    shutil.rmtree(copy.parent)
    return spec, model, target


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.safetensors"])
def test_round_trip_gives_equal_outputs(tmp_path: Path, name: str) -> None:
    spec, model, target = _saved(tmp_path, name)
    ckpt = archdsl.load_checkpoint(target)
    assert ckpt.sha256 == spec.sha256() and ckpt.spec.params == spec.params
    assert ckpt.spec.input_shape == (3, 32, 32) and not ckpt.model.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing else left behind


def test_tampered_spec_or_hash_is_refused(tmp_path: Path, capsys) -> None:
    _, _, target = _saved(tmp_path, "model.pt")
    data = read_checkpoint(target)
    top = next(iter(data["spec_sources"]))
    data["spec_sources"][top] = data["spec_sources"][top].replace("num_classes: 1000",
                                                                  "num_classes: 1001")
    torch.save(data, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="spec hash does not match") as exc:
        archdsl.load_checkpoint(tmp_path / "tampered.pt")
    assert exc.value.check_failed
    assert main(["checkpoint", str(tmp_path / "tampered.pt")]) == 1
    assert "FAILED" in capsys.readouterr().err

    _, _, st = _saved(tmp_path, "model.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(st), framework="pt") as f:
        meta = f.metadata()
    meta["spec_sha256"] = "0" * 64
    save_file(load_file(str(st)), str(tmp_path / "tampered.safetensors"), metadata=meta)
    assert main(["checkpoint", str(tmp_path / "tampered.safetensors"), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["ok"] is False and "hash" in out["problem"]


def test_weights_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    _, _, target = _saved(tmp_path, "model.pt")
    data = read_checkpoint(target)
    key = next(k for k in data["state_dict"] if k.endswith("weight"))
    data["state_dict"][key] = torch.zeros(1)
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        archdsl.load_checkpoint(tmp_path / "bad.pt")


def test_checkpoint_command_reports_the_spec(tmp_path: Path, capsys) -> None:
    spec, _, target = _saved(tmp_path, "model.safetensors")
    assert main(["checkpoint", str(target), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["ok"] is True and out["format"] == "safetensors"
    assert out["spec_name"] == "resnet18" and out["spec_sha256"] == spec.sha256()
    assert out["knobs"]["width"] == 0.25 and out["params"] == spec.param_count()
    # A plain state dict is not a checkpoint: a usage error, not a traceback.
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")
    assert main(["checkpoint", str(tmp_path / "plain.pt")]) == 2
    assert "not an archdsl checkpoint" in capsys.readouterr().err


@pytest.mark.slow  # the ONNX export
def test_output_format_follows_the_file_name(tmp_path: Path, capsys) -> None:
    import onnx
    base = ["build", "resnet18", "--set", "num_classes=7,width=0.25", "--input", "3x32x32"]
    assert main([*base, "-o", str(tmp_path / "m.onnx")]) == 0
    graph = onnx.load(str(tmp_path / "m.onnx"))  # real ONNX, not a pickle
    onnx.checker.check_model(graph)
    assert [d.dim_value for d in graph.graph.output[0].type.tensor_type.shape.dim] == [1, 7]
    assert main([*base, "-o", str(tmp_path / "m.pkl")]) == 2
    err = capsys.readouterr().err
    assert "unknown file ending '.pkl'" in err and ".safetensors" in err
    assert not (tmp_path / "m.pkl").exists()
    assert main([*base, "-o", str(tmp_path / "m.py")]) == 0
    assert "import torch" in (tmp_path / "m.py").read_text()
