"""The subcommands of ``archdsl``, one module each.

A command module has ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``, and
imports torch only inside ``run`` when it needs it, so that ``archdsl --help`` stays fast.
Modules are found by name; ``ORDER`` fixes how the help lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

ORDER = ("list", "build", "validate", "cost", "match", "draw", "port", "export", "checkpoint",
         "schema")


def command_modules() -> list[tuple[str, ModuleType]]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    return [(n, importlib.import_module(f"{__name__}.{n}")) for n in names]
