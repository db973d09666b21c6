"""The built wheel carries the library: install it into a clean virtual environment (no torch,
no system site-packages; pydantic and PyYAML come from the package index) and use networks by
name from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow
SHIPPED = ("archdsl", "specs", "setup.py", "pyproject.toml", "README.md")


def _run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_wheel_in_a_clean_venv_lists_and_loads_by_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in SHIPPED:  # a copy, so that building leaves nothing in the checkout
        item = ROOT / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(item, src / name)
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "-w", tmp_path / "dist", src, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("archdsl-*.whl"))

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    bin_dir = env_dir / "bin"
    installed = _run(bin_dir / "pip", "install", "--progress-bar", "off", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    listed = _run(bin_dir / "archdsl", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "inception_v4" in listed.stdout and "resnet50" in listed.stdout
    cost = _run(bin_dir / "archdsl", "cost", "inception_v4", cwd=tmp_path)
    assert cost.returncode == 0 and "42.68 M" in cost.stdout, cost.stderr
    code = ("import archdsl, pathlib; s = archdsl.load('resnet50', num_classes=7); "
            "print(s.param_count(), pathlib.Path(archdsl.__file__).parent.parent.name); "
            "import sys; assert 'torch' not in sys.modules")
    loaded = _run(bin_dir / "python", "-c", code, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    count, where = loaded.stdout.split()
    assert where == "site-packages"  # the installed package, not the checkout
    expected = _run(sys.executable, "-c", "import archdsl; print(archdsl.load('resnet50', "
                    "num_classes=7).param_count())", cwd=ROOT)
    assert count == expected.stdout.strip()
    # A copied spec includes lib/resnet.yaml: found in the installed package's library.
    copy = tmp_path / "mine.yaml"
    shutil.copy(ROOT / "specs" / "resnet18.yaml", copy)
    validated = _run(bin_dir / "archdsl", "validate", copy, cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    # Building needs torch: without it, one clear line (exit 2 or 3), never a traceback.
    built = _run(bin_dir / "archdsl", "build", "resnet18", cwd=tmp_path)
    assert built.returncode == 2 and "Traceback" not in built.stderr
    assert "needs torch, which is not installed: pip install 'archdsl[torch]'" in built.stderr
