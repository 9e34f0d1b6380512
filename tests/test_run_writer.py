"""One writer per run directory, one spec per run directory, sealed studies, and nothing lost:
an interruption at any write of a small sweep leaves the directory as it was plus whole finished
units, and resuming gives the tables of an uninterrupted run."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from badinput import USER_MODELS

import robust_attn as ra
from robust_attn.cli import main
from robust_attn.errors import RunDirError
from robust_attn.rundir import load_run
from robust_attn.rundir.lock import RunLock
from robust_attn.sweeps import runner
from robust_attn.sweeps.fingerprint import differences, fingerprint

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = '[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n[[attacks]]\nname = "pgd"\nsteps = 2\neps = ["2/255"]\n'


@pytest.fixture(autouse=True)
def _user_models(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("user_code")
    (folder / "rw_models.py").write_text(USER_MODELS + "\n\ndef other():\n    torch.manual_seed(1)\n    return Linear()\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return folder


def _spec_file(tmp: Path, attacks: str = ATTACKS, name: str = "spec", extra: str = "") -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'models = ["rw_models:good", "rw_models:other"]\nn = 20\nattention_samples = 0\ndiagnostic_samples = 0\n{extra}\n{attacks}'
    )
    return path


def _sweep(spec: Path, out: Path, **kwargs: object) -> Path:
    return ra.run_sweep(ra.load_spec(spec), out, progress=False, **kwargs)  # type: ignore[arg-type]


def _top_files(root: Path) -> dict[str, bytes]:
    """Every file of a run directory outside cells/ and examples/, with its bytes."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in ("cells", "examples")
    }


def _units(root: Path) -> dict[str, bytes]:
    """The finished units under cells/ (record and data files), each checked to be whole."""
    out = {}
    for record in (root / "cells").glob("*.json") if (root / "cells").is_dir() else []:
        if record.name == "plan.json":
            continue
        meta = json.loads(record.read_text())
        for name in meta["files"]:
            assert (root / "cells" / name).is_file(), f"{record.name} names {name}, which is missing"
            out[name] = (root / "cells" / name).read_bytes()
        out[record.name] = b"record"
    return out


def _tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = pd.read_csv(root / "results.csv").drop(columns=["seconds"])
    return results, pd.read_parquet(root / "samples.parquet")


def _assert_same_tables(a: Path, b: Path) -> None:
    (ra_, sa), (rb, sb) = _tables(a), _tables(b)
    pd.testing.assert_frame_equal(ra_, rb)
    pd.testing.assert_frame_equal(sa, sb)


class _Fault(Exception):
    pass


def _count_writes(monkeypatch: pytest.MonkeyPatch, fail_at: int | None, kind: str = "interrupt") -> list[str]:
    """Count the run writer's writes (every file a sweep writes goes through ``RunWriter._put``,
    which writes with ``atomic_bytes``); raise inside the ``fail_at``-th: Ctrl-C, or a full disk."""
    from robust_attn.rundir import writer

    seen: list[str] = []
    real = writer.atomic_bytes

    def put(path: Path, data: bytes) -> None:
        seen.append(Path(path).name)
        if fail_at is not None and len(seen) == fail_at:
            if kind == "interrupt":
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(writer, "atomic_bytes", put)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("start", ["empty", "finished, --force"])
def test_an_interruption_at_any_write_loses_nothing(start: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For k over every write of a small sweep (2 models x 2 attacks: plan, 4 cells, the merge),
    fail the k-th write (Ctrl-C at odd k, a full disk at even k): the directory afterwards is the
    one before plus whole finished units, and resuming gives the uninterrupted run's tables."""
    spec = _spec_file(tmp_path)
    reference = _sweep(spec, tmp_path / "reference")
    writes = _count_writes(monkeypatch, None)
    _sweep(spec, tmp_path / "count", force=True)
    total = len(writes)
    assert total >= 14 and writes[0] == "plan.json" and writes[-1] == "manifest.json", writes
    monkeypatch.undo()
    for k in range(1, total + 1):
        root = tmp_path / f"run-{k}"
        if start != "empty":
            _sweep(spec, root)
        before_top, before_units = _top_files(root), _units(root)
        _count_writes(monkeypatch, k, "interrupt" if k % 2 else "disk")
        with pytest.raises((KeyboardInterrupt, RunDirError)):
            _sweep(spec, root, force=start != "empty")
        monkeypatch.undo()
        assert _top_files(root) == before_top, f"write {k} ({writes[k - 1]}): the run's tables and manifest changed"
        after = _units(root)
        assert set(before_units) <= set(after), f"write {k}: a finished unit was lost"
        assert not [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith((".merging-", ".lock"))]
        _sweep(spec, root)
        _assert_same_tables(root, reference)
        load_run(root)  # the manifest's record of the tables holds


def test_a_merge_killed_between_its_renames_is_found_and_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kill -9 between two renames of the merge (simulated: the third rename fails) leaves tables
    the manifest does not describe: reading says so in one line, rerunning the sweep merges again."""
    from robust_attn.rundir import writer

    spec = _spec_file(tmp_path)
    root = _sweep(spec, tmp_path / "run")
    real, calls = os.replace, []

    def dies(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 3:
            raise SystemExit("killed")
        real(src, dst)  # type: ignore[arg-type]

    (root / "samples.parquet").write_bytes((root / "samples.parquet").read_bytes())  # unchanged bytes: still verified
    load_run(root)
    monkeypatch.setattr(writer.os, "replace", dies)
    with pytest.raises(SystemExit):
        _sweep(spec, root, force=True)
    monkeypatch.undo()
    (root / "results.csv").write_text((root / "results.csv").read_text().replace("fgsm", "fgsm ", 1))  # as a half-published merge would
    with pytest.raises(RunDirError, match=r"results\.csv differ from the record in manifest\.json .*rerun its sweep"):
        load_run(root)
    _sweep(spec, root)
    assert len(load_run(root).results) == 2 * 3


def test_a_second_writer_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """While another process holds the run directory (here: a child that locks it and sleeps), a
    sweep into it stops at once, naming the holder; once the holder is gone (killed: the kernel
    drops the lock), the same sweep runs."""
    spec = _spec_file(tmp_path)
    root = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from robust_attn.rundir.lock import RunLock
            RunLock({str(root)!r}).acquire()
            print("held", flush=True)
            time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["sweep", str(spec), "--quiet", "--out", str(root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"run directory {root} is being written by pid {holder.pid} on " in err, err
        assert "wait for it to finish, or sweep into another folder (--out)" in err
        assert not (root / "manifest.json").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(["sweep", str(spec), "--quiet", "--out", str(root)]) == 0
    assert not (root / ".lock").exists(), "the lock file goes with its holder"


def test_two_concurrent_sweeps_of_different_specs_never_both_succeed(tmp_path: Path) -> None:
    """Two `robust-attn sweep` processes of different specs into one folder at the same time: one
    writes its run, the other exits 2, and the run holds the rows of exactly one spec."""
    a = _spec_file(tmp_path, name="a")
    b = _spec_file(tmp_path, attacks='[[attacks]]\nname = "fgsm"\neps = ["0", "1/255", "2/255"]\n', name="b")
    root = tmp_path / "run"
    cmd = [sys.executable, "-m", "robust_attn", "sweep", "--quiet", "--out", str(root)]
    procs = [subprocess.Popen([*cmd, str(s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in (a, b)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = outs[[p.returncode for p in procs].index(2)][1]
    # the lock's holder is named when its record is written already, else "another robust-attn process"
    assert "is being written by " in loser or "holds the results of another sweep spec" in loser, loser
    winner = [a, b][[p.returncode for p in procs].index(0)]
    assert set(load_run(root).results["attack"]) == ({"fgsm", "pgd-2"} if winner == a else {"fgsm"})


def test_another_spec_is_refused_and_the_run_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A finished run directory holds one spec's results: sweeping another spec into it (even with
    --force) is one line naming the fields that differ, and leaves it byte for byte."""
    root = _sweep(_spec_file(tmp_path), tmp_path / "run")
    before = _top_files(root)
    other = _spec_file(tmp_path, attacks='[[attacks]]\nname = "fgsm"\neps = ["0", "8/255"]\n', name="other")
    for extra in ([], ["--force"]):
        assert main(["sweep", str(other), "--quiet", "--out", str(root), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{root} holds the results of another sweep spec (they differ in attacks)" in err, err
    assert _top_files(root) == before


def test_the_same_spec_run_elsewhere_or_otherwise_resumes(tmp_path: Path) -> None:
    """What only says how or where a sweep runs (name, device, workers, data_dir) is not part of a
    spec's fingerprint; what changes its numbers is, and defaults do not count (a field added later
    leaves older runs' fingerprints as they were)."""
    spec = ra.load_spec(_spec_file(tmp_path))
    same = spec.with_overrides(device="cpu", name="renamed", data_dir=str(tmp_path))
    assert fingerprint(spec) == fingerprint(same) and not differences(spec, same)
    assert differences(spec, spec.with_overrides(n=10)) == ["n"]
    assert differences(spec, spec.with_overrides(batch_size=7, precision="bf16")) == ["batch_size", "precision"]
    stored = json.loads(json.dumps(spec.__dict__, default=str)) | {"a_field_from_the_future": None}
    stored.pop("channels_last")  # an older manifest without a field that is at its default
    assert "channels_last" not in differences(spec, stored)
    root = _sweep(_spec_file(tmp_path), tmp_path / "run")
    before = _top_files(root)
    ra.run_sweep(same, root, progress=False)
    assert _top_files(root) == before, "a rerun with nothing to do rewrites nothing"


def test_a_sealed_run_refuses_every_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`robust-attn seal DIR`: a sweep into it, --force included, is one line and changes nothing;
    the report still writes (it is derived); `seal --undo` opens it again."""
    spec = _spec_file(tmp_path)
    root = _sweep(spec, tmp_path / "run")
    assert main(["seal", str(root), "--note", "the study of issue 36"]) == 0
    assert "sealed" in capsys.readouterr().out
    before = _top_files(root)
    for extra in ([], ["--force"]):
        assert main(["sweep", str(spec), "--quiet", "--out", str(root), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{root} is a sealed run directory (sealed " in err and "the study of issue 36" in err, err
        assert f"`robust-attn seal --undo {root}`" in err
    assert _top_files(root) == before
    assert main(["report", str(root), "--quiet"]) == 0
    assert main(["seal", "--undo", str(root)]) == 0
    assert main(["sweep", str(spec), "--quiet", "--out", str(root), "--force"]) == 0


def test_every_committed_study_is_sealed() -> None:
    """The studies under reports/ cannot be written by a sweep by accident."""
    studies = sorted(p.parent for p in (ROOT / "reports").glob("*/manifest.json"))
    assert studies
    for study in studies:
        assert json.loads((study / "manifest.json").read_text()).get("sealed"), f"{study.name} is not sealed: robust-attn seal {study}"


def test_a_sweep_without_out_writes_under_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default run directory is runs/<spec name> under the working directory, which the
    repository ignores: no sweep writes into the committed studies under reports/."""
    monkeypatch.chdir(tmp_path)
    root = ra.run_sweep(ra.load_spec(_spec_file(tmp_path, name="mine")), progress=False)
    assert root == Path("runs") / "mine" and (tmp_path / "runs" / "mine" / "manifest.json").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", "runs/compare/results.csv"], cwd=ROOT)
    assert ignored.returncode == 0, "runs/ is git-ignored"


def test_ctrl_c_says_what_was_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C after the first cell of a finished run rerun with --force: the message counts the
    saved units truthfully and says the tables are those of the last finished sweep."""
    spec = _spec_file(tmp_path)
    root = _sweep(spec, tmp_path / "run")
    real, calls = runner.run_cell, []

    def stop_second(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "run_cell", stop_second)
    assert main(["sweep", str(spec), "--quiet", "--out", str(root), "--force"]) == 130
    err = capsys.readouterr().err
    assert (
        f"stopped: 4 of 4 units are finished and saved in {root / 'cells'} (1 by this run); the run's tables and manifest.json are unchanged"
        in err
    ), err


def test_the_lock_is_passed_to_local_ranks_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local rank writes under its parent's lock (the token in its environment); a stranger with a
    wrong token, or the token of another folder, is refused."""
    root = tmp_path / "run"
    with RunLock(root) as lock:
        monkeypatch.setenv("ROBUST_ATTN_RUN_LOCK", lock.env()["ROBUST_ATTN_RUN_LOCK"])
        RunLock(root).acquire()  # the parent's token: inherited, no second flock
        monkeypatch.setenv("ROBUST_ATTN_RUN_LOCK", f"{root}\tnot-the-token")
        with pytest.raises(RunDirError, match="is being written by pid"):
            RunLock(root).acquire()
        monkeypatch.setenv("ROBUST_ATTN_RUN_LOCK", f"{tmp_path / 'elsewhere'}\t{lock.token}")
        with pytest.raises(RunDirError, match="is being written by pid"):
            RunLock(root).acquire()
    assert not root.exists(), "a lock on a new folder that nothing was written to leaves no folder"
