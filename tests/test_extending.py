"""The extension guide's examples, executed: a one-file attack and a one-file attention model,
both outside the package, reach the sweep, the attention probe, the indicators of attack failure
and the report's claims (the strongest attack) with no other edit (docs/extending.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

import robust_attn as ra
from robust_attn.reports.tables import paper_claims, strongest_attacks

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(EXAMPLES))
    spec = ra.parse_spec(
        {
            "name": "ext",
            "plugins": ["momentum_fgsm"],
            "models": ["attention_cnn:make", "plain_cnn:make"],
            "n": 24,
            "batch_size": 12,
            "attention_samples": 8,
            "diagnostic_samples": 8,
            "attacks": [{"name": "fgsm", "eps": ["0", "2/255"]}, {"name": "mi-fgsm", "steps": 5, "eps": ["2/255", "8/255"]}],
        }
    )
    root = ra.run_sweep(spec, tmp_path_factory.mktemp("ext") / "run", progress=False)
    yield root
    mp.undo()


def test_a_new_attack_is_swept_probed_traced_and_strongest(run_dir: Path) -> None:
    run = ra.load_run(run_dir)
    assert set(run.attacks) == {"fgsm", "mi-fgsm-5"}
    assert run.attack_traits("mi-fgsm-5")["strength"] == 40 and run.attack_traits("mi-fgsm-5")["traceable"]
    assert [p["attack"] for p in run.probes if p["model"] == "attention_cnn:make"] == ["MI-FGSM-5"], (
        "the probe picks the strongest fit attack"
    )
    rows = run.indicators[(run.indicators["attack"] == "mi-fgsm-5") & (run.indicators["indicator"] == "silent success")]
    assert len(rows) == 2 and not rows["skipped"].any(), "traced: its iterates reach the silent-success indicator"
    assert strongest_attacks(run) == ("fgsm", "mi-fgsm-5")


def test_a_new_attention_model_gets_the_probes_and_the_claims(run_dir: Path) -> None:
    run = ra.load_run(run_dir)
    info = run.model_info("attention_cnn:make")
    assert (info["architecture"], info["training_regime"], info["has_attention"]) == ("tiny-cnn-spatial-attention", "clean", True)
    assert not run.model_info("plain_cnn:make")["has_attention"]
    seg = run.segmentation
    assert set(seg.loc[seg["model"] == "attention_cnn:make", "method"]) == {"attention", "centred box"}
    assert set(seg.loc[seg["model"] == "plain_cnn:make", "method"]) == {"gradient saliency", "grad-cam", "grad-cam++", "centred box"}
    assert set(run.drift["stage"]) == {"s1"} and run.drift["model"].eq("attention_cnn:make").all()
    claims = paper_claims(run)
    clean = seg[(seg["eps"] == 0) & (seg["model"] == "plain_cnn:make") | (seg["method"] == "centred box")].drop_duplicates(
        ["method", "sample"]
    )
    best = clean.groupby("method")["jaccard"].mean().idxmax()  # the segmentation claim is against the best other map
    shown = {"gradient saliency": "input-gradient saliency", "grad-cam": "Grad-CAM", "grad-cam++": "Grad-CAM++"}.get(best, best)
    assert set(claims["claim"]) == {
        "clean accuracy is higher",
        f"maps segment better than {shown}",
        "robust to fgsm",
        "robust to mi-fgsm-5",
    }
    assert set(claims["architecture"]) == {"tiny-cnn-spatial-attention"} and (claims["verdict"] == "instances only").all()
    report = ra.make_report(run_dir, progress=False)
    assert "robust to mi-fgsm-5" in report.markdown.read_text()
