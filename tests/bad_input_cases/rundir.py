"""Bad-input rows about run directories: one writer, one spec, sealed studies, their files."""

from __future__ import annotations

from pathlib import Path

from badinput import Case, _spec, _sweep

import robust_attn as ra
from robust_attn.rundir import RunWriter
from robust_attn.rundir.combine import combine_runs
from robust_attn.rundir.lock import RunLock

_HELD: list[RunLock] = []  # locks a row holds for the rest of the test session (as another process would)


def _finished_run(t: Path, seal: bool = False) -> Path:
    (t / "first").mkdir(exist_ok=True)
    run = ra.run_sweep(ra.load_spec(_spec(t / "first", "")), t / "run", progress=False)
    if seal:
        RunWriter(run).seal("a committed study")
    return run


def sealed_run(t: Path) -> list[str]:
    """A finished run directory sealed with `robust-attn seal DIR`; `robust-attn sweep spec.toml --out DIR --force`."""
    _finished_run(t, seal=True)
    return _sweep(t, "--force", body="")


def other_spec(t: Path) -> list[str]:
    """A finished run of one FGSM grid in DIR; `robust-attn sweep` of a spec with another eps grid into it."""
    _finished_run(t)
    return _sweep(t, body="", attacks='[[attacks]]\nname = "fgsm"\neps = ["0", "8/255"]\n')


def held(t: Path) -> list[str]:
    """Another process is writing DIR (it holds DIR/.lock); `robust-attn sweep spec.toml --out DIR`."""
    _HELD.append(RunLock(t / "run").acquire())
    return _sweep(t, body="")


def report_while_written(t: Path) -> list[str]:
    """A finished run that a sweep is writing again (it holds DIR/.lock); `robust-attn report DIR`."""
    run = _finished_run(t)
    _HELD.append(RunLock(run).acquire())
    return ["report", str(run), "--quiet"]


def compare_into_sealed(t: Path) -> list[str]:
    """`robust-attn compare A B --out C --force` where C is a sealed combined run."""
    runs = []
    for name in ("a", "b"):
        (t / name).mkdir()
        runs.append(str(ra.run_sweep(ra.load_spec(_spec(t / name, "")), t / name / "run", progress=False)))
    combine_runs(runs, t / "combined")
    RunWriter(t / "combined").seal("published")
    return ["compare", *runs, "--out", str(t / "combined"), "--force", "--quiet"]


def edited_table(t: Path) -> list[str]:
    """A finished run whose results.csv was edited after the merge (or a merge killed between its renames); `robust-attn report DIR`."""
    run = _finished_run(t)
    (run / "results.csv").write_text((run / "results.csv").read_text() + "\n")
    return ["report", str(run), "--quiet"]


CASES: list[Case] = [
    ("sweep into a sealed run", lambda t: sealed_run(t),
     r".*run is a sealed run directory \(sealed .*; a committed study\); sweep into another folder \(--out\), or unseal it first with `robust-attn seal --undo "),
    ("another spec into a finished run", lambda t: other_spec(t),
     r".*run holds the results of another sweep spec \(they differ in attacks\); sweep into another folder \(--out\), and combine the two with `robust-attn compare`"),
    ("a second writer", lambda t: held(t),
     r"run directory .*run is being written by pid \d+ on .*; wait for it to finish, or sweep into another folder \(--out\)"),
    ("report while a sweep writes", lambda t: report_while_written(t), r"run directory .*run is being written by pid \d+ on .*; wait for it to finish$"),
    ("compare --force into a sealed run", lambda t: compare_into_sealed(t),
     r".*combined is a sealed run directory; --force does not replace it: choose another --out"),
    ("a table edited after the merge", lambda t: edited_table(t),
     r".*run: results\.csv differ from the record in manifest\.json \(a merge was interrupted, or the files were edited\); rerun its sweep"),
]  # fmt: skip
