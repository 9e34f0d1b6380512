"""``rapid``: a worst-case ensemble that spends its passes where they can still change an outcome,
for AutoAttack's strength at a small share of its cost (design and measurements: docs/rapid.md).

Per eps, on the samples no smaller eps has fooled:

0. In a worst-case sweep, a survivor of the previous eps first tries that eps's point with its
   perturbation scaled up to this eps (**extrapolate**, one forward pass); where it fools the
   model, nothing else runs.
1. **APGD-CE** (100 steps) on every sample still standing.
2. Its survivors are checked for gradient masking at the clean image (the Jacobian of the logit
   differences, one forward and one backward per class): where every row is zero ("gradients
   vanish") or some row is not finite ("gradients not finite"), gradient attacks cannot work and
   the sample goes straight to the query-only **Square** member.
3. The others get one targeted APGD run (APGD-T's targeted DLR loss) towards the class with the
   smallest *linearised* distance to the decision boundary, (z_y - z_t) / ||grad (z_y - z_t)||_*
   at the clean image (the dual norm of the threat model): MALT's ranking (Melamed et al., 2024),
   computed once per sample and reused at every eps.
4. A survivor whose targeted loss never rose (the optimisation did not move: "loss did not
   rise") goes to Square. One whose returned point is within ``restart_reach`` * eps of the
   boundary, to first order, gets a targeted run from a new random start towards a class not
   tried yet, and up to ``restarts`` in all, the next only where the last one's point is within
   half the previous reach; the classes take turns between its clean logits' order (AutoAttack's,
   first: where the linear estimate picks a class that cannot be reached, the logits often name
   one that can) and MALT's. More runs only where a sample is likely to fall, after A3 (Liu et
   al., 2022); the others are left alone.
5. A survivor whose closest targeted run ended within ``retry_reach`` (0.1) * eps of the
   boundary, to first order, gets a **retry**: a targeted run from a new random start towards
   that run's class; up to ``retries`` (3), retry k only within ``retry_reach`` / 2^(k - 1). A
   sample that nearly fell is a lottery over random starts, and the closer it came the more
   tickets it gets (on the benchmark panel the images AutoAttack's APGD-T fooled and ``rapid``
   did not had mostly come within 0.02 eps of falling to one class: docs/rapid.md).
6. Every targeted run (3 to 5) stops a sample at APGD's first checkpoint (22% of its steps)
   where its best targeted DLR loss so far is below ``abort_loss`` (-0.6): it has come nowhere
   near the boundary, and its best point so far is its answer. A3's discarding of samples
   unlikely to fall, with a per-sample threshold: on the benchmark panel every run that fooled
   after the checkpoint had a best loss of -0.44 or more there (docs/rapid.md).

Every per-sample choice is recorded: the sweep column ``decision`` names the path a sample took
and how many of its targeted runs step 6 stopped (``categorical_columns["decision"]``),
``fooled_by`` the member that fooled it first. Random starts and Square's stripes are keyed by
(seed, the image's bytes, eps, stage), not drawn from the batch's stream, so a sample's outcome
does not depend on the batch it is in or its position there.

This module is the scheduler (:class:`Rapid`, :class:`RapidL2`); the pieces it schedules live in
``keyed`` (per-sample random streams), ``keyed_members`` (Square and APGD drawing from them),
``rapid_members`` (the member table and :class:`Extrapolate`), ``target_ranking`` (MALT's
distances, the gradient check, the restarts' order), ``rapid_decisions`` (the ``decision`` codes)
and ``rapid_state`` (the per-sweep and per-eps records).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Unpack

import torch
import torch.nn as nn

from robust_attn.attacks.base import Attack, AttackOptions, Norm, bad_param, is_number, nonnegative_int, positive_int
from robust_attn.attacks.ensemble import NOT_FOOLED, Ensemble, _EnsembleState
from robust_attn.attacks.keyed import keyed_start, sample_keys
from robust_attn.attacks.keyed_members import KeyedSquare, KeyedStarts, keyed_library_search
from robust_attn.attacks.rapid_decisions import (
    D_CLEAN,
    D_EXTRAPOLATE,
    D_MALT,
    D_MALT_SQUARE,
    D_RESTART,
    D_SQ_NONFINITE,
    D_SQ_VANISH,
    decision_code,
    decision_names,
)
from robust_attn.attacks.rapid_members import CE, EXTRAPOLATE, MALT, MEMBERS, RESTART, RETRY, SQUARE, Extrapolate, build_members
from robust_attn.attacks.rapid_state import Chain, LossRange, RapidState
from robust_attn.attacks.registry import register_attack
from robust_attn.attacks.target_ranking import (
    GRAD_NONFINITE,
    GRAD_OK,
    GRAD_VANISH,
    NOT_RANKED,
    dual_norm,
    linearised_distances,
    restart_order,
)

__all__ = [  # what users and tests import from here (the pieces live in the modules above)
    "D_MALT",
    "D_RESTART",
    "GRAD_NONFINITE",
    "GRAD_OK",
    "GRAD_VANISH",
    "MALT",
    "MEMBERS",
    "RETRY",
    "Extrapolate",
    "KeyedStarts",
    "Rapid",
    "RapidL2",
    "decision_code",
    "decision_names",
    "keyed_start",
    "linearised_distances",
    "restart_order",
    "sample_keys",
]


def _check_settings(
    steps: int,
    restarts: int,
    restart_reach: float,
    square_queries: int,
    extrapolate: bool,
    abort_loss: float,
    retries: int,
    retry_reach: float,
) -> None:
    """Raise a parameter error naming the first of rapid's settings that is out of range."""
    positive_int(steps=steps, square_queries=square_queries)
    nonnegative_int(restarts=restarts, retries=retries)
    if not is_number(abort_loss) or math.isnan(abort_loss) or abort_loss > 0:
        raise bad_param("abort_loss", f"abort_loss must be a number <= 0 (a targeted DLR loss; -inf: never stop a run), got {abort_loss!r}")
    if not isinstance(extrapolate, bool):
        raise bad_param("extrapolate", f"extrapolate must be true or false, got {extrapolate!r}")
    for name, reach in (("restart_reach", restart_reach), ("retry_reach", retry_reach)):
        if not is_number(reach) or not reach >= 0:
            raise bad_param(name, f"{name} must be a number >= 0 (in units of eps), got {reach!r}")


@register_attack("rapid", "native")
class Rapid(Ensemble):
    """rapid, L-inf: in a worst-case sweep, a survivor's point from the previous eps scaled up to
    this one (one forward pass; ``extrapolate``); APGD-CE on every sample still standing; for its
    survivors one targeted APGD run towards the class nearest by linearised distance (MALT); up to
    ``restarts`` more targeted runs from new random starts, towards untried classes (the clean
    logits' best first, then MALT's and the logits' in turn), restart r + 1 only where the last
    run's point lies within ``restart_reach`` / 2^r * eps of the boundary (first order); up to
    ``retries`` more towards the class whose run came closest, retry k only where that run's
    point lies within ``retry_reach`` / 2^(k - 1) * eps; Square (``square_queries``) only where
    gradients vanish, are not finite, or moved no loss. A targeted run stops a sample at its
    first checkpoint where its best targeted DLR loss is below ``abort_loss``.
    Parameters: ``steps`` (100 per APGD run), ``restarts`` (3; 0: none), ``restart_reach`` (2.0),
    ``retries`` (3; 0: none), ``retry_reach`` (0.1), ``square_queries`` (5,000),
    ``extrapolate`` (true), ``abort_loss`` (-0.6; -inf: never).
    Untargeted; a worst-case sweep attacks only the survivors of smaller eps. Design and
    measurements: docs/rapid.md."""

    name = "rapid"
    norm: ClassVar[Norm] = "linf"
    is_ensemble = True
    iterative = True
    traceable = False  # its members report to their own recorders
    minimum_norm = False
    strength = 49  # just below autoattack's 50: for a paper's final number run both
    probe = False  # several runs per sample: too costly for the probe's independent runs
    randomized = False

    def __init__(
        self,
        model: nn.Module,
        *,
        steps: int = 100,
        restarts: int = 3,
        restart_reach: float = 2.0,
        square_queries: int = 5000,
        extrapolate: bool = True,
        abort_loss: float = -0.6,
        retries: int = 3,
        retry_reach: float = 0.1,
        **options: Unpack[AttackOptions],
    ) -> None:
        _check_settings(steps, restarts, restart_reach, square_queries, extrapolate, abort_loss, retries, retry_reach)
        if options.get("targeted"):
            raise bad_param("targeted", f"{self.name} is untargeted; for a given target use apgd with targeted = true")
        super().__init__(model, build_members(model, self.norm, steps, square_queries, options), **options)
        self.settings: dict[str, Any] = {
            "steps": steps,
            "restarts": restarts,
            "restart_reach": float(restart_reach),
            "square_queries": square_queries,
            "extrapolate": extrapolate,
            "abort_loss": float(abort_loss),
            "retries": retries,
            "retry_reach": float(retry_reach),
        }
        for code in (MALT, RESTART, RETRY):
            targeted = self.member(code)
            assert isinstance(targeted, KeyedStarts)
            targeted.abort_loss = float(abort_loss)
        self.restarts, self.restart_reach, self.extrapolate = restarts, float(restart_reach), extrapolate
        self.retries, self.retry_reach = retries, float(retry_reach)
        self.categorical_columns = {"fooled_by": [*MEMBERS, "clean"], "decision": decision_names(restarts, retries)}  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {**self.settings, "seed": self.seed}

    def reseed(self, seed: int) -> None:
        """Accepted for the sweep's per-batch reseeding; changes no outcome: the random starts are
        keyed by the attack's ``seed`` and each image, not drawn from a batch stream."""
        Attack.reseed(self, seed)

    def check_data(self, classes: int, image_shape: Sequence[int]) -> None:
        """At least 4 classes (the targeted DLR loss), and the members' checks."""
        if classes < 4:
            need = f"{self.name} needs at least 4 classes (its targeted runs use APGD-T's targeted DLR loss)"
            raise bad_param("name", f"{need}, the data has {classes}; use apgd")
        super().check_data(classes, image_shape)

    def member(self, code: int) -> Attack:
        return self.members[code][1]

    # -- the sweep hooks ----------------------------------------------------------------------
    def _start_sweep(self, x: torch.Tensor, goal: torch.Tensor, epsilons: Sequence[float]) -> RapidState:
        clean_pred = self.predict(x)
        return RapidState.start(clean_pred, clean_pred != goal, epsilons, sample_keys(x, self.seed))

    def _attack_at(
        self, state: _EnsembleState, idx: torch.Tensor | None, x: torch.Tensor, goal: torch.Tensor, eps: float, stop_early: bool
    ) -> torch.Tensor:
        assert isinstance(state, RapidState)
        ids = torch.arange(len(state.clean_pred), device=x.device) if idx is None else idx
        pred = state.clean_pred[ids].clone()  # a clean mistake is not attacked (independent mode passes them too)
        right = (~state.clean_fooled[ids]).nonzero().squeeze(1)
        if right.numel() == 0:
            return pred
        scale = stop_early and self.extrapolate  # worst case: a survivor's point at a smaller eps seeds this one
        carry = (
            (state.carry[ids[right]], state.carry_eps[ids[right]])
            if scale and state.carry is not None and state.carry_eps is not None
            else None
        )
        adv, by, plan, last = self.run(state, ids[right], x[right], goal[right], eps, carry, keep_best=scale)
        pred[right] = self.predict(adv)
        fooled = pred[right] != goal[right]  # the prediction that counts is this one (a near-tie may round the other way here)
        if scale:
            state.keep(ids[right][~fooled], (adv - x[right])[~fooled], eps)
        by = torch.where(fooled, torch.where(by == NOT_FOOLED, last, by), torch.full_like(by, NOT_FOOLED))
        k = state.epsilons.index(eps)
        state.fooled_by[k, ids[right]], state.decision[k, ids[right]] = by, plan
        return pred

    def _sweep_columns(self, state: _EnsembleState, worst_case: bool) -> dict[str, torch.Tensor]:
        assert isinstance(state, RapidState)
        by, plan = state.fooled_by.clone(), state.decision.clone()
        if worst_case:  # fooled at a smaller eps: that point lies in every larger ball, and so does its path
            for k in range(1, len(by)):
                carried = by[k] == NOT_FOOLED
                by[k] = torch.where(carried & (by[k - 1] != NOT_FOOLED), by[k - 1], by[k])
                plan[k] = torch.where(carried & (by[k - 1] != NOT_FOOLED), plan[k - 1], plan[k])
        by[:, state.clean_fooled] = len(MEMBERS)
        plan[:, state.clean_fooled] = D_CLEAN
        return {"fooled_by": by, "decision": plan}

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        """Adversarial images at one eps (a fooling point where some member found one)."""
        state = self._start_sweep(x, y, [eps])
        adv = x.clone()
        todo = (~state.clean_fooled).nonzero().squeeze(1)
        if todo.numel():
            adv[todo] = self.run(state, todo, x[todo], y[todo], eps)[0]
        return adv

    # -- one eps ------------------------------------------------------------------------------
    def run(
        self,
        state: RapidState,
        ids: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        carry: tuple[torch.Tensor, torch.Tensor] | None = None,
        keep_best: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(adversarial images, member code that fooled each sample or NOT_FOOLED, decision code
        (with its stopped runs), member that last moved it) for the batch's samples ``ids``
        (gathered into ``x``, ``y``), all of them right on the clean image; ``carry``: their
        perturbations from a smaller eps and that eps (0: none), tried scaled up before anything
        else; ``keep_best``: a survivor's image is its lowest-margin point over the runs (for the
        next eps to scale), not the last run's."""
        if self.member(CE).channels_last:  # the members' layout (the ensemble's own images stay NCHW)
            x = x.contiguous(memory_format=torch.channels_last)
        c = Chain.start(x, y, eps, [state.keys[i] for i in ids.tolist()], keep_best)
        todo = torch.arange(len(x), device=x.device) if carry is None else self._extrapolate(c, *carry)
        if todo.numel():
            self._apgd(c, CE, todo, None, "apgd-ce")
        left = (~c.fooled).nonzero().squeeze(1)
        if left.numel() == 0:
            return c.result, c.by, c.plan, c.last
        self._after_ce(state, c, ids, left)
        if c.best is not None:  # a survivor's answer is its lowest-margin point (the next eps scales it)
            alive = ~c.fooled
            c.result[alive] = c.best[alive]
        return c.result, c.by, decision_code(c.plan, c.retried, c.stopped, self.restarts, self.retries), c.last

    def _after_ce(self, state: RapidState, c: Chain, ids: torch.Tensor, left: torch.Tensor) -> None:
        """APGD-CE's survivors (positions ``left``; ``ids``: the batch's sample of each position):
        the gradient check sends those whose gradients vanish or are not finite to Square, the
        others to MALT's targeted run (and its restarts and retries), whose flat ones go to Square too."""
        self._measure(state, ids[left], c.x[left], c.y[left])
        gradients = torch.where(c.broken[left], GRAD_NONFINITE, state.gradients[ids[left]])
        c.plan[left] = torch.where(gradients == GRAD_VANISH, D_SQ_VANISH, torch.where(gradients == GRAD_NONFINITE, D_SQ_NONFINITE, D_MALT))
        c.square[left] = gradients != GRAD_OK
        malt = left[gradients == GRAD_OK]
        if malt.numel():
            self._malt(c, malt, state.distance[ids[malt]], state.logit_order[ids[malt]])
        self._square(c, (~c.fooled & c.square).nonzero().squeeze(1))

    def _extrapolate(self, c: Chain, delta: torch.Tensor, found_at: torch.Tensor) -> torch.Tensor:
        """Try each scaled-up perturbation (where the sample has one from a smaller eps); returns
        the positions it did not fool."""
        pos = ((found_at > 0) & (found_at < c.eps)).nonzero().squeeze(1)
        if pos.numel():
            member = self.member(EXTRAPOLATE)
            assert isinstance(member, Extrapolate)
            point = member.point(c.x[pos], delta[pos].to(c.x.dtype), c.eps / found_at[pos], c.eps)
            hit = member.predict(point) != c.y[pos]
            c.result[pos[hit]], c.fooled[pos[hit]], c.by[pos[hit]], c.plan[pos[hit]] = point[hit], True, EXTRAPOLATE, D_EXTRAPOLATE
            c.last[pos] = EXTRAPOLATE
        return (~c.fooled).nonzero().squeeze(1)

    def _apgd(self, c: Chain, code: int, pos: torch.Tensor, target: torch.Tensor | None, salt: str) -> torch.Tensor:
        """One APGD run of member ``code`` on positions ``pos`` from keyed random starts; returns
        where the loss rose. Fooling points go into ``c.result``; non-finite iterates are dropped."""
        member = self.member(code)
        assert isinstance(member, KeyedStarts)
        recorder = LossRange(len(c.x), c.x.device)
        member.keyed(c.take(pos), f"{salt}:{c.eps!r}").trace = recorder
        member.stopped = c.stopped
        fooled = c.fooled.clone()
        try:
            member.run_once(c.x[pos], c.y[pos], c.eps, target, c.result, fooled, pos)
        finally:
            member.trace, member.start_keys, member.stopped = None, None, None
        bad = ~torch.isfinite(c.result[pos]).flatten(1).all(1)
        if bad.any():  # a NaN image is no adversarial example
            c.result[pos[bad]] = c.x[pos[bad]]
            fooled[pos[bad]] = False
            c.broken[pos[bad]] = True
        new = fooled & ~c.fooled
        c.by[new], c.fooled, c.last[pos] = code, fooled, code
        self._keep_best(c, member, pos[~fooled[pos]])
        return recorder.rose()[pos]

    @staticmethod
    def _keep_best(c: Chain, member: Attack, pos: torch.Tensor) -> None:
        """Where kept, each survivor's lowest-margin point over the runs (one forward pass each)."""
        if c.best is None or c.best_margin is None or pos.numel() == 0:
            return
        with torch.inference_mode():
            margin = member.margin(member.logits(c.result[pos]), c.y[pos])
        better = margin < c.best_margin[pos]
        c.best[pos[better]], c.best_margin[pos[better]] = c.result[pos[better]], margin[better]

    def _measure(self, state: RapidState, ids: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        """MALT's linearised distances and the gradient check at the clean images of samples ``ids``
        not measured yet (one forward and C backward passes each, on the malt member)."""
        todo = (state.gradients[ids] == NOT_RANKED).nonzero().squeeze(1)
        if todo.numel() == 0:
            return
        distance, gradients, logits = linearised_distances(self.member(MALT), x[todo], y[todo], self.norm)
        if state.distance.shape[1] != distance.shape[1]:
            b, classes = len(state.clean_pred), distance.shape[1]
            state.distance = torch.full((b, classes), math.inf, device=distance.device)
            state.logit_order = torch.zeros((b, classes), dtype=torch.long, device=distance.device)
        state.distance[ids[todo]], state.gradients[ids[todo]] = distance, gradients
        state.logit_order[ids[todo]] = logits.argsort(dim=1, descending=True)

    def _malt(self, c: Chain, pos: torch.Tensor, distance: torch.Tensor, logit_order: torch.Tensor) -> None:
        """On positions ``pos`` (their rows of ``distance`` and ``logit_order``): one targeted run
        towards the nearest class; then Square where its loss did not rise, restarts where the
        survivor came within ``restart_reach`` * eps of the boundary, and retries of the class whose
        run came closest where that run ended within ``retry_reach`` * eps."""
        nearest = distance.argmin(dim=1)
        c.plan[pos] = D_MALT
        rose = self._apgd(c, MALT, pos, nearest, "malt")
        open_ = (~c.fooled[pos]).nonzero().squeeze(1)  # rows of pos
        flat = pos[open_[~rose[open_]]]
        c.plan[flat], c.square[flat] = D_MALT_SQUARE, True
        open_ = open_[rose[open_]]
        restarts, retries = self.restarts > 0 and self.restart_reach > 0, self._retrying
        if open_.numel() == 0 or not (restarts or retries):
            return
        close = self._note_closeness(c, pos[open_], nearest[open_])
        if restarts:
            near = open_[close <= self.restart_reach]
            self._restart(c, pos[near], restart_order(logit_order[near], distance[near], c.y[pos[near]], nearest[near, None]))
        if retries:
            self._retry(c, pos[open_])

    def _restart(self, c: Chain, at: torch.Tensor, untried: torch.Tensor) -> None:
        """Targeted runs from new random starts on positions ``at`` towards their rows of ``untried``
        in turn, restart r + 1 only where restart r's point lies within restart_reach / 2^r."""
        rows = torch.arange(len(at), device=at.device)  # rows of at (and of untried) still running
        last = min(self.restarts, untried.shape[1])
        for r in range(last + 1):
            rows = rows[~c.fooled[at[rows]]]
            if r and rows.numel() and (r < last or self._retrying):  # the last one's point only matters for a retry
                rows = rows[self._note_closeness(c, at[rows], untried[rows, r - 1]) <= self.restart_reach / 2**r]
            if rows.numel() == 0 or r == last:
                return
            c.plan[at[rows]] = D_RESTART + r
            self._apgd(c, RESTART, at[rows], untried[rows, r], f"restart:{r}")

    @property
    def _retrying(self) -> bool:
        """Whether any survivor can get a retry (a survivor's closeness is always above 0)."""
        return self.retries > 0 and self.retry_reach > 0

    def _retry(self, c: Chain, at: torch.Tensor) -> None:
        """Up to ``retries`` targeted runs from new random starts towards the class whose run came
        closest, retry k only where that closest point lies within retry_reach / 2^(k - 1): a
        sample that nearly fell is a lottery, and the closer it came the more tickets it gets."""
        for k in range(self.retries):
            at = at[~c.fooled[at]]
            if k and at.numel():  # the last retry's point may be closer still
                self._note_closeness(c, at, c.closest_to[at])
            at = at[torch.isfinite(c.closest[at]) & (c.closest[at] <= self.retry_reach / 2**k)]
            if at.numel() == 0:
                return
            c.retried[at] = k + 1
            self._apgd(c, RETRY, at, c.closest_to[at], f"retry:{k}")

    def _note_closeness(self, c: Chain, at: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The closeness of the points of the runs towards ``target`` on positions ``at``; each
        position's closest run so far is kept (``c.closest``, ``c.closest_to``)."""
        close = self._closeness(c.result[at], c.y[at], c.eps)
        closer = close < c.closest[at]
        c.closest[at[closer]], c.closest_to[at[closer]] = close[closer], target[closer]
        return close

    def _closeness(self, point: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """First-order distance from ``point`` to the boundary, in units of eps (one forward and
        one backward pass each, on the restart member)."""
        member = self.member(RESTART)
        xg = point.detach().requires_grad_(True)
        margin = member.margin(member.logits(xg), y)
        (grad,) = torch.autograd.grad(margin.sum(), xg)
        return margin.detach() / (dual_norm(grad, self.norm) * eps + 1e-30)

    def _square(self, c: Chain, pos: torch.Tensor) -> None:
        """The query-only member on positions ``pos``."""
        if pos.numel() == 0:
            return
        member = self.member(SQUARE)
        if isinstance(member, KeyedSquare):
            adv = member.search(c.x[pos], c.y[pos], c.eps, c.take(pos), f"square:{self.seed}:{c.eps!r}")
        else:  # the L2 library Square
            adv = keyed_library_search(member, c.x[pos], c.y[pos], c.eps, c.take(pos), f"square:{c.eps!r}")
        hit = member.predict(adv) != c.y[pos]
        c.result[pos[hit]], c.fooled[pos[hit]], c.by[pos[hit]], c.last[pos] = adv[hit], True, SQUARE, SQUARE


@register_attack("rapid-l2", "native")
class RapidL2(Rapid):
    """rapid in L2 (its query member is torchattacks' L2 Square, one image per call)."""

    name = "rapid-l2"
    norm: ClassVar[Norm] = "l2"
