"""The documentation's code runs, and shows what it gives.

Every fenced code block of ``README.md`` and ``docs/*.md`` is collected, by language:

``python`` blocks run, each in a fresh namespace and a temporary working directory (files
they write land there), with ``CONVBLOCKS_OFFLINE=1`` (nothing is ever downloaded). A
top-level statement's trailing comment is checked in two cases; every other comment is
prose:

* ``expression  # <number>``: an expression statement whose comment starts with a
  number (``0.6923608807576931``, ``-3``, ``6.3e-08``; what follows a space, ``;`` or
  ``,`` after it is prose) must evaluate to that number to the digits shown: within half
  a unit of the last shown digit, or 4 ulp where that is wider (a sum's last bits move
  with the BLAS kernel);
* ``print(...)  # <text>``: what that statement prints (without the final newline) must
  be ``<text>``; a ``<text>`` ending in ``...`` is a prefix: the output must start with
  what comes before the ``...``.

Markers, HTML comments on the line(s) just above a block's fence:

* ``<!-- not run: REASON -->``: the block is skipped with REASON (keep these rare);
* ``<!-- needs: fashion-mnist -->``: the block runs only where Fashion-MNIST is on this
  machine (``convblocks.datasets.fashion_mnist.search_dirs``), else it is skipped;
* ``<!-- signatures: MODULE -->``: the block lists call signatures, one per statement,
  ``results = name(params)`` (continuation lines indented); each must match
  ``inspect.signature(MODULE.name)``: names, kinds (``*``), defaults. A ``<...>`` in the
  parameters stands for parameters not listed (only those before it are compared).

``sh`` / ``bash`` / ``shell`` / ``console`` blocks: every command line (in ``console``
blocks only lines starting with a ``$ `` prompt; the rest is output) is split like the
shell does (``shlex``: quotes, ``# comments``), at ``|``, ``&&``, ``||``, ``;`` and
``&`` (written apart, as in the docs) into commands, redirections dropped. Each command
must be one of:

* convblocks, possibly as ``path/to/convblocks``, ``python -m convblocks``, behind
  ``env [-u NAME] [NAME=value]`` or ``NAME=value``: its arguments must parse with the
  real argument parser (``convblocks.cli.main.build_parser``; nothing runs), and a
  ``bench --cases`` list must name cases (``convblocks.bench.ops.select_cases``);
  placeholders such as ``runs/<timestamp>/model.npz`` are ordinary arguments;
* ``make TARGET...``: each target must be a rule of the Makefile;
* a program in ``EXTERNAL_COMMANDS`` (not ours, not checked).

Anything else fails, so a misspelt ``convblock`` cannot slip through unchecked.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import decimal
import importlib
import inspect
import io
import numbers
import re
import shlex
import tokenize
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PYTHON = {"python", "py", "python3"}
SHELL = {"sh", "bash", "shell", "console"}
#: Programs that may appear in shell blocks without being checked.
EXTERNAL_COMMANDS = {"apt-get", "apt", "pip", "pip3", "head", "tail", "less", "cat", "cd"}
MARKERS = {"not run", "needs", "signatures"}
NEEDS = {"fashion-mnist"}

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*([\w ]+?)\s*:\s*(.*?)\s*-->\s*$")


# ------------------------------------------------------------------ collecting blocks
@dataclasses.dataclass(frozen=True)
class Block:
    path: Path
    lang: str
    index: int  # 1-based, among the file's blocks of the same kind (python / shell / other)
    line: int  # line number of the opening fence
    source: str
    markers: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def id(self) -> str:
        kind = "python" if self.lang in PYTHON else self.lang
        return f"{self.name}-{kind}{self.index}"

    def marker(self, key: str) -> str | None:
        return next((value for k, value in self.markers if k == key), None)


def parse_blocks(text: str, path: Path) -> list[Block]:
    """The fenced blocks of a Markdown text, with the marker comments just above each."""
    lines = text.splitlines()
    blocks: list[Block] = []
    counts: dict[str, int] = {}
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: unclosed code fence")
        markers = []
        j = i - 1
        while j >= 0 and (mm := _MARKER.match(lines[j].strip())):
            markers.insert(0, (mm.group(1).lower(), mm.group(2)))
            j -= 1
        kind = "python" if lang in PYTHON else "shell" if lang in SHELL else "other"
        counts[kind] = counts.get(kind, 0) + 1
        blocks.append(Block(path, lang, counts[kind], i + 1,
                            "\n".join(lines[i + 1:end]) + "\n", tuple(markers)))
        i = end + 1
    return blocks


BLOCKS = [b for path in DOCS for b in parse_blocks(path.read_text(encoding="utf-8"), path)]
PYTHON_BLOCKS = [b for b in BLOCKS if b.lang in PYTHON]
SHELL_BLOCKS = [b for b in BLOCKS if b.lang in SHELL]


# ---------------------------------------------------------------- running python blocks
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?=$|[\s;,])")


@dataclasses.dataclass
class Checks:
    """What a block's comments asserted (so tests can see that checks happened)."""

    numbers: int = 0
    prints: int = 0


def _comments(source: str) -> dict[int, str]:
    """Line number (1-based, in ``source``) -> the text of the comment on that line."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string[1:].strip()
    return found


def _is_print(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id == "print")


def check_number(value, shown: str, where: str) -> None:
    """``value`` equals the number ``shown`` to the digits shown (see the module doc)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)) \
            or isinstance(value, (complex, np.complexfloating)):
        raise AssertionError(f"{where}: the comment shows {shown} but the expression gives "
                             f"{value!r}, not a real number")
    exponent = decimal.Decimal(shown).as_tuple().exponent
    tolerance = max(0.5 * 10.0 ** exponent, 4 * float(np.spacing(abs(float(shown)))))
    if not abs(float(value) - float(shown)) <= tolerance:
        raise AssertionError(f"{where}: the comment shows {shown}, the expression gives "
                             f"{float(value)!r} (tolerance {tolerance:.3g})")


def check_print(printed: str, shown: str, where: str) -> None:
    printed = printed.removesuffix("\n")
    if shown.endswith("..."):
        prefix = shown[:-3].rstrip()
        ok = printed.startswith(prefix)
        what = f"start with {prefix!r}"
    else:
        ok = printed == shown
        what = f"be {shown!r}"
    if not ok:
        raise AssertionError(f"{where}: printed {printed!r}; the comment says it should {what}")


def run_python(source: str, filename: str, first_line: int = 0, name: str | None = None
               ) -> Checks:
    """Run ``source`` statement by statement in a fresh namespace, checking its comments.

    ``first_line`` is added to line numbers, so that errors and tracebacks point at the
    Markdown file's own lines (``filename``; ``name`` in messages). A wrong value does not
    stop the block: every wrong value is reported at the end.
    """
    name = name or filename
    tree = ast.parse(source, filename)
    comments = _comments(source)
    ast.increment_lineno(tree, first_line)
    namespace: dict = {"__name__": "__docs__"}
    checks = Checks()
    wrong: list[str] = []
    for node in tree.body:
        comment = comments.get(node.end_lineno - first_line)
        where = f"{name}:{node.end_lineno}"
        code = compile(ast.Module([node], type_ignores=[]), filename, "exec")
        try:
            if comment and _is_print(node):
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    exec(code, namespace)
                print(out.getvalue(), end="")
                checks.prints += 1
                check_print(out.getvalue(), comment, where)
            elif comment and isinstance(node, ast.Expr) and (m := _NUMBER.match(comment)):
                value = eval(compile(ast.Expression(node.value), filename, "eval"), namespace)
                checks.numbers += 1
                check_number(value, m.group(), where)
            else:
                exec(code, namespace)
        except AssertionError as exc:
            wrong.append(str(exc))
    if wrong:
        raise AssertionError("\n".join(wrong))
    return checks


def fashion_mnist_here() -> bool:
    """Whether a folder that ``load_fashion_mnist`` searches holds the four files."""
    from convblocks.datasets.fashion_mnist import search_dirs

    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return any(all((d / f).is_file() or (d / f"{f}.gz").is_file() for f in files)
               for d in search_dirs("fashion-mnist"))


# --------------------------------------------------------------------- signature blocks
def check_signatures(source: str, module_name: str, name: str = "<docs>", first_line: int = 0
                     ) -> int:
    """Compare every ``results = name(params)`` of a signature block with the code."""
    module = importlib.import_module(module_name)
    statements: list[list] = []  # [line number, text]
    for number, line in enumerate(source.splitlines(), start=first_line + 1):
        line = line.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if line[0].isspace() and statements:
            statements[-1][1] += " " + line.strip()
        else:
            statements.append([number, line.strip()])
    wrong: list[str] = []
    for number, text in statements:
        where = f"{name}:{number}"
        m = re.fullmatch(r"(?:[\w\s,]+=\s*)?(\w+)\((.*)\)", text)
        assert m, f"{where}: not a signature `results = name(params)`: {text!r}"
        func, params = m.groups()
        params = re.sub(r"<[^<>]*>", "__unlisted__", params)
        args = ast.parse(f"def {func}({params}): pass").body[0].args
        documented: list[tuple[str, object, object]] = []
        positional = args.posonlyargs + args.args
        defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [
            ast.literal_eval(d) for d in args.defaults]
        kinds = ([inspect.Parameter.POSITIONAL_ONLY] * len(args.posonlyargs)
                 + [inspect.Parameter.POSITIONAL_OR_KEYWORD] * len(args.args))
        documented += zip((a.arg for a in positional), kinds, defaults)
        if args.vararg:
            documented.append((args.vararg.arg, inspect.Parameter.VAR_POSITIONAL,
                               inspect.Parameter.empty))
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            documented.append((a.arg, inspect.Parameter.KEYWORD_ONLY,
                               inspect.Parameter.empty if d is None else ast.literal_eval(d)))
        if args.kwarg:
            documented.append((args.kwarg.arg, inspect.Parameter.VAR_KEYWORD,
                               inspect.Parameter.empty))
        if not hasattr(module, func):
            wrong.append(f"{where}: {module_name} has no {func}")
            continue
        real = [(p.name, p.kind, p.default)
                for p in inspect.signature(getattr(module, func)).parameters.values()]
        names = [d[0] for d in documented]
        if "__unlisted__" in names:
            documented = documented[:names.index("__unlisted__")]
            real = real[:len(documented)]
        if documented != real:
            wrong.append(f"{where}: {func}{inspect.signature(getattr(module, func))} in the "
                         f"code, documented as\n    {text}")
    assert not wrong, "\n".join(wrong)
    return len(statements)


# ------------------------------------------------------------------- the python tests
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_python_block(block: Block, tmp_path, monkeypatch, capsys):
    reason = block.marker("not run")
    if reason is not None:
        pytest.skip(f"{block.name}:{block.line} marked not run: {reason}")
    need = block.marker("needs")
    if need is not None:
        assert need in NEEDS, f"{block.name}:{block.line}: unknown need {need!r}"
        if need == "fashion-mnist" and not fashion_mnist_here():
            pytest.skip("Fashion-MNIST is not on this machine (it is never downloaded here)")
    module = block.marker("signatures")
    if module is not None:
        assert check_signatures(block.source, module, block.name, block.line) > 0
        return
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVBLOCKS_OFFLINE", "1")
    run_python(block.source, str(block.path), first_line=block.line, name=block.name)


def test_every_marker_is_known():
    for block in BLOCKS:
        for key, value in block.markers:
            assert key in MARKERS, f"{block.name}:{block.line}: unknown marker {key!r}"
            assert value, f"{block.name}:{block.line}: marker {key!r} without a value"


def test_the_docs_have_checked_values():
    """The conventions are in use: were they to stop matching, this says so."""
    total = Checks()
    for block in PYTHON_BLOCKS:
        if block.marker("not run") is not None or block.marker("signatures") is not None:
            continue
        comments = _comments(block.source)
        tree = ast.parse(block.source)
        for node in tree.body:
            comment = comments.get(node.end_lineno)
            if comment and _is_print(node):
                total.prints += 1
            elif comment and isinstance(node, ast.Expr) and _NUMBER.match(comment):
                total.numbers += 1
    assert total.numbers >= 1 and total.prints >= 1, total
    assert len(PYTHON_BLOCKS) >= 6 and len(SHELL_BLOCKS) >= 5


# The checker itself: a wrong number or a wrong printed text fails.
def test_a_right_number_and_a_right_print_pass(capsys):
    checks = run_python("x = 0.1 + 0.2\nx        # 0.3; rounded\nround(x * 10)  # 3\n"
                        "print('max error 1.5e-08 at 3')  # max error 1.5e-08 at ...\n"
                        "print('done')  # done\n", "<test>")
    assert (checks.numbers, checks.prints) == (2, 2)
    run_python("2 / 3   # 0.6667\n1e-9 * 6.266   # 6.266e-09\n", "<test>")


@pytest.mark.parametrize("source", [
    "2 / 3   # 0.6668\n",
    "2 / 3   # 0.666 (to the shown digits)\n",
    "0.6923608807576931 + 1e-15   # 0.6923608807576931\n",
    "'text'   # 3\n",
    "print('max error 1.6e-08 at 3')  # max error 1.5e-08 at ...\n",
    "print('done!')  # done\n",
], ids=["digit", "rounding", "beyond-4-ulp", "not-a-number", "print-prefix", "print"])
def test_a_wrong_value_fails(source, capsys):
    with pytest.raises(AssertionError):
        run_python(source, "<test>")


def test_signature_check_sees_a_wrong_default():
    good = ("y, cache = conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1,\n"
            "                  data_format=\"NHWC\")\n"
            "cache = conv2d_cache(x, w, b=None, *, <same options>)   # no forward\n")
    assert check_signatures(good, "convblocks.functional") == 2
    for bad in (good.replace("stride=1", "stride=2"),  # a default
                "dx = conv2d_backward(dy, cache, compute_dx=True)\n",  # not keyword-only
                "dx = conv2d_backward(dy, cache)\n",  # a parameter missing
                "y = conv3d(x, w)\n"):  # no such function
        with pytest.raises(AssertionError):
            check_signatures(bad, "convblocks.functional")


# -------------------------------------------------------------------- shell blocks
@dataclasses.dataclass(frozen=True)
class CommandLine:
    block: Block
    line: int  # in the Markdown file
    text: str

    @property
    def id(self) -> str:
        return f"{self.block.name}:{self.line}"


def command_lines(block: Block) -> list[CommandLine]:
    found: list[CommandLine] = []
    pending, start = "", 0
    for offset, raw in enumerate(block.source.splitlines(), start=1):
        line = raw.strip()
        if not pending:
            start = block.line + offset
            if block.lang == "console":
                if not line.startswith("$ "):
                    continue  # output
                line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line and not line.startswith("#"):
            found.append(CommandLine(block, start, line))
    return found


COMMAND_LINES = [c for b in SHELL_BLOCKS for c in command_lines(b)]

_CONTROL = {"|", "||", "&&", ";", "&", "|&"}
_REDIRECT = re.compile(r"^(\d*>>?|&>>?|<|\d*>&\d*-?)(.*)$")
_PLACEHOLDER = re.compile(r"^<[^<>]*>$")


def split_commands(text: str) -> list[list[str]]:
    """The commands of one shell line, each as argv, without redirections or comments."""
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in shlex.split(text, comments=True):
        if skip_next:
            skip_next = False
        elif token in _CONTROL:
            commands.append([])
        elif (m := _REDIRECT.match(token)) and not _PLACEHOLDER.match(token):
            skip_next = not m.group(2)  # `> file`: the target is the next token
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _strip_wrappers(argv: list[str]) -> list[str]:
    """argv without leading ``NAME=value`` assignments and ``env`` with its options."""
    argv = list(argv)
    while argv:
        if re.match(r"^[A-Za-z_]\w*=", argv[0]):
            argv.pop(0)
        elif Path(argv[0]).name == "env":
            argv.pop(0)
            while argv and (argv[0].startswith("-") or re.match(r"^[A-Za-z_]\w*=", argv[0])):
                option = argv.pop(0)
                if option in ("-u", "--unset", "-C", "--chdir") and argv:
                    argv.pop(0)
        else:
            break
    return argv


def parse_convblocks(args: list[str]) -> None:
    """Parse a convblocks command line with the real parser, as ``convblocks`` would."""
    from convblocks.cli.main import COMMANDS, build_parser

    command = next((a for a in args if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parsed = parser.parse_args(args)
        except SystemExit as exc:
            if exc.code == 0:  # --help, --version
                return
            raise AssertionError(f"`convblocks {shlex.join(args)}` does not parse:\n"
                                 f"{err.getvalue()}") from None
    assert parsed.command is not None, f"`convblocks {shlex.join(args)}`: no command"
    if parsed.command == "bench" and parsed.cases is not None:
        from convblocks.bench.ops import select_cases

        try:
            assert select_cases(parsed.cases), f"--cases {parsed.cases!r} selects nothing"
        except ValueError as exc:
            raise AssertionError(f"`convblocks {shlex.join(args)}`: {exc}") from None


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set()
    for m in re.finditer(r"^([^\s:=#][^:=#]*):(?!=)", text, re.M):
        targets.update(m.group(1).split())
    return targets


def check_command(argv: list[str], where: str) -> None:
    argv = _strip_wrappers(argv)
    assert argv, f"{where}: only assignments, no command"
    program = Path(argv[0]).name
    if program == "convblocks":
        parse_convblocks(argv[1:])
    elif re.fullmatch(r"python[\d.]*", program) and argv[1:3] == ["-m", "convblocks"]:
        parse_convblocks(argv[3:])
    elif program == "make":
        targets = [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
        missing = sorted(set(targets) - make_targets())
        assert not missing, f"{where}: the Makefile has no target {', '.join(missing)}"
    else:
        assert program in EXTERNAL_COMMANDS, (
            f"{where}: {argv[0]!r} is neither convblocks, make nor a known external "
            f"program (EXTERNAL_COMMANDS in {Path(__file__).name})")


@pytest.mark.parametrize("command", COMMAND_LINES, ids=lambda c: c.id)
def test_shell_line(command: CommandLine):
    where = f"{command.id}: {command.text}"
    commands = split_commands(command.text)
    assert commands, f"{where}: no command found"
    for argv in commands:
        check_command(argv, where)


def test_command_line_splitting():
    assert split_commands("convblocks grade submissions/ --json > report.json   # a class") \
        == [["convblocks", "grade", "submissions/", "--json"]]
    assert split_commands("env -u A .venv/bin/convblocks bench 2>&1 | head -1") \
        == [["env", "-u", "A", ".venv/bin/convblocks", "bench"], ["head", "-1"]]
    assert split_commands("convblocks evaluate runs/<timestamp>/model.npz <file>") \
        == [["convblocks", "evaluate", "runs/<timestamp>/model.npz", "<file>"]]
    assert _strip_wrappers(["env", "-u", "A", "-u", "B", "X=1", "convblocks", "bench"]) \
        == ["convblocks", "bench"]
    check_command(["make", "demo"], "<test>")
    for bad in (["convblock", "train"], ["make", "nonsense"],
                ["convblocks", "train", "--epoch", "3"], ["convblocks", "bench", "--cases", "z"],
                ["convblocks", "grade", "x.py", "--layout", "NWHC"], ["convblocks"]):
        with pytest.raises(AssertionError):
            check_command(bad, "<test>")


def test_blocks_markers_and_console_prompts():
    text = ("# t\n\n<!-- not run: needs the network -->\n```python\nimport urllib\n```\n\n"
            "```console\n$ convblocks train \\\n    --epochs 2   # short\nepoch 1/2 ...\n"
            "resume with: convblocks train --resume runs/x\n```\n")
    python, console = parse_blocks(text, ROOT / "x.md")
    assert (python.lang, python.index, python.line) == ("python", 1, 4)
    assert python.marker("not run") == "needs the network" and python.marker("needs") is None
    assert python.source == "import urllib\n"
    lines = command_lines(console)
    assert [(c.line, c.text) for c in lines] == [(9, "convblocks train  --epochs 2   # short")]
    assert split_commands(lines[0].text) == [["convblocks", "train", "--epochs", "2"]]
