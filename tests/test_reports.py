"""Report statistics against hand-computed values, sanity checks on crafted tables, the PDF and
Markdown of a real (small) run and of the committed compare study (page 1 is the answer, at most
15 pages), the forest plot and the fragile marking on constructed claims, the paired appendix
(nothing in paired.csv dropped), the terminal summary, and errors for broken run directories."""

from __future__ import annotations

import io
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
from robust_attn.reports import RunDirError, load_run, make_report, terminal_summary
from robust_attn.reports.blocks import Table
from robust_attn.reports.build import SECTIONS
from robust_attn.reports.checks import (
    accuracy_does_not_rise,
    eps_zero_is_clean,
    iterative_at_least_fgsm,
    large_eps_near_zero,
    libraries_agree,
)
from robust_attn.reports.sections.families import FAMILIES
from robust_attn.reports.sections.threats import CORRUPTIONS, GENERALISATION, TRANSFER
from robust_attn.stats import eps_at_half, mcnemar_exact, normalised_auc, wilson_interval
from robust_attn.sweeps import parse_spec, run_sweep

THREAT_SECTIONS = (CORRUPTIONS, TRANSFER, GENERALISATION, FAMILIES)  # sections of data these runs do not hold


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
    with pytest.raises(RunDirError, match="results.csv differ from the record in manifest.json"):
        load_run(broken)  # the merge's record of its tables finds the edit first
    manifest = json.loads((broken / "manifest.json").read_text())
    del manifest["files"]  # as a run directory written before the record (format 3's first release)
    (broken / "manifest.json").write_text(json.dumps(manifest))
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
def small_run(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_path = trained[1]
    twin = model_path.with_name("twin.safetensors")  # a second model: paired comparisons need two
    twin.write_bytes(model_path.read_bytes())
    spec = parse_spec(
        {
            "name": "small",
            "models": [str(model_path), str(twin)],
            "n": 40,
            "batch_size": 20,
            "modes": ["worst-case", "independent"],
            "attacks": [
                {"name": "fgsm", "eps": ["0", "2/255", "8/255", "16/255"]},
                {"name": "pgd", "steps": 3, "eps": ["2/255", "8/255"]},
                {"name": "fgsm", "backend": "torchattacks", "eps": ["0", "8/255"]},
            ],
        }
    )
    return run_sweep(spec, tmp_path_factory.mktemp("run") / "small", progress=False)


def _headings(markdown: str, level: int = 2) -> list[str]:
    return [line[level + 1 :] for line in markdown.splitlines() if line.startswith("#" * level + " ")]


def test_report_pdf_markdown_and_summary(small_run: Path) -> None:
    report = make_report(small_run, progress=False)
    pages = PdfReader(report.pdf).pages
    text = "\n".join(p.extract_text() for p in pages)
    first = pages[0].extract_text()
    assert "Robustness report: small" in first and "Instances only" in first and "Sanity checks" in first, "page 1 is the answer"
    for needle in (
        "fgsm (worst-case)",
        "all attacks (worst-case)",
        "fgsm (independent)",
        "Cost and strength per attack",
        "Appendix: paired comparison of model instances",
        "Weakly supervised segmentation",
        "indicator: unconstrained attack failure",
    ):
        assert needle in text, needle
    # summary; checks; per-model curves and 6 tables (2 modes x 3 attacks); costs; attention; drift and segmentation; run; appendix
    assert len(pages) == report.pages == 9
    md = report.markdown.read_text()
    # one attention architecture (one training run twice), no model without attention: no claims to test
    assert _headings(md) == [s for s in SECTIONS if s != "The paper's claims" and s not in THREAT_SECTIONS]
    assert _headings(md, 1) == ["Robustness report: small"]
    for png in ("summary", "curves", "curves_relative", "attention_drift", "segmentation", "paired"):
        assert (small_run / "figures" / f"{png}.png").stat().st_size > 10_000
        assert f"](figures/{png}.png)" in md
    summary = pd.read_csv(report.summary_csv)
    row = summary[(summary["attack"] == "fgsm") & (summary["mode"] == "worst-case")].iloc[0]
    results = pd.read_csv(small_run / "results.csv")
    at8 = results[(results["attack"] == "fgsm") & (results["mode"] == "worst-case") & np.isclose(results["eps"], 8 / 255)].iloc[0]
    assert row["acc@8/255"] == pytest.approx(at8["accuracy"])
    checks = {c.name: c.status for c in report.checks}
    assert checks["eps = 0 equals clean accuracy"] == "pass"
    assert checks["torchattacks / foolbox cross-check"] == "pass"
    assert report.html == small_run / "report.html" and report.html.stat().st_size > 50_000


def test_nothing_in_paired_csv_is_dropped(small_run: Path) -> None:
    """paired.csv holds every attack x shared eps x pair of models; the Markdown lists every row of it,
    and the appendix heatmap has one cell per pair and attack at the headline eps."""
    from robust_attn.reports import figures
    from robust_attn.reports.canvas import standalone
    from robust_attn.reports.tables import ALL_ATTACKS

    make_report(small_run, progress=False)
    run = load_run(small_run)
    paired = pd.read_csv(small_run / "paired.csv")
    grids = {a: run.cells[(run.models[0], a, "worst-case")].eps for a in run.attacks}
    grids[ALL_ATTACKS] = np.unique(np.concatenate([grids[a] for a in run.attacks if not a.endswith("@torchattacks")]))
    pairs = len(run.models) * (len(run.models) - 1) // 2
    assert len(paired) == pairs * sum(len(g) for g in grids.values())
    md = (small_run / "report.md").read_text()
    listing = md.split("**Every paired comparison (paired.csv)**")[1]
    rows = [line for line in listing.splitlines() if line.startswith("| ") and "model A" not in line]
    assert len(rows) == len(paired), "the listing has every row of paired.csv"
    for r in paired.itertuples():
        assert f"| {r.only_a} | {r.only_b} | {r.p_value:.2g} |" in listing
    at = paired[np.isclose(paired["eps"], 2 / 255)]
    with figures.report_style():
        fig, canvas = standalone(10.0, 6.0)
        figures.paired_heatmap(canvas, paired, run.models, 2 / 255)
    cells = [[t for t in ax.texts if t.get_text().startswith(("+", "-"))] for ax in fig.axes if ax.get_title()]
    assert [len(c) for c in cells] == [pairs] * at["attack"].nunique()


def _claims(rows: list[tuple[str, str, float, float, float, float, float, str]]) -> pd.DataFrame:
    """rows: (architecture, claim, eps, diff, low, high, p, verdict), Jaccard for the maps claim."""
    return pd.DataFrame(
        [
            {
                "architecture": a,
                "against": "vgg",
                "claim": c,
                "eps": e,
                "measure": "Jaccard" if c.startswith("maps") else "accuracy",
                "value": 0.5 + d,
                "baseline": 0.5,
                "diff": d,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p,
                "seeds": 3,
                "verdict": v,
            }
            for a, c, e, d, lo, hi, p, v in rows
        ]
    )


CLAIMS = [
    ("att2", "clean accuracy is higher", 0.0, 0.01, -0.02, 0.04, 0.4, "inconclusive"),
    ("att2", "robust to fgsm", 2 / 255, 0.20, 0.01, 0.39, 0.038, "supported"),
    ("att3", "clean accuracy is higher", 0.0, 0.05, 0.02, 0.08, 0.004, "supported"),
    ("att3", "robust to fgsm", 2 / 255, -0.10, -0.19, -0.01, 0.0101, "not supported"),
    ("att2", "maps segment better than saliency", 0.0, 0.08, 0.02, 0.14, 0.0099, "supported"),
]


def test_fragile_marking_follows_p() -> None:
    """Fragile: 0.01 <= p < 0.05 on a verdict that is not inconclusive; marked in the verdict label,
    the sentences and the claims table's row style."""
    from robust_attn.reports.verdicts import annotate, claim_sentences, is_fragile

    assert [
        is_fragile(p, v)
        for p, v in [
            (0.0099, "supported"),
            (0.01, "supported"),
            (0.049, "not supported"),
            (0.05, "supported"),
            (0.03, "inconclusive"),
            (0.03, "instances only"),
            (float("nan"), "supported"),
        ]
    ] == [False, True, True, False, False, True, False]
    claims = annotate(_claims(CLAIMS))
    assert claims["fragile"].tolist() == [False, True, False, True, False]
    assert claims["label"].tolist() == ["inconclusive", "supported (fragile)", "supported", "not supported (fragile)", "supported"]
    sentences = dict(claim_sentences(claims, seeds=3))
    assert "att2 robust to fgsm at 2/255 (+20.0 [+1.0, +39.0] points vs vgg, p = 0.038, fragile)" in sentences["Supported"]
    assert "att3 clean accuracy is higher (+5.0 [+2.0, +8.0] points vs vgg, p = 0.004)" in sentences["Supported"]
    assert "att2 maps segment better than saliency (+0.080 [+0.020, +0.140] Jaccard vs vgg, p = 0.0099)" in sentences["Supported"]
    assert "fragile" in sentences["Not supported"] and "clean accuracy is higher (att2)" in sentences["Inconclusive"]
    instances = dict(claim_sentences(claims.assign(verdict="instances only"), seeds=1))
    assert "Instances only" in instances and "att2 robust to fgsm at 2/255" in instances["Instance differences beyond noise"]

    from robust_attn.reports.context import Context
    from robust_attn.reports.sections.architectures import claims_section

    ctx = Context(run=None)  # type: ignore[arg-type]
    ctx.__dict__.update(claims=claims, seeds=3)  # the cached tables a section reads
    table = claims_section(ctx)[-1]
    assert isinstance(table, Table)
    assert table.row_style == ["", "fragile", "", "fragile", ""]
    assert table.frame["verdict"].tolist() == claims["label"].tolist()


def test_forest_plot_has_one_row_per_claim() -> None:
    from matplotlib.figure import Figure

    from robust_attn.reports import figures
    from robust_attn.reports.verdicts import annotate

    claims = annotate(_claims(CLAIMS))
    with figures.report_style():
        ax = Figure(figsize=(6, 4)).add_subplot()
        figures.forest(ax, claims)
    rows = [str(line.get_gid()).split(":") for line in ax.lines if str(line.get_gid()).startswith("claim-row")]
    assert [int(i) for _, i, _ in rows] == [0, 2, 1, 3, 4], "one interval per claim row, grouped by claim in order of appearance"
    assert {int(i): kind == "fragile" for _, i, kind in rows} == dict(enumerate(claims["fragile"]))
    for (_, i, _), line in zip(rows, (line for line in ax.lines if str(line.get_gid()).startswith("claim-row"))):
        r = claims.iloc[int(i)]
        assert np.asarray(line.get_xdata()).tolist() == [r["ci_low"], r["ci_high"]], "the row spans its 95% interval"
    assert len(ax.get_yticks()) == len(claims)
    assert any(np.asarray(line.get_xdata()).tolist() == [0, 0] for line in ax.lines), "the zero line"
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("supported (fragile)") == 1 and "not supported (fragile)" in labels and "robust to fgsm at 2/255" in labels


COMPARE = Path(__file__).resolve().parents[1] / "reports" / "compare"


@pytest.fixture(scope="module")
def compare_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed compare study (4 architectures x 3 seeds, 4 attacks, 1,000 images), copied."""
    from robust_attn.rundir import read_manifest

    if not (COMPARE / "manifest.json").is_file():
        pytest.skip("reports/compare is not in this checkout")
    copy = tmp_path_factory.mktemp("compare") / "compare"
    shutil.copytree(COMPARE, copy, ignore=shutil.ignore_patterns("report.*", "figures"))
    try:
        read_manifest(copy)
    except RunDirError as err:
        pytest.skip(f"reports/compare needs converting first: {err}")
    return copy


def test_compare_study_report_leads_with_the_answer_in_15_pages(compare_copy: Path) -> None:
    report = make_report(compare_copy, progress=False)
    pages = PdfReader(report.pdf).pages
    assert len(pages) == report.pages <= 15
    first = pages[0].extract_text()
    for needle in (
        "Robustness report: compare",
        "Supported",
        "Inconclusive",
        "Headline",
        "Sanity checks",
        "supported (fragile)",
        "robust to apgd-100 at 2/255",
        "difference from the baseline",
    ):
        assert needle in first, needle
    assert "The paper's claims" in pages[1].extract_text(), "the claims table follows the summary"
    assert "Appendix: paired comparison of model instances" in pages[-1].extract_text()
    md = report.markdown.read_text()
    assert _headings(md) == [s for s in SECTIONS if s not in THREAT_SECTIONS], "no corruption, transfer or probe data in the study"
    paired = pd.read_csv(compare_copy / "paired.csv")
    assert len(paired) == 66 * (5 + 4 + 4 + 4 + 5), "12 models: 66 pairs; fgsm and 'all attacks' have 5 eps, the others 4"
    listing = md.split("**Every paired comparison (paired.csv)**")[1].split("\n\n")[1].splitlines()
    assert len(listing) == 2 + len(paired) and all(line.count(" | builtin/") == 2 for line in listing[2:])


def test_terminal_summary_of_the_compare_study(compare_copy: Path) -> None:
    lines = terminal_summary(load_run(compare_copy))
    assert len(lines) <= 8 and max(len(line) for line in lines) < 200
    assert lines[0].startswith("claims, architecture level (3 seeds each")
    supported = [line for line in lines if line.startswith("  supported: ")]
    assert [line.endswith("FRAGILE)") for line in supported] == [True, False, True]  # p = 0.012, 6e-05, 0.037
    assert "  not supported: none" in lines and lines[-1].startswith("headline at 2/255 (all attacks, architecture mean): ")


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
            ra.save_checkpoint(
                path,
                model,
                {
                    "dataset": "builtin",
                    "image_shape": [3, 32, 32],
                    "classes": [str(i) for i in range(10)],
                    "seed": seed,
                    "epochs": epochs,
                    "train_size": 100,
                },
            )
            refs.append(str(path))
    spec = parse_spec(
        {
            "name": "seeded",
            "models": refs,
            "n": 40,
            "batch_size": 20,
            "attention_samples": 10,
            "diagnostic_samples": 10,
            "attacks": [{"name": "fgsm", "eps": ["0", "2/255", "8/255"]}, {"name": "pgd", "steps": 2, "eps": ["2/255"]}],
        }
    )
    return run_sweep(spec, folder / "run", progress=False)


def test_report_compares_architectures_over_seeds(seeded_run: Path) -> None:
    from robust_attn.reports.tables import architecture_curves, architectures, budget_mismatch

    report = make_report(seeded_run, progress=False)
    text = "\n".join(p.extract_text() for p in PdfReader(report.pdf).pages)
    for needle in ("Differences between architectures", "The paper's claims", "different budgets"):
        assert needle in text and needle in report.markdown.read_text(), needle
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
    report = make_report(small_run, progress=False)
    summary = report.markdown.read_text().split("## Summary")[1].split("\n## ")[0]
    assert "**Instances only**: each architecture has one trained model here" in summary
    assert terminal_summary(load_run(small_run))[0].startswith("claims: none tested"), "one architecture: no baseline to test against"


def test_adversarially_trained_models_are_their_own_architecture() -> None:
    """A checkpoint trained with an adversarial recipe declares its training regime as a field of
    its own (read from the recipe it recorded), so reports group it apart from clean-trained ones
    of the same network; a module declares its own (attributes), else 'unknown'."""
    from robust_attn.card import card_from_record
    from robust_attn.reports.tables import population_label

    def traits(record: dict[str, object], module: object, ref: str) -> tuple[str, str, int | None]:
        card = card_from_record(ref, "test", record, module)
        return card.architecture, card.training_regime, card.train_seed

    clean = traits({"model": "vgg", "seed": 1, "recipe": {"name": "fast", "adversarial": "none"}}, None, "builtin/vgg")
    robust = traits({"model": "vgg", "seed": 1, "recipe": {"name": "fgsm-at", "adversarial": "fgsm"}}, None, "builtin/vgg-at@seed=1")
    assert clean == ("vgg", "clean", 1) and robust == ("vgg", "fgsm-at", 1)
    assert population_label(robust[0], robust[1]) == "vgg+fgsm-at"

    class Declared(torch.nn.Module):
        architecture, training_regime, train_seed = "cbam-resnet", "trades", 3

    assert traits({}, Declared(), "pkg.mod:make") == ("cbam-resnet", "trades", 3)
    assert traits({}, torch.nn.Linear(1, 1), "pkg.mod:make") == ("pkg.mod:make", "unknown", None)


def test_ensemble_members_that_fool_none_are_listed(trained, tmp_path: Path) -> None:
    """The run directory records an ensemble's members in order, so the report's 'fooled first'
    table has a column (of zeros) for a member that fooled nothing; with one attack in the run,
    the architecture tables show that attack."""
    from robust_attn.reports.tables import curves, fooled_first, headline_attack, headline_rows

    _, ckpt = trained
    spec = {
        "name": "aa",
        "models": [str(ckpt)],
        "n": 24,
        "batch_size": 24,
        "attention_samples": 0,
        "diagnostic_samples": 8,
        "attacks": [{"name": "autoattack", "steps": 3, "targets": 1, "fab_steps": 2, "square_queries": 3, "eps": ["8/255"]}],
    }
    run = load_run(run_sweep(parse_spec(spec), tmp_path / "run", progress=False))
    (entry,) = run.manifest["cells"]  # one model, one attack, one mode
    assert list(entry["members"]) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    first = fooled_first(run)
    assert {"apgd-ce", "apgd-t", "fab-t", "square"} <= set(first.columns)
    counted = first.reindex(columns=["apgd-ce", "apgd-t", "fab-t", "square", "clean"], fill_value=0).sum(axis=1).iloc[0]
    (cell,) = run.cells.values()
    assert counted == 24 - int(cell.correct.sum()), "every sample wrong at eps is counted once"
    assert headline_attack(run, curves(run)) == "autoattack-3"
    both = pd.DataFrame({"attack": ["clean", "fgsm", "all attacks", "pgd"], "eps": [0.0, 1.0, 1.0, 1.0]})
    assert headline_attack(run, both) == "all attacks"
    assert headline_rows(both, "all attacks")["attack"].tolist() == ["clean", "all attacks"]


def test_a_heading_never_stands_alone_on_a_page() -> None:
    """A heading, its note and a page-high figure: the heading and note share a page (the figure
    goes to the next), and no page holds the heading alone, even below other content."""
    from robust_attn.reports.blocks import Heading, Paragraph, Plot
    from robust_attn.reports.pdf import HEIGHT, paginate, pieces_of

    blocks = [Paragraph("filler " * 400), Heading("Transfer attacks"), Paragraph("a note"), Plot("big", "a figure", lambda c: None, HEIGHT)]
    pages = paginate(pieces_of(blocks))
    kinds = [[("plot" if p.plot else "heading" if p.keep_with_next and p.height < 0.5 else "text") for p, _ in page] for page in pages]
    assert kinds == [["text", "heading", "text"], ["plot"]], "the heading and its note together, the figure on the next page"
    alone = paginate(pieces_of(blocks[1:]))  # at the top of a page: heading, note and figure do not fit one page either
    assert [len(page) for page in alone] == [2, 1]


def test_a_plots_image_holds_only_the_plot_not_the_tables_around_it() -> None:
    """The Markdown/HTML image of a plot is cut from its PDF page: the tables above and below it on
    that page must not land in the cut (they did: the page's text is placed in inches, which the
    crop does not move). An empty plot between two tables gives a white image."""
    from PIL import Image

    from robust_attn.reports.blocks import Plot
    from robust_attn.reports.pdf import render_pdf

    rows = pd.DataFrame({"check": [f"check number {i}" for i in range(12)], "detail": ["a long detail text"] * 12})
    blocks = [Table(rows, title="above"), Plot("empty", "nothing drawn", lambda canvas: None, 2.5), Table(rows, title="below")]
    _, images, pages = render_pdf(blocks, "t")
    assert pages == 1, "the three blocks share a page"
    pixels = np.asarray(Image.open(io.BytesIO(images["empty"])).convert("L"))
    assert pixels.min() == 255, f"{int((pixels < 255).sum())} non-white pixels in an empty plot's image"
