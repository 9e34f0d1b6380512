"""The report's Families section: with three declared architectures or more (here three, two
training seeds each, and a second training regime for one of them) it shows every population under
every threat model of the run (eps-ball attacks, corruptions, transfer from the other populations)
as a forest plot and a table per regime; its numbers are the architecture-level estimates of
robust_attn.archstats on the outcomes in samples.parquet; with two architectures it is left out.

The models are the committed small VGG-att3-pc with a little seed-dependent noise on its weights
(untrained by the test), wrapped to declare their architecture, seed and regime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import robust_attn as ra
from robust_attn.archstats import architecture_difference, architecture_mean
from robust_attn.epsilon import format_eps

MODELS = """
import os
import torch
import torch.nn as nn
import torch.nn.functional as F
import robust_attn as ra


def _trained(seed, scale):
    model = ra.load_checkpoint(os.environ["FAMILIES_CKPT"])[0]
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * p.std(unbiased=False) * torch.randn(p.shape, generator=gen))
    return model.eval()


class Plain(nn.Module):  # no attention protocol: the baseline population
    training_regime = "clean"
    noise_seeds = 10

    def __init__(self, architecture, seed):
        super().__init__()
        self.model = _trained(seed + self.noise_seeds, 0.1)
        self.architecture, self.train_seed = architecture, seed

    def forward(self, x):
        return self.model(x)


class Smoothed(Plain):  # another architecture with attention: it sees a blurred image
    noise_seeds = 20

    def forward(self, x):
        return self.model(F.avg_pool2d(x, 3, 1, 1))

    def attention_maps(self, x):
        return self.model.attention_maps(F.avg_pool2d(x, 3, 1, 1))


def attends(seed):
    model = _trained(seed, 0.05)
    model.architecture, model.train_seed, model.training_regime = "fam-att", seed, "clean"
    return model


def attends_0(): return attends(0)
def attends_1(): return attends(1)
def plain_0(): return Plain("fam-plain", 0)
def plain_1(): return Plain("fam-plain", 1)
def smoothed_0(): return Smoothed("fam-smooth", 0)
def smoothed_1(): return Smoothed("fam-smooth", 1)
"""
REFS = [f"fam_models:{name}_{seed}" for name in ("attends", "plain", "smoothed") for seed in (0, 1)]
SOURCES = REFS[::2]  # seed 0 of each population: images crafted on them, every model a target
EPS = 2 / 255
N = 32  # test images


@pytest.fixture(scope="module")
def run_dir(trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("families")
    (folder / "fam_models.py").write_text(MODELS)
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(folder))
    mp.setenv("FAMILIES_CKPT", str(trained[1]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches this small gain nothing from threads, and lose much beside another busy process
    spec = ra.parse_spec(
        {
            "name": "families",
            "models": REFS,
            "n": N,
            "batch_size": N,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [
                {"name": "fgsm", "eps": ["2/255", "8/255"]},
                {"name": "corruptions", "severities": [1, 3], "corruptions": ["gaussian_noise", "fog"]},
            ],
            "transfer": [{"sources": SOURCES, "targets": "all", "attack": "fgsm", "eps": ["4/255"]}],
        }
    )
    try:
        yield ra.run_sweep(spec, folder / "run", progress=False)
    finally:
        torch.set_num_threads(threads)
        mp.undo()


def _seeds_by_samples(rows: pd.DataFrame, value: str = "correct") -> np.ndarray:
    """Seeds x samples from long per-sample rows (mean over whatever else the rows vary in)."""
    return rows.groupby(["train_seed", "sample"])[value].mean().unstack("sample").to_numpy(float)


def _population(samples: pd.DataFrame, architecture: str, regime: str = "clean") -> pd.DataFrame:
    return samples[(samples["architecture"] == architecture) & (samples["training_regime"] == regime)]


def test_families_page_shows_every_threat_model_with_the_archstats_numbers(run_dir: Path) -> None:
    from pypdf import PdfReader

    from robust_attn.reports import families, threats
    from robust_attn.reports.blocks import Heading, Plot
    from robust_attn.reports.build import build_blocks
    from robust_attn.reports.context import Context
    from robust_attn.reports.figures import report_style
    from robust_attn.reports.pdf import paginate, pieces_of

    report = ra.make_report(run_dir, progress=False)
    md = report.markdown.read_text()
    assert "## Families" in md and "Families" in "\n".join(p.extract_text() for p in PdfReader(report.pdf).pages)
    run = ra.load_run(run_dir)
    rows = families.family_rows(run)
    assert list(dict.fromkeys(rows["label"])) == [
        "clean",
        "fgsm 2/255",
        "fgsm 8/255",
        "corruptions, severity 1",
        "corruptions, severity 3",
        "transfer fgsm 4/255",
    ]
    assert set(zip(rows["regime"], rows["architecture"])) == {("clean", "fam-att"), ("clean", "fam-plain"), ("clean", "fam-smooth")}
    assert families.regime_baselines(run) == {"clean": "fam-plain"}

    # one cell of each kind, computed here from samples.parquet alone
    samples = pd.read_parquet(run_dir / "samples.parquet")
    att, plain = _population(samples, "fam-att"), _population(samples, "fam-plain")
    fgsm = lambda s: s[
        (s["threat_model"] == "white-box") & (s["attack"] == "fgsm") & (s["mode"] == "worst-case") & np.isclose(s["eps"], EPS)
    ]
    corrupted = lambda s: s[(s["threat_model"] == "corruption") & (s["severity"] == 3)]
    others = set(samples.loc[samples["architecture"] != "fam-att", "model"])
    transfer = lambda s: s[(s["threat_model"] == "transfer") & np.isclose(s["eps"], 4 / 255) & s["source"].isin(others)]
    for label, pick in (("fgsm 2/255", fgsm), ("corruptions, severity 3", corrupted), ("transfer fgsm 4/255", transfer)):
        y = _seeds_by_samples(pick(att))
        assert y.shape == (2, N), label
        row = rows[(rows["label"] == label) & (rows["population"] == "fam-att")].iloc[0]
        est = architecture_mean(y)
        assert row["accuracy"] == pytest.approx(y.mean()) == pytest.approx(est.value), label
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((max(0.0, est.low), min(1.0, est.high))), label
        if label != "transfer fgsm 4/255":  # the baseline's transfer sources differ (never its own population)
            d = architecture_difference(y, _seeds_by_samples(pick(plain)))
            assert row["against"] == "fam-plain", label
            assert (row["diff"], row["diff_low"], row["diff_high"]) == pytest.approx((d.value, d.low, d.high)), label
            assert row["p_value"] == pytest.approx(d.p_value), label

    # the same numbers as the Architectures and Common corruptions sections
    arch = Context(run).arch
    for _, r in rows[rows["kind"] == "eps-ball"].iterrows():
        same = arch[
            (arch["architecture"] == r["population"]) & (arch["attack"] == r["threat"]) & (arch["eps"].map(format_eps) == r["level"])
        ]
        assert same[["accuracy", "ci_low", "ci_high"]].iloc[0].tolist() == pytest.approx([r["accuracy"], r["ci_low"], r["ci_high"]])
    corr = threats.corruption_architecture(run)
    for _, r in rows[rows["kind"] == "corruptions"].iterrows():
        same = corr[(corr["architecture"] == r["population"]) & (corr["severity"] == int(r["level"].split()[-1]))]
        assert same[["accuracy", "ci_low", "ci_high"]].iloc[0].tolist() == pytest.approx([r["accuracy"], r["ci_low"], r["ci_high"]])

    # the known cell as the table prints it: fam-att under FGSM at 2/255, and its difference from fam-plain
    y, yb = _seeds_by_samples(fgsm(att)), _seeds_by_samples(fgsm(plain))
    est, d = architecture_mean(y), architecture_difference(y, yb)
    line = next(s for s in md.splitlines() if s.startswith("| fgsm 2/255 |"))
    header = next(s for s in md.splitlines() if s.startswith("| threat model | "))
    cell = line.split(" | ")[header.split(" | ").index("fam-att")]
    assert cell.startswith(f"{y.mean():.1%} [{max(0.0, est.low) * 100:.1f}, {min(1.0, est.high) * 100:.1f}] {d.value * 100:+.1f} ["), cell
    assert "fam-plain (baseline)" in header

    # the PDF: the section's figure and tables add pages to the report without it
    with report_style():
        blocks = build_blocks(Context(run))
        start = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.text == "Families")
        end = next(i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.level == 2 and i > start)
        assert any(isinstance(b, Plot) and b.name == "families" for b in blocks[start:end])
    assert report.pages > len(paginate(pieces_of(blocks[:start] + blocks[end:])))
    assert (run_dir / "figures" / "families.png").stat().st_size > 10_000


def test_no_families_page_with_two_architectures(run_dir: Path) -> None:
    from robust_attn.reports.blocks import Heading
    from robust_attn.reports.build import build_blocks
    from robust_attn.reports.context import Context
    from robust_attn.reports.sections.families import FAMILIES, families_section

    run = ra.load_run(run_dir)
    assert families_section(Context(run))
    for model in run.models:  # the smoothed models declared as fam-att: two architectures left
        if run.manifest["models"][model]["architecture"] == "fam-smooth":
            run.manifest["models"][model]["architecture"] = "fam-att"
    ctx = Context(run)
    assert len(ctx.members) == 2 and families_section(ctx) == []
    assert FAMILIES not in [b.text for b in build_blocks(ctx) if isinstance(b, Heading)]


def test_each_training_regime_gets_its_panel_and_its_own_baseline(run_dir: Path) -> None:
    from matplotlib.figure import Figure

    from robust_attn.reports import families
    from robust_attn.reports.blocks import Paragraph, Plot
    from robust_attn.reports.canvas import Canvas
    from robust_attn.reports.context import Context
    from robust_attn.reports.figures import report_style
    from robust_attn.reports.sections.families import families_section

    run = ra.load_run(run_dir)
    for model in run.models:  # the smoothed models declared adversarially trained: a regime without a baseline
        if run.manifest["models"][model]["architecture"] == "fam-smooth":
            run.manifest["models"][model]["training_regime"] = "fgsm-at"
    rows = families.family_rows(run)
    assert set(zip(rows["regime"], rows["population"])) == {("clean", "fam-att"), ("clean", "fam-plain"), ("fgsm-at", "fam-smooth+fgsm-at")}
    assert families.regime_baselines(run) == {"clean": "fam-plain"}
    assert rows.loc[rows["regime"] == "fgsm-at", "diff"].isna().all() and rows.loc[rows["population"] == "fam-att", "diff"].notna().all()
    blocks = families_section(Context(run))
    note = next(b.text for b in blocks if isinstance(b, Paragraph))
    assert "No baseline for fgsm-at training" in note and "none without attention" in note
    plot = next(b for b in blocks if isinstance(b, Plot))
    fig = Figure(figsize=(10, plot.height))
    with report_style():
        plot.draw(Canvas(fig, 10, plot.height))
    assert [ax.get_title() for ax in fig.axes] == ["clean training", "fgsm-at training"]


def test_one_seed_per_architecture_gives_no_intervals_over_seeds(run_dir: Path) -> None:
    from robust_attn.reports.blocks import Heading, Paragraph
    from robust_attn.reports.context import Context
    from robust_attn.reports.sections.architectures import INSTANCES_ONLY
    from robust_attn.reports.sections.families import families_section

    run = ra.load_run(run_dir)
    for model in run.models:  # every model declared as trained from seed 0: one training run per architecture
        run.manifest["models"][model]["train_seed"] = 0
    blocks = families_section(Context(run))
    assert [type(b) for b in blocks] == [Heading, Paragraph] and blocks[1].text == INSTANCES_ONLY
