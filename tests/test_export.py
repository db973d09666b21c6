"""``archdsl export``: every spec as a standalone PyTorch file, checked in a fresh process that
never imports archdsl: the same state-dict keys and shapes as ``spec.build()``, the same eval
outputs (to the bit) with the same weights, ruff-clean, and (on a few) TorchScript,
``torch.compile(fullgraph=True)`` and ONNX export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from conftest import ROOT, SPECS, network_specs
from test_constructs import NET as CONSTRUCTS

import archdsl
from archdsl import SpecErrors
from archdsl.cli import main

# Knob variants the other tests use, beside every spec at its defaults.
VARIANTS = [
    ("inception_v3", {"aux": True}),
    ("googlenet", {"aux": True}),
    ("googlenet_torchvision", {"aux": True}),
    ("vgg_a", {"bn": True}),
    ("resnet50", {"stride_at": "3x3"}),
    ("mobilenet_v1", {"width": 1.25, "act": "relu6"}),
    ("inception_resnet_v1", {"depth": 0.4}),
    ("resnet20", {"shortcut": "B"}),
    ("resnet20", {"residual": False}),
    ("mobilenet_v3_large", {"width": 0.75}),
]
# Exported files that also go through TorchScript, torch.compile and ONNX. The small specs
# below cover every structure and kind of the newer networks (MobileNetV3 would add 8 s).
HEAVY = {"inception_v4", "resnet50", "inception_v3+aux", "lenet5", "constructs", "merges"}

# Blocks that are merges: an identity branch in some calls only (MobileNetV2's shortcut where
# the shape is kept), a gate, a channel split.
MERGES = """
name: merges
input: [3, 12, 12]
defaults:
  conv: {norm: batchnorm, act: relu}
blocks:
  inverted:
    args: {c: null, s: 1}
    add:
      - identity: {}
        when: $(s == 1 and in.channels == c)
      - [conv 1x1 $(2 * in.channels), conv 3x3 $(2 * in.channels) depthwise /$s, conv 1x1 $c noact]
  gate:
    mul: [[], [gap keepdims mean, conv 1x1 $in.channels linear act=sigmoid]]
  split_unit:
    concat:
      split: [2, 6]
      branches: [[], conv 1x1 4]
network:
  - conv 3x3 8
  - inverted 8
  - split_unit
  - inverted 16 2
  - inverted 16
  - gate
  - gap
  - linear 10
"""

# Stochastic depth in every form the exporter writes: a block's residual with a rate per call
# (0 among them: no draw at all), one rate for all calls, and a residual outside any block.
STOCHASTIC_DEPTH = """
name: stochastic_depth
input: [3, 12, 12]
params: {drop: 0.3}
defaults:
  conv: {norm: batchnorm, act: relu}
blocks:
  unit:
    args: {c: null, p: 0.0}
    residual:
      body: [conv 3x3 $c, conv 3x3 $c noact]
      drop_path: $p
      after: relu
  fixed:
    residual:
      body: [conv 3x3 $in.channels noact]
      drop_path: 0.5
network:
  - conv 3x3 8
  - unit 8 p=0.0
  - unit 8 p=0.1
  - unit 8 p=0.2
  - fixed x2
  - residual:
      body: [conv 1x1 8 noact]
      drop_path: $drop
  - gap
  - linear 10
"""
# Specs written here, run in training mode too (the random draws of drop_path must match).
INLINE = {"constructs": CONSTRUCTS, "stochastic_depth": STOCHASTIC_DEPTH, "merges": MERGES}

# Weights from the keys and shapes alone, so that both processes make the same state dict
# without writing it (VGG's is 0.5 GB); batch norms get statistics that are not the identity.
FILL = r'''
def fill(model):
    with torch.no_grad():
        for i, (key, t) in enumerate(model.state_dict().items()):
            if not t.is_floating_point():
                continue
            # Uniform in [0, 1): a prime-length random run, repeated (fast for VGG's 100M).
            flat = t.view(-1)
            run = torch.rand(min(t.numel(), 100003), generator=torch.Generator().manual_seed(i))
            for start in range(0, t.numel(), run.numel()):
                flat[start:start + run.numel()] = run[: t.numel() - start]
            if t.dim() == 1 and key.endswith(("weight", "running_var")):
                t.add_(0.5)
            elif t.dim() == 1:
                t.sub_(0.5).mul_(0.2)
            else:
                t.sub_(0.5).mul_((12.0 / t[0].numel()) ** 0.5)
'''

CHECKER = FILL + r'''
import importlib.util, json, sys, time
import torch

cases = json.loads(sys.argv[1])
results = {}
for case in cases:
    start = time.perf_counter()
    spec = importlib.util.spec_from_file_location(case["id"].replace("+", "_"), case["file"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, module.__all__[0])()
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    data = torch.load(case["data"], weights_only=True)
    fill(model)
    model.eval()
    with torch.no_grad():
        out = model(data["x"])
    res = {"shapes": shapes, "diff": (out - data["ref"]).abs().max().item(),
           "inplace": sorted(n for n, m in model.named_modules() if getattr(m, "inplace", 0))}
    if case["heavy"]:
        with torch.no_grad():
            scripted = torch.jit.script(model)(data["x"])
            if isinstance(scripted, tuple):  # (main, [aux...]) when scripted
                scripted = scripted[0]
            res["script"] = (scripted - out).abs().max().item()
            compiled = torch.compile(model, fullgraph=True, backend="eager")
            res["compile"] = (compiled(data["x"]) - out).abs().max().item()
        torch.onnx.export(model, (data["x"],), case["file"] + ".onnx", dynamo=False)
        res["onnx"] = True
    if data.get("train_ref") is not None:
        model.train()
        torch.manual_seed(0)
        outs = model(data["x"])
        outs = [outs] if isinstance(outs, torch.Tensor) else outs
        res["train"] = [(o - r).abs().max().item() for o, r in zip(outs, data["train_ref"])]
    res["time"] = time.perf_counter() - start
    results[case["id"]] = res
results["archdsl_imported"] = any(m.split(".")[0] == "archdsl" for m in sys.modules)
print(json.dumps(results))
'''


namespace: dict = {"torch": torch}
exec(FILL, namespace)  # the very function the checker runs
fill = namespace["fill"]


def small_input(path: Path, **knobs: object) -> archdsl.Spec:
    """The spec at a smaller input where it accepts one (speed), else at its own."""
    spec = archdsl.load(path, **knobs)
    c, h, w = spec.input_shape
    for size in (h // 4, h // 2, round(h * 0.75)):
        try:
            return archdsl.load(path, input=(c, size, round(w * size / h)), **knobs)
        except SpecErrors:
            continue
    return spec


def cases() -> list[tuple[str, Path | None, dict]]:
    """(id, spec file, knobs); no file: a spec of :data:`INLINE`."""
    out: list[tuple[str, Path | None, dict]] = [(p.stem, p, {}) for p in network_specs()]
    for stem, knobs in VARIANTS:
        tag = "+".join(f"{k}" if v is True else f"{k}={v}" for k, v in knobs.items())
        out.append((f"{stem}+{tag}", SPECS / f"{stem}.yaml", knobs))
    return out + [(name, None, {}) for name in INLINE]


def prepare(case_id: str, path: Path | None, knobs: dict, folder: Path) -> tuple[dict, dict]:
    """Export one case; save its input and the built model's outputs with the filled weights.
    The job for the checker, and the built model's state-dict shapes."""
    if path is None:
        path = folder / f"{case_id}.yaml"
        path.write_text(INLINE[case_id], encoding="utf-8")
    # The aux head's 5x5 conv needs Inception-v3's full 299x299 input.
    spec = archdsl.load(path, **knobs) if knobs.get("aux") else small_input(path, **knobs)
    # The checker runs on one thread: so does the reference, or the kernels' sums may be
    # ordered otherwise and differ in the last bit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _prepare(case_id, spec, knobs, folder)
    finally:
        torch.set_num_threads(threads)


def _prepare(case_id: str, spec: archdsl.Spec, knobs: dict, folder: Path) -> tuple[dict, dict]:
    model = spec.build()
    fill(model)
    torch.manual_seed(0)
    x = torch.randn(2, *spec.input_shape)
    data = {"x": x}
    with torch.no_grad():
        data["ref"] = model.eval()(x)
    assert torch.isfinite(data["ref"]).all(), case_id
    if knobs.get("aux") or case_id in INLINE:
        model.train()
        torch.manual_seed(0)
        outs = model(x)
        data["train_ref"] = [t.detach() for t in ([outs] if case_id in INLINE else outs)]
    file = folder / f"{case_id.replace('+', '_').replace('=', '_')}.py"
    file.write_text(archdsl.export_source(spec), encoding="utf-8")
    torch.save(data, folder / f"{file.stem}.pt")
    job = {"id": case_id, "file": str(file), "data": str(folder / f"{file.stem}.pt"),
           "heavy": case_id in HEAVY}
    inplace = sorted(n for n, m in model.named_modules() if getattr(m, "inplace", False))
    return job, {"shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
                 "inplace": inplace}


def check(jobs: list[dict], folder: Path) -> subprocess.Popen:
    """The checker on a batch of jobs, in a fresh process that starts without archdsl."""
    return subprocess.Popen([sys.executable, "-c", CHECKER, json.dumps(jobs)], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Export every case and check them in two fresh processes: the slow TorchScript, compile
    and ONNX checks run while this process prepares the other cases."""
    folder = tmp_path_factory.mktemp("export")
    expected: dict[str, dict] = {}
    batches: list[list[dict]] = [[], []]
    for case_id, path, knobs in sorted(cases(), key=lambda c: c[0] not in HEAVY):
        job, expected[case_id] = prepare(case_id, path, knobs, folder)
        batches[not job["heavy"]].append(job)
        if len(batches[0]) == len(HEAVY) and not batches[1]:
            heavy = check(batches[0], folder)
    got: dict = {}
    for proc in (heavy, check(batches[1], folder)):
        out, err = proc.communicate()
        assert proc.returncode == 0, err[-3000:]
        for key, value in json.loads(out).items():
            got[key] = got.get(key, False) or value if key == "archdsl_imported" else value
    return {"folder": folder, "expected": expected, "got": got}


def test_the_checker_never_imported_archdsl(exported: dict) -> None:
    assert exported["got"]["archdsl_imported"] is False


@pytest.mark.parametrize("case_id", [c[0] for c in cases()])
def test_state_dict_and_outputs_equal_the_built_model(exported: dict, case_id: str) -> None:
    got, expected = exported["got"][case_id], exported["expected"][case_id]
    assert got["shapes"] == expected["shapes"]
    assert list(got["shapes"]) == list(expected["shapes"])  # same order too
    assert got["diff"] == 0.0


@pytest.mark.parametrize("case_id", [c[0] for c in cases()])
def test_activations_in_place_where_the_built_models_are(exported: dict, case_id: str) -> None:
    """The exported file's activations work in place exactly where the built model's do (the
    rule of archdsl.inplace): module paths with ``inplace=True`` are the same."""
    got, expected = exported["got"][case_id], exported["expected"][case_id]
    assert got["inplace"] == expected["inplace"]


def test_aux_heads_in_training_mode(exported: dict) -> None:
    for case_id in ("inception_v3+aux", "googlenet+aux", "googlenet_torchvision+aux"):
        train = exported["got"][case_id]["train"]
        assert len(train) == (2 if case_id.startswith("inception") else 3)
        assert max(train) == 0.0


def test_stochastic_depth_draws_as_the_built_model(exported: dict) -> None:
    for case_id in INLINE:
        assert exported["got"][case_id]["train"] == [0.0], case_id


def test_torchscript_compile_and_onnx(exported: dict) -> None:
    for case_id in HEAVY:
        got = exported["got"][case_id]
        assert got["script"] < 1e-5 and got["compile"] < 1e-5 and got["onnx"], case_id


def test_exported_files_are_ruff_clean(exported: dict) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    run = subprocess.run([str(ruff), "check", "--no-cache", "--config",
                          str(ROOT / "pyproject.toml"), str(exported["folder"])],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]


def test_inception_v4_is_shorter_than_timms() -> None:
    timm_file = Path(timm.__file__).parent / "models" / "inception_v4.py"
    ours = archdsl.export_source(archdsl.load(SPECS / "inception_v4.yaml"))
    assert len(ours.splitlines()) < len(timm_file.read_text().splitlines())


def test_blocks_become_classes_with_their_arguments() -> None:
    text = archdsl.export_source(archdsl.load(SPECS / "inception_v3.yaml"))
    # inception_6 is called with c7 = 128, 160, 192: one class, c7 its parameter.
    assert "class Inception6(nn.Module):" in text and "def __init__(self, c7: int)" in text
    assert "ConvBnReLU(768, c7, 1, eps=0.001)" in text
    assert "nn.Sequential(*[Inception6(160) for _ in range(2)])" in text
    # inception_5 x2 reads 256 then 288 channels: two calls with different arguments.
    assert "nn.Sequential(Inception5(256, 64), Inception5(288, 64))" in text
    v4 = archdsl.export_source(archdsl.load(SPECS / "inception_v4.yaml"))
    assert "nn.Sequential(*[InceptionA() for _ in range(4)])" in v4
    # num_classes and dropout only set the head: constructor arguments with the spec's values.
    assert "def __init__(self, num_classes: int = 1000, dropout: float = 0.2)" in v4
    assert "nn.Linear(1536, num_classes)" in v4 and "nn.Dropout(dropout)" in v4


def test_parts_present_in_some_calls_only() -> None:
    # ResNet-50's first block of each stage projects its shortcut, the others add the identity.
    text = archdsl.export_source(archdsl.load(SPECS / "resnet50.yaml"))
    assert "def __init__(self, in_channels: int, c: int, s: int, shortcut: bool)" in text
    assert "nn.Sequential(ConvBn(in_channels, 4 * c, 1, stride=s)) if shortcut else None" in text
    # The body ends in a batch norm: the sum goes into its output, as in the built model.
    assert "y += (x if self.shortcut is None else self.shortcut(x))" in text
    # The stage runs its repeated blocks in its own loop: each block's input is freed when the
    # block returns (a nested nn.Sequential would hold it through the later blocks).
    assert "        for block in self.bottleneck_2:\n            x = block(x)\n" in text
    # TF-slim's last Inception-ResNet-v2 block: unscaled, no ReLU after the sum.
    v2 = archdsl.export_source(archdsl.load(SPECS / "inception_resnet_v2.yaml"))
    # ReLU after the sum works in place on it, as in the built model.
    assert 'self.after = nn.ReLU(inplace=True) if after == "relu" else None' in v2
    assert 'self.ir_c_last = IrC(1.0, None)' in v2


def test_merge_blocks_read_as_code(tmp_path: Path) -> None:
    text = archdsl.export_source(archdsl.load(SPECS / "mobilenet_v3_large.yaml"))
    assert "class Se(nn.Module):" in text and "return x * self.branch1(x)" in text
    assert "return x + self.branch1(x)" in text  # the bneck rows that keep the shape
    (tmp_path / "merges.yaml").write_text(MERGES)
    text = archdsl.export_source(archdsl.load(tmp_path / "merges.yaml"))
    assert "def __init__(self, in_channels: int, c: int, s: int, identity: bool)" in text
    assert "return x + y if self.identity else y" in text
    assert "Inverted(6, 16, 2, identity=False)" in text
    assert "class SplitUnit(SplitConcat):" in text and "class SplitConcat(nn.Sequential):" in text
    # Stochastic depth: the function the built model runs, in the blocks' forward passes.
    (tmp_path / "depth.yaml").write_text(STOCHASTIC_DEPTH)
    text = archdsl.export_source(archdsl.load(tmp_path / "depth.yaml"))
    assert text.count("def drop_path(") == 1
    assert "if self.drop_path > 0.0 and self.training:" in text  # Unit(0.0), Unit(0.1), ...
    assert "            y = drop_path(y, 0.5)" in text  # every call of fixed: 0.5
    assert "drop_path=drop" in text  # a residual outside any block, the knob's rate


def test_structural_knobs_are_baked_in() -> None:
    text = archdsl.export_source(archdsl.load(SPECS / "mobilenet_v1.yaml", width=0.5))
    assert "def __init__(self, num_classes: int = 1000)" in text
    assert "width=0.5" in text  # said in the network's docstring


def test_cli_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "lenet.py"
    assert main(["export", f"{SPECS / 'lenet5.yaml'}@num_classes=7", "-o", str(target)]) == 0
    text = target.read_text()
    assert "class Lenet5(nn.Module):" in text and "num_classes: int = 7" in text
    assert main(["export", str(SPECS / "vgg_a.yaml"), "--set", "bn=true"]) == 0
    assert "ConvBnReLU(in_channels, c, 3, padding=1, bias=True)" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "missing.yaml")]) == 2
