"""The ``archdsl`` command: one subcommand per module of :mod:`archdsl.commands`.

Every problem with the user's input ends here as ``file:line:col: message`` lines on stderr and
exit status 2, never as a traceback. Anything else that goes wrong is archdsl's fault: one line
asking for a bug report, exit status 3 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
from collections.abc import Sequence

from . import __version__
from .commands import command_modules
from .errors import SpecErrors
from .jsonout import emit, error_dicts
from .usage import UsageError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # over budget, a port or fvcore check that does not agree
EXIT_USAGE = 2  # a bad spec, command line or file
EXIT_INTERNAL = 3  # a bug in archdsl
EXIT_STATUS = f"""exit status: {EXIT_OK} success; {EXIT_CHECK_FAILED} a check failed (over \
budget, outputs or counts that disagree); {EXIT_USAGE} a bad spec or command line (every error \
located as file:line:col); {EXIT_INTERNAL} an internal error (a bug: please report it; --debug \
shows the traceback)"""
# Optional packages, by the extra of pyproject.toml that installs them.
EXTRAS = {"torch": "torch", "numpy": "torch", "safetensors": "torch", "onnx": "torch",
          "torchvision": "reference", "timm": "reference", "fvcore": "reference",
          "pretrainedmodels": "reference", "huggingface_hub": "reference"}
BUG_REPORT = "please report this bug with the spec and command line (--debug shows the traceback)"


def epilog(module: object) -> str:
    """A subcommand's examples (its ``EXAMPLES``), then its exit status (folded to 100
    columns); tests/test_cli_ux.py checks that every subcommand has examples."""
    status = textwrap.fill(getattr(module, "EXIT_STATUS", EXIT_STATUS), 99)
    examples = getattr(module, "EXAMPLES", "")
    return f"examples:\n{examples}\n\n{status}" if examples else status


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archdsl",
        description="Describe convolutional networks in YAML; build, cost and draw them.",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true",
                       help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in command_modules():
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           epilog=epilog(module), parents=[debug],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Text from a spec may not be encodable on this terminal (a lone surrogate, an emoji on a
    # latin-1 console): print an escape instead of failing on it.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = make_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SpecErrors as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        n = len(exc.errors)
        print(f"{n} error{'s' if n != 1 else ''}", file=sys.stderr)
        if getattr(args, "format", None) == "json":  # scripts read the errors on stdout too
            emit(args.command, False, errors=error_dicts(exc.errors))
        return EXIT_USAGE
    except UsageError as exc:
        print(f"archdsl {args.command}: {exc}", file=sys.stderr)
        if getattr(args, "format", None) == "json":
            emit(args.command, False, errors=[{"file": "", "line": 0, "col": 0,
                                               "message": str(exc), "path": ""}])
        return EXIT_USAGE
    except ModuleNotFoundError as exc:  # an optional package: say which extra installs it
        top = (exc.name or "").split(".")[0]
        if top not in EXTRAS:
            return _internal(args, exc)
        print(f"archdsl {args.command}: this needs {top}, which is not installed: "
              f"pip install 'archdsl[{EXTRAS[top]}]'", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``archdsl schema | head``): nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- so that exiting cannot fail again
        return 141
    except Exception as exc:  # noqa: BLE001 -- the last resort: RecursionError, MemoryError too
        return _internal(args, exc)


def _internal(args: argparse.Namespace, exc: BaseException) -> int:
    if args.debug:
        traceback.print_exception(exc)
    what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300] if str(exc) else \
        type(exc).__name__
    print(f"archdsl {args.command}: internal error ({what}); {BUG_REPORT}", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
