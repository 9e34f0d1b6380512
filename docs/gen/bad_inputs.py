"""The bad-inputs page, read from ``tests/test_bad_inputs.py`` and ``tests/bad_input_cases/*.py``
without running them: each row of their ``CASES`` tables (what the user gave and the pattern the one error line must match) and each of
its other tests (a documented behaviour). The test file is parsed, not imported, so the docs
build does not depend on pytest; ``tests/test_docs.py`` imports it and checks that every case is here."""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from pathlib import Path

from md import code, rst_to_md, table

TESTS = Path(__file__).resolve().parents[2] / "tests"
TEST_FILE = TESTS / "test_bad_inputs.py"
CASE_FILES = [TEST_FILE, *sorted((TESTS / "bad_input_cases").glob("[!_]*.py"))]  # the table's rows, in the order the test runs them
TABLE_TEST = "test_bad_input_is_one_line_and_exit_2"  # the test that runs every row of CASES


@dataclass(frozen=True)
class Case:
    """One row of the table: its id, what the user gave, and the error line it must produce."""

    id: str
    given: str
    message: str


def readable(pattern: str) -> str:
    """A regular expression of an error line as a reader sees it: escapes undone, ``.*`` as an
    ellipsis, ``\\d+`` as N."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt in "dws" and pattern[i + 2 : i + 3] in ("+", "*"):
                out.append("N" if nxt == "d" else "…")
                i += 3
                continue
            out.append(nxt)
            i += 2
            continue
        if ch == "." and pattern[i + 1 : i + 2] in ("*", "+"):
            out.append("…")
            i += 2 + (pattern[i + 2 : i + 3] == "?")
            continue
        if ch not in "^$":
            out.append(ch)
        i += 1
    return "".join(out)


def _text(node: ast.expr) -> str:
    """A path, string or call of the test's argv builders, written the way a user would see it."""
    if isinstance(node, ast.Constant):
        return node.value.decode() if isinstance(node.value, bytes) else str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v.value) if isinstance(v, ast.FormattedValue) else _text(v) for v in node.values)
    if isinstance(node, ast.Name):
        return "DIR" if node.id == "t" else node.id
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return f"{_text(node.left)}/{_text(node.right)}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "_spec":
            return "spec.toml"
        if node.func.id in ("str", "_checkpoint") and node.args:
            return _text(node.args[0])
    return "…"


def _spec_part(key: str, value: str) -> str:
    lines = [line.strip() for line in value.strip().splitlines() if line.strip() and line.strip() != "[[attacks]]"]
    text = ", ".join(lines) if key == "attacks" else "; ".join(lines)
    return f"{key} = {text}" if key == "models" else (f"[[attacks]] {text}" if key == "attacks" else text)


def _given(body: ast.expr, docs: dict[str, str] | None = None) -> str:
    """What the user gave, from an argv builder's body; a builder that calls a function of the case
    file (a setup too long for a lambda) is described by that function's docstring."""
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id in (docs or {}):
        return rst_to_md(" ".join((docs or {})[body.func.id].split()))
    setup = None
    if isinstance(body, ast.Subscript) and isinstance(body.value, ast.Tuple):  # (side effect, argv)[1]
        setup, body = body.value.elts[0], body.value.elts[1]
    parts = []
    if isinstance(setup, ast.Call) and isinstance(setup.func, ast.Attribute) and setup.args:
        target = setup.func.value
        parts.append(f"{code(_text(target))} holds {code(_text(setup.args[0]))}")
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == "_sweep":
        spec = [_spec_part(k.arg, _text(k.value)) for k in body.keywords if k.arg and _text(k.value).strip()]
        parts += [f"spec: {code(p)}" for p in spec]
        flags = " ".join(_text(a) for a in body.args[1:])
        parts.append(f"{code('robust-attn sweep spec.toml ' + flags)}" if flags else "")
    elif isinstance(body, ast.List):
        parts.append(code("robust-attn " + " ".join(_text(e) for e in body.elts)))
    return "; ".join(p for p in parts if p)


def _module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def cases() -> list[Case]:
    """The rows of every ``CASES`` table of the bad-input test."""
    return [row for path in CASE_FILES for row in file_cases(path)]


def file_cases(path: Path) -> list[Case]:
    """The rows of one file's ``CASES`` table."""
    module = _module(path)
    docs = {n.name: ast.get_docstring(n) or "" for n in module.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("test_")}
    for node in module.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or not isinstance(node.value, ast.List):
            continue
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
        if isinstance(target, ast.Name) and target.id == "CASES":
            rows = []
            for row in node.value.elts:
                assert isinstance(row, ast.Tuple), ast.dump(row)
                name, build, pattern = row.elts
                assert isinstance(name, ast.Constant) and isinstance(pattern, ast.Constant) and isinstance(build, ast.Lambda)
                rows.append(Case(str(name.value), _given(build.body, docs), readable(str(pattern.value))))
            return rows
    raise RuntimeError(f"{path}: no CASES table found")


def behaviours(path: Path = TEST_FILE) -> list[tuple[str, str]]:
    """(test name, what it checks) for every other test of the file."""
    out = []
    for node in _module(path).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and node.name != TABLE_TEST:
            doc = ast.get_docstring(node) or ""
            out.append((node.name, rst_to_md(" ".join(inspect.cleandoc(doc).split()))))
    return out


def cases_table() -> str:
    rows = [(c.id, c.given, code(c.message)) for c in cases()]
    return table(("case", "what was given", "the error line, after robust-attn: error: (… is any text, N a number)"), rows)


def behaviours_list() -> str:
    lines = []
    for name, doc in behaviours():
        title = name.removeprefix("test_").replace("_", " ")
        lines.append(f"- **{title[0].upper() + title[1:]}** ({code(name)}){': ' + doc if doc else ''}")
    return "\n".join(lines)
