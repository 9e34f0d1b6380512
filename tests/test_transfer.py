"""Transfer matrices: every (target, source) cell per sample, the diagonal equal to the white-box
attack, one crafting pass per source, resumable; and the indicator "black-box beats white-box",
which a model that quantises its input (its gradients vanish) raises and a plain model does not.
The assertions hold for any weights: the quantised model's white-box PGD (no random start) cannot
move at all, so its accuracy stays the clean one, while the unquantised twin's images fool it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import robust_attn as ra

MODELS = """
import os
import torch
import torch.nn as nn
import robust_attn as ra


class Quantised(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 15) / 15)


def plain():
    return ra.load_checkpoint(os.environ["TRANSFER_CKPT"])[0]


def quantised():
    return Quantised(plain())
"""


@pytest.fixture(scope="module")
def run_dir(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("transfer")
    (folder / "tr_models.py").write_text(MODELS)
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(folder))
    mp.setenv("TRANSFER_CKPT", str(trained[1]))
    spec = ra.parse_spec(
        {
            "models": ["tr_models:plain", "tr_models:quantised"],
            "n": 40,
            "batch_size": 20,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "fgsm", "eps": ["0"]}],
            "transfer": [
                {
                    "sources": ["tr_models:plain"],
                    "targets": "all",
                    "attack": "pgd",
                    "steps": 10,
                    "random_start": False,
                    "eps": ["4/255", "16/255"],
                }
            ],
        }
    )
    root = ra.run_sweep(spec, folder / "run", progress=False)
    yield root
    mp.undo()


def test_the_matrix_has_every_pair_and_the_diagonal_is_white_box(run_dir: Path, trained) -> None:  # type: ignore[no-untyped-def]
    run = ra.load_run(run_dir)
    pairs = {(t, s) for (t, _, s), c in run.transfers.items()}
    assert all(c.source == s and a == "pgd-10" for (_, a, s), c in run.transfers.items()), "the attack id names the attack only"
    assert pairs == {
        ("tr_models:plain", "tr_models:plain"),
        ("tr_models:quantised", "tr_models:plain"),
        ("tr_models:quantised", "tr_models:quantised"),
    }
    diagonal = run.transfers[("tr_models:plain", "pgd-10", "tr_models:plain")]
    data = ra.load_dataset("builtin", "test", n=40)
    _, x, y = next(data.batches(40))
    white = ra.create_attack("pgd", trained[0], steps=10, random_start=False, channels_last=True).sweep(
        x, y, list(diagonal.eps), mode="independent"
    )
    assert np.array_equal(diagonal.correct, white.correct.numpy()), "the diagonal is the white-box attack, per sample"
    samples = run.samples[run.samples["threat_model"] == "transfer"]
    assert samples["source"].notna().all() and (samples["mode"] == "independent").all()


def test_black_box_beats_white_box_on_a_quantised_model_only(run_dir: Path) -> None:
    run = ra.load_run(run_dir)
    rows = run.indicators[run.indicators["indicator"] == "black-box beats white-box"]
    quantised = rows[rows["model"] == "tr_models:quantised"]
    assert len(quantised) == 2 and quantised["triggered"].all(), quantised[["value", "detail"]]
    q_white = run.transfers[("tr_models:quantised", "pgd-10", "tr_models:quantised")].correct
    assert np.array_equal(q_white[0], run.clean_correct("tr_models:quantised")), "vanished gradients: white-box PGD cannot move"
    assert rows[rows["model"] == "tr_models:plain"].empty, "a plain target has no other source here"


def test_a_plain_model_does_not_raise_it(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Target a plain model, source its quantised twin: white-box PGD on the plain model is the stronger."""
    (tmp_path / "tr_models2.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TRANSFER_CKPT", str(trained[1]))
    spec = ra.parse_spec(
        {
            "models": ["tr_models2:plain", "tr_models2:quantised"],
            "n": 40,
            "batch_size": 40,
            "attention_samples": 0,
            "diagnostic_samples": 0,
            "attacks": [{"name": "fgsm", "eps": ["0"]}],
            "transfer": [
                {"sources": ["tr_models2:quantised"], "targets": ["tr_models2:plain"], "attack": "pgd", "steps": 10, "eps": ["8/255"]}
            ],
        }
    )
    run = ra.load_run(ra.run_sweep(spec, tmp_path / "run", progress=False))
    rows = run.indicators[run.indicators["indicator"] == "black-box beats white-box"]
    assert len(rows) == 1 and not rows["triggered"].any(), rows[["value", "detail"]]


def test_a_finished_matrix_is_not_crafted_again(run_dir: Path, monkeypatch: pytest.MonkeyPatch, trained) -> None:  # type: ignore[no-untyped-def]
    from robust_attn.sweeps import transfer

    monkeypatch.syspath_prepend(str(run_dir.parent))
    monkeypatch.setenv("TRANSFER_CKPT", str(trained[1]))
    monkeypatch.setattr(transfer, "_craft_batch", lambda *a: pytest.fail("crafted again"))
    spec = ra.load_run(run_dir).manifest["spec"]
    raw = {
        "models": ["tr_models:plain", "tr_models:quantised"],
        "n": 40,
        "batch_size": 20,
        "attention_samples": 0,
        "diagnostic_samples": 0,
        "attacks": [{"name": "fgsm", "eps": ["0"]}],
        "transfer": [
            {
                "sources": ["tr_models:plain"],
                "targets": "all",
                "attack": "pgd",
                "steps": 10,
                "random_start": False,
                "eps": ["4/255", "16/255"],
            }
        ],
    }
    assert spec["n"] == 40
    ra.run_sweep(ra.parse_spec(raw), run_dir, progress=False)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"sources": ["builtin/nope"], "targets": "all", "attack": "pgd", "eps": ["2/255"]},
            r"transfer\[0\]\.sources: 'builtin/nope' is not among",
        ),
        ({"sources": "all", "targets": "all", "attack": "corruptions"}, r"transfer\[0\]\.attack: 'corruptions' is not an eps-ball attack"),
        ({"sources": "all", "targets": "all", "eps": ["2/255"]}, r"transfer\[0\]\.attack: missing"),
        (
            {"sources": "all", "targets": "all", "attack": "pgd", "eps": ["2/255"], "steps": 0},
            r"transfer\[0\]\.steps: steps must be an integer >= 1",
        ),
    ],
)
def test_bad_transfer_tables_name_the_field(table: dict, message: str) -> None:
    with pytest.raises(ra.RobustAttnError, match=message):
        ra.parse_spec({"models": ["builtin/vgg"], "attacks": [{"name": "fgsm", "eps": ["0"]}], "transfer": [table]})


def test_logit_ensemble_averages() -> None:
    from robust_attn.sweeps.transfer import LogitEnsemble

    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    x = torch.rand(4, 3)
    torch.testing.assert_close(LogitEnsemble([a, b])(x), (a(x) + b(x)) / 2)


def test_checks_read_each_transfer_cell_apart() -> None:
    """Transfer cells of one attack differ only in their source: the sanity checks group rows by
    cell (model, attack, mode, source), so a strong white-box curve and a weak transfer curve of the
    same target are not read as one curve whose accuracy rises with eps."""
    import pandas as pd

    from robust_attn.reports.checks import accuracy_does_not_rise

    rows = [{"model": "t", "attack": "pgd-10", "mode": "independent", "source": src, "eps": eps, "accuracy": acc, "ci_high": acc + 0.02}
            for src, accs in (("t", (0.3, 0.1)), ("s", (0.95, 0.94))) for eps, acc in zip((1 / 255, 2 / 255), accs)]  # fmt: skip
    assert accuracy_does_not_rise(pd.DataFrame(rows)).status == "pass"
