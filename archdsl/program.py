"""Reading a spec and its included libraries into one parsed program.

Includes are resolved relative to the including file, and must stay inside the spec's library:
the folder of the top spec, or library folders the caller names explicitly. A spec cannot reach
arbitrary files of the machine through ``include``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .document import SpecDocument, validate_document
from .errors import ErrorSink, Loc, SpecErrors
from .layers import KINDS
from .source import YMap, YNode, YScalar, YSeq, load_file
from .syntax import STRUCTURES, Ast, Parser, SeqAst, Val, to_val


@dataclass
class BlockDef:
    name: str
    loc: Loc
    body: Ast | None
    args: dict[str, Val | None]  # argument -> default (None: required)
    doc: str = ""


@dataclass
class Program:
    """Everything read from a spec and its libraries, parsed, not yet evaluated."""

    path: Path
    doc: SpecDocument
    root: YNode
    sources: dict[str, str]  # file shown name -> text, for checkpoints
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    defaults: dict[str, dict[str, Val]] = field(default_factory=dict)
    params: dict[str, Val] = field(default_factory=dict)
    network: SeqAst | None = None
    input: Val | None = None


def read_program(path: str | Path, library: list[str | Path] | None = None) -> Program:
    """Load a spec with its includes; raise SpecErrors with every problem found."""
    path = Path(path)
    roots = [path.resolve().parent] + [Path(p).resolve() for p in (library or [])]
    sink = ErrorSink()
    files: list[tuple[str, YNode, SpecDocument]] = []
    sources: dict[str, str] = {}
    _read(path, str(path), roots, files, sources, sink, seen=set())
    sink.raise_if_any()
    shown, root, doc = files[0]
    prog = Program(path, doc, root, sources)
    # Libraries first, so that the spec itself has the last word on defaults.
    for fname, yroot, _ in reversed(files):
        _collect(prog, fname, yroot, sink)
    parser = Parser(set(prog.blocks), sink)
    for _, yroot, _ in files:
        blocks = yroot.get("blocks") if isinstance(yroot, YMap) else None
        if isinstance(blocks, YMap):
            for name, (_, ydef) in blocks.items.items():
                _parse_block(prog, name, ydef, parser, sink)
    if doc.network is None:
        sink.add(Loc(shown, 1, 1), "a spec needs a 'network' (a file without one is a library)")
    else:
        ynet = root.get("network")
        assert isinstance(ynet, YSeq)
        prog.network = SeqAst(ynet.loc, items=parser.items(ynet))
    if doc.input is None:
        sink.add(Loc(shown, 1, 1), "a spec needs an 'input' shape, e.g. input: [3, 299, 299]")
    else:
        prog.input = to_val(root.get("input"))
    sink.raise_if_any()
    return prog


def _read(path: Path, shown: str, roots: list[Path], files: list, sources: dict,
          sink: ErrorSink, seen: set[Path]) -> None:
    real = path.resolve()
    if real in seen:
        return
    seen.add(real)
    try:
        root, text = load_file(path, shown)
        if not isinstance(root, YMap):
            raise SpecErrors.one(root.loc, "a spec file is a mapping (name, input, blocks, ...)")
        doc = validate_document(root, shown)
    except SpecErrors as exc:
        sink.extend(exc)
        return
    files.append((shown, root, doc))
    sources[shown] = text
    yinc = root.get("include")
    for i, name in enumerate(doc.include):
        loc = yinc.items[i].loc if isinstance(yinc, YSeq) else root.loc
        target = (path.parent / name).resolve()
        if not any(target.is_relative_to(r) for r in roots):
            sink.add(loc, f"include {name!r} is outside the spec's library ({roots[0]}); "
                          "pass --library DIR to allow another folder")
            continue
        if not target.is_file():
            sink.add(loc, f"include {name!r}: no such file")
            continue
        _read(target, str(Path(shown).parent / name), roots, files, sources, sink, seen)


def _collect(prog: Program, fname: str, root: YNode, sink: ErrorSink) -> None:
    """Merge one file's params, defaults and block names into the program."""
    assert isinstance(root, YMap)
    if isinstance(params := root.get("params"), YMap):
        for k, (_, v) in params.items.items():
            prog.params[k] = to_val(v)
    if isinstance(defaults := root.get("defaults"), YMap):
        for kind, (kloc, fields) in defaults.items.items():
            if kind not in KINDS:
                close = difflib.get_close_matches(kind, list(KINDS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                sink.add(kloc.loc, f"defaults: unknown layer kind {kind!r}{hint}")
                continue
            known = KINDS[kind].fields.model_fields
            assert isinstance(fields, YMap)
            for fname_, (floc, v) in fields.items.items():
                if fname_ not in known:
                    sink.add(floc.loc, f"defaults: {kind} has no field {fname_!r} "
                                       f"(it has {', '.join(known)})")
                    continue
                prog.defaults.setdefault(kind, {})[fname_] = to_val(v)
    if isinstance(blocks := root.get("blocks"), YMap):
        for name, (kloc, _ydef) in blocks.items.items():
            if name in prog.blocks:
                sink.add(kloc.loc, f"block {name!r} is defined twice "
                                   f"(also at {prog.blocks[name].loc})")
            elif name in KINDS or name in STRUCTURES:
                sink.add(kloc.loc, f"block name {name!r} is taken by a layer kind")
            else:
                prog.blocks[name] = BlockDef(name, kloc.loc, None, {})


_BLOCK_META = ("args", "doc", "figure")


def _parse_block(prog: Program, name: str, ydef: YNode, parser: Parser, sink: ErrorSink) -> None:
    block = prog.blocks[name]
    if not isinstance(ydef, YMap):
        block.body = parser.node(ydef)
        return
    block.doc = " ".join(str(ydef.get(k).plain_value()) for k in ("figure", "doc") if ydef.get(k))
    yargs = ydef.get("args")
    if isinstance(yargs, YSeq):
        for a in yargs.items:
            if isinstance(a, YScalar) and isinstance(a.value, str):
                block.args[a.value] = None
            else:
                sink.add(a.loc, "block args: a list of names, or a mapping name: default")
    elif isinstance(yargs, YMap):
        for a, (_, v) in yargs.items.items():
            block.args[a] = None if isinstance(v, YScalar) and v.value is None else to_val(v)
    elif yargs is not None:
        sink.add(yargs.loc, "block args: a list of names, or a mapping name: default")
    rest = {k: v for k, (_, v) in ydef.items.items() if k not in _BLOCK_META}
    if "body" in rest:
        if len(rest) > 1:
            other = next(k for k in rest if k != "body")
            sink.add(ydef.key_loc(other), f"block {name!r}: {other!r} beside 'body'")
        block.body = parser.node(rest["body"])
    else:
        # The node key is written straight in the block: ``{args: [...], concat: [...]}``.
        node_map = YMap({k: v for k, v in ydef.items.items() if k not in _BLOCK_META}, ydef.loc)
        block.body = parser.node(node_map)


def block_arg_names(block: BlockDef) -> list[str]:
    return list(block.args)


def plain(val: Val | None) -> Any:
    return None if val is None else val.value
