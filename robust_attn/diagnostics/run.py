"""Run the indicators of attack failure for one model and the attacks of a sweep, on a few
images: model-level checks once, then per attack a traced run at its largest eps and a run with
no effective budget."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from robust_attn.attacks import Attack
from robust_attn.diagnostics import indicators as ind
from robust_attn.diagnostics.trace import AttackTrace


def _attack_indicators(attack: Attack, x: torch.Tensor, y: torch.Tensor, eps: float, clean_correct: torch.Tensor) -> list[ind.Indicator]:
    """Which checks apply is read from the attack's declared traits (traceable, iterative)."""
    traits = attack.traits()
    single_step = not traits.iterative
    out = []
    if traits.traceable:
        attack.trace = AttackTrace(len(x))
        try:
            adv = attack.perturb(x, y, eps, stop_early=False)
        finally:
            trace, attack.trace = attack.trace, None
        fooled = attack.predict(adv) != y
        out.append(ind.silent_success(attack, trace, fooled))
        out.append(ind.incomplete_optimisation(trace, clean_correct & ~trace.ever_fooled.to(clean_correct.device)))
    else:
        why = (
            "single-step attack" if single_step else f"{attack.name or type(attack).__name__} does not report its iterates (not traceable)"
        )
        out += [ind._skip("silent success", "attack", why), ind._skip("incomplete optimisation", "attack", why)]
    if single_step:
        out.append(ind._skip("unconstrained attack failure", "attack", "single-step attack: not expected to reach 0% without a budget"))
    elif not clean_correct.any():
        out.append(ind._skip("unconstrained attack failure", "attack", "the model gets none of the diagnostic images right"))
    else:
        out.append(ind.unconstrained_failure(attack, x[clean_correct], y[clean_correct]))
    return out


def diagnose(
    model: nn.Module, attacks: Sequence[tuple[str, Attack, float]], x: torch.Tensor, y: torch.Tensor, seed: int
) -> dict[str, np.ndarray]:
    """Indicator rows (column -> array) for ``model`` and each (attack id, attack, largest eps)."""
    generator = torch.Generator().manual_seed(seed)
    model_level = [
        ind.unavailable_gradients(model, x, y),
        ind.probability_outputs(model, x),
        ind.randomness(model, x),
        ind.unstable_predictions(model, x, y, generator),
    ]
    rows = [{"attack": "(model)", **i.row()} for i in model_level]
    with torch.no_grad():
        clean_correct = model(x).argmax(dim=1) == y
    for key, attack, eps in attacks:
        attack.reseed(seed)
        rows += [{"attack": key, **i.row()} for i in _attack_indicators(attack, x, y, eps, clean_correct)]
    return {k: np.asarray([r[k] for r in rows], dtype=object if isinstance(rows[0][k], str) else None) for k in rows[0]}
