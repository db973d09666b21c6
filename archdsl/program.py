"""Reading a spec and its included libraries into one parsed program.

A program is read once: every file is parsed, every block (called or not) is checked, and every
expression is parsed with its names checked against the scope it is written in. It can then be
resolved many times, with other knobs and another input, without touching the file system or
YAML again (:meth:`Program.resolve`), which is what cost matching and search do.

An include is looked for next to the including file, then in each library folder the caller
names (``--library``), then in the package's own library (:mod:`archdsl.library`), so that a spec
copied anywhere still finds ``lib/resnet.yaml``. The file found must stay inside those folders: a
spec cannot reach arbitrary files of the machine through ``include``. A checkpoint's spec is read
again from the sources it carries, with the same search over their names (``sources=``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import library
from .choices import CHOICE_KEYS, Choice, ChoiceReader, misplaced_choices
from .document import SpecDocument, validate_document
from .errors import ErrorSink, Loc, SpecError, SpecErrors
from .expr import IN_NAME, Template, templates_in, unknown_name_message
from .layers import KINDS
from .library import SOURCE_PREFIX, shown_name
from .names import name_problem
from .source import YMap, YNode, YScalar, YSeq, load_file, load_text
from .suggest import did_you_mean
from .syntax import (
    STRUCTURES,
    Ast,
    AuxAst,
    CallAst,
    MergeAst,
    Parser,
    ResidualAst,
    SeqAst,
    Val,
    check_literal_fields,
)

if TYPE_CHECKING:
    from .layers.base import Shape
    from .search.section import SearchSection
    from .spec import Spec

MAX_INCLUDE_DEPTH = 32


@dataclass
class BlockDef:
    name: str
    loc: Loc
    body: Ast | None
    args: dict[str, Val | None]  # argument -> default (None: required)
    doc: str = ""
    names: set[str] = field(default_factory=set)  # names its own expressions read
    # The knobs a call's result depends on (its own, its callees', the defaults'): a resolved
    # call is reused by later resolutions whose values of these knobs are the same.
    knobs: tuple[str, ...] = ()


@dataclass
class Program:
    """Everything read from a spec and its libraries, parsed and checked, not yet evaluated."""

    path: Path
    doc: SpecDocument
    root: YNode
    # File -> text, for checkpoints and hashes: named as shown in messages, except the package
    # library's files (``archdsl:lib/resnet.yaml``, see library.source_name). The spec first.
    sources: dict[str, str]
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    defaults: dict[str, dict[str, Val]] = field(default_factory=dict)
    params: dict[str, Val] = field(default_factory=dict)
    network: SeqAst | None = None
    input: Val | None = None
    # Problems found while reading that do not stop resolution (an unknown kind in one block
    # does not hide a shape error in another); resolving reports them with its own.
    errors: list[SpecError] = field(default_factory=list)
    # Validated layer fields by (kind, raw values), and resolved block calls by everything they
    # depend on: a search resolves the same layers and blocks with the same values thousands of
    # times.
    field_cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)
    call_cache: dict[tuple, Any] = field(default_factory=dict, repr=False)
    # A space (docs/search.md): its choices, rewritten into knobs when read, and its ``search:``
    # section; every file's tree as rewritten, libraries last (for concrete specs).
    choices: list[Choice] = field(default_factory=list)
    search: SearchSection | None = None
    trees: list[tuple[str, YNode]] = field(default_factory=list, repr=False)

    @property
    def aliases(self) -> dict[str, str]:
        """Dimension name -> the knob that carries it, where they differ (``stage2.c``)."""
        return {c.name: c.knob for c in self.choices if c.knob and c.knob != c.name}

    @property
    def shown(self) -> str:
        """The spec file's name in messages."""
        return self.trees[0][0] if self.trees else next(iter(self.sources))

    @property
    def is_library(self) -> bool:
        return self.network is None

    def check(self) -> None:
        """Raise the problems found while reading, if any."""
        if self.errors:
            raise SpecErrors(self.errors)

    def resolve(self, knobs: dict[str, Any] | None = None, *, input: str | Shape | None = None,
                allow_large: bool = False) -> Spec:
        """The network with these knobs and this input, resolved (no file is read again)."""
        from .spec import resolve_program

        return resolve_program(self, knobs or {}, input=input, allow_large=allow_large)


def read_program(path: str | Path, library: list[str | Path] | None = None, *,
                 shown: str | None = None, sources: Mapping[str, str] | None = None) -> Program:
    """Read a spec (or a library) with its includes.

    ``shown`` names the spec in messages (default: ``path`` as given). With ``sources`` (file
    name -> text, as a checkpoint carries them) nothing is read from disk: ``path`` is the name
    of the top spec among them, and includes are found by name among them.
    Raises SpecErrors for problems that leave nothing to resolve (an unreadable file, malformed
    YAML, a bad top level); every other problem is kept in ``Program.errors``.
    """
    path = Path(path)
    libraries = [(Path(p).resolve(), str(p)) for p in (library or [])]
    reader = _Reader(path.resolve().parent, libraries, sources)
    sink = ErrorSink()
    files: list[tuple[str, YNode, SpecDocument]] = []
    read_sources: dict[str, str] = {}
    _read(path, shown or str(path), reader, files, read_sources, sink, seen=set(), depth=0)
    sources = read_sources
    sink.raise_if_any()
    shown, root, doc = files[0]
    prog = Program(path, doc, root, sources, trees=[(s, r) for s, r, _ in files])
    parser = Parser(set(), sink)
    choice_reader = _read_choices(prog, files, sink)
    # Libraries first, so that the spec itself has the last word on params and defaults.
    for _, yroot, _ in reversed(files):
        _collect_blocks(prog, yroot, sink)
    parser.blocks = set(prog.blocks)
    for _, yroot, _ in reversed(files):
        _collect_params(prog, yroot, parser, sink)
    for _, yroot, _ in files:
        blocks = yroot.get("blocks") if isinstance(yroot, YMap) else None
        if isinstance(blocks, YMap):
            for name, (_, ydef) in blocks.items.items():
                if name in prog.blocks and prog.blocks[name].loc == blocks.key_loc(name):
                    _parse_block(prog, prog.blocks[name], ydef, parser, sink)
    knobs = list(prog.params)
    if doc.network is not None:
        ynet = root.get("network")
        assert isinstance(ynet, YSeq)
        start = len(parser.templates)
        prog.network = SeqAst(ynet.loc, items=parser.items(ynet))
        _check_names(parser.templates[start:], set(knobs) | {IN_NAME}, sink)
        if doc.input is None:
            sink.add(Loc(shown, 1, 1), "a spec needs an 'input' shape, e.g. input: [3, 299, 299]")
        else:
            start = len(parser.templates)
            prog.input = parser.val(root.get("input"))
            _check_names(parser.templates[start:], set(knobs), sink)
    if (ysearch := root.get("search")) is not None:
        from .search.section import read_search

        start = len(parser.templates)
        prog.search = read_search(ysearch, choice_reader, parser, sink)
        _check_names(parser.templates[start:], set(knobs), sink, where="constraints")
    prog.choices = choice_reader.choices
    _check_calls(prog, parser, sink)
    _block_knobs(prog)
    prog.errors = SpecErrors(sink.errors).errors if sink.errors else []
    return prog


def _read_choices(prog: Program, files: list, sink: ErrorSink) -> ChoiceReader:
    """Rewrite every choice of the spec into a knob (archdsl/choices.py); refuse them in
    libraries. Returns the top file's reader, which holds the choices."""
    blocks = {name for _, yroot, _ in files if isinstance(b := yroot.get("blocks"), YMap)
              for name in b.items}
    top = ChoiceReader(sink, blocks, top=True)
    for i, (_, yroot, _) in enumerate(files):
        reader = top if i == 0 else ChoiceReader(sink, blocks, top=False)
        reader.read(yroot)
        if i and (ys := yroot.get("search")) is not None:
            sink.add(ys.loc, "search: only the space file (the spec given on the command line) "
                             "has a search section")
    return top


@dataclass
class _Reader:
    """Where files come from: the disk, searched as the module docstring says, or the sources
    of a checkpoint (``virtual``)."""

    spec_dir: Path
    libraries: list[tuple[Path, str]]  # (resolved folder, as the user gave it)
    virtual: Mapping[str, str] | None = None

    @property
    def roots(self) -> list[Path]:
        return [self.spec_dir, *(p for p, _ in self.libraries), library.library_dir()]

    def load(self, path: Path, shown: str) -> tuple[YNode, str]:
        if self.virtual is None:
            return load_file(path, shown)
        text = self.virtual.get(shown)
        if text is None:
            raise SpecErrors.one(Loc(shown, 1, 1), "not among the sources")
        return load_text(text, shown), text

    def find(self, path: Path, shown: str, name: str, depth: int) -> tuple[Path, str] | str:
        """The include ``name`` of the file at ``path`` (shown as ``shown``): its path and
        shown name, or why it cannot be read."""
        if depth >= MAX_INCLUDE_DEPTH:
            return f"includes nest deeper than {MAX_INCLUDE_DEPTH} files"
        if "\0" in name or len(name) > 1024 or any(len(p) > 255 for p in Path(name).parts):
            return "not a usable file name"
        if self.virtual is not None:
            beside = str(Path(shown).parent / name)
            if shown.startswith(SOURCE_PREFIX):  # archdsl:lib/resnet.yaml includes se.yaml
                rest = Path(shown.removeprefix(SOURCE_PREFIX)).parent / name
                beside = SOURCE_PREFIX + Path(os.path.normpath(rest)).as_posix()
            wanted = os.path.normpath(name)
            for key in [beside, *sorted(self.virtual)]:
                if key in self.virtual and (key in (beside, wanted) or os.path.normpath(
                        key).endswith(os.sep + wanted)):
                    return Path(key), key
            package = SOURCE_PREFIX + Path(wanted).as_posix()  # last, as on disk
            if package in self.virtual:
                return Path(package), package
            return "not among the checkpoint's sources"
        candidates = [(path.parent / name, str(Path(shown).parent / name))]
        candidates += [(folder / name, str(Path(given) / name)) for folder, given in
                       self.libraries]
        package = library.library_dir() / name
        candidates.append((package, shown_name(package)))
        first_problem = ""
        for target, target_shown in candidates:
            problem = _include_problem(target, self.roots)
            if not problem:
                return target.resolve(), target_shown
            if problem != "no such file" and not first_problem:
                first_problem = problem
        if first_problem:
            return first_problem
        where = ", ".join(dict.fromkeys(str(t.parent) for t, _ in candidates))
        return f"no such file (looked in {where})"


def _read(path: Path, shown: str, reader: _Reader, files: list, sources: dict,
          sink: ErrorSink, seen: set[Path], depth: int) -> None:
    try:
        real = path.resolve(strict=False) if reader.virtual is None else path
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        sink.add(Loc(shown, 1, 1), f"cannot read the file: {exc}")
        return
    if real in seen:
        return
    seen.add(real)
    try:
        root, text = reader.load(path, shown)
        if not isinstance(root, YMap):
            raise SpecErrors.one(root.loc, "a spec file is a mapping (name, input, blocks, ...)")
        if misplaced := misplaced_choices(root):
            raise SpecErrors(misplaced)
        doc = validate_document(root, shown)
    except SpecErrors as exc:
        sink.extend(exc)
        return
    files.append((shown, root, doc))
    sources[shown if reader.virtual is not None else library.source_name(real, shown)] = text
    yinc = root.get("include")
    for i, name in enumerate(doc.include):
        loc = yinc.items[i].loc if isinstance(yinc, YSeq) else root.loc
        found = reader.find(path, shown, name, depth)
        if isinstance(found, str):
            sink.add(loc, f"include {name!r}: {found}")
            continue
        _read(found[0], found[1], reader, files, sources, sink, seen, depth + 1)


def _include_problem(target: Path, roots: list[Path]) -> str:
    """Why this candidate of an include cannot be read ('' when it can)."""
    try:
        target = target.resolve(strict=False)
        is_file = target.is_file()
    except (OSError, RuntimeError) as exc:
        return f"cannot be read ({exc.__class__.__name__}: {exc})"
    if not is_file:
        return "no such file"
    if not any(target.is_relative_to(r) for r in roots):
        return (f"outside the spec's library ({roots[0]}); pass --library DIR to allow "
                "another folder")
    if not os.access(target, os.R_OK):
        return "not readable"
    return ""


def _collect_blocks(prog: Program, root: YNode, sink: ErrorSink) -> None:
    """Register one file's block names."""
    assert isinstance(root, YMap)
    if isinstance(blocks := root.get("blocks"), YMap):
        for name, (kloc, _ydef) in blocks.items.items():
            if name in prog.blocks:
                sink.add(kloc.loc, f"block {name!r} is defined twice "
                                   f"(also at {prog.blocks[name].loc})")
            elif name in KINDS or name in STRUCTURES or name in CHOICE_KEYS:
                sink.add(kloc.loc, f"block name {name!r} is taken by a layer kind, structure "
                                   "or choice")
            elif (problem := name_problem(name)) is not None:
                sink.add(kloc.loc, f"block name: {problem}")
            else:
                prog.blocks[name] = BlockDef(name, kloc.loc, None, {})


def _collect_params(prog: Program, root: YNode, parser: Parser, sink: ErrorSink) -> None:
    """Merge one file's params and defaults into the program; both live in the knob scope."""
    assert isinstance(root, YMap)
    if isinstance(params := root.get("params"), YMap):
        for k, (kloc, v) in params.items.items():
            if not _is_name(k):
                sink.add(kloc.loc, f"params: {k!r} is not a name (letters, digits, _)")
                continue
            val = _scoped_val(parser, v, set(prog.params) - {k}, sink)
            if val is not None:
                prog.params[k] = val
    if isinstance(defaults := root.get("defaults"), YMap):
        for kind, (kloc, fields) in defaults.items.items():
            if kind not in KINDS:
                sink.add(kloc.loc, f"defaults: unknown layer kind {kind!r}"
                                   f"{did_you_mean(kind, KINDS, sep='; ')}")
                continue
            if not isinstance(fields, YMap):
                sink.add(fields.loc, f"defaults: {kind} takes a mapping of fields")
                continue
            start = len(parser.templates)
            try:
                vals = {f: parser.val(v) for f, (_, v) in fields.items.items()}
                check_literal_fields(KINDS[kind], vals)
            except SpecErrors as exc:
                sink.extend(exc)
                continue
            # Defaults are evaluated once per resolution, with the knobs only: a block argument
            # that happens to share a knob's name must not change them.
            if _check_names(parser.templates[start:], set(prog.params), sink, where="defaults"):
                prog.defaults.setdefault(kind, {}).update(vals)


_BLOCK_META = ("args", "doc", "figure")


def _parse_block(prog: Program, block: BlockDef, ydef: YNode, parser: Parser,
                 sink: ErrorSink) -> None:
    start = len(parser.templates)
    scope = set(prog.params) | {IN_NAME}
    if not isinstance(ydef, YMap):
        block.body = parser.node(ydef)
        _check_names(parser.templates[start:], scope, sink)
        block.names = {n for t in parser.templates[start:] for n in t.names}
        return
    block.doc = " ".join(str(ydef.get(k).plain_value()) for k in ("figure", "doc") if ydef.get(k))
    arg_start0 = len(parser.templates)
    yargs = ydef.get("args")
    if isinstance(yargs, YSeq):
        for a in yargs.items:
            if isinstance(a, YScalar) and isinstance(a.value, str) and _is_name(a.value):
                block.args[a.value] = None
            else:
                sink.add(a.loc, "block args: a list of names, or a mapping name: default")
    elif isinstance(yargs, YMap):
        for a, (aloc, v) in yargs.items.items():
            if not _is_name(a):
                sink.add(aloc.loc, f"block args: {a!r} is not a name (letters, digits, _)")
                continue
            if isinstance(v, YScalar) and v.value is None:
                block.args[a] = None
                continue
            # A default may use the knobs and the arguments before it.
            val = _scoped_val(parser, v, set(prog.params) | set(block.args) - {a}, sink)
            if val is not None:
                block.args[a] = val
    elif yargs is not None:
        sink.add(yargs.loc, "block args: a list of names, or a mapping name: default")
    start = len(parser.templates)
    rest = {k: v for k, (_, v) in ydef.items.items() if k not in _BLOCK_META}
    if "body" in rest:
        if len(rest) > 1:
            other = next(k for k in rest if k != "body")
            sink.add(ydef.key_loc(other), f"block {block.name!r}: {other!r} beside 'body'")
        block.body = parser.node(rest["body"])
    else:
        # The node key is written straight in the block: ``{args: [...], concat: [...]}``.
        node_map = YMap({k: v for k, v in ydef.items.items() if k not in _BLOCK_META}, ydef.loc)
        block.body = parser.node(node_map)
    _check_names(parser.templates[start:], scope | set(block.args), sink)
    block.names = {n for t in parser.templates[arg_start0:] for n in t.names}


def _scoped_val(parser: Parser, y: YNode, scope: set[str], sink: ErrorSink) -> Val | None:
    """A value with its expressions parsed and their names checked against ``scope``."""
    start = len(parser.templates)
    try:
        val = parser.val(y)
    except SpecErrors as exc:
        sink.extend(exc)
        return None
    _check_names(parser.templates[start:], scope, sink)
    return val


def _check_names(templates: list[Template], scope: set[str], sink: ErrorSink,
                 where: str = "") -> bool:
    """Every name an expression reads must be known where it is written; False if one is not."""
    known = sorted(n for n in scope if n != IN_NAME)
    before = len(sink.errors)
    for t in templates:
        for name in sorted(t.names - scope):
            msg = unknown_name_message(name, known)
            if where:
                msg += f" ({where} see only the knobs in params)"
            sink.add(t.loc, f"expression {t.text}: {msg}")
    return len(sink.errors) == before


def _check_calls(prog: Program, parser: Parser, sink: ErrorSink) -> None:
    """Check every block call's arguments against the block's, in every block and the network."""
    roots = [b.body for b in prog.blocks.values()] + [prog.network]
    for root in roots:
        for ast in walk_ast(root):
            if isinstance(ast, CallAst):
                _check_call(ast, prog.blocks[ast.block], sink)


def _check_call(ast: CallAst, block: BlockDef, sink: ErrorSink) -> None:
    names = list(block.args)
    before = len(sink.errors)
    if len(ast.positional) > len(names):
        extra = ast.positional[len(names)]
        sink.add(extra.loc, f"block {ast.block!r} takes {len(names)} arguments "
                            f"({', '.join(names) or 'none'}), got {len(ast.positional)}")
    given = set(names[:len(ast.positional)])
    for key, val in ast.args.items():
        if key not in block.args:
            sink.add(val.loc, f"block {ast.block!r} has no argument {key!r} (it takes "
                              f"{', '.join(names) or 'none'}){did_you_mean(key, names, sep='; ')}")
        elif key in given:
            sink.add(val.loc, f"argument {key!r} given twice")
        given.add(key)
    missing = [n for n in names if n not in given and block.args[n] is None]
    if missing:
        sink.add(ast.loc, f"block {ast.block!r} needs argument(s) {', '.join(missing)}")
    ast.ok = len(sink.errors) == before


def _block_knobs(prog: Program) -> None:
    """Each block's knobs: the knobs its expressions, its callees' and the defaults read."""
    from_defaults = {n for fields in prog.defaults.values() for v in fields.values()
                     for t in templates_in(v.value) for n in t.names}
    knobs = set(prog.params)
    calls = {name: {a.block for a in walk_ast(b.body) if isinstance(a, CallAst)}
             for name, b in prog.blocks.items()}
    reads = {name: (b.names & knobs) | from_defaults for name, b in prog.blocks.items()}
    changed = True
    while changed:  # to a fixed point: calls may nest to any depth (cycles are errors anyway)
        changed = False
        for name, callees in calls.items():
            more = set().union(*(reads[c] for c in callees if c in reads)) - reads[name]
            if more:
                reads[name] |= more
                changed = True
    for name, block in prog.blocks.items():
        block.knobs = tuple(sorted(reads[name]))


def walk_ast(root: Ast | None):  # noqa: ANN201 -- an iterator of Ast
    """Every node of a parsed tree, depth first."""
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, SeqAst):
            stack.extend(reversed(node.items))
        elif isinstance(node, MergeAst):
            stack.extend(reversed(node.branches))
        elif isinstance(node, ResidualAst):
            stack.extend(n for n in (node.after, node.shortcut, node.body) if n is not None)
        elif isinstance(node, AuxAst) and node.head is not None:
            stack.append(node.head)


def _is_name(text: Any) -> bool:
    return isinstance(text, str) and text.isidentifier() and text.isascii()

