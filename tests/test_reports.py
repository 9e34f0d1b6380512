"""Report statistics against hand-computed values, sanity checks on crafted tables, the PDF
and Markdown of a real (small) run, and errors for broken run directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pypdf import PdfReader

from robust_attn.cli import main
from robust_attn.probes.maps import binarise, centred_box, jaccard, top_region
from robust_attn.reports import RunDirError, load_run, make_report
from robust_attn.reports.build import SECTIONS
from robust_attn.reports.checks import (
    accuracy_does_not_rise,
    eps_zero_is_clean,
    iterative_at_least_fgsm,
    large_eps_near_zero,
    libraries_agree,
)
from robust_attn.stats import eps_at_half, mcnemar_exact, normalised_auc, wilson_interval
from robust_attn.sweeps import parse_spec, run_sweep


def test_wilson_interval_known_values() -> None:
    # Wilson (1927) score interval, z = 1.959964: 8 of 10 -> [0.4902, 0.9433]
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0


def test_mcnemar_exact_by_hand() -> None:
    a = np.array([1] * 5 + [1] + [0] * 9 + [0] * 3, bool)  # 5 both right, 1 only A, 9 only B, 3 both wrong
    b = np.array([1] * 5 + [0] + [1] * 9 + [0] * 3, bool)
    only_a, only_b, p = mcnemar_exact(a, b)
    assert (only_a, only_b) == (1, 9)
    assert p == pytest.approx(2 * (1 + 10) / 2**10)  # two-sided binomial(10, 1/2) tail at 1
    assert mcnemar_exact(a, a) == (0, 0, 1.0)


def test_auc_and_half_clean_eps() -> None:
    assert normalised_auc([0, 1, 2], [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert normalised_auc([0, 2, 4], [0.8, 0.8, 0.8]) == pytest.approx(0.8)
    assert eps_at_half([0, 1, 2], [1.0, 0.6, 0.2], clean=1.0) == pytest.approx(1.25)
    assert np.isnan(eps_at_half([0, 1], [1.0, 0.9], clean=1.0))


def test_jaccard_binarise_and_regions() -> None:
    a = torch.zeros(1, 4, 4, dtype=torch.bool)
    a[0, :2, :2] = True  # 4 pixels
    b = torch.zeros(1, 4, 4, dtype=torch.bool)
    b[0, :2, :4] = True  # 8 pixels, 4 shared
    assert jaccard(a, b).item() == pytest.approx(0.5)
    maps = torch.full((1, 4, 4), 1 / 32)
    maps[0, 0, 0] = 1 / 32 + 0.5
    assert binarise(maps).sum().item() == 1 and top_region(maps, 1 / 16)[0, 0, 0]
    assert centred_box(2, 32).sum().item() == 2 * 16 * 16


def _results(rows: list[tuple]) -> pd.DataFrame:
    """rows: (model, attack, name, backend, mode, params, eps, correct), n = 100."""
    out = []
    for model, attack, name, backend, mode, params, eps, correct in rows:
        low, high = wilson_interval(correct, 100)
        out.append(
            {
                "model": model,
                "attack": attack,
                "name": name,
                "backend": backend,
                "norm": "l2" if name == "pgd-l2" else "linf",
                "mode": mode,
                "params": json.dumps(params),
                "eps": eps,
                "n": 100,
                "correct": correct,
                "accuracy": correct / 100,
                "ci_low": low,
                "ci_high": high,
                "threat_model": "white-box",
                "iterative": name != "fgsm",
                "minimum_norm": False,
            }
        )  # fmt: skip  (traits as the manifest declares them)
    return pd.DataFrame(out)


def _fgsm(mode: str, counts: list[int], eps: list[float], model: str = "m", backend: str = "native") -> list[tuple]:
    return [
        (model, "fgsm" if backend == "native" else f"fgsm@{backend}", "fgsm", backend, mode, {"targeted": False}, e, c)
        for e, c in zip(eps, counts)
    ]


def test_check_eps_zero() -> None:
    good = _results(_fgsm("independent", [90, 50], [0, 0.03]))
    assert eps_zero_is_clean(good, {"m": (90, 100)}).status == "pass"
    assert eps_zero_is_clean(good, {"m": (91, 100)}).status == "warning"


def test_check_monotone() -> None:
    assert accuracy_does_not_rise(_results(_fgsm("independent", [90, 60, 40], [0, 0.01, 0.03]))).status == "pass"
    rising = accuracy_does_not_rise(_results(_fgsm("independent", [90, 30, 60], [0, 0.01, 0.03])))
    assert rising.status == "warning" and "0.600" in rising.figures[0]
    assert accuracy_does_not_rise(_results(_fgsm("independent", [90, 40, 43], [0, 0.01, 0.03]))).status == "pass"  # within interval


def test_check_iterative_vs_fgsm() -> None:
    pgd = lambda c: [("m", "pgd-10", "pgd", "native", "worst-case", {"steps": 10}, 0.03, c)]
    fgsm = _fgsm("worst-case", [90, 40], [0, 0.03])
    assert iterative_at_least_fgsm(_results(fgsm + pgd(10))).status == "pass"
    assert iterative_at_least_fgsm(_results(fgsm + pgd(70))).status == "warning"
    assert iterative_at_least_fgsm(_results(fgsm)).status == "skipped"


def test_check_large_eps() -> None:
    assert large_eps_near_zero(_results(_fgsm("worst-case", [90, 5], [0, 16 / 255]))).status == "pass"
    assert large_eps_near_zero(_results(_fgsm("worst-case", [90, 40], [0, 16 / 255]))).status == "warning"
    assert large_eps_near_zero(_results(_fgsm("worst-case", [90, 40], [0, 8 / 255]))).status == "skipped"


def test_check_library_agreement() -> None:
    native = _fgsm("independent", [90, 50], [0, 0.03])
    assert libraries_agree(_results(native + _fgsm("independent", [90, 50], [0, 0.03], backend="foolbox"))).status == "pass"
    assert libraries_agree(_results(native + _fgsm("independent", [90, 52], [0, 0.03], backend="torchattacks"))).status == "warning"
    assert libraries_agree(_results(native)).status == "skipped"


def test_check_library_agreement_worst_case_needs_equal_grids() -> None:
    """Worst-case accuracy at eps counts samples fooled at any smaller eps of the same grid, so a
    denser native grid is legitimately lower at 8/255: compared only when the grids match."""
    native = _fgsm("worst-case", [90, 60, 45], [0, 0.01, 0.03])
    library = _fgsm("worst-case", [90, 50], [0, 0.03], backend="torchattacks")
    assert libraries_agree(_results(native + library)).status == "skipped"
    same_grid = _fgsm("worst-case", [90, 60, 47], [0, 0.01, 0.03], backend="torchattacks")
    assert libraries_agree(_results(native + same_grid)).status == "warning"
    same_grid_ok = _fgsm("worst-case", [90, 60, 45], [0, 0.01, 0.03], backend="torchattacks")
    assert libraries_agree(_results(native + same_grid_ok)).status == "pass"


def test_broken_run_dirs(small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RunDirError, match="does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(RunDirError, match="has no manifest.json"):
        load_run(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(small_run, broken)
    (broken / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(RunDirError, match="malformed"):
        load_run(broken)
    shutil.copy(small_run / "results.csv", broken / "results.csv")
    (broken / "samples.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(RunDirError, match="samples.parquet is not a readable Parquet file"):
        load_run(broken)
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robust-attn: error: run directory") and err.count("\n") == 1


@pytest.fixture(scope="module")
def small_run(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    model_path = trained[1]
    twin = model_path.with_name("twin.safetensors")  # a second model: paired comparisons need two
    twin.write_bytes(model_path.read_bytes())
    spec = parse_spec({
        "name": "small", "models": [str(model_path), str(twin)], "n": 40, "batch_size": 20, "modes": ["worst-case", "independent"],
        "attacks": [{"name": "fgsm", "eps": ["0", "2/255", "8/255", "16/255"]}, {"name": "pgd", "steps": 3, "eps": ["2/255", "8/255"]},
                    {"name": "fgsm", "backend": "torchattacks", "eps": ["0", "8/255"]}],
    })  # fmt: skip
    return run_sweep(spec, tmp_path_factory.mktemp("run") / "small", progress=False)


def test_report_pdf_markdown_and_summary(small_run: Path) -> None:
    report = make_report(small_run, progress=False)
    pages = PdfReader(report.pdf).pages
    text = "\n".join(p.extract_text() for p in pages)
    for needle in ("Robustness report: small", "Summary: worst-case", "fgsm (worst-case)", "all attacks (worst-case)", "Summary: independent",
                   "Paired comparison of model instances", "Weakly supervised segmentation", "Sanity checks"):  # fmt: skip
        assert needle in text, needle
    # title, 2 summary pages (modes), architectures (instances only here), 2 curve pages, attack cost, 1 paired, 2 attention grids,
    # drift, segmentation figure + table, checks
    assert len(pages) == 14
    assert "Attack comparison: cost and strength" in text and "indicator: unconstrained attack failure" in text
    md = report.markdown.read_text()
    for section in SECTIONS:
        assert f"## {section}" in md, section
    for png in ("curves", "curves_relative", "attention_drift", "segmentation"):
        assert (small_run / "figures" / f"{png}.png").stat().st_size > 10_000
    summary = pd.read_csv(report.summary_csv)
    row = summary[(summary["attack"] == "fgsm") & (summary["mode"] == "worst-case")].iloc[0]
    results = pd.read_csv(small_run / "results.csv")
    at8 = results[(results["attack"] == "fgsm") & (results["mode"] == "worst-case") & np.isclose(results["eps"], 8 / 255)].iloc[0]
    assert row["acc@8/255"] == pytest.approx(at8["accuracy"])
    checks = {c.name: c.status for c in report.checks}
    assert checks["eps = 0 equals clean accuracy"] == "pass"
    assert checks["torchattacks / foolbox cross-check"] == "pass"
    assert (small_run / "paired.csv").is_file()


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two architectures x two training seeds (small untrained models: this tests the plumbing), one
    of them recorded with a different training length."""
    import robust_attn as ra

    folder = tmp_path_factory.mktemp("seeded")
    refs = []
    for arch in ("vgg", "vgg-att2-pc"):
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = ra.create_model(arch, width=0.0625, layout="compact", dropout=0.0)
            epochs = 3 if (arch, seed) == ("vgg", 1) else 2
            path = folder / f"{arch}-s{seed}.safetensors"
            ra.save_checkpoint(path, model, {"dataset": "builtin", "image_shape": [3, 32, 32], "classes": [str(i) for i in range(10)],
                                             "seed": seed, "epochs": epochs, "train_size": 100})  # fmt: skip
            refs.append(str(path))
    spec = parse_spec({"name": "seeded", "models": refs, "n": 40, "batch_size": 20, "attention_samples": 10, "diagnostic_samples": 10,
                       "attacks": [{"name": "fgsm", "eps": ["0", "2/255", "8/255"]}, {"name": "pgd", "steps": 2, "eps": ["2/255"]}]})  # fmt: skip
    return run_sweep(spec, folder / "run", progress=False)


def test_report_compares_architectures_over_seeds(seeded_run: Path) -> None:
    from robust_attn.reports.tables import architecture_curves, architectures, budget_mismatch

    report = make_report(seeded_run, progress=False)
    text = "\n".join(p.extract_text() for p in PdfReader(report.pdf).pages)
    for needle in ("Architectures: pairwise differences", "The paper's claims, architecture level", "different budgets"):
        assert needle in text or needle in report.markdown.read_text(), needle
    run = load_run(seeded_run)
    assert architectures(run) == {"vgg": [m for m in run.models if "/vgg-s" in m], "vgg-att2-pc": [m for m in run.models if "att2" in m]}
    assert budget_mismatch(run) == ["training epochs differ (2: 3 models, 3: 1 models)"]
    arch = architecture_curves(run)
    clean = arch[(arch["architecture"] == "vgg") & (arch["attack"] == "clean")].iloc[0]
    per_seed = [run.clean_accuracy(m) for m in architectures(run)["vgg"]]
    assert clean["accuracy"] == pytest.approx(np.mean(per_seed)) and clean["ci_low"] <= clean["accuracy"] <= clean["ci_high"]
    pairs = pd.read_csv(seeded_run / "architecture_pairs.csv")
    assert {"diff", "ci_low", "ci_high", "p_value"} <= set(pairs.columns) and (pairs["ci_low"] <= pairs["ci_high"]).all()


def test_single_seed_runs_make_no_architecture_claim(small_run: Path) -> None:
    """small_run holds one checkpoint twice: one training run, so only instances are compared."""
    md = make_report(small_run, progress=False).markdown.read_text()
    section = md.split("## Architectures")[1].split("\n## ")[0]
    assert "comparison here is between model instances" in section and "no architecture-level claim is made" in section


def test_adversarially_trained_models_are_their_own_architecture() -> None:
    """A checkpoint trained with an adversarial recipe declares its training regime as a field of
    its own (read from the recipe it recorded), so reports group it apart from clean-trained ones
    of the same network; a module declares its own (attributes), else 'unknown'."""
    from robust_attn.reports.tables import population_label
    from robust_attn.resolve import declared_traits

    clean = declared_traits({"model": "vgg", "seed": 1, "recipe": {"name": "fast", "adversarial": "none"}}, None, "builtin/vgg")
    robust = declared_traits(
        {"model": "vgg", "seed": 1, "recipe": {"name": "fgsm-at", "adversarial": "fgsm"}}, None, "builtin/vgg-at@seed=1"
    )
    assert clean == {"architecture": "vgg", "training_regime": "clean", "train_seed": 1}
    assert robust == {"architecture": "vgg", "training_regime": "fgsm-at", "train_seed": 1}
    assert population_label(robust["architecture"], robust["training_regime"]) == "vgg+fgsm-at"

    class Declared(torch.nn.Module):
        architecture, training_regime, train_seed = "cbam-resnet", "trades", 3

    assert declared_traits({}, Declared(), "pkg.mod:make") == {"architecture": "cbam-resnet", "training_regime": "trades", "train_seed": 3}
    assert declared_traits({}, torch.nn.Linear(1, 1), "pkg.mod:make") == {
        "architecture": "pkg.mod:make",
        "training_regime": "unknown",
        "train_seed": None,
    }


def test_ensemble_members_that_fool_none_are_listed(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The run directory records an ensemble's members in order, so the report's 'fooled first'
    table has a column (of zeros) for a member that fooled nothing; with one attack in the run,
    the architecture tables show that attack."""
    from robust_attn.reports.build import _headline_rows
    from robust_attn.reports.tables import fooled_first

    _, ckpt = trained
    spec = {"name": "aa", "models": [str(ckpt)], "n": 24, "batch_size": 24, "attention_samples": 0, "diagnostic_samples": 8,
            "attacks": [{"name": "autoattack", "steps": 3, "targets": 1, "fab_steps": 2, "square_queries": 3, "eps": ["8/255"]}]}  # fmt: skip
    run = load_run(run_sweep(parse_spec(spec), tmp_path / "run", progress=False))
    (entry,) = run.manifest["cells"]  # one model, one attack, one mode
    assert list(entry["members"]) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    first = fooled_first(run)
    assert {"apgd-ce", "apgd-t", "fab-t", "square"} <= set(first.columns)
    counted = first.reindex(columns=["apgd-ce", "apgd-t", "fab-t", "square", "clean"], fill_value=0).sum(axis=1).iloc[0]
    (cell,) = run.cells.values()
    assert counted == 24 - int(cell.correct.sum()), "every sample wrong at eps is counted once"
    arch = pd.DataFrame({"attack": ["clean", "autoattack-3", "autoattack-3"], "eps": [0.0, 0.0, 8 / 255]})
    assert _headline_rows(arch)["attack"].tolist() == ["clean", "autoattack-3"]
    both = pd.DataFrame({"attack": ["clean", "fgsm", "all attacks", "pgd"], "eps": [0.0, 1.0, 1.0, 1.0]})
    assert _headline_rows(both)["attack"].tolist() == ["clean", "all attacks"]
