"""``robust-attn leaderboard``: the per-sample worst case over a norm's attacks on constructed
cells with known answers; the CSV of a leaderboard over two small runs against values computed
independently from their per-sample tables; the HTML in a real headless browser (rows, sorting);
and the refusals."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import robust_attn as ra
from robust_attn.archstats import architecture_mean
from robust_attn.commands_runs import add_parsers
from robust_attn.errors import RunDirError, UsageError
from robust_attn.leaderboard import CellView, Threat, build_leaderboard, worst_case
from robust_attn.stats import wilson_interval

# -- the worst case over attacks, on cells with known answers ----------------------------------
E1, E2, E4, E8 = (k / 255 for k in (1, 2, 4, 8))
CLEAN = np.array([1, 1, 0, 1, 1], bool)


def _cell(
    attack: str,
    eps: list[float],
    correct: list[list[int]],
    mode: str = "worst-case",
    *,
    threat_model: str = "white-box",
    norm: str = "linf",
    min_norm: np.ndarray | None = None,
    source: str | None = None,
) -> CellView:
    return CellView(attack, threat_model, norm, mode, np.array(eps), np.array(correct, bool), min_norm, source)


CELLS = [
    _cell("fgsm", [E2, E8], [[1, 1, 0, 1, 1], [1, 0, 0, 1, 1]]),
    _cell("pgd-10", [E4], [[1, 1, 1, 0, 1]]),
    _cell("fmn", [E8], [[1, 0, 0, 0, 0]], min_norm=np.array([np.inf, 0.05, 0.0, 0.02, 0.01])),
    _cell("pgd-10", [E8], [[1, 1, 1, 1, 0]], mode="independent"),
    _cell("pgd-l2", [0.5], [[0, 0, 0, 0, 0]], norm="l2"),  # another norm: never part of an L-inf worst case
    _cell("pgd-10", [E4], [[0, 0, 0, 0, 0]], threat_model="transfer", source="vgg"),  # another threat model
]


def test_a_sample_is_robust_only_if_it_survives_every_attack_of_its_norm() -> None:
    at4 = worst_case(CELLS, CLEAN, Threat("white-box", "linf", E4))
    assert at4 is not None
    # fgsm at its largest eps <= 4/255 (2/255: balls are nested), pgd at 4/255, fmn's norms > 4/255; the
    # independent pgd cell answers only at its own 8/255; clean mistakes stay mistakes
    assert at4.correct.tolist() == [True, True, False, False, False] and at4.accuracy == 0.4
    assert at4.attacks == ("fgsm", "pgd-10", "fmn")
    at8 = worst_case(CELLS, CLEAN, Threat("white-box", "linf", E8))
    assert at8 is not None and at8.correct.tolist() == [True, False, False, False, False]
    assert at8.attacks == ("fgsm", "pgd-10", "fmn", "pgd-10 [independent]")


def test_a_threat_no_attack_was_run_at_is_not_evaluated() -> None:
    assert worst_case(CELLS, CLEAN, Threat("white-box", "linf", 3 / 255)) is None, "not filled from smaller budgets alone"
    assert worst_case(CELLS, CLEAN, Threat("white-box", "linf", E1)) is None
    l2 = worst_case(CELLS, CLEAN, Threat("white-box", "l2", 0.5))
    assert l2 is not None and l2.attacks == ("pgd-l2",) and l2.accuracy == 0.0
    transfer = worst_case(CELLS, CLEAN, Threat("transfer", "linf", E4))
    assert transfer is not None and transfer.attacks == ("pgd-10 from vgg",)
    assert Threat("white-box", "linf", E8).key == "white-box:linf:8/255" and Threat("transfer", "l2", 0.5).label == "transfer L2 0.5"


# -- a leaderboard over two small runs ----------------------------------------------------------
CONSTRUCTED = Path(__file__).parent / "constructed"  # memory_models.py: models with known answers

M = "memory_models"
FGSM: dict[str, Any] = {"name": "fgsm", "eps": ["0", "2/255", "4/255", "8/255"]}
PGD: dict[str, Any] = {"name": "pgd", "steps": 3, "eps": ["2/255", "8/255"]}
APGD: dict[str, Any] = {"name": "apgd", "steps": 3, "eps": ["8/255"]}
H8, H4 = "white-box:linf:8/255", "white-box:linf:4/255"


def _sweep(root: Path, name: str, models: list[str], attacks: list[dict[str, Any]], **settings: object) -> Path:
    raw = {
        "name": name,
        "models": [f"{M}:{m}" for m in models],
        "n": 24,
        "batch_size": 24,
        "attention_samples": 0,
        "diagnostic_samples": 0,
        "attacks": attacks,
        **settings,
    }
    return ra.run_sweep(ra.parse_spec(raw), root / name, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("leaderboard")
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(CONSTRUCTED))
    out = {
        "study": _sweep(root, "study", ["memory0", "memory1", "const"], [FGSM, PGD]),
        "new": _sweep(root, "new", ["steady", "const"], [FGSM, PGD, APGD]),
        "extra": _sweep(root, "extra", ["const"], [{"name": "fgsm", "eps": ["1/255", "8/255"]}]),  # one threat no other run has
        "train": _sweep(root, "train", ["const"], [FGSM], split="train"),
        "l2": _sweep(root, "l2", ["const"], [{"name": "pgd-l2", "steps": 1, "eps": ["0.5"]}]),
    }
    (out["study"] / "report.html").write_text("<html></html>")  # the leaderboard links a run's report; it does not read it
    yield out
    mp.undo()


@pytest.fixture(scope="module")
def board(runs: dict[str, Path]) -> Path:
    out = runs["study"].parent / "board"
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["leaderboard", str(runs["study"]), str(runs["new"]), str(runs["extra"]), "--out", str(out)])
    assert args.func(args) == 0
    return out


def _robust(run_dir: Path, model: str, parts: list[tuple[str, float]]) -> np.ndarray:
    """Clean-correct and correct under each (attack, eps), sample by sample, from samples.parquet."""
    s = pd.read_parquet(run_dir / "samples.parquet")
    s = s[s["model"] == model]
    first = s.drop_duplicates("sample").sort_values("sample")
    out = (first["clean_pred"] == first["label"]).to_numpy()
    for attack, eps in parts:
        cell = s[(s["attack"] == attack) & np.isclose(s["eps"], eps)].sort_values("sample")
        out = out & cell["correct"].to_numpy(bool)
    return out


def _csv(board: Path) -> pd.DataFrame:
    return pd.read_csv(board / "leaderboard.csv")


def test_rows_are_every_model_and_architecture_ranked_under_the_headline(board: Path) -> None:
    df = _csv(board)
    models = df[df["kind"] == "model"]
    assert sorted(models["name"]) == sorted(f"{M}:{m}" for m in ("memory0", "memory1", "const", "steady")), (
        "the model in both runs is one row"
    )
    archs = df[df["kind"] == "architecture"].set_index("name")
    assert archs["seeds"].to_dict() == {"memory": 2, "constant": 1, "memory-steady": 1}
    for group in (models, df[df["kind"] == "architecture"]):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        ranked = list(zip(-group[H8], -group["clean"]))
        assert ranked == sorted(ranked), "ranked by robust accuracy at the headline eps (8/255: every run has it), then clean"


def test_values_are_the_per_sample_worst_case_with_their_intervals(board: Path, runs: dict[str, Path]) -> None:
    df = _csv(board).set_index(["kind", "name"])
    study, new = runs["study"], runs["new"]
    labels = pd.read_parquet(study / "samples.parquet").drop_duplicates("sample").sort_values("sample")["label"].to_numpy()
    const = df.loc[("model", f"{M}:const")]
    share = float(np.mean(labels == 5))
    assert const["clean"] == pytest.approx(share, abs=1e-6) and all(
        const[k] == pytest.approx(share, abs=1e-6) for k in (H4, H8, "white-box:linf:2/255")
    )

    memory0 = df.loc[("model", f"{M}:memory0")]
    r4 = _robust(study, f"{M}:memory0", [("fgsm", E4), ("pgd-3", E2)])  # pgd-3 ran at 2/255 and 8/255: at 4/255 its 2/255 outcome counts
    low, high = wilson_interval(int(r4.sum()), r4.size)
    assert (memory0[H4], memory0[f"{H4} low"], memory0[f"{H4} high"]) == pytest.approx((r4.mean(), low, high), abs=1e-6)
    assert memory0[f"{H4} attacks"] == "fgsm + pgd-3" and memory0[f"{H4} run"] == "study" and memory0[f"{H4} n"] == 24
    assert memory0["evaluation"] == "fgsm + pgd-3 (study)" and memory0["report"] == "../study/report.html"
    results = pd.read_csv(study / "results.csv").drop_duplicates(["model", "attack"]).set_index(["model", "attack"])
    fps = results.loc[(f"{M}:memory0", "fgsm"), "forwards_per_sample"] + results.loc[(f"{M}:memory0", "pgd-3"), "forwards_per_sample"]
    assert memory0["forwards_per_sample"] == pytest.approx(fps, abs=1e-6)

    steady = df.loc[("model", f"{M}:steady")]
    r8 = _robust(new, f"{M}:steady", [("fgsm", E8), ("pgd-3", E8), ("apgd-3", E8)])
    assert steady[H8] == pytest.approx(r8.mean(), abs=1e-6) and steady[f"{H8} attacks"] == "fgsm + pgd-3 + apgd-3"
    assert pd.isna(steady["report"]), "the new run has no report to link"

    # the constant model scores the same in all three runs: the first is its evaluation; 1/255 only the third run has
    assert const[f"{H8} run"] == "study" and const["white-box:linf:1/255 run"] == "extra" and pd.isna(memory0["white-box:linf:1/255"])
    assert const["evaluation"] == "fgsm + pgd-3 (study); fgsm (extra)" and const["runs"] == "study extra"

    seeds = np.stack([_robust(study, f"{M}:memory{s}", [("fgsm", E4), ("pgd-3", E2)]) for s in (0, 1)]).astype(float)
    est = architecture_mean(seeds)
    memory = df.loc[("architecture", "memory")]
    assert (memory[H4], memory[f"{H4} low"], memory[f"{H4} high"]) == pytest.approx(
        (est.value, max(0, est.low), min(1, est.high)), abs=1e-6
    )


def test_the_markdown_holds_the_same_rows(board: Path) -> None:
    md = (board / "leaderboard.md").read_text()
    for name in _csv(board)["name"]:
        assert f"| {name} |" in md
    assert "Sorted by L∞ 8/255" in md


# -- the page, in a real browser ----------------------------------------------------------------
def _dom(page: Path, fragment: str = "") -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no headless chromium here (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", f"--user-data-dir={profile}"]
        done = subprocess.run(
            [browser, *flags, "--dump-dom", page.resolve().as_uri() + fragment], capture_output=True, text=True, timeout=90
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _rows(dom: str, table: str) -> list[str]:
    body = dom.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-name="([^"]+)"', body)


def test_the_page_is_self_contained(board: Path) -> None:
    html = (board / "leaderboard.html").read_text()
    assert html.count("<sup>†</sup>") == 3, "the legend's mark, and the constant model's 1/255 in its row and its architecture's row"
    assert not re.search(r"""(src|href)=["']?(https?:)?//|<link|@import|url\(""", html), "no network: style and script are inline"


def test_the_browser_shows_the_ranked_rows_and_sorts_on_a_column(board: Path) -> None:
    df = _csv(board)
    models = df[df["kind"] == "model"]
    page = board / "leaderboard.html"
    dom = _dom(page)
    assert (
        _rows(dom, "models") == models["name"].tolist() and _rows(dom, "architectures") == df[df["kind"] == "architecture"]["name"].tolist()
    )
    by_clean = models.sort_values("clean", kind="stable")["name"].tolist()
    assert by_clean != models["name"].tolist(), "the test needs an order that differs from the ranking"
    dom = _dom(page, "#sort=clean&dir=asc")
    assert _rows(dom, "models") == by_clean
    assert re.search(r'<th[^>]*data-key="clean"[^>]*aria-sort="ascending"', dom)
    dom = _dom(page, "#sort=name")
    assert _rows(dom, "models") == sorted(models["name"], key=str.lower), "text columns sort ascending by default"


# -- refusals -----------------------------------------------------------------------------------
def _one_line(err: pytest.ExceptionInfo[BaseException], *parts: str) -> None:
    text = str(err.value)
    assert "\n" not in text and all(p in text for p in parts), text


def test_zero_runs_other_data_and_nothing_in_common_are_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        build_leaderboard([], tmp_path)
    _one_line(err, "a leaderboard needs at least one run directory")
    with pytest.raises(RunDirError) as err2:
        build_leaderboard([runs["study"], runs["train"]], tmp_path)
    _one_line(err2, "runs study and train are on different data", "split test vs train")
    with pytest.raises(RunDirError) as err3:
        build_leaderboard([runs["study"], runs["l2"]], tmp_path)
    _one_line(err3, "the runs share no threat model and eps", "study evaluates L∞ 2/255, L∞ 4/255, L∞ 8/255", "l2 evaluates L2 0.5")
    assert list(tmp_path.iterdir()) == []
