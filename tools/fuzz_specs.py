"""Fuzz archdsl with mutated copies of the shipped specs: never a traceback, hang or blow-up.

Each case is a shipped spec (with its libraries) mutated at one or more levels: YAML structure,
one-line layer tokens, expressions, includes, anchors, unicode, nesting and numbers. It is run
through the ``archdsl`` command line (``validate``, ``cost``, and ``build`` on a sample) in a
worker process that handles many cases, each with an alarm (time limit), under an address-space
limit (RLIMIT_AS); a worker that dies or hangs in C code is killed and replaced. Outcomes:

  ok          exit 0 (or 1: a check failed)
  located     exit 2 and every stderr line a located ``file:line:col: ...`` or a documented
              one-line form (``N errors``, ``archdsl CMD: ...``)
  unlocated   exit 2 with some other stderr line
  internal    exit 3 (a traceback caught by the command line) or an uncaught exception
  timeout     over the time limit
  memory      MemoryError, or the worker died under the memory limit

Cases are reproducible one by one: ``--seed S --case N --show DIR`` writes case N's files.
Exit status 0 when there was no internal error, timeout, memory blow-up or unlocated message.

  python tools/fuzz_specs.py --count 2000 --seed 1            # about 3 minutes, one worker
  python tools/fuzz_specs.py --count 20000 --seed 2 --jobs 2 --time-limit 3600
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
BAD = ("internal", "timeout", "memory", "unlocated", "crash")
# Every stderr line of a refusal: located, a count, or a command's one-line message.
LOCATED = re.compile(r"^[^:\n]+:\d+:\d+: .+")
ONE_LINE = re.compile(r"^(.*: )?\d+ errors?$|^archdsl [a-z]+: (?!internal error).+")


# --- cases ------------------------------------------------------------------------------------
@dataclass
class Case:
    """Files to write (relative path -> text, or ("symlink", target)) and the command to run."""

    number: int
    main: str
    command: str
    files: dict[str, object] = field(default_factory=dict)
    mutations: list[str] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps({"number": self.number, "main": self.main, "command": self.command,
                           "files": self.files, "mutations": self.mutations})


def shipped() -> dict[str, str]:
    """specs/*.yaml and specs/lib/*.yaml by path relative to specs/."""
    return {str(p.relative_to(SPECS)): p.read_text(encoding="utf-8")
            for p in sorted(SPECS.rglob("*.yaml"))}


BOMBS = [
    "$(10**18)", "$(round(1, -10**9))", "$('a' * 10**9)", "$([0] * 10**9)",
    "$('%0999999999d' % 1)", "$(" + "+".join(["1"] * 3000) + ")", "$(range(10**9))",
    "$(sum(range(10**4)))", "$(1/0)", "$(nope)", "$(in.channels * 10**6)", "$([",
    "$(" + "(" * 300 + "1" + ")" * 300 + ")", "$(x.__class__)", "${old}", "$(lambda: 1)",
    "$(__import__('os'))", "$(2**64)", "$(-1)", "$(0)", "$(1.5)", "$(float('inf'))",
    "$(float('nan'))", "$([1, 2][5])", "$(len(1))", "$(div(7, 0))", "$(max())",
    "$(sorted([[1], 'a']))", "$(10**10**10)", "$(9**9**9)", "$((1,) * 99)", "$('a' in 1)",
    "$([j for j in range(10**4) for k in range(10**4)])", "$(log(0))", "$(sqrt(-1))",
    "$(True)", "$(None)", "$('x')", "$in", "$in.nope", "$(in.channels)", "$", "$()", "$$",
]
TOKENS = [
    "0x0", "3x3", "-1x3", "99999x1", "1x0", "/0", "/2", "/9223372036854775808", "/-1", "V",
    "same", "linear", "relu", "noact", "bn", "depthwise", "as forward", "as train",
    "as parameters", "as x", "as", "as 1", "x0", "x10000", "x$(10**9)", "x-1", "x1.5", "ceil",
    "stride=0", "stride=-1", "kernel=0", "kernel=-3", "padding=-1", "padding=[1,-1]",
    "dilation=0", "dilation=9223372036854775808", "groups=0", "groups=7", "groups=all",
    "width=inf", "width=nan", "width=0", "width=1e308", "width=1e-300", "eps=0", "momentum=2",
    "act=nope", "norm=yes", "bias=maybe", "filters=0", "filters=2147483648", "features=0",
    "p=2", "output=0", "size=0", "units=0", "x=1", "=", "==", "when=false", "64", "-64", "0",
    "1e9", "$(10**9)", "3x3x3", "/", "x", "'", '"',
]
NUMBERS = ["0", "-1", "1", "2", "2147483648", "9223372036854775808", "10" * 50, "1e308", "1e309",
           ".inf", "-.inf", ".nan", "0x10", "012", "1_000", "1.5", "-0", "1e-300", "yes", "no",
           "100000", "1000000", "3", "~", "null", "''", "[]", "{}"]
UNICODE = ['"\\ud800"', '"\\udfff"', '"\\x01"', '"\\0"', "\ufeff", "\u202e", "\u200b", "😀",
           "e\u0301", "\x85", "\u2028", "\uff13", "é", '"\\U0010ffff"', "\u00a0", "\t", "\r"]
PUNCT = list("[]{}:-?|>&*!%@`\"'#,") + ["&a ", "*a", "!!int ", "!!bool ", "!!python/object ",
                                         "<<: ", "--- ", "... ", "? ", "- - ", ": "]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _pick_line(rng: random.Random, lines: list[str], pattern: str = r"\S") -> int:
    hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    return rng.choice(hits) if hits else rng.randrange(len(lines))


def m_structure(rng: random.Random, text: str, case: Case) -> str:
    lines = _lines(text)
    i, j = _pick_line(rng, lines), _pick_line(rng, lines)
    op = rng.randrange(6)
    if op == 0:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[j])
    elif op == 2:
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 3:
        lines[i] = " " * rng.choice([1, 2, 4]) + lines[i] if rng.random() < .5 else \
            lines[i][rng.randint(1, 4):]
    elif op == 4:
        pos = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + rng.choice(PUNCT) + lines[i][pos:]
    else:
        lines[i] = lines[i].replace(":", rng.choice(["", " :", "::", ": -", ": [", ": {"]), 1)
    return "\n".join(lines)


def m_tokens(rng: random.Random, text: str, case: Case) -> str:
    lines = _lines(text)
    i = _pick_line(rng, lines, r"^\s*-\s+[a-z_]+[ \n]|: [a-z_]+ ")
    words = lines[i].split(" ")
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(1, len(words) + 1)
        if rng.random() < .5 and pos < len(words):
            words[pos] = rng.choice(TOKENS)
        else:
            words.insert(pos, rng.choice(TOKENS))
    lines[i] = " ".join(words)
    return "\n".join(lines)


def m_expression(rng: random.Random, text: str, case: Case) -> str:
    bomb = rng.choice(BOMBS)
    spots = [m.span() for m in re.finditer(r"\$\([^)\n]*\)|\$[A-Za-z_][\w.]*", text)]
    if spots and rng.random() < .7:
        a, b = rng.choice(spots)
        return text[:a] + bomb + text[b:]
    nums = [m.span() for m in re.finditer(r"(?<![\w.$])\d+(?![\w.])", text)]
    if nums:
        a, b = rng.choice(nums)
        return text[:a] + bomb + text[b:]
    return text + f"\nparams: {{z: {bomb}}}\n"


def m_number(rng: random.Random, text: str, case: Case) -> str:
    nums = [m.span() for m in re.finditer(r"(?<![\w.$])\d+(\.\d+)?(?![\w.])", text)]
    if not nums:
        return text
    for _ in range(rng.randint(1, 3)):
        a, b = rng.choice(nums)
        text = text[:a] + rng.choice(NUMBERS) + text[b:]
        nums = [m.span() for m in re.finditer(r"(?<![\w.$])\d+(\.\d+)?(?![\w.])", text)]
        if not nums:
            break
    return text


def m_unicode(rng: random.Random, text: str, case: Case) -> str:
    lines = _lines(text)
    i = _pick_line(rng, lines)
    if rng.random() < .3 and lines[0].startswith("name:"):
        i = 0
        lines[0] = "name: " + rng.choice(UNICODE)
        return "\n".join(lines)
    pos = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:pos] + rng.choice(UNICODE) + lines[i][pos:]
    return "\n".join(lines)


def m_anchor(rng: random.Random, text: str, case: Case) -> str:
    op = rng.randrange(4)
    if op == 0:
        return text.replace("network:", "network: &a [*a]\nnetwork_old:", 1)
    if op == 1:  # a billion laughs
        laughs = ["l0: &l0 [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]"]
        laughs += [f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 10)}]" for k in range(1, 9)]
        return text + "\nlaughs:\n" + "\n".join("  " + x for x in laughs) + \
            "\nnetwork2: *l8\n"
    lines = _lines(text)
    i, j = _pick_line(rng, lines, r": \S|- \S"), _pick_line(rng, lines, r": \S|- \S")
    lines[i] = re.sub(r"(: |- )", r"\1&a ", lines[i], count=1)
    lines[j] = re.sub(r"(: |- )\S.*", r"\1*a", lines[j], count=1)
    return "\n".join(lines)


def m_nesting(rng: random.Random, text: str, case: Case) -> str:
    depth = rng.choice([50, 99, 101, 400, 5000, 40000])
    op = rng.randrange(5)
    if op == 0:
        return re.sub(r"network:", "network: " + "[" * depth + "relu" + "]" * depth +
                      "\nnetwork_old:", text, count=1)
    if op == 1:
        block = "\n".join("  " * (k + 1) + "- " for k in range(min(depth, 2000)))
        return text.replace("network:", "network:\n" + block + "relu\nnetwork_old:", 1)
    if op == 2:  # nested repeats: up to 10**12 layers
        return re.sub(r"\nnetwork:", "\nblocks:\n  z1: [relu x10000]\n  z2: [z1 x10000]\n"
                      "network:\n  - z2 x10000\nnetwork_old:", text, count=1) \
            if "\nblocks:" not in text else text.replace(
                "\nblocks:\n", "\nblocks:\n  z1: [relu x10000]\n  z2: [z1 x10000]\n", 1
            ).replace("\nnetwork:\n", "\nnetwork:\n  - z2 x10000\n", 1)
    if op == 3 and rng.random() < .5:  # a chain of blocks, each calling the next
        chain = "".join(f"  zc{k}: [zc{k + 1}]\n" for k in range(depth % 3000))
        return text.replace("\nblocks:\n", f"\nblocks:\n{chain}  zc{depth % 3000}: [relu]\n",
                            1).replace("\nnetwork:\n", "\nnetwork:\n  - zc0\n", 1)
    if op == 3:  # a block that calls itself
        return text.replace("\nblocks:\n", "\nblocks:\n  zz: [zz]\n", 1).replace(
            "\nnetwork:\n", "\nnetwork:\n  - zz\n", 1)
    return text.replace("\nnetwork:\n", "\nnetwork:\n  - " + "seq: {" * 60 + "relu" + "}" * 60 +
                        "\n", 1)


def m_include(rng: random.Random, text: str, case: Case) -> str:
    op = rng.randrange(8)
    name = {0: case.main, 1: "loop_a.yaml", 2: '"a\\0b.yaml"', 3: "x" * 300 + ".yaml",
            4: "../../../../etc/passwd", 5: "/dev/zero", 6: ".", 7: "link.yaml"}[op]
    if op == 1:
        case.files["loop_a.yaml"] = "include: [loop_b.yaml]\nblocks: {}\n"
        case.files["loop_b.yaml"] = "include: [loop_a.yaml]\nblocks: {}\n"
    if op == 7:
        case.files["link.yaml"] = ("symlink", "link2.yaml")
        case.files["link2.yaml"] = ("symlink", "link.yaml")
    if "\ninclude:" in text:
        return re.sub(r"\ninclude: \[", f"\ninclude: [{name}, ", text, count=1)
    return text.replace("\nnetwork:", f"\ninclude: [{name}]\nnetwork:", 1)


MUTATORS = {"structure": m_structure, "tokens": m_tokens, "expression": m_expression,
            "number": m_number, "unicode": m_unicode, "anchor": m_anchor, "nesting": m_nesting,
            "include": m_include}


def make_case(seed: int, number: int, specs: dict[str, str], build_every: int) -> Case:
    rng = random.Random(f"{seed}:{number}")
    mains = sorted(p for p in specs if not p.startswith("lib/"))
    main = rng.choice(mains)
    command = "cost" if rng.random() < .3 else "validate"
    if build_every and number % build_every == build_every - 1:
        command = "build"
    case = Case(number, main, command, dict(specs))
    # A mutated library sometimes, the spec itself mostly.
    target = main
    libs = [p for p in specs if p.startswith("lib/") and p in specs[main]]
    if libs and rng.random() < .2:
        target = rng.choice(libs)
    text = specs[target]
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        kind = rng.choice(list(MUTATORS))
        text = MUTATORS[kind](rng, text, case)
        case.mutations.append(kind)
    case.files[target] = text
    return case


# --- the worker -------------------------------------------------------------------------------
class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException, so that archdsl's last-resort handler lets it by."""


def _write_case(folder: Path, case: dict) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    for rel, content in case["files"].items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, list):  # ("symlink", target) after JSON
            os.symlink(content[1], path)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return folder / case["main"]


def classify(rc: object, err: str) -> str:
    if rc in (0, 1):
        return "ok"
    if rc == 3:
        return "memory" if "MemoryError" in err else "internal"
    lines = [line for line in err.splitlines() if line.strip()]
    if rc == 2 and all(LOCATED.match(x) or ONE_LINE.match(x) for x in lines):
        return "located"
    return "unlocated" if rc == 2 else "internal"


def run_one(case: dict, folder: Path, seconds: int, memory_mb: int) -> dict:
    from archdsl.cli import main

    path = _write_case(folder, case)
    argv = [case["command"], str(path)]
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    if case["command"] == "build" and not _small_enough(path, memory_mb):
        argv[0] = "validate"
    try:
        signal.alarm(seconds)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc: object = main(argv)
    except CaseTimeout:
        rc = "timeout"
    except MemoryError:
        rc = "memory"
    except SystemExit as exc:  # argparse
        rc = exc.code
    except BaseException as exc:  # noqa: BLE001 -- anything past main() is a finding
        rc = "uncaught"
        err.write(f"{type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
    text = err.getvalue()
    outcome = rc if rc in ("timeout", "memory") else (
        "internal" if rc == "uncaught" else classify(rc, text))
    return {"number": case["number"], "outcome": outcome, "rc": str(rc),
            "seconds": round(time.perf_counter() - start, 3), "stderr": text[-2000:]}


def _small_enough(path: Path, memory_mb: int) -> bool:
    """Build only what fits the memory limit by the spec's own count (weights, largest output):
    the size limits allow models larger than a fuzzing worker's memory."""
    import archdsl

    try:
        spec = archdsl.load(path)
    except Exception:  # noqa: BLE001 -- the command itself reports it
        return True
    rep = spec.cost()
    largest = max((row.counts.activations for row in rep.rows()), default=0)
    return (rep.total.params + rep.total.buffers + 4 * largest) * 4 < memory_mb * 2**20 // 3


def worker(seconds: int, memory_mb: int, with_torch: bool) -> None:
    import archdsl.cli  # noqa: F401 -- once, before the first case's clock starts

    if with_torch:
        import torch  # noqa: F401 -- its mappings are not what is being measured
    # The limit is what a case may add to the worker as it stands (torch maps gigabytes).
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with contextlib.suppress(OSError, ValueError), open("/proc/self/statm") as f:
        base = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = base + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.setrecursionlimit(10_000)

    def on_alarm(signum: int, frame: object) -> None:
        raise CaseTimeout

    signal.signal(signal.SIGALRM, on_alarm)
    folder = Path(tempfile.mkdtemp(prefix="archdsl-fuzz-"))
    try:
        for line in sys.stdin:
            case = json.loads(line)
            try:
                result = run_one(case, folder / "case", seconds, memory_mb)
            except BaseException as exc:  # noqa: BLE001 -- the harness itself: report, go on
                signal.alarm(0)
                result = {"number": case["number"], "outcome": "crash", "rc": "worker",
                          "stderr": f"worker: {type(exc).__name__}: {exc}"}
            sys.__stdout__.write(json.dumps(result) + "\n")
            sys.__stdout__.flush()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the parent -------------------------------------------------------------------------------
class Worker:
    def __init__(self, seconds: int, memory_mb: int, build_every: int) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- what a dying worker said
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get(
            "PYTHONPATH", ""), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--case-seconds", str(seconds),
             "--memory-mb", str(memory_mb), "--build-every", str(build_every)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env, bufsize=1)
        self.case: Case | None = None
        self.started = 0.0

    def send(self, case: Case) -> None:
        assert self.proc.stdin is not None
        self.case, self.started = case, time.monotonic()
        self.proc.stdin.write(case.as_json() + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        self.log.close()

    def last_words(self) -> str:
        self.log.seek(0)
        return self.log.read()[-1500:]


def fuzz(args: argparse.Namespace) -> int:
    specs = shipped()
    numbers = [args.case] if args.case is not None else list(range(args.first,
                                                                    args.first + args.count))
    todo = [make_case(args.seed, n, specs, args.build_every) for n in numbers]
    todo.reverse()
    workers = [Worker(args.case_seconds, args.memory_mb, args.build_every)
               for _ in range(args.jobs)]
    outcomes: Counter[str] = Counter()
    by_mutation: dict[str, Counter[str]] = {}
    findings: list[dict] = []
    deadline = time.monotonic() + args.time_limit
    slowest = (0.0, -1)
    done = 0

    def record(case: Case, result: dict) -> None:
        nonlocal done, slowest
        done += 1
        outcomes[result["outcome"]] += 1
        for m in set(case.mutations):
            by_mutation.setdefault(m, Counter())[result["outcome"]] += 1
        slowest = max(slowest, (float(result.get("seconds", 0)), case.number))
        if result["outcome"] in BAD:
            findings.append({**result, "main": case.main, "command": case.command,
                             "mutations": case.mutations})
            print(f"finding: case {case.number}: {result['outcome']}", file=sys.stderr,
                  flush=True)  # as it happens, for long runs
        if done % 1000 == 0:
            print(f"{done} cases: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()),
                  file=sys.stderr, flush=True)

    try:
        while (todo or any(w.case for w in workers)) and time.monotonic() < deadline:
            for w in workers:
                if w.case is None and todo:
                    w.send(todo.pop())
            busy = {w.proc.stdout: w for w in workers if w.case is not None}
            ready, _, _ = select.select(list(busy), [], [], 1.0)
            for stream in ready:
                w = busy[stream]
                line = stream.readline()
                case = w.case
                assert case is not None
                w.case = None
                if line:
                    result = json.loads(line)
                    record(case, result)
                    if result["outcome"] == "memory":  # the heap may be in pieces: start afresh
                        workers[workers.index(w)] = _replace(w, args)
                else:  # the worker died: the memory limit, or a crash in C code
                    code = w.proc.wait()
                    record(case, {"number": case.number, "outcome": "memory" if code in (
                        -signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT) else "crash",
                        "rc": str(code), "stderr": w.last_words()})
                    workers[workers.index(w)] = _replace(w, args)
            for k, w in enumerate(workers):  # hung in C code, where the alarm cannot reach
                if w.case is not None and time.monotonic() - w.started > args.case_seconds + 10:
                    case, w.case = w.case, None
                    record(case, {"number": case.number, "outcome": "timeout", "rc": "killed",
                                  "stderr": ""})
                    workers[k] = _replace(w, args)
    finally:
        for w in workers:
            w.kill()

    print(f"archdsl fuzz: seed {args.seed}, cases {numbers[0]}..{numbers[-1]}: {done} run "
          f"({len(todo)} not run: time limit {args.time_limit} s)" if todo else
          f"archdsl fuzz: seed {args.seed}, cases {numbers[0]}..{numbers[-1]}: {done} run")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    for m, c in sorted(by_mutation.items()):
        print(f"  {m:10s} " + ", ".join(f"{k} {v}" for k, v in c.most_common()))
    print(f"slowest case: {slowest[0]:.2f} s (case {slowest[1]})")
    for f in findings[:args.show_findings]:
        how = f"{f['main']}, {f['command']}, {'+'.join(f['mutations'])}"
        print(f"FINDING case {f['number']} ({how}): {f['outcome']} rc={f['rc']}: "
              f"{f['stderr'].strip()[-400:]}")
    if args.findings:
        Path(args.findings).write_text("".join(json.dumps(f) + "\n" for f in findings))
    return 1 if findings else 0


def _replace(w: Worker, args: argparse.Namespace) -> Worker:
    w.kill()
    return Worker(args.case_seconds, args.memory_mb, args.build_every)


def show(args: argparse.Namespace) -> int:
    case = make_case(args.seed, args.case, shipped(), args.build_every)
    path = _write_case(Path(args.show), json.loads(case.as_json()))
    print(f"case {case.number}: {'+'.join(case.mutations)}; run: archdsl {case.command} {path}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count", type=int, default=500, help="cases to run (default 500)")
    p.add_argument("--first", type=int, default=0, help="number of the first case")
    p.add_argument("--case", type=int, help="run (or --show) this case only")
    p.add_argument("--show", metavar="DIR", help="write --case's files to DIR, do not run")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--case-seconds", type=int, default=10, help="time limit of one case")
    p.add_argument("--memory-mb", type=int, default=2000,
                   help="address space a case may add to its worker (default 2000)")
    p.add_argument("--time-limit", type=float, default=3600, help="stop after this many seconds")
    p.add_argument("--build-every", type=int, default=50, help="build every Nth case (0: never)")
    p.add_argument("--show-findings", type=int, default=20, help="findings to print")
    p.add_argument("--findings", metavar="FILE", help="write every finding as JSON lines")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.case_seconds, args.memory_mb, args.build_every > 0)
        return 0
    if args.show:
        if args.case is None:
            p.error("--show needs --case")
        return show(args)
    return fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
