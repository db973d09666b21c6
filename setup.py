"""The network library ships in the package: ``specs/`` becomes ``archdsl/library/``.

Everything else about the package is in pyproject.toml; this file only adds the packages that
map ``specs/`` (and each folder under it, such as ``specs/lib/``) into the wheel, which
pyproject.toml cannot compute. ``archdsl/library.py`` finds the specs in either place.
"""

from pathlib import Path

from setuptools import find_packages, setup

SPECS = Path(__file__).resolve().parent / "specs"
folders = sorted(p.relative_to(SPECS) for p in SPECS.rglob("*") if p.is_dir())
library = ["archdsl.library", *("archdsl.library." + ".".join(f.parts) for f in folders)]

setup(
    packages=find_packages(include=["archdsl", "archdsl.*"]) + library,
    package_dir={"archdsl.library": "specs"},
    package_data={name: ["*.yaml"] for name in library},
)
