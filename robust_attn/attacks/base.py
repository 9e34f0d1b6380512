"""One interface for every attack: an :class:`Attack` perturbs a batch at one epsilon and
sweeps a grid of epsilons, worst-case (cumulative) or independent per eps.

Inputs are images in [0, 1]; epsilons are in the same pixel units (8/255 = 0.0314).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Annotated, Any, ClassVar, Literal, TypedDict, Unpack

import torch
import torch.nn as nn

from robust_attn.errors import AttackParameterError, DataError, ModelOutputError
from robust_attn.models.fold import fold_batchnorm

Mode = Literal["worst-case", "independent"]
Precision = Literal["fp32", "bf16", "fp16"]
Norm = Literal["linf", "l2", "l1"]
NORMS: tuple[Norm, ...] = ("linf", "l2", "l1")
EPS_VALUE = "eps"  # marks a parameter given in eps units: a spec may write it as "2/255"
Eps = Annotated[float, EPS_VALUE]
MODES: tuple[Mode, ...] = ("worst-case", "independent")
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")


class AttackOptions(TypedDict, total=False):
    """Options every attack takes (declared once; subclasses pass them through as ``**options``)."""

    targeted: bool  # move towards a given target label instead of away from the true one
    seed: int  # seeds random starts (sweeps reseed per batch)
    precision: Precision  # forward-pass precision (fp32, bf16, fp16)
    channels_last: bool  # NHWC memory format for the model and inputs
    fold_bn: bool  # attack a copy with eval-mode BatchNorm folded into the convolutions


@dataclass
class SweepBatch:
    """Outcomes of one batch over a grid of K epsilons (ascending)."""

    correct: torch.Tensor  # (K, B) bool: prediction == label after the attack at eps_k
    pred: torch.Tensor  # (K, B) int64: predicted label after the attack at eps_k
    clean_pred: torch.Tensor  # (B,) int64: prediction on the unperturbed images
    columns: dict[str, torch.Tensor] = field(default_factory=dict)  # extra per-sample results, (B,) or (K, B)


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Reduced precision for forward passes; ``fp32`` is a no-op."""
    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-free module)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def positive_int(**values: object) -> None:
    """Raise a one-line error naming the first parameter that is not an integer >= 1."""
    _int_at_least(1, "", values)


def nonnegative_int(**values: object) -> None:
    """Raise a one-line error naming the first count that is not an integer >= 0 (0: none)."""
    _int_at_least(0, " (0: none)", values)


def _int_at_least(low: int, note: str, values: dict[str, object]) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise AttackParameterError(name, f"{name} must be an integer >= {low}{note}, got {value!r}")


def is_number(value: object) -> bool:
    """An int or a float, not a bool (TOML and keyword parameters)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite_logits(logits: torch.Tensor) -> torch.Tensor:
    """``logits``, after checking that every row is finite: a NaN row's argmax is a class like
    any other and would be counted as a prediction."""
    bad = ~torch.isfinite(logits).all(dim=1)
    if bool(bad.any()):
        count = int(bad.sum())
        raise ModelOutputError(f"the model returned NaN or infinite logits for {count} of {len(logits)} images", count, len(logits))
    return logits


DEFAULT_TARGETS = 9  # AutoAttack's: the nine classes ranked highest after the true one, fewer when there are fewer


def check_targets(targets: int, classes: int, attack: str) -> None:
    """A targeted member runs against the classes ranked after the true one: a number of targets
    the data cannot have is an error (the default, 9, is capped as AutoAttack caps it)."""
    if targets != DEFAULT_TARGETS and targets > classes - 1:
        raise bad_param(
            "targets",
            f"{attack} with targets = {targets} needs at least {targets + 1} classes, the data has {classes}; use targets <= {classes - 1}",
        )


def bad_param(name: str, message: str) -> AttackParameterError:
    """The error of a parameter whose value the attack cannot use (the spec names its field)."""
    return AttackParameterError(name, message)


@dataclass(frozen=True)
class AttackTraits:
    """What an attack can do, declared by its class (never inferred from its name): sweeps,
    probes, indicators of attack failure and reports read these, and the run directory records
    them with every cell."""

    norm: str  # threat model of eps: linf, l2 or l1
    iterative: bool  # takes several gradient steps or queries (False: single-step, e.g. FGSM)
    traceable: bool  # reports every iterate to an AttackTrace (silent-success, incomplete-optimisation indicators)
    minimum_norm: bool  # returns each sample's smallest fooling norm (one run answers every eps)
    ensemble: bool  # runs members in order on the survivors, recording which one fooled each sample
    strength: int  # order for "the strongest attack of the run" (higher = stronger; 0 = not ranked)
    probe: bool  # cheap, untargeted white-box attack the attention probe may use (independent per eps)
    randomized: bool = False  # its gradient averages several forward passes (EoT) for random models
    threat_model: str = "white-box"  # white-box (eps-ball, the model's own gradients or queries) or corruption (no eps)
    kind: str = "eps-ball"  # the evaluation's kind: eps-ball, minimum-norm, ensemble, corruption (its class's, see Evaluation)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _in_training_mode(model: nn.Module) -> bool:
    return any(m.training for m in model.modules())


def evaluation_copy(model: nn.Module, *, fold_bn: bool = False, channels_last: bool = False) -> nn.Module:
    """The module an attack runs: the caller's own when it is already in eval mode and no other
    layout or folding is asked for, else an eval-mode copy in that form. The caller's module is
    never changed (its mode, memory layout and BatchNorm layers stay as they were)."""
    if fold_bn:
        copy_ = fold_batchnorm(model)[0]
    elif channels_last or _in_training_mode(model):
        copy_ = copy.deepcopy(model).eval()
    else:
        return model
    return copy_.to(memory_format=torch.channels_last) if channels_last else copy_


class CostCounter(nn.Module):
    """Wraps a model and counts forward and backward passes, in images (a batch of B counts B),
    whoever calls it: the native engine, torchattacks or foolbox."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.forwards = 0
        self.backwards = 0

    def _count_backward(self, n: int) -> Any:
        def hook(grad: torch.Tensor) -> None:
            self.backwards += n

        return hook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x)
        n = int(x.shape[0])
        self.forwards += n
        if out.requires_grad:
            out.register_hook(self._count_backward(n))
        return out


class Evaluation:
    """Base class of everything a sweep evaluates a model with, registered by name and backend:
    attacks (:class:`Attack`: an eps ball, a minimum norm, an ensemble) and evaluations of other
    kinds (common corruptions: :class:`robust_attn.corruptions.evaluation.CommonCorruptions`). It
    holds what they share: the model (an eval-mode copy behind a pass counter), the options, the
    random stream, predictions, and the capabilities its class declares (:class:`AttackTraits`).
    ``kind`` names the kind; the sweep, the run directory and the reports dispatch on the type."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    norm: ClassVar[str] = "none"
    backend: ClassVar[str] = "native"
    # -- declared capabilities (see AttackTraits; read through traits(), never by name) --------
    iterative: ClassVar[bool] = False
    traceable: ClassVar[bool] = False
    minimum_norm: ClassVar[bool] = False  # returns each sample's smallest fooling norm (column min_norm)
    is_ensemble: ClassVar[bool] = False
    strength: ClassVar[int] = 0
    probe: ClassVar[bool] = False
    randomized: ClassVar[bool] = False
    threat_model: ClassVar[str] = "white-box"
    categorical_columns: ClassVar[dict[str, list[str]]] = {}  # sweep columns holding codes into these names
    supports_channels_last: ClassVar[bool] = True  # False for attacks that run library code (torchattacks needs NCHW)

    @classmethod
    def class_traits(cls) -> AttackTraits:
        """The capabilities this class declares."""
        return AttackTraits(
            cls.norm,
            cls.iterative,
            cls.traceable,
            cls.minimum_norm,
            cls.is_ensemble,
            cls.strength,
            cls.probe,
            cls.randomized,
            cls.threat_model,
            cls.kind_of(),
        )

    @classmethod
    def kind_of(cls) -> str:
        """The kind this class declares (``kind``); an attack that leaves it unset is an ensemble,
        a minimum-norm attack or an eps-ball attack as its traits declare."""
        return cls.kind or ("ensemble" if cls.is_ensemble else "minimum-norm" if cls.minimum_norm else "eps-ball")

    def traits(self) -> AttackTraits:
        """This evaluation's capabilities (an instance may refine its class's, e.g. its norm)."""
        return replace(self.class_traits(), norm=self.norm)

    def __init__(self, model: nn.Module, **options: Unpack[AttackOptions]) -> None:
        precision = options.get("precision", "fp32")
        if precision not in PRECISIONS:
            raise bad_param("precision", f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        self.targeted = bool(options.get("targeted", False))
        self.seed = int(options.get("seed", 0))
        self.precision: Precision = precision
        self.channels_last = bool(options.get("channels_last", False)) and self.supports_channels_last
        # eval mode on the counter too: library code (torchattacks) reads the mode of the module it is given and restores it
        self.counter = CostCounter(
            evaluation_copy(model, fold_bn=bool(options.get("fold_bn", False)), channels_last=self.channels_last)
        ).eval()
        self.model: nn.Module = self.counter
        self.device = model_device(model)
        self._generator: torch.Generator | None = None
        self.trace: Any = None  # an AttackTrace the iterative attacks report to, when attached

    def check_data(self, classes: int, image_shape: Sequence[int]) -> None:
        """Raise a parameter error when the evaluation cannot run on data of this many classes and
        this image shape (checked before a sweep does any work); nothing to check by default."""

    def params(self) -> dict[str, Any]:
        """Parameters that change the outcome, recorded in results."""
        return {"targeted": self.targeted}

    def member_costs(self) -> dict[str, tuple[int, int]]:
        """(forward, backward) passes per member, for the ensembles; none for the others."""
        return {}

    # -- shared machinery ----------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Picklable for worker processes: the random stream is not carried (workers reseed
        every batch)."""
        return {**self.__dict__, "_generator": None}

    def reseed(self, seed: int) -> None:
        """Fix the random stream used by random starts (one seed per batch keeps resumed
        sweeps identical to uninterrupted ones)."""
        self._generator = torch.Generator(device="cpu").manual_seed(seed)

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            self.reseed(self.seed)
        assert self._generator is not None
        return self._generator

    @property
    def cost(self) -> tuple[int, int]:
        """(forward, backward) passes so far, in images."""
        return self.counter.forwards, self.counter.backwards

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Model logits in fp32 under the attack's precision; NaN or infinite logits are refused."""
        with autocast(self.device, self.precision):
            return finite_logits(self.model(x).float())

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels; NaN or infinite logits are refused (they would count as predictions)."""
        return self.logits(x).argmax(dim=1)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{type(self).__name__}[{self.backend}]({args})"


class Attack(Evaluation):
    """An attack: subclasses set ``name``/``norm`` and implement :meth:`perturb`.

    :meth:`sweep` works for every attack through :meth:`perturb`; attacks that share work
    across epsilons (FGSM: one gradient for all eps) override :meth:`_start_sweep` and
    :meth:`_attack_at`, never the sweep loop itself.
    """

    norm: ClassVar[Norm] = "linf"
    iterative: ClassVar[bool] = True

    def perturb(self, x: torch.Tensor, y: torch.Tensor, eps: float, stop_early: bool = False) -> torch.Tensor:
        """Adversarial images for labels ``y`` (targets when targeted) at one eps.

        ``stop_early`` lets iterative attacks freeze a sample at its first fooling iterate
        (used by worst-case sweeps, where any fooling point inside the ball is enough)."""
        raise NotImplementedError

    def _start_sweep(self, x: torch.Tensor, goal: torch.Tensor, epsilons: Sequence[float]) -> Any:
        """Work shared by every eps of a sweep; returns a state whose ``clean_pred`` holds the
        clean predictions. Default: one clean forward pass."""
        return _State(self.predict(x))

    def _sweep_columns(self, state: Any, worst_case: bool) -> dict[str, torch.Tensor]:
        """Extra per-sample results of a sweep, (B,) or (K, B): none by default."""
        return {}

    def _attack_at(
        self, state: Any, idx: torch.Tensor | None, x: torch.Tensor, goal: torch.Tensor, eps: float, stop_early: bool
    ) -> torch.Tensor:
        """Predictions after attacking ``x`` at ``eps``: the batch's samples ``idx`` (None: all of
        them), already gathered into ``x`` and ``goal``; ``state`` is :meth:`_start_sweep`'s."""
        return self.predict(self.perturb(x, goal, eps, stop_early=stop_early))

    def seed_global_rng(self) -> None:
        """Seed torch's global generator from ours: torchattacks and foolbox draw their random
        starts from it."""
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        low, high = (float(v) for v in torch.aminmax(x))  # one pass; NaN and inf propagate into the extremes
        if not (math.isfinite(low) and math.isfinite(high)):
            raise DataError("images contain NaN or infinite pixels; clean or drop those samples before attacking")
        if low < 0 or high > 1:
            raise DataError(
                f"images must be in [0, 1] (got [{low:.3g}, {high:.3g}]); divide uint8 images by 255, and normalise inside the model"
            )
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def margin(self, logits: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Per-sample logit margin, <= 0 once the goal is met: z_y - max_{i != y} z_i
        (untargeted; ``goal`` the true label) or max_{i != t} z_i - z_t (targeted)."""
        rows = torch.arange(len(goal), device=goal.device)
        others = logits.scatter(1, goal[:, None], -math.inf).amax(dim=1)
        return others - logits[rows, goal] if self.targeted else logits[rows, goal] - others

    def __call__(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        return self.perturb(self._prepare(x), y.to(self.device), eps)

    def sweep(
        self, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float], mode: Mode = "worst-case", target: torch.Tensor | None = None
    ) -> SweepBatch:
        """Per-sample outcomes at every eps (ascending).

        ``worst-case``: a sample fooled at eps_k stays fooled at every larger eps (the same
        adversarial image lies inside every larger ball), so only survivors are attacked
        again. ``independent``: every eps is a separate attack on the clean images.
        """
        if self.targeted and target is None:
            raise bad_param(
                "targeted", "a targeted attack needs target labels (target=...); for untargeted robustness leave targeted = false"
            )
        x, y = self._prepare(x), y.to(self.device)
        goal = target.to(self.device) if (self.targeted and target is not None) else y
        state = self._start_sweep(x, goal, epsilons)
        clean_pred: torch.Tensor = state.clean_pred
        pred = clean_pred.unsqueeze(0).repeat(len(epsilons), 1)
        worst = mode == "worst-case"
        # worst-case: the clean image lies inside every ball, so a clean mistake is final
        fooled = self._fooled(clean_pred, y, goal)
        for i, eps in enumerate(epsilons):
            if worst and i:
                pred[i] = pred[i - 1]
            idx = (~fooled).nonzero().squeeze(1) if worst else None
            if eps == 0 or (idx is not None and idx.numel() == 0):
                continue  # eps = 0 keeps the clean prediction exactly
            if idx is not None and idx.numel() == x.shape[0]:
                idx = None  # everyone: no gather
            sel = slice(None) if idx is None else idx
            p = self._attack_at(state, idx, x[sel], goal[sel], float(eps), worst)
            pred[i, sel] = p
            if worst:
                fooled[sel] = self._fooled(p, y[sel], goal[sel])
        return SweepBatch(pred == y.unsqueeze(0), pred, clean_pred, self._sweep_columns(state, worst))

    def _fooled(self, pred: torch.Tensor, y: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return pred == goal if self.targeted else pred != y


@dataclass
class _State:
    clean_pred: torch.Tensor


class IterativeAttack(Attack):
    """Parameters of iterative attacks (PGD and its library twins), validated in one place."""

    def __init__(
        self,
        model: nn.Module,
        *,
        steps: int = 10,
        alpha: Eps | None = None,
        random_start: bool = True,
        restarts: int = 1,
        **options: Unpack[AttackOptions],
    ) -> None:
        super().__init__(model, **options)
        positive_int(steps=steps, restarts=restarts)
        if alpha is not None and alpha <= 0:
            raise bad_param("alpha", f"alpha (step size) must be positive, got {alpha}")
        self.steps = steps
        self.alpha = alpha
        self.random_start = random_start
        self.restarts = restarts

    def params(self) -> dict[str, Any]:
        alpha = self.alpha if self.alpha is not None else "2.5*eps/steps"
        return {
            "steps": self.steps,
            "alpha": alpha,
            "random_start": self.random_start,
            "restarts": self.restarts,
            "targeted": self.targeted,
        }

    def step_size(self, eps: float) -> float:
        """Absolute step size; by default 2.5 * eps / steps (Madry et al. 2018)."""
        return self.alpha if self.alpha is not None else 2.5 * eps / self.steps
