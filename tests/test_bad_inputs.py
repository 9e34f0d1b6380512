"""Bad input, table-driven: every case the issue tracker listed (and the README's list) is one line
naming the problem and the fix, exit 2, with nothing already written lost; or a documented,
tested behaviour. A bug in robust-attn is the opposite: its traceback and exit 1.

The models here are import specs written by the tests (fixed random weights): no case depends on
a trained model."""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from bad_input_cases import EXTRA_CASES
from badinput import USER_MODELS, Case, _checkpoint, _spec, _sweep

import robust_attn as ra
from robust_attn.cli import main
from robust_attn.errors import RobustAttnError, SpecError


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user_code")
    (folder / "bi_models.py").write_text(USER_MODELS)
    (folder / "bi_name_error.py").write_text("import torch\n\nmodel = undefined_name + 1\n\ndef make():\n    return model\n")
    (folder / "bi_syntax_error.py").write_text("def make(:\n    return None\n")
    return folder


@pytest.fixture(autouse=True)
def _on_path(user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(user_dir))


CASES: list[Case] = [
    ("unknown model", lambda t: _sweep(t, body="", models='["builtin/nope"]'), r"models: unknown model 'builtin/nope'; use a zoo name"),
    ("unknown attack", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "cw"\neps = ["0"]\n'),
     r"attacks\[0\]\.name: unknown attack 'cw' for backend 'native'; known: "),
    ("eps above 1", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "fgsm"\neps = ["2"]\n'), r"eps '2' exceeds 1 .*did you mean 2/255"),
    ("eps [[]]", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "fgsm"\neps = [[]]\n'),
     r"attacks\[0\]\.eps: eps must be a number or 'a/b', got \[\]"),
    ("L1 eps beyond the image", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "apgd-l1"\nsteps = 2\neps = ["5000"]\n'),
     r"attacks\[0\]\.eps: l1 eps 5000 exceeds the l1 diameter of a 3x32x32 image in \[0, 1\] \(3072\)"),
    ("corrupt checkpoint", lambda t: ((t / "bad.safetensors").write_bytes(b"<html>quota</html>"), _sweep(t, body="", models=f'["{t}/bad.safetensors"]'))[1],
     r"checkpoint '.*bad\.safetensors' is corrupt or not a safetensors file .*; delete it and retrain"),
    ("checkpoint for other data", lambda t: _sweep(t, body="", models=f'["{_checkpoint(t / "mnist.safetensors")}"]'),
     r"was trained on mnist \(1x28x28 images, 10 classes\) but the sweep's data is builtin .*set dataset = 'mnist'"),
    ("NaN logits everywhere", lambda t: _sweep(t, body="", models='["bi_models:nan_everywhere"]'),
     r"model 'bi_models:nan_everywhere' returns NaN or infinite logits for 4 of 4 images of a batch of the sweep's data; fix its forward"),
    ("NaN logits on some rows", lambda t: _sweep(t, body="", models='["bi_models:nan_sometimes"]'),
     r"model 'bi_models:nan_sometimes' returned NaN or infinite logits for 1 of 20 images of batch 0 \(images 0-19\); fix its forward"),
    ("targeted without targets", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "fgsm"\ntargeted = true\neps = ["0", "2/255"]\n'),
     r"attacks\[0\]\.targeted: targeted attacks need target labels, which sweeps do not take"),
    ("targeted as a string", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "fgsm"\ntargeted = "false"\neps = ["0"]\n'),
     r"attacks\[0\]\.targeted: targeted must be true or false, got 'false'"),
    ("random_start as a string", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "pgd"\nrandom_start = "false"\neps = ["2/255"]\n'),
     r"attacks\[0\]\.random_start: random_start must be true or false, got 'false'"),
    ("more targets than classes", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "apgd-t"\ntargets = 20\neps = ["2/255"]\n'),
     r"attacks\[0\]\.targets: apgd-t with targets = 20 needs at least 21 classes, the data has 10; use targets <= 9"),
    ("a parameter given twice", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "pgd"\nsteps = 2\nparams = {steps = 3}\neps = ["2/255"]\n'),
     r"attacks\[0\]\.steps: given twice \(in the attack table and in its params table\); keep one"),
    ("an unknown loss", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "apgd"\nloss = "nonsense"\neps = ["2/255"]\n'),
     r"attacks\[0\]\.loss: loss must be one of 'ce', 'dlr', got 'nonsense'"),
    ("zero queries", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "square"\nqueries = 0\neps = ["2/255"]\n'),
     r"attacks\[0\]\.queries: queries must be an integer >= 1, got 0"),
    ("a parameter the attack does not take", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "fgsm"\nsteps = 3\neps = ["0"]\n'),
     r"attacks\[0\]\.steps: attack 'fgsm' \(native\) takes no parameter 'steps'; it takes: targeted"),
    ("a seed too large", lambda t: _sweep(t, body="seeds = [99999999999999999999]"), r"seeds: must be a list of non-negative integers below 2\*\*31"),
    ("an unknown data set", lambda t: _sweep(t, body='dataset = "imagenet21k"'), r"dataset: unknown data set 'imagenet21k'; known: builtin, cifar10"),
    ("missing torchvision data", lambda t: _sweep(t, body=f'dataset = "cifar10"\ndata_dir = "{t}/none"'),
     r"data dir '.*none' does not exist; point --data-dir at the folder holding cifar-10-batches-py, or add --download"),
    ("module raises at import", lambda t: _sweep(t, body="", models='["bi_name_error:make"]'),
     r"model 'bi_name_error:make': importing bi_name_error raised NameError: name 'undefined_name' is not defined; fix it in your code"),
    ("module has a syntax error", lambda t: _sweep(t, body="", models='["bi_syntax_error:make"]'),
     r"model 'bi_syntax_error:make': importing bi_syntax_error raised SyntaxError"),
    ("factory raises", lambda t: _sweep(t, body="", models='["bi_models:boom"]'),
     r"model 'bi_models:boom': the factory raised ValueError: bad config in my factory; fix it in your code"),
    ("names something not callable", lambda t: _sweep(t, body="", models='["bi_models:CONSTANT"]'),
     r"'bi_models:CONSTANT' names a int, not a factory or a torch.nn.Module"),
    ("forward fails on a real batch", lambda t: _sweep(t, body="", models='["bi_models:fails_later"]'),
     r"model 'bi_models:fails_later': its forward raised RuntimeError: shape trouble in the user's layer on batch 0 \(images 0-19\)"),
    ("too many workers", lambda t: _sweep(t, "--workers", "99", body=""), r"workers: 99 ranks on \d+ CPU cores would only compete for them; use at most \d+"),
    ("output under a file", lambda t: ((t / "a-file").write_text("x"), ["sweep", _spec(t, ""), "--quiet", "--out", str(t / "a-file" / "run")])[1],
     r"cannot write the sweep's results: .*a-file is a file, not a folder; choose another --out"),
    ("output on a read-only file system", lambda t: ["sweep", _spec(t, ""), "--quiet", "--out", "/proc/robust-attn-run"],
     r"cannot write the sweep's results under /proc \(.*\); choose a folder you can write \(--out\)"),
    ("missing spec", lambda t: ["sweep", str(t / "nope.toml")], r"sweep spec '.*nope\.toml' not found; see attacks/\*\.toml for examples"),
    ("invalid TOML", lambda t: ((t / "x.toml").write_text("models = [\n"), ["sweep", str(t / "x.toml")])[1], r"x\.toml: not valid TOML"),
    ("report of no run", lambda t: ["report", str(t / "nothing")], r"run directory '.*nothing' does not exist; run `robust-attn sweep SPEC`"),
    ("unknown zoo seed syntax", lambda t: _sweep(t, body="", models='["builtin/vgg@seed=x"]'), r"models: bad training seed in 'builtin/vgg@seed=x'"),
]  # fmt: skip


ALL_CASES: list[Case] = CASES + EXTRA_CASES  # the rows of this file, then those of bad_input_cases/


@pytest.mark.parametrize(("case", "argv", "message"), ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_bad_input_is_one_line_and_exit_2(
    case: str, argv: Callable[[Path], list[str]], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(argv(tmp_path))
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert rc == 2, err
    assert lines and lines[0].startswith("robust-attn: error: "), err
    assert re.search(message, lines[0]), lines[0]
    own = [line for line in lines[1:] if not line.startswith(("Traceback (your code", "  "))]
    assert not own, f"one line, plus (for the user's own code) only their frames: {lines}"
    if "your code" in lines[0]:
        assert lines[1] == "Traceback (your code, most recent call last):" and "robust_attn" not in "\n".join(lines[2:]), err
        assert str(Path(tmp_path).parent) in err or "bi_" in err, "the user's file is named"


def test_debug_shows_the_traceback_of_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown attack 'cw'"):
        main(_sweep(tmp_path, "--debug", body="", attacks='[[attacks]]\nname = "cw"\neps = ["0"]\n'))


def test_a_bug_shows_its_traceback_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A deliberate bug (a KeyError inside the report builder) is not dressed up as an input error."""
    from robust_attn.reports import build

    run = ra.run_sweep(ra.load_spec(_spec(tmp_path, "")), tmp_path / "run", progress=False)

    def broken(doc: object) -> None:
        raise KeyError("params")

    monkeypatch.setattr(build, "SECTION_WRITERS", [build.SECTION_WRITERS[0], broken])
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'params'" in err
    assert err.strip().splitlines()[-1].startswith("robust-attn: internal error: this is a bug in robust-attn")


def test_a_spec_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = Path(_spec(tmp_path, ""))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert ra.load_spec(path).models == ("bi_models:good",)


@pytest.mark.slow
def test_n_beyond_the_data_is_capped_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", _spec(tmp_path, ""), "-n", "1000000000", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "note: builtin test has 10000 images; using all of them (n = 1000000000 asked)" in out
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["dataset"]["n"] == 10000


def test_sweep_takes_the_download_and_verify_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The error for missing data suggests --download and --no-verify: sweep has both."""
    body = f'dataset = "cifar10"\ndata_dir = "{tmp_path}/empty"'
    (tmp_path / "empty").mkdir()
    assert main(["sweep", _spec(tmp_path, body), "--no-verify", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cifar10 test split not found or corrupted under" in err and "add --download, or --no-verify" in err
    spec = ra.load_spec(_spec(tmp_path, body)).with_overrides(download=True, verify=False)
    assert (spec.download, spec.verify) == (True, False)


def test_a_full_disk_keeps_the_finished_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The disk fills up after the first cell: one line saying so and how to resume; the first cell
    survives and the rerun computes only the second."""
    from robust_attn.rundir import writer
    from robust_attn.sweeps import runner

    attacks = '[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n[[attacks]]\nname = "pgd"\nsteps = 2\neps = ["2/255"]\n'
    spec = _spec(tmp_path, "", attacks=attacks)
    real = writer.atomic_bytes
    cells_written: list[Path] = []

    def fill_up(path: Path, data: bytes) -> None:
        record = path.parent.name == "cells" and path.suffix == ".json" and path.name != "plan.json"
        if record and cells_written:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)
        if record:
            cells_written.append(path)

    monkeypatch.setattr(writer, "atomic_bytes", fill_up)
    assert main(["sweep", spec, "--quiet", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(the disk is full); finished units are kept in" in err and "rerun the same command to resume" in err
    monkeypatch.setattr(writer, "atomic_bytes", real)
    ran: list[str] = []
    real_cell = runner.run_cell
    monkeypatch.setattr(
        runner, "run_cell", lambda attack, data, cell, *a, **k: (ran.append(cell.attack), real_cell(attack, data, cell, *a, **k))[1]
    )
    assert main(["sweep", spec, "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert ran == ["pgd-2"], "only the cell lost to the full disk is computed again"


def test_report_of_an_unfinished_run_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep killed after its first cell: the report says in one line (and on page 1) which units
    are missing and the command that finishes them."""
    attacks = '[[attacks]]\nname = "fgsm"\neps = ["0", "4/255"]\n[[attacks]]\nname = "pgd"\nsteps = 2\neps = ["2/255"]\n'
    spec = _spec(tmp_path, "", attacks=attacks)
    run = tmp_path / "run"
    ra.run_sweep(ra.load_spec(spec), run, progress=False)
    manifest = json.loads((run / "manifest.json").read_text())
    pgd = next(c for c in manifest["cells"] if c["attack"] == "pgd-2")
    for f in (run / "cells").glob(f"{pgd['slug']}*"):
        f.unlink()  # as if the sweep had been killed before this cell
    (run / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if line.startswith("warning: "))
    assert (
        f"1 of 2 units of this run are not finished (bi_models:good: pgd-2 [worst-case]); finish them with `robust-attn sweep {spec} --out {run}`"
        in warning
    )
    assert "Incomplete run:" in (run / "report.md").read_text()


def test_a_resume_file_does_not_break_the_zoo_listing(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = isolated_home / "zoo" / "builtin"
    folder.mkdir(parents=True)
    (folder / "vgg-att2-dp@seed=2.resume.safetensors").write_bytes(b"partial")
    assert main(["zoo", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("builtin/vgg-att2-dp "))
    assert re.search(r"\s-\s+- \(resumable: 2\)\s", row), "seed 2 listed as training, resumable; none shipped or cached"


def test_report_into_a_read_only_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A run directory the user cannot write: one line before any work (as root, where permissions
    do not bind, the same check is driven by a refused temporary file)."""
    run = ra.run_sweep(ra.load_spec(_spec(tmp_path, "")), tmp_path / "run", progress=False)
    if os.geteuid() != 0:
        run.chmod(0o555)
    else:
        import tempfile

        def refuse(*args: object, **kwargs: object) -> object:
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    try:
        assert main(["report", str(run)]) == 2
    finally:
        run.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write the report under {run} (Permission denied)" in err
    assert not (run / "report.pdf").exists()


def test_every_user_error_is_a_robust_attn_error() -> None:
    """The CLI catches exactly the RobustAttnError family; the classes that describe bad values keep
    their builtin bases, so `except ValueError` around the API still works."""
    from robust_attn import errors

    for name in ("SpecError", "DataError", "ModelError", "ModelDataMismatch", "CheckpointError", "RunDirError", "UsageError"):
        cls = getattr(errors, name)
        assert issubclass(cls, RobustAttnError) and issubclass(cls, ValueError), name
    assert issubclass(errors.DataNotFound, FileNotFoundError) and issubclass(errors.RankFailed, RuntimeError)
    assert ra.CheckpointError is errors.CheckpointError and ra.RunDirError is errors.RunDirError


@pytest.mark.parametrize("where", ["/proc/robust-attn-compare", "/proc/robust-attn/compare"])
def test_compare_into_a_folder_that_cannot_be_written(where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`compare --out` where nothing can be written (here /proc, which refuses even root): one line
    naming the folder, and the compared runs are untouched."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    runs = [ra.run_sweep(ra.load_spec(_spec(tmp_path / name, "")), tmp_path / name / "run", progress=False) for name in ("a", "b")]
    before = [sorted(p.name for p in run.iterdir()) for run in runs]
    assert main(["compare", *map(str, runs), "--out", where]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("robust-attn: error: "), err
    assert "/proc" in err and ("choose a folder you can write" in err or "choose another --out" in err), err
    assert [sorted(p.name for p in run.iterdir()) for run in runs] == before
