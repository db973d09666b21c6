"""Porting weights from files and from the published weights in the user's cache (never the
network): a state-dict file from torchvision's resnet18, an empty cache, and fake caches at the
exact paths timm (Hugging Face hub) and torchvision read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.checkpoint import read_checkpoint
from archdsl.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cache: Path) -> subprocess.CompletedProcess:
    """The CLI in a fresh process whose caches are ``cache`` (and offline, as a user may be)."""
    env = {**os.environ, "HF_HOME": str(cache / "hf"), "TORCH_HOME": str(cache / "torch"),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, "-m", "archdsl.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _outputs_equal(spec: archdsl.Spec, ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    x = torch.randn(2, *spec.input_shape)
    with torch.no_grad():
        a, b = ours.eval()(x), theirs.eval()(x)
    assert torch.allclose(a, b, atol=1e-4 * b.abs().max().item())


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_port_from_a_state_dict_file(tmp_path: Path, capsys, suffix: str) -> None:
    import torchvision

    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None).eval()
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
    source = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(reference.state_dict(), str(source))
    else:
        torch.save(reference.state_dict(), source)
    out = tmp_path / "r18.pt"
    assert main(["port", "resnet18", "--from", str(source), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"weights: from the file {source}" in printed and "WARNING" not in printed
    ckpt = archdsl.load_checkpoint(out)
    _outputs_equal(ckpt.spec, ckpt.model, reference)


def test_random_initialisation_is_said_loudly(tmp_path: Path, capsys) -> None:
    assert main(["port", "resnet18", "--from", "torchvision:resnet18"]) == 0
    out = capsys.readouterr().out
    assert "weights: random initialisation" in out
    assert "WARNING: torchvision:resnet18 was built without its published weights" in out


def test_pretrained_with_an_empty_cache_says_where_it_looked(tmp_path: Path) -> None:
    res = run("port", "resnet18", "--from", "torchvision:resnet18", "--pretrained",
              cache=tmp_path)
    assert res.returncode == 2, res.stderr
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert str(expected) in res.stderr and "not in the cache" in res.stderr
    assert "Traceback" not in res.stderr
    res = run("port", "mobilenet_v1", "--from", "timm:mobilenetv1_100", "--pretrained",
              cache=tmp_path)
    assert res.returncode == 2
    assert str(tmp_path / "hf" / "hub" / "models--timm--mobilenetv1_100") in res.stderr
    assert "model.safetensors" in res.stderr


def test_pretrained_from_a_fake_timm_cache(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(2)
    published = timm.create_model("mobilenetv1_100", pretrained=False).eval()
    repo = published.pretrained_cfg["hf_hub_id"]  # where timm itself would read them
    folder = tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    (folder / "snapshots" / revision).mkdir(parents=True)
    save_file(published.state_dict(), str(folder / "snapshots" / revision / "model.safetensors"))
    out = tmp_path / "mnv1.safetensors"
    res = run("port", "mobilenet_v1", "--set", "act=relu6", "--input", "3x128x128", "--from",
              "timm:mobilenetv1_100", "--pretrained", "-o", str(out), cache=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "weights: published (pretrained)" in res.stdout and "WARNING" not in res.stdout
    ckpt = archdsl.load_checkpoint(out)
    _outputs_equal(ckpt.spec, ckpt.model, published)
    # The file's metadata is the checkpoint's: the spec travels with the published weights.
    assert read_checkpoint(out)["spec_sha256"] == ckpt.sha256


def test_pretrained_from_a_fake_torchvision_cache(tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(3)
    published = torchvision.models.resnet18(weights=None).eval()
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    target = tmp_path / "torch" / "hub" / "checkpoints" / Path(weights.url).name
    target.parent.mkdir(parents=True)
    torch.save(published.state_dict(), target)
    out = tmp_path / "r18.pt"
    res = run("port", "resnet18", "--input", "3x64x64", "--from", "torchvision:resnet18",
              "--pretrained", "-o", str(out), cache=tmp_path)
    assert res.returncode == 0, res.stderr
    _outputs_equal(archdsl.load_checkpoint(out).spec, archdsl.load_checkpoint(out).model,
                   published)


def test_partial_port_exits_0_after_writing(tmp_path: Path, capsys) -> None:
    import torchvision

    reference = torchvision.models.resnet18(weights=None, num_classes=10)
    out = tmp_path / "partial.pt"
    status = main(["port", "resnet18", "--from", "torchvision:resnet18", "--kwargs",
                   json.dumps({"num_classes": 10}), "--partial", "-o", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and out.is_file(), printed
    assert "partial:" in printed and "mismatch" in printed
    del reference
    assert main(["port", "resnet18", "--from", "torchvision:resnet18", "--kwargs",
                 json.dumps({"num_classes": 10})]) == 1  # without --partial: refused
