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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Unpack

import torch
import torch.nn as nn

from robust_attn.attacks.apgd import APGD, APGDL2, APGDT, APGDTL2, _Active, project_ball
from robust_attn.attacks.base import Attack, AttackOptions, Norm, bad_param, is_number, nonnegative_int, positive_int
from robust_attn.attacks.ensemble import NOT_FOOLED, Ensemble, TorchattacksMember, _EnsembleState
from robust_attn.attacks.registry import register_attack
from robust_attn.attacks.square import Square, p_selection
from robust_attn.errors import ModelError

MEMBERS = ("apgd-ce", "malt", "restart", "square", "extrapolate", "retry")
CE, MALT, RESTART, SQUARE, EXTRAPOLATE, RETRY = range(6)
VANISH, NONFINITE, FLAT = "gradients vanish", "gradients not finite", "loss did not rise"
GRAD_OK, GRAD_VANISH, GRAD_NONFINITE = 0, 1, 2
# decision paths, in the order of decision_names(); D_RESTART + r - 1: r restarts ran; then the
# retried paths (see decision_code)
D_CE, D_SQ_VANISH, D_SQ_NONFINITE, D_MALT, D_MALT_SQUARE, D_CLEAN, D_EXTRAPOLATE, D_RESTART = range(8)
NOT_RANKED = -1


def decision_names(restarts: int, retries: int = 0) -> list[str]:
    """The paths a sample can take, by decision code: one per number of restarts that ran (the
    restarts' target orders take turns, the clean logits' first), then the MALT and restart paths
    followed by 1 .. ``retries`` retries of the closest class, then all of these with 1, 2, ...
    targeted runs stopped at their first checkpoint (see :func:`decision_code`)."""
    malt = "apgd-ce > malt nearest"
    orders = lambda r: ", ".join(("logit", "malt")[i % 2] for i in range(r))
    targeted = [malt, *[f"{malt} > restart x{r} ({orders(r)} order)" for r in range(1, restarts + 1)]]
    paths = ["apgd-ce", f"apgd-ce > square ({VANISH})", f"apgd-ce > square ({NONFINITE})", malt, f"{malt} > square ({FLAT})", "clean",
             "extrapolate (the smaller eps's point, scaled)", *targeted[1:],
             *[f"{t} > retry closest x{k}" for t in targeted for k in range(1, retries + 1)]]  # fmt: skip
    stops = lambda k: f"; {k} targeted run{'s' if k > 1 else ''} stopped at the first checkpoint"
    return [*paths, *[p + stops(k) for k in range(1, restarts + retries + 2) for p in paths]]


def decision_code(path: torch.Tensor, retried: torch.Tensor, stopped: torch.Tensor, restarts: int, retries: int) -> torch.Tensor:
    """The code in :func:`decision_names` of each ``path`` (D_*) after ``retried`` retries (0 or
    more; only on the MALT and restart paths) with ``stopped`` targeted runs stopped."""
    ran = torch.where(path == D_MALT, 0, path - D_RESTART + 1)  # restarts that ran, on the targeted paths
    again = D_RESTART + restarts + ran * retries + retried - 1
    path = torch.where(retried > 0, again, path)
    return path + (D_RESTART + restarts + (restarts + 1) * retries) * stopped


# -- keyed randomness: per sample, independent of the batch ------------------------------------
def sample_keys(x: torch.Tensor, seed: int) -> list[bytes]:
    """One key per image: a hash of the seed and the image's bytes."""
    flat = x.detach().float().cpu().contiguous().flatten(1).numpy()
    salt = int(seed).to_bytes(8, "little", signed=True)
    return [hashlib.blake2b(row.tobytes(), digest_size=16, key=salt).digest() for row in flat]


def _stream(key: bytes, salt: str) -> torch.Generator:
    digest = hashlib.blake2b(salt.encode(), digest_size=8, key=key).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest, "little") >> 1)


def keyed_noise(keys: Sequence[bytes], salt: str, like: torch.Tensor, normal: bool) -> torch.Tensor:
    """Per sample, uniform(-1, 1) (or standard normal) noise of one image's shape from its own key."""
    shape = like.shape[1:]
    draw = torch.randn if normal else (lambda s, generator: 2 * torch.rand(s, generator=generator) - 1)
    rows = [draw(shape, generator=_stream(k, salt)) for k in keys]
    return torch.stack(rows).to(like.device, like.dtype) if rows else torch.empty_like(like)


def _lp(t: torch.Tensor, norm: str) -> torch.Tensor:
    flat = t.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.square().sum(1).sqrt()


def _dual(t: torch.Tensor, norm: str) -> torch.Tensor:
    flat = t.flatten(1)
    return flat.abs().sum(1) if norm == "linf" else flat.square().sum(1).sqrt()


def keyed_start(x: torch.Tensor, eps: float, norm: str, keys: Sequence[bytes], salt: str) -> torch.Tensor:
    """APGD's random start (a point on the eps-sphere, clipped to [0, 1]), drawn from each sample's key."""
    t = keyed_noise(keys, salt, x, normal=norm == "l2")
    shape = (-1, *([1] * (x.dim() - 1)))
    return (x + eps * t / (_lp(t, norm).view(shape) + 1e-12)).clamp(0.0, 1.0)


# -- the members -----------------------------------------------------------------------------
class KeyedSquare(Square):
    """Square (L-inf), with each sample's initial stripes drawn from its own key and the windows
    from a stream shared by every batch, so a sample's search does not depend on its batch. The
    search is Square's: the same schedule, window update and acceptance rule."""

    def search(self, x: torch.Tensor, y: torch.Tensor, eps: float, keys: Sequence[bytes], salt: str) -> torch.Tensor:
        """Adversarial images where the search fooled the model, else the clean images; ``salt``
        (which should hold the seed and eps) picks the windows' stream, ``keys`` the stripes."""
        stripes = torch.sign(keyed_noise(keys, f"{salt}:stripes", x[:, :, :1, :], normal=False))
        return self._search_from(x, y, eps, stripes, _stream(b"square windows", salt)).clone()

    @torch.inference_mode()
    def _search_from(self, x: torch.Tensor, y: torch.Tensor, eps: float, stripes: torch.Tensor, windows: torch.Generator) -> torch.Tensor:
        c, h, w = x.shape[1:]
        best = torch.clamp(x + eps * stripes, 0.0, 1.0)
        margin = self._margin_at(best, y)
        for it in range(self.queries):
            active = (margin > 0.0).nonzero().flatten()
            if active.numel() == 0:
                break
            s = max(round(math.sqrt(p_selection(self.p_init, it, self.queries) * h * w)), 1)
            vh = int(((h - s) * torch.rand([1], generator=windows)).long())
            vw = int(((w - s) * torch.rand([1], generator=windows)).long())
            sign = torch.sign(2 * torch.rand([c, 1, 1], generator=windows) - 1).to(x.device, x.dtype)
            window = (slice(None), slice(None), slice(vh, vh + s), slice(vw, vw + s))
            x_a, best_a = x[active], best[active]
            cand = best_a.clone()
            cand[window] = torch.clamp(
                torch.min(torch.max(best_a[window] + 2.0 * eps * sign, x_a[window] - eps), x_a[window] + eps), 0.0, 1.0
            )
            m = self._margin_at(cand, y[active])
            better = (m < margin[active]) | (m <= 0.0)
            margin[active] = torch.where(better, m, margin[active])
            best[active] = torch.where(better.view(-1, 1, 1, 1), cand, best_a)
        return torch.where((margin <= 0).view(-1, 1, 1, 1), best, x)

    @torch.inference_mode()
    def _margin_at(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.margin(self.logits(x), y)


class KeyedStarts(APGD):
    """APGD whose random start comes from per-sample keys (set by :meth:`keyed` for one run)
    instead of the attack's stream, so a sample's start does not depend on its batch; without keys
    it is plain APGD."""

    start_keys: Sequence[bytes] | None = None
    start_salt: str = ""
    abort_loss: float = -math.inf  # a run stops at its first checkpoint where its best loss is below this
    stopped: torch.Tensor | None = None  # where set (per position of the result): +1 where a run was stopped

    def _after_checkpoint(self, s: _Active, done: int, result: torch.Tensor) -> None:
        """At the first checkpoint, stop the samples whose best loss so far is below
        ``abort_loss``: they have come nowhere near the boundary (their best point is the answer)."""
        if done != self.first_interval or self.abort_loss == -math.inf:
            return
        hopeless = (s.loss_best < self.abort_loss) & ~s.hit
        if hopeless.any():
            result[s.ids[hopeless]] = s.best[hopeless]
            if self.stopped is not None:
                self.stopped[s.ids[hopeless]] += 1
            s.keep(~hopeless)

    def keyed(self, keys: Sequence[bytes], salt: str) -> KeyedStarts:
        self.start_keys, self.start_salt = keys, salt
        return self

    def random_start(self, x: torch.Tensor, eps: float) -> torch.Tensor:
        if self.start_keys is None:
            return super().random_start(x, eps)
        if len(self.start_keys) != x.shape[0]:
            raise RuntimeError(f"{len(self.start_keys)} keys for a run on {x.shape[0]} samples")  # a bug in rapid
        return keyed_start(x, eps, self.norm, self.start_keys, self.start_salt)


class KeyedAPGDCE(KeyedStarts):
    """APGD-CE, L-inf, keyed starts."""


class KeyedAPGDT(KeyedStarts, APGDT):
    """Targeted-DLR APGD, L-inf, keyed starts (run with a target per sample)."""


class KeyedAPGDCEL2(KeyedStarts, APGDL2):
    """APGD-CE, L2, keyed starts."""


class KeyedAPGDTL2(KeyedStarts, APGDTL2):
    """Targeted-DLR APGD, L2, keyed starts."""


class Extrapolate(Attack):
    """A survivor's point from the previous eps of a worst-case sweep, its perturbation scaled up
    to this eps and projected onto the ball and the box, checked with one forward pass. On a
    nearly linear model the margin an attack took off at the smaller eps grows with the
    perturbation, so a sample that falls at the larger eps often falls to this point, for one
    pass instead of APGD-CE's steps; one that does not goes on to APGD-CE as before."""

    name = "extrapolate"
    iterative = False

    def __init__(self, model: nn.Module, norm: Norm, **options: Unpack[AttackOptions]) -> None:
        super().__init__(model, **options)
        self.norm = norm  # type: ignore[misc]

    def point(self, x: torch.Tensor, delta: torch.Tensor, ratio: torch.Tensor, eps: float) -> torch.Tensor:
        """x + ratio * delta (ratio per sample: this eps over the eps delta was found at), inside
        the eps-ball around x (rounding may leave it a hair outside) and [0, 1]."""
        return project_ball(x + ratio.view(-1, *([1] * (x.dim() - 1))) * delta, x, eps, self.norm)


def _members(model: nn.Module, norm: Norm, steps: int, square_queries: int, options: AttackOptions) -> list[tuple[str, Attack]]:
    """rapid's members in code order (MEMBERS): keyed APGD-CE, two keyed targeted APGDs (MALT's
    run, the restarts), Square, the extrapolated point, and a third keyed targeted APGD (the retries)."""
    apgd, apgdt = (KeyedAPGDCE, KeyedAPGDT) if norm == "linf" else (KeyedAPGDCEL2, KeyedAPGDTL2)
    native: AttackOptions = {k: v for k, v in options.items() if k != "seed"}  # type: ignore[assignment]
    square: Attack
    if norm == "linf":
        square = KeyedSquare(model, queries=square_queries, p_init=0.8, **native)
    else:  # the library's L2 Square, with AutoAttack's parameters (as autoattack-l2 runs it)
        library = {"n_queries": square_queries, "n_restarts": 1, "p_init": 0.8}
        square = TorchattacksMember(model, "Square", norm, library, precision=options.get("precision", "fp32"))
    return [("apgd-ce", apgd(model, steps=steps, loss="ce", **native)), ("malt", apgdt(model, steps=steps, targets=1, **native)),
            ("restart", apgdt(model, steps=steps, targets=1, **native)), ("square", square), ("extrapolate", Extrapolate(model, norm, **native)),
            ("retry", apgdt(model, steps=steps, targets=1, **native))]  # fmt: skip


class _LossRange:
    """Stands in for an AttackTrace on one APGD run: per position, the first loss reported and the highest."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.first = torch.full((n,), math.nan, device=device)
        self.top = torch.full((n,), -math.inf, device=device)

    def step(self, ids: torch.Tensor, loss: torch.Tensor, fooled: torch.Tensor) -> None:
        first = self.first[ids]
        self.first[ids] = torch.where(first.isnan(), loss, first)
        self.top[ids] = torch.maximum(self.top[ids], loss)

    def rose(self) -> torch.Tensor:
        """Where the loss rose above its first value (False where the position was not run)."""
        return self.top > self.first + 1e-6 * (1 + self.first.abs())


# -- per-sweep state ---------------------------------------------------------------------------
@dataclass
class _RapidState(_EnsembleState):
    """The ensemble's sweep state (no minimum-norm answers) plus rapid's per-sample records."""

    keys: list[bytes]  # (B,) per-sample keys of the random starts
    decision: torch.Tensor  # (K, B) decision code, -1 where the sample was not attacked there
    gradients: torch.Tensor  # (B,) GRAD_* at the clean image, NOT_RANKED before it is measured
    distance: torch.Tensor  # (B, C) linearised distance to each class's boundary (inf: own class, or no gradient)
    logit_order: torch.Tensor  # (B, C) classes by clean logit, highest first
    carry: torch.Tensor | None = None  # (B, ...) a survivor's perturbation at the last eps it was attacked at
    carry_eps: torch.Tensor | None = None  # (B,) that eps (0: none)

    def keep(self, ids: torch.Tensor, delta: torch.Tensor, eps: float) -> None:
        """Remember the perturbations ``delta`` of the survivors ``ids``, found at ``eps``."""
        if self.carry is None or self.carry_eps is None:
            self.carry = torch.zeros((len(self.clean_pred), *delta.shape[1:]), device=delta.device, dtype=delta.dtype)
            self.carry_eps = torch.zeros(len(self.clean_pred), device=delta.device)
        self.carry[ids], self.carry_eps[ids] = delta.contiguous(), eps

    @classmethod
    def start(cls, clean_pred: torch.Tensor, clean_fooled: torch.Tensor, epsilons: Sequence[float], keys: list[bytes]) -> _RapidState:
        b, dev = len(clean_pred), clean_pred.device
        codes = torch.full((len(epsilons), b), NOT_FOOLED, dtype=torch.long, device=dev)
        return cls(clean_pred, clean_fooled, [float(e) for e in epsilons], codes, {}, keys, codes.clone(),
                   torch.full((b,), NOT_RANKED, dtype=torch.long, device=dev), torch.empty(b, 0, device=dev),
                   torch.empty(b, 0, dtype=torch.long, device=dev))  # fmt: skip


@dataclass
class _Chain:
    """One eps's bookkeeping over the samples attacked there (positions 0..n-1)."""

    x: torch.Tensor
    y: torch.Tensor
    eps: float
    keys: list[bytes]
    result: torch.Tensor
    fooled: torch.Tensor
    by: torch.Tensor
    plan: torch.Tensor
    last: torch.Tensor  # the member that last moved each sample (NOT_FOOLED: none)
    broken: torch.Tensor  # an APGD run reached a non-finite iterate
    square: torch.Tensor  # goes to the query-only member
    stopped: torch.Tensor  # targeted runs stopped at their first checkpoint (abort_loss)
    retried: torch.Tensor  # retries of the closest class that ran
    closest: torch.Tensor  # first-order distance to the boundary of the closest targeted run's point, in eps (inf: none measured)
    closest_to: torch.Tensor  # that run's target class
    best: torch.Tensor | None = None  # where kept (for extrapolation): each survivor's lowest-margin point so far
    best_margin: torch.Tensor | None = None

    def take(self, pos: torch.Tensor) -> list[bytes]:
        return [self.keys[i] for i in pos.tolist()]


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
        positive_int(steps=steps, square_queries=square_queries)
        nonnegative_int(restarts=restarts, retries=retries)
        if not is_number(abort_loss) or math.isnan(abort_loss) or abort_loss > 0:
            raise bad_param(
                "abort_loss", f"abort_loss must be a number <= 0 (a targeted DLR loss; -inf: never stop a run), got {abort_loss!r}"
            )
        if not isinstance(extrapolate, bool):
            raise bad_param("extrapolate", f"extrapolate must be true or false, got {extrapolate!r}")
        for name, reach in (("restart_reach", restart_reach), ("retry_reach", retry_reach)):
            if not is_number(reach) or not reach >= 0:
                raise bad_param(name, f"{name} must be a number >= 0 (in units of eps), got {reach!r}")
        if options.get("targeted"):
            raise bad_param("targeted", f"{self.name} is untargeted; for a given target use apgd with targeted = true")
        super().__init__(model, _members(model, self.norm, steps, square_queries, options), **options)
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
            raise bad_param("name", f"{self.name} needs at least 4 classes (its targeted runs use APGD-T's targeted DLR loss), the data has "
                                        f"{classes}; use apgd")  # fmt: skip
        super().check_data(classes, image_shape)

    def member(self, code: int) -> Attack:
        return self.members[code][1]

    # -- the sweep hooks ----------------------------------------------------------------------
    def _start_sweep(self, x: torch.Tensor, goal: torch.Tensor, epsilons: Sequence[float]) -> _RapidState:
        clean_pred = self.predict(x)
        return _RapidState.start(clean_pred, clean_pred != goal, epsilons, sample_keys(x, self.seed))

    def _attack_at(
        self, state: _EnsembleState, idx: torch.Tensor | None, x: torch.Tensor, goal: torch.Tensor, eps: float, stop_early: bool
    ) -> torch.Tensor:
        assert isinstance(state, _RapidState)
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
        assert isinstance(state, _RapidState)
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
        state: _RapidState,
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
        n = x.shape[0]
        if self.member(CE).channels_last:  # the members' layout (the ensemble's own images stay NCHW)
            x = x.contiguous(memory_format=torch.channels_last)
        keys = [state.keys[i] for i in ids.tolist()]
        flags = torch.zeros(n, dtype=torch.bool, device=x.device)
        codes = torch.full((n,), NOT_FOOLED, dtype=torch.long, device=x.device)
        c = _Chain(x, y, eps, keys, x.clone(), flags, codes, torch.full_like(codes, D_CE), codes.clone(), flags.clone(), flags.clone(),
                   torch.zeros_like(codes), torch.zeros_like(codes), torch.full((n,), math.inf, device=x.device), codes.clone())  # fmt: skip
        if keep_best:
            c.best, c.best_margin = x.clone(), torch.full((n,), math.inf, device=x.device)
        todo = torch.arange(n, device=x.device) if carry is None else self._extrapolate(c, *carry)
        if todo.numel():
            self._apgd(c, CE, todo, None, "apgd-ce")
        left = (~c.fooled).nonzero().squeeze(1)
        if left.numel() == 0:
            return c.result, c.by, c.plan, c.last
        self._measure(state, ids[left], x[left], y[left])
        gradients = torch.where(c.broken[left], GRAD_NONFINITE, state.gradients[ids[left]])
        c.plan[left] = torch.where(gradients == GRAD_VANISH, D_SQ_VANISH, torch.where(gradients == GRAD_NONFINITE, D_SQ_NONFINITE, D_MALT))
        c.square[left] = gradients != GRAD_OK
        malt = left[gradients == GRAD_OK]
        if malt.numel():
            self._malt(c, malt, state.distance[ids[malt]], state.logit_order[ids[malt]])
        self._square(c, (~c.fooled & c.square).nonzero().squeeze(1))
        if c.best is not None:  # a survivor's answer is its lowest-margin point (the next eps scales it)
            alive = ~c.fooled
            c.result[alive] = c.best[alive]
        return c.result, c.by, decision_code(c.plan, c.retried, c.stopped, self.restarts, self.retries), c.last

    def _extrapolate(self, c: _Chain, delta: torch.Tensor, found_at: torch.Tensor) -> torch.Tensor:
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

    def _apgd(self, c: _Chain, code: int, pos: torch.Tensor, target: torch.Tensor | None, salt: str) -> torch.Tensor:
        """One APGD run of member ``code`` on positions ``pos`` from keyed random starts; returns
        where the loss rose. Fooling points go into ``c.result``; non-finite iterates are dropped."""
        member = self.member(code)
        assert isinstance(member, KeyedStarts)
        recorder = _LossRange(len(c.x), c.x.device)
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
    def _keep_best(c: _Chain, member: Attack, pos: torch.Tensor) -> None:
        """Where kept, each survivor's lowest-margin point over the runs (one forward pass each)."""
        if c.best is None or c.best_margin is None or pos.numel() == 0:
            return
        with torch.inference_mode():
            margin = member.margin(member.logits(c.result[pos]), c.y[pos])
        better = margin < c.best_margin[pos]
        c.best[pos[better]], c.best_margin[pos[better]] = c.result[pos[better]], margin[better]

    def _measure(self, state: _RapidState, ids: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
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

    def _malt(self, c: _Chain, pos: torch.Tensor, distance: torch.Tensor, logit_order: torch.Tensor) -> None:
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

    def _restart(self, c: _Chain, at: torch.Tensor, untried: torch.Tensor) -> None:
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

    def _retry(self, c: _Chain, at: torch.Tensor) -> None:
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

    def _note_closeness(self, c: _Chain, at: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
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
        return margin.detach() / (_dual(grad, self.norm) * eps + 1e-30)

    def _square(self, c: _Chain, pos: torch.Tensor) -> None:
        """The query-only member on positions ``pos``."""
        if pos.numel() == 0:
            return
        member = self.member(SQUARE)
        if isinstance(member, KeyedSquare):
            adv = member.search(c.x[pos], c.y[pos], c.eps, c.take(pos), f"square:{self.seed}:{c.eps!r}")
        else:  # the L2 library Square: one image per call, each with its own seed, so batches do not matter
            rows = []
            for i, key in zip(pos.tolist(), c.take(pos)):
                member.seed = int.from_bytes(hashlib.blake2b(f"square:{c.eps!r}".encode(), digest_size=4, key=key).digest(), "little") >> 1
                rows.append(member.perturb(c.x[i : i + 1], c.y[i : i + 1], c.eps))
            adv = torch.cat(rows)
        hit = member.predict(adv) != c.y[pos]
        c.result[pos[hit]], c.fooled[pos[hit]], c.by[pos[hit]], c.last[pos] = adv[hit], True, SQUARE, SQUARE


def restart_order(logit_order: torch.Tensor, distance: torch.Tensor, y: torch.Tensor, tried: torch.Tensor) -> torch.Tensor:
    """Per row, the classes to restart towards, taking turns: the next class by clean logit
    (AutoAttack's order), then the next by linearised distance (MALT's), never the true class, one
    already ``tried`` or one already taken; (n, C - 1 - tried.shape[1])."""
    by_distance = distance.argsort(dim=1)
    width = logit_order.shape[1] - 1 - tried.shape[1]
    rows = []
    for first, second, label, done in zip(logit_order.tolist(), by_distance.tolist(), y.tolist(), tried.tolist()):
        seen: set[int] = {label, *done}
        row: list[int] = []
        queues = (iter(first), iter(second))
        while len(row) < width:
            pick = next((c for c in queues[len(row) % 2] if c not in seen), None)
            if pick is None:  # that order is used up: the other one has the rest
                pick = next(c for c in queues[1 - len(row) % 2] if c not in seen)
            seen.add(pick)
            row.append(pick)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long, device=y.device).view(len(rows), width)


def linearised_distances(member: Attack, x: torch.Tensor, y: torch.Tensor, norm: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MALT's ranking quantity for every class t: (z_y - z_t) / ||grad_x (z_y - z_t)||_* at ``x``
    (L1 for L-inf, L2 for L2; inf for t = y and where the gradient is zero); per sample
    GRAD_VANISH where every such gradient is zero, GRAD_NONFINITE where one is not finite, else
    GRAD_OK; and the logits at ``x``. One forward pass and C backward passes."""
    xg = x.detach().requires_grad_(True)
    logits = member.logits(xg)
    n, classes = logits.shape
    if classes < 4:
        raise ModelError(f"rapid needs at least 4 classes (targeted DLR), the model has {classes}; use apgd or pgd")
    rows = torch.arange(n, device=x.device)
    distance = torch.full((n, classes), math.inf, device=x.device)
    moved = torch.zeros(n, dtype=torch.bool, device=x.device)
    broken = torch.zeros(n, dtype=torch.bool, device=x.device)
    z = logits.detach()
    for t in range(classes):
        seed = torch.zeros_like(logits)
        seed[:, t] += 1.0
        seed[rows, y] -= 1.0  # grad of z_t - z_y (zero on rows whose label is t)
        (grad,) = torch.autograd.grad(logits, xg, seed, retain_graph=t < classes - 1)
        size = _dual(grad, norm)
        other = y != t
        finite = torch.isfinite(grad).flatten(1).all(1)
        broken |= other & ~finite
        moved |= other & finite & (size > 0)
        usable = other & finite & (size > 0)
        distance[:, t] = torch.where(usable, (z[rows, y] - z[:, t]) / size.clamp_min(1e-30), distance[:, t])
    gradients = torch.where(broken, GRAD_NONFINITE, torch.where(moved, GRAD_OK, GRAD_VANISH))
    return distance, gradients, z


@register_attack("rapid-l2", "native")
class RapidL2(Rapid):
    """rapid in L2 (its query member is torchattacks' L2 Square, one image per call)."""

    name = "rapid-l2"
    norm: ClassVar[Norm] = "l2"
