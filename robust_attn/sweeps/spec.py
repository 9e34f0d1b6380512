"""Sweep specs: which models meet which attacks at which epsilons, read from TOML and
validated field by field before any work starts."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from robust_attn.attacks import MODES, PRECISIONS, backends, check_attack, parse_eps
from robust_attn.attacks.registry import accepted_params, attack_norm
from robust_attn.data import list_datasets

_TOP_KEYS = {"name", "models", "dataset", "split", "n", "data_dir", "batch_size", "seed", "device",
             "modes", "precision", "channels_last", "fold_bn", "attacks", "save_examples", "workers", "attention_samples", "diagnostic_samples", "seeds"}  # fmt: skip
_ATTACK_FIELDS = {"name", "backend", "eps", "label", "params"}  # every other key of an [[attacks]] table is a parameter


class SpecError(ValueError):
    """A sweep spec field is missing or invalid; the message names the field."""


@dataclass(frozen=True)
class AttackSpec:
    """One attack over one eps grid."""

    name: str
    eps: tuple[float, ...]
    backend: str = "native"
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def key(self) -> str:
        """Unique, readable id used in results (``fgsm``, ``pgd-10``, ``pgd@torchattacks``)."""
        base = self.label or (f"{self.name}-{self.params['steps']}" if "steps" in self.params else self.name)
        return base if self.backend == "native" else f"{base}@{self.backend}"


@dataclass(frozen=True)
class SweepSpec:
    """Everything that determines a sweep's numbers."""

    name: str
    models: tuple[str, ...]
    attacks: tuple[AttackSpec, ...]
    dataset: str = "builtin"
    split: str = "test"
    n: int = 1000
    data_dir: str | None = None
    batch_size: int = 250
    seed: int = 0
    device: str = "auto"
    modes: tuple[str, ...] = ("worst-case",)
    precision: str = "fp32"
    channels_last: bool = True
    fold_bn: bool = False
    save_examples: int = 0
    workers: int = 1  # CPU worker processes for native attacks; speed only, never the numbers
    attention_samples: int = 200  # images the attention/segmentation probe uses per model; 0 turns it off
    diagnostic_samples: int = 100  # images the indicators of attack failure use per model; 0 turns them off
    seeds: tuple[int, ...] = ()  # training seeds: every zoo model without @seed=N is swept once per seed

    def with_overrides(self, **overrides: Any) -> SweepSpec:
        """Flags override spec fields; ``None`` means not given."""
        given = {k: v for k, v in overrides.items() if v is not None}
        spec = replace(self, **given)
        return validate(spec)


def _fail(where: str, msg: str) -> SpecError:
    return SpecError(f"{where}: {msg}")


def _attack(i: int, raw: Any) -> AttackSpec:
    where = f"attacks[{i}]"
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table like {name = 'fgsm', eps = ['0', '8/255']}")
    if "name" not in raw:
        raise _fail(f"{where}.name", "missing (e.g. 'fgsm', 'pgd', 'apgd', 'autoattack', 'fmn', 'torchattacks:Square')")
    name, backend = str(raw["name"]), str(raw.get("backend", "native"))
    if backend not in backends():
        raise _fail(f"{where}.backend", f"unknown backend {backend!r}; use one of {', '.join(backends())}")
    try:
        check_attack(name, backend)
    except KeyError as err:
        raise _fail(f"{where}.name", str(err.args[0])) from None
    params: dict[str, Any] = dict(raw.get("params", {}))
    params |= {k: v for k, v in raw.items() if k not in _ATTACK_FIELDS}
    accepted = accepted_params(name, backend, with_options=False)  # precision, seed, ... are spec-level fields
    for key in params:
        if accepted is not None and key not in accepted:
            raise _fail(
                f"{where}.{key}", f"attack {name!r} ({backend}) takes no parameter {key!r}; it takes: {', '.join(sorted(accepted))}"
            )
    norm = attack_norm(name, backend, params)
    grid = raw.get("eps")
    if not isinstance(grid, list) or not grid:
        raise _fail(f"{where}.eps", "must be a non-empty list such as ['0', '2/255', '8/255']")
    try:
        eps = tuple(sorted(parse_eps(e, max_eps=None if norm == "l2" else 1.0) for e in grid))
    except ValueError as err:
        raise _fail(f"{where}.eps", str(err)) from None
    if len(set(eps)) != len(eps):
        raise _fail(f"{where}.eps", "contains duplicate values")
    if "alpha" in params:
        try:
            params["alpha"] = parse_eps(params["alpha"], max_eps=None)
        except ValueError as err:
            raise _fail(f"{where}.alpha", str(err)) from None
    for key in ("steps", "restarts", "targets", "fab_steps", "square_queries"):
        if key in params and (not isinstance(params[key], int) or isinstance(params[key], bool) or params[key] < 1):
            raise _fail(f"{where}.{key}", f"must be a positive integer, got {params[key]!r}")
    return AttackSpec(name, eps, backend, params, str(raw.get("label", "")))


def parse_spec(raw: dict[str, Any], default_name: str = "sweep") -> SweepSpec:
    """Build and validate a spec from a parsed TOML table."""
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise _fail(sorted(unknown)[0], f"unknown key; allowed: {', '.join(sorted(_TOP_KEYS))}")
    if "models" not in raw:
        raise _fail("models", "missing; list zoo names, checkpoint paths or 'package.module:factory'")
    attacks_raw = raw.get("attacks")
    if not isinstance(attacks_raw, list) or not attacks_raw:
        raise _fail("attacks", "missing or empty; add [[attacks]] tables")
    attacks = tuple(_attack(i, a) for i, a in enumerate(attacks_raw))
    fields: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("attacks", "models", "modes")}
    models = raw["models"]
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise _fail("models", "must be a non-empty list of strings")
    modes = raw.get("modes", ["worst-case"])
    if not isinstance(modes, list):
        raise _fail("modes", f"must be a list drawn from {list(MODES)}")
    spec = SweepSpec(name=str(raw.get("name", default_name)), models=tuple(models), attacks=attacks, modes=tuple(modes),
                     **{k: v for k, v in fields.items() if k != "name"})  # fmt: skip
    return validate(spec)


def _expand_seeds(models: tuple[str, ...], seeds: tuple[int, ...]) -> tuple[str, ...]:
    """Each zoo model without an explicit seed, once per seed (``builtin/vgg``, ``builtin/vgg@seed=1``, ...)."""
    from robust_attn.zoo import is_zoo_ref, with_seed

    if not seeds:
        return models
    out: list[str] = []
    for m in models:
        out += [with_seed(m, s) for s in seeds] if is_zoo_ref(m) and "@seed=" not in m else [m]
    return tuple(dict.fromkeys(out))


def validate(spec: SweepSpec) -> SweepSpec:
    """Check field values (also after CLI overrides); expands ``seeds`` into the model list."""
    from robust_attn.resolve import check_model_ref

    if not isinstance(spec.seeds, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in spec.seeds):
        raise _fail("seeds", f"must be a list of non-negative integers such as [0, 1, 2], got {spec.seeds!r}")
    spec = replace(spec, seeds=tuple(spec.seeds), models=_expand_seeds(tuple(spec.models), tuple(spec.seeds)))

    for m in spec.models:
        try:
            check_model_ref(m)
        except ValueError as err:
            raise _fail("models", str(err)) from None
    if spec.dataset not in list_datasets():
        raise _fail("dataset", f"unknown data set {spec.dataset!r}; known: {', '.join(list_datasets())}")
    if spec.split not in ("train", "test"):
        raise _fail("split", f"must be 'train' or 'test', got {spec.split!r}")
    for key in ("n", "batch_size", "workers"):
        value = getattr(spec, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _fail(key, f"must be a positive integer, got {value!r}")
    for key in ("save_examples", "attention_samples", "diagnostic_samples"):
        value = getattr(spec, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _fail(key, f"must be an integer >= 0, got {value!r}")
    if not spec.modes or any(m not in MODES for m in spec.modes):
        raise _fail("modes", f"must be a non-empty list drawn from {list(MODES)}, got {list(spec.modes)}")
    for key in ("channels_last", "fold_bn"):
        if not isinstance(getattr(spec, key), bool):
            raise _fail(key, f"must be true or false, got {getattr(spec, key)!r}")
    if spec.precision not in PRECISIONS:
        raise _fail("precision", f"must be one of {', '.join(PRECISIONS)}, got {spec.precision!r}")
    if spec.device not in ("auto", "cpu", "cuda", "mps") and not spec.device.startswith("cuda:"):
        raise _fail("device", f"must be auto, cpu, cuda or cuda:N, got {spec.device!r}")
    keys = [a.key for a in spec.attacks]
    if len(set(keys)) != len(keys):
        raise _fail("attacks", f"two attacks share the id {sorted(k for k in keys if keys.count(k) > 1)[0]!r}; give one a label")
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read a TOML sweep spec; the file stem is the default name."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"sweep spec {str(p)!r} not found; see attacks/*.toml for examples")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{p}: not valid TOML ({err})") from None
    try:
        return parse_spec(raw, default_name=p.stem)
    except TypeError as err:
        raise SpecError(f"{p}: {err}") from None
