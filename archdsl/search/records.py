"""A trial's folder, ``<out>/trial-<n>/``, and the same record in Optuna's storage.

- ``spec.yaml``: the candidate as a plain spec (``archdsl build``/``cost`` accept it);
- ``spec.sha256``: its SHA-256, in ``sha256sum`` format (``sha256sum -c spec.sha256`` checks it);
- ``cost.json``: ``archdsl cost --format json --depth layer`` of it;
- ``overview.svg``: ``archdsl draw`` of it (skipped, once said, when Graphviz is missing);
- ``result.json``: metrics, learning curve, seed, time, host and versions (or the failure's
  traceback, or the trial whose result was reused).

The trial's user attributes get the candidate's knob values, its SHA-256, params, MACs and
FLOPs, and after the evaluation its metrics and curve; every file is also uploaded as an
artifact of the trial, so that optuna-dashboard shows them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from .. import __version__
from ..atomic import write_text_atomic
from ..cost import LAYER, render
from ..draw import DrawOptions, RenderError, draw_overview, find_dot, write_figure

_said_no_dot = False


def versions() -> dict[str, str]:
    out = {"archdsl": __version__, "optuna": optuna.__version__,
           "python": platform.python_version()}
    for name in ("torch", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


@dataclass
class TrialRecord:
    folder: Path
    trial: optuna.Trial
    space: Any
    values: dict[str, Any]
    seed: int
    store: Any  # an optuna artifact store, or None
    log: Callable[[str], None]

    def write_candidate(self) -> None:
        global _said_no_dot
        self.folder.mkdir(parents=True, exist_ok=True)
        text = self.space.concrete_spec(self.values)
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        spec = self.space.resolve(self.values)
        write_text_atomic(self.folder / "spec.yaml", text)
        write_text_atomic(self.folder / "spec.sha256", f"{sha}  spec.yaml\n")
        report = spec.cost()
        write_text_atomic(self.folder / "cost.json", render([report], "json", LAYER))
        files = ["spec.yaml", "spec.sha256", "cost.json"]
        try:
            find_dot()
            write_figure(draw_overview(spec, DrawOptions()), self.folder / "overview.svg", "svg")
            files.append("overview.svg")
        except RenderError as exc:
            if not _said_no_dot:
                self.log(f"no overview.svg in the trial folders: {exc}")
                _said_no_dot = True
        total = report.total
        for key, value in {"values": self.values, "spec_sha256": sha, "params": total.params,
                           "macs": total.macs, "flops": total.flops, "seed": self.seed,
                           "folder": str(self.folder), "host": socket.gethostname(),
                           "pid": os.getpid()}.items():
            self.trial.set_user_attr(key, value)
        for name in files:
            self.upload(name)

    def write_result(self, doc: dict[str, Any]) -> None:
        full = {"trial": self.trial.number, "values": self.values, "seed": self.seed,
                "host": socket.gethostname(), "versions": versions(), **doc}
        write_text_atomic(self.folder / "result.json",
                          json.dumps(full, indent=2, sort_keys=True, default=str) + "\n")
        self.upload("result.json")

    def upload(self, name: str) -> None:
        if self.store is None:
            return
        from optuna.artifacts import upload_artifact

        upload_artifact(artifact_store=self.store, file_path=str(self.folder / name),
                        study_or_trial=self.trial)
