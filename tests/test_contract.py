"""The contract of the evaluation registry, as timm tests every registered model: every registered
attack, preset and evaluation kind builds on a small constructed model, declares traits that its
instance keeps, stays inside its ball and the image box, sweeps with the shape and monotonicity
its mode promises, and appears in a sweep's results, its indicators of attack failure and its
report. A new registration is tested by being registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn

import robust_attn as ra
from robust_attn.attacks import Attack
from robust_attn.attacks.registry import accepted_params, attack_traits, backends, create_evaluation, list_attacks

REGISTERED = [(name, backend) for backend in backends() for name in list_attacks(backend)]
EPS = {"linf": 4 / 255, "l2": 0.5, "l1": 8.0}  # a ball each norm's attacks can act in on 32x32 images
QUICK = {"steps": 3, "queries": 30, "square_queries": 30, "fab_steps": 3, "restarts": 1}  # fewer passes, same code paths


def quick_params(name: str, backend: str) -> dict[str, Any]:
    """The parameters that make an evaluation cheap, for those it declares it takes."""
    taken = accepted_params(name, backend) or set()
    params = {k: v for k, v in QUICK.items() if k in taken}
    if "corruptions" in taken:
        params |= {"corruptions": ["gaussian_noise", "fog"], "severities": [1, 5]}
    return params


class SmallCNN(nn.Module):
    """Fixed random weights, 10 classes on 3x32x32 images: every attack has gradients to follow."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    data = ra.load_dataset("builtin", "test", n=6)
    _, x, y = next(data.batches(6))
    return x, y


def _norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(p=2 if norm == "l2" else 1, dim=1)


@pytest.mark.parametrize(("name", "backend"), REGISTERED, ids=[f"{b}:{n}" for n, b in REGISTERED])
def test_every_registered_evaluation_keeps_its_contract(name: str, backend: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = batch
    params = quick_params(name, backend)
    evaluation = create_evaluation(name, SmallCNN(), backend=backend, **params)
    traits = evaluation.traits()
    assert traits == attack_traits(name, backend, params), "what the class declares is what its instance does"
    assert traits.kind == evaluation.kind_of() and traits.kind in ("eps-ball", "minimum-norm", "ensemble", "corruption")
    if not isinstance(evaluation, Attack):
        assert traits.threat_model == "corruption" and traits.strength == 0
        conditions = evaluation.conditions()  # type: ignore[attr-defined]
        assert len(conditions) == 4 and evaluation.predict_uint8(x.mul(255).byte().numpy()).shape == (6,)  # type: ignore[attr-defined]
        return
    assert traits.threat_model == "white-box" and traits.norm == evaluation.norm
    eps = EPS[traits.norm]
    adv = evaluation(x, y, eps)
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1, "inside the image box"
    assert bool((_norm(adv - x, traits.norm) <= eps * (1 + 1e-4) + 1e-6).all()), f"{name} leaves its {traits.norm} ball"
    out = evaluation.sweep(x, y, [0.0, eps / 2, eps])
    assert out.correct.shape == (3, 6) and torch.equal(out.pred[0], out.clean_pred), "eps 0 is the clean prediction"
    assert bool((out.correct[1:] <= out.correct[:-1]).all()), "worst-case: a fooled sample stays fooled at a larger eps"
    if traits.minimum_norm:
        assert "min_norm" in out.columns and out.columns["min_norm"].shape == (6,)
    if traits.ensemble:
        assert "fooled_by" in out.columns


def _table(name: str, backend: str) -> str:
    traits = attack_traits(name, backend)
    params = quick_params(name, backend)
    lines = [f'name = "{name}"', f'backend = "{backend}"', f'label = "{name}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in params.items()]
    if traits.threat_model != "corruption":
        eps = EPS[traits.norm]
        lines.append(f"eps = [0, {eps / 2!r}, {eps!r}]")
    return "[[attacks]]\n" + "\n".join(lines) + "\n"


@pytest.mark.slow
def test_every_registered_evaluation_appears_in_the_sweep_the_indicators_and_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One sweep of every registration on a constructed model: a results row for each, an indicator
    row for each eps-ball attack, and each named in the report."""
    (tmp_path / "contract_models.py").write_text(
        "import torch, torch.nn as nn\n\n\nclass SmallCNN(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        torch.manual_seed(0)\n        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),"
        " nn.Flatten(), nn.Linear(128, 10))\n\n    def forward(self, x):\n        return self.net(x)\n\n\ndef make():\n    return SmallCNN()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "contract.toml"
    spec.write_text(
        'models = ["contract_models:make"]\nn = 8\nbatch_size = 8\nattention_samples = 0\ndiagnostic_samples = 8\n'
        + "".join(_table(n, b) for n, b in REGISTERED)
    )
    run_dir = ra.run_sweep(ra.load_spec(spec), tmp_path / "run", progress=False)
    run = ra.load_run(run_dir)
    ids = [n if b == "native" else f"{n}@{b}" for n, b in REGISTERED]  # the spec's ids (AttackSpec.key)
    assert set(run.results["attack"]) == set(ids)
    balls = {i for i, (n, b) in zip(ids, REGISTERED) if attack_traits(n, b).threat_model != "corruption"}
    assert balls <= set(run.indicators["attack"])
    report = ra.make_report(run_dir, progress=False)
    text = report.markdown.read_text()
    missing = [i for i in ids if i not in text]
    assert not missing, f"not in the report: {missing}"
