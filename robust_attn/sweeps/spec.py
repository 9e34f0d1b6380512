"""Sweep specs: which models meet which attacks at which epsilons, read from TOML and
validated field by field before any work starts.

Every field of :class:`SweepSpec` carries its documentation (``field(metadata={"doc": ...})``):
the spec reference in the docs is generated from it, so it cannot drift from the parser.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from robust_attn.attacks import MODES, PRECISIONS, backends, check_attack, parse_eps
from robust_attn.attacks.base import AttackOptions
from robust_attn.attacks.registry import attack_traits, check_params, dry_evaluation
from robust_attn.device import check_device_name
from robust_attn.errors import AttackParameterError, RobustAttnError, SpecError, UsageError

MAX_SEED = 2**31 - 1  # seeds feed torch generators and per-epoch seeds (seed * 100003 + epoch)
_ATTACK_FIELDS = {
    "name": "registered attack name, e.g. fgsm, pgd, apgd, autoattack, fmn, or torchattacks:<Class>",
    "backend": "native (default), torchattacks or foolbox",
    "eps": "list of epsilons in pixel units; strings like '8/255' are allowed",
    "label": "id used in results when two attacks would share one (default pgd-10, apgd-100, fgsm@foolbox, ...)",
    "params": "a table of the attack's parameters (the same as writing them as keys of the attack table)",
}
_SPEC_LEVEL_OPTIONS = sorted(set(AttackOptions.__annotations__) - {"targeted"})  # seed, precision, ...: one value per spec


def _doc(default: Any, doc: str, run_only: bool = False, **kwargs: Any) -> Any:
    """A spec field with its documentation; ``run_only``: it says how or where the sweep runs, not
    what it computes (left out of the spec's fingerprint, :mod:`robust_attn.sweeps.fingerprint`)."""
    return field(default=default, metadata={"doc": doc, "run_only": run_only}, **kwargs)


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
class TransferSpec:
    """A transfer (black-box) matrix: adversarial images crafted on every source, evaluated on every
    target; a source may be an ensemble of models (a list in the spec: their logits are averaged)."""

    sources: tuple[tuple[str, ...], ...]  # each source: one model, or several (an ensemble)
    targets: tuple[str, ...]
    attack: AttackSpec  # the crafting attack and its eps grid (each eps an independent attack on the clean images)

    @property
    def key(self) -> str:
        return f"transfer {self.attack.key}"

    @staticmethod
    def source_label(source: tuple[str, ...]) -> str:
        return "+".join(source)


@dataclass(frozen=True)
class SweepSpec:
    """Everything that determines a sweep's numbers."""

    name: str = field(metadata={"doc": "run name; output goes to runs/<name>/ (default: the file stem)", "run_only": True})
    models: tuple[str, ...] = field(
        metadata={"doc": "zoo names (builtin/vgg-att3-pc), .safetensors checkpoints, or package.module:factory"}
    )
    attacks: tuple[AttackSpec, ...] = field(metadata={"doc": "[[attacks]] tables (fields below)"})
    plugins: tuple[str, ...] = field(
        default=(),
        metadata={
            "doc": "modules to import before the spec is read, e.g. your own attacks "
            "(registered with @register_attack); they must be importable (PYTHONPATH)"
        },
    )
    dataset: str = _doc(
        "builtin",
        "data set: builtin, a torchvision set read from data_dir, imagefolder, imagenet, imagenet-c, imagefolder-c, or "
        "package.module:factory (your own); as a table, {name = ..., and its options: resize, crop, classes, subset, ...}",
    )
    split: str = _doc("test", "train or test")
    n: int = _doc(1000, "the first n images of the split (at most what the split holds)")
    data_dir: str | None = _doc(
        None, "folder of the data: torchvision's sets, an image folder (<class>/<image>), ImageNet (val/<wnid>/...)", run_only=True
    )
    download: bool = _doc(False, "let torchvision download the data set into data_dir (flag --download)", run_only=True)
    verify: bool = _doc(
        True, "check torchvision's MD5 sums of CIFAR/SVHN files; false for a re-packed copy (flag --no-verify)", run_only=True
    )
    batch_size: int = _doc(250, "images per batch (also the unit of work of a rank)")
    seed: int = _doc(0, "seeds random starts: each batch's seed is derived from it, so resumed runs replay the same stream")
    device: str = _doc("auto", "auto, cpu, cuda or cuda:N", run_only=True)
    modes: tuple[str, ...] = _doc(
        ("worst-case",), "worst-case (a sample fooled at a smaller eps stays fooled) and/or independent (one fresh attack per eps)"
    )
    precision: str = _doc("fp32", "fp32, bf16 or fp16 forward passes (reduced precision changes a few outcomes)")
    channels_last: bool = _doc(True, "NHWC memory format for the native engine (faster on CPU; rounding differs from NCHW)")
    fold_bn: bool = _doc(False, "fold eval-mode BatchNorm into the preceding conv for the native engine (faster; may flip near-ties)")
    save_examples: int = _doc(0, "keep adversarial images of the first N samples under examples/")
    workers: int = _doc(
        1,
        "on a CPU, run the sweep in N local torch.distributed ranks (at most one per core); same numbers, faster for small models",
        run_only=True,
    )
    attention_samples: int = _doc(200, "images of the attention / segmentation probe per model; 0 turns it off")
    diagnostic_samples: int = _doc(100, "images for the indicators of attack failure per model; 0 turns them off")
    generalisation: tuple[str, ...] = _doc(
        (),
        "unseen data sets for linear probes on each model's frozen features (the paper's generalisation "
        "claim): shapes-unseen-classes, shapes-unseen-backgrounds, mnist, fashionmnist, svhn, cifar10 "
        "(the last four when their files are in data_dir); empty: off",
    )
    generalisation_train: int = _doc(2000, "train images of each unseen set the linear probe is fitted on")
    generalisation_test: int = _doc(1000, "test images of each unseen set the probe is scored on")
    seeds: tuple[int, ...] = _doc((), "training seeds: every zoo model without @seed=N is swept once per seed")
    transfer: tuple[TransferSpec, ...] = _doc(
        (),
        "[[transfer]] tables: sources, targets (model references of the spec, or 'all'; a "
        "list inside sources is an ensemble), attack (a name), its parameters, and eps",
    )
    model_dir: str | None = _doc(
        None,
        "where RobustBench weights lie (<model_dir>/<dataset>/<threat_model>/<name>.pt); default $ROBUST_ATTN_HOME/robustbench",
        run_only=True,
    )
    model_options: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={"doc": "options of models given as tables", "internal": True}
    )
    data_options: dict[str, Any] = field(
        default_factory=dict, metadata={"doc": "options of the data set given as a table (resize, crop, classes, ...)", "internal": True}
    )
    source: str = field(
        default="", compare=False, metadata={"doc": "the spec file it was read from (set by load_spec)", "internal": True, "run_only": True}
    )

    def with_overrides(self, **overrides: Any) -> SweepSpec:
        """Flags override spec fields; ``None`` means not given."""
        given = {k: v for k, v in overrides.items() if v is not None}
        spec = replace(self, **given)
        return validate(spec)


TOP_FIELDS: dict[str, str] = {f.name: f.metadata["doc"] for f in fields(SweepSpec) if not f.metadata.get("internal")}
ATTACK_FIELDS: dict[str, str] = dict(_ATTACK_FIELDS)


def _fail(where: str, msg: str) -> SpecError:
    return SpecError(f"{where}: {msg}")


def _attack_params(where: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The attack's parameters: the keys of its table and of its ``params`` table (a key in both is an error)."""
    inline = {k: v for k, v in raw.items() if k not in _ATTACK_FIELDS}
    table = raw.get("params", {})
    if not isinstance(table, dict):
        raise _fail(f"{where}.params", f"must be a table such as {{steps = 20}}, got {table!r}")
    both = sorted(set(inline) & set(table))
    if both:
        raise _fail(f"{where}.{both[0]}", "given twice (in the attack table and in its params table); keep one")
    params = {**table, **inline}
    for key in _SPEC_LEVEL_OPTIONS:
        if key in params:
            raise _fail(f"{where}.{key}", f"{key} is a spec-level field (one value for every attack); set it at the top of the spec")
    if params.get("targeted") is True:
        raise _fail(
            f"{where}.targeted",
            "targeted attacks need target labels, which sweeps do not take; leave targeted = false (apgd-t picks its own target classes)",
        )
    return params


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
    except SpecError as err:
        raise _fail(f"{where}.name", str(err)) from None
    given = _attack_params(where, raw)
    try:
        params = check_params(name, backend, given)
        dry_evaluation(name, backend, params)  # value checks, before any model is loaded
    except AttackParameterError as err:
        raise _fail(f"{where}.{err.param}", str(err)) from None
    traits = attack_traits(name, backend, params)
    if traits.threat_model == "corruption":
        if "eps" in raw:
            raise _fail(
                f"{where}.eps",
                f"{name!r} has no eps (its conditions are corruptions x severities); drop eps, set severities = [1, 2, 3, 4, 5]",
            )
        return AttackSpec(name, (), backend, params, str(raw.get("label", "")))
    eps = check_eps(where, traits.norm, raw.get("eps"))
    return AttackSpec(name, eps, backend, params, str(raw.get("label", "")))


def check_eps(where: str, norm: str, grid: Any, image_shape: tuple[int, ...] | None = None) -> tuple[float, ...]:
    """The one check of an eps grid, for every table that has one ([[attacks]], minimum-norm
    attacks among them, and [[transfer]]): a non-empty list of numbers or 'a/b' strings, no
    duplicates, L-inf values at most 1, and (given the images' shape) none beyond the images'
    diameter in ``norm``; returns the values in pixel units, ascending. Errors name ``where``.eps."""
    from robust_attn.attacks.presets import check_eps_for_image

    if not isinstance(grid, (list, tuple)) or not grid:
        raise _fail(f"{where}.eps", "must be a non-empty list such as ['0', '2/255', '8/255']")
    try:
        eps = tuple(sorted(parse_eps(e, max_eps=1.0 if norm == "linf" else None) for e in grid))
        if image_shape is not None:
            check_eps_for_image(norm, eps, image_shape)
    except SpecError as err:
        raise _fail(f"{where}.eps", str(err)) from None
    if len(set(eps)) != len(eps):
        raise _fail(f"{where}.eps", "contains duplicate values")
    return eps


def eps_tables(spec: SweepSpec) -> list[tuple[str, AttackSpec]]:
    """Every attack of the spec that has an eps grid, with the field that names it:
    ``attacks[i]`` and ``transfer[j]``."""
    tables = [(f"attacks[{i}]", a) for i, a in enumerate(spec.attacks) if a.eps]
    return tables + [(f"transfer[{j}]", t.attack) for j, t in enumerate(spec.transfer)]


def check_eps_tables(spec: SweepSpec, image_shape: tuple[int, ...] | None = None) -> None:
    """Every eps grid of the spec through :func:`check_eps`, against ``image_shape`` (default:
    the shape the spec's data set declares)."""
    from robust_attn.data.loading import dataset_source

    shape = image_shape if image_shape is not None else dataset_source(spec.dataset).image_shape
    for where, attack in eps_tables(spec):
        check_eps(where, attack_traits(attack.name, attack.backend, attack.params).norm, list(attack.eps), shape)


def parse_spec(raw: dict[str, Any], default_name: str = "sweep") -> SweepSpec:
    """Build and validate a spec from a parsed TOML table."""
    unknown = set(raw) - set(TOP_FIELDS)
    if unknown:
        raise _fail(sorted(unknown)[0], f"unknown key; allowed: {', '.join(sorted(TOP_FIELDS))}")
    if "models" not in raw:
        raise _fail("models", "missing; list zoo names, checkpoint paths or 'package.module:factory'")
    plugins = raw.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise _fail("plugins", f"must be a list of module names such as ['my_attacks'], got {plugins!r}")
    for module in plugins:
        import_plugin(module)
    attacks_raw = raw.get("attacks")
    if not isinstance(attacks_raw, list) or not attacks_raw:
        raise _fail("attacks", "missing or empty; add [[attacks]] tables")
    attacks = tuple(_attack(i, a) for i, a in enumerate(attacks_raw))
    transfer_raw = raw.get("transfer", [])
    if not isinstance(transfer_raw, list) or not all(isinstance(t, dict) for t in transfer_raw):
        raise _fail("transfer", "must be [[transfer]] tables with sources, targets, attack and eps")
    models, model_options = _models(raw["models"], raw, attacks)
    modes = raw.get("modes", ["worst-case"])
    if not isinstance(modes, list):
        raise _fail("modes", f"must be a list drawn from {list(MODES)}")
    seeds = raw.get("seeds", [])
    if not isinstance(seeds, list):
        raise _fail("seeds", f"must be a list of non-negative integers such as [0, 1, 2], got {seeds!r}")
    rest = {
        k: v
        for k, v in raw.items()
        if k not in ("attacks", "models", "modes", "name", "seeds", "plugins", "transfer", "model_options", "dataset", "data_options")
    }
    dataset, data_options = _dataset(raw.get("dataset", "builtin"))
    if isinstance(rest.get("generalisation"), list):
        rest["generalisation"] = tuple(rest["generalisation"])
    spec = SweepSpec(
        name=str(raw.get("name", default_name)),
        models=tuple(models),
        attacks=attacks,
        modes=tuple(modes),
        seeds=tuple(seeds),
        plugins=tuple(plugins),
        model_options=model_options,
        dataset=dataset,
        data_options=data_options,
        **rest,
    )
    spec = validate(spec)
    return validate(replace(spec, transfer=tuple(_transfer(i, t, spec) for i, t in enumerate(transfer_raw))))


def _dataset(value: Any) -> tuple[str, dict[str, Any]]:
    """``dataset = "name"``, or a table ``{name = "imagefolder", resize = 256, ...}``: the name and its options."""
    if isinstance(value, str):
        return value, {}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise _fail("dataset", f"must be a data set name, or a table with a name key and the data set's options, got {value!r}")
    return value["name"], {k: v for k, v in value.items() if k != "name"}


def _models(value: Any, raw: dict[str, Any], attacks: tuple[AttackSpec, ...]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Model references, and the options of those given as tables ({ref = "timm:resnet18", checkpoint = "w.pt", num_classes = 10}).
    A source may rewrite a table into an exact reference (robustbench: the data set and threat model)."""
    from robust_attn.resolve import qualify

    if not isinstance(value, list) or not value:
        raise _fail("models", "must be a non-empty list of model references (strings, or tables with a ref key)")
    norms = {attack_traits(a.name, a.backend, a.params).norm for a in attacks if a.eps}
    threat = "Linf" if "linf" in norms else "L2" if "l2" in norms else "corruptions"
    context = {
        "dataset": _dataset(raw.get("dataset", "builtin"))[0] if isinstance(raw.get("dataset", "builtin"), str | dict) else None,
        "threat_model": threat,
    }
    refs, options = [], {}
    for i, entry in enumerate(value):
        if isinstance(entry, str):
            refs.append(entry)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("ref"), str):
            raise _fail(f"models[{i}]", f"must be a reference string or a table with a ref key, got {entry!r}")
        try:
            ref, rest = qualify(entry["ref"], {k: v for k, v in entry.items() if k != "ref"}, context)
        except RobustAttnError as err:
            raise _fail(f"models[{i}]", str(err)) from None
        refs.append(ref)
        if rest:
            options[ref] = rest
    return refs, options


def _refs(where: str, value: Any, spec: SweepSpec, ensembles: bool) -> tuple[tuple[str, ...], ...]:
    """Model references of a transfer table, each in the spec's model list (with its seed expansion)."""
    if value == "all":
        return tuple((m,) for m in spec.models)
    if not isinstance(value, list) or not value:
        raise _fail(where, f"must be 'all' or a non-empty list of the spec's models, got {value!r}")
    out: list[tuple[str, ...]] = []
    for entry in value:
        names = entry if (ensembles and isinstance(entry, list)) else [entry]
        if not names or not all(isinstance(n, str) for n in names):
            raise _fail(where, f"entries must be model references{' or lists of them (ensembles)' if ensembles else ''}, got {entry!r}")
        expanded = list(names) if isinstance(entry, list) else list(_expand_seeds((entry,), spec.seeds))  # an ensemble is as written
        for m in expanded:
            if m not in spec.models:
                raise _fail(where, f"{m!r} is not among the spec's models ({', '.join(spec.models)}); add it to models")
        out += [tuple(expanded)] if isinstance(entry, list) else [(m,) for m in expanded]
    return tuple(dict.fromkeys(out))


def _transfer(i: int, raw: dict[str, Any], spec: SweepSpec) -> TransferSpec:
    where = f"transfer[{i}]"
    for key in ("sources", "targets", "attack"):
        if key not in raw:
            raise _fail(f"{where}.{key}", "missing; a transfer table needs sources, targets, attack and eps")
    if not isinstance(raw["attack"], str):
        raise _fail(f"{where}.attack", f"must be an attack name such as 'pgd', got {raw['attack']!r}")
    try:
        check_attack(raw["attack"], str(raw.get("backend", "native")))
    except SpecError as err:
        raise _fail(f"{where}.attack", str(err)) from None
    if attack_traits(raw["attack"], str(raw.get("backend", "native"))).threat_model != "white-box":
        raise _fail(
            f"{where}.attack", f"{raw['attack']!r} is not an eps-ball attack; transfer crafts adversarial images with one (e.g. 'pgd')"
        )
    if "eps" not in raw:
        raise _fail(f"{where}.eps", "missing; a transfer table needs sources, targets, attack and eps")
    table = {k: v for k, v in raw.items() if k not in ("sources", "targets", "attack")} | {"name": raw["attack"]}
    try:
        attack = _attack(0, table)
    except SpecError as err:
        raise SpecError(str(err).replace("attacks[0]", where, 1)) from None
    sources = _refs(f"{where}.sources", raw["sources"], spec, ensembles=True)
    targets = tuple(t for (t,) in _refs(f"{where}.targets", raw["targets"], spec, ensembles=False))
    return TransferSpec(sources, targets, attack)


def import_plugin(module: str) -> None:
    """Import a user's module that registers attacks (or models, or sources) by its side effect."""
    import importlib

    from robust_attn.errors import UserCodeError, first_line, user_frames

    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and module.startswith(err.name):
            raise _fail("plugins", f"cannot import {module!r} ({err}); put its folder on PYTHONPATH") from None
        raise UserCodeError(f"plugins: importing {module!r} raised {first_line(err)}; fix it in your code", user_frames(err)) from err
    except Exception as err:
        raise UserCodeError(f"plugins: importing {module!r} raised {first_line(err)}; fix it in your code", user_frames(err)) from err


def _expand_seeds(models: tuple[str, ...], seeds: tuple[int, ...]) -> tuple[str, ...]:
    """Each zoo model without an explicit seed, once per seed (``builtin/vgg``, ``builtin/vgg@seed=1``, ...)."""
    from robust_attn.zoo import is_zoo_ref, with_seed

    if not seeds:
        return models
    out: list[str] = []
    for m in models:
        out += [with_seed(m, s) for s in seeds] if is_zoo_ref(m) and "@seed=" not in m else [m]
    return tuple(dict.fromkeys(out))


def _is_int(value: Any, low: int, high: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


def _check_numbers(spec: SweepSpec) -> None:
    if not isinstance(spec.seeds, (list, tuple)) or not all(_is_int(s, 0, MAX_SEED) for s in spec.seeds):
        raise _fail("seeds", f"must be a list of non-negative integers below 2**31 such as [0, 1, 2], got {list(spec.seeds)!r}")
    if not _is_int(spec.seed, 0, MAX_SEED):
        raise _fail("seed", f"must be an integer in [0, 2**31 - 1], got {spec.seed!r}")
    for key in ("n", "batch_size", "workers"):
        if not _is_int(getattr(spec, key), 1):
            raise _fail(key, f"must be a positive integer, got {getattr(spec, key)!r}")
    for key in ("generalisation_train", "generalisation_test"):
        if not _is_int(getattr(spec, key), 1):
            raise _fail(key, f"must be a positive integer, got {getattr(spec, key)!r}")
    for key in ("save_examples", "attention_samples", "diagnostic_samples"):
        if not _is_int(getattr(spec, key), 0):
            raise _fail(key, f"must be an integer >= 0, got {getattr(spec, key)!r}")
    from robust_attn.distributed import usable_cores

    cores = usable_cores()
    if spec.workers > cores:
        raise _fail("workers", f"{spec.workers} ranks on {cores} CPU cores would only compete for them; use at most {cores}")


def validate(spec: SweepSpec) -> SweepSpec:
    """Check field values (also after CLI overrides); expands ``seeds`` into the model list."""
    from robust_attn.resolve import check_model_ref

    _check_numbers(spec)
    spec = replace(spec, seeds=tuple(spec.seeds), models=_expand_seeds(tuple(spec.models), tuple(spec.seeds)))
    for m in spec.models:
        check_model_ref(m, where="models")
    from robust_attn.data.loading import dataset_source

    try:
        dataset_source(spec.dataset).check_options(dict(spec.data_options))
    except RobustAttnError as err:
        raise _fail("dataset", str(err)) from None
    if spec.split not in ("train", "test"):
        raise _fail("split", f"must be 'train' or 'test', got {spec.split!r}")
    if not spec.modes or any(m not in MODES for m in spec.modes):
        raise _fail("modes", f"must be a non-empty list drawn from {list(MODES)}, got {list(spec.modes)}")
    for key in ("channels_last", "fold_bn", "download", "verify"):
        if not isinstance(getattr(spec, key), bool):
            raise _fail(key, f"must be true or false, got {getattr(spec, key)!r}")
    if spec.precision not in PRECISIONS:
        raise _fail("precision", f"must be one of {', '.join(PRECISIONS)}, got {spec.precision!r}")
    try:
        check_device_name(spec.device)  # the name only: a spec may be written on another machine; run_sweep checks it exists
    except UsageError as err:
        raise _fail("device", str(err).removeprefix("device ")) from None
    if spec.data_dir is not None and not isinstance(spec.data_dir, str):
        raise _fail("data_dir", f"must be a path string, got {spec.data_dir!r}")
    from robust_attn.data.unseen import UNSEEN_SETS

    if not isinstance(spec.generalisation, (list, tuple)) or any(g not in UNSEEN_SETS for g in spec.generalisation):
        raise _fail("generalisation", f"must be a list drawn from {', '.join(UNSEEN_SETS)}, got {list(spec.generalisation)!r}")
    keys = [a.key for a in spec.attacks]
    if len(set(keys)) != len(keys):
        raise _fail("attacks", f"two attacks share the id {sorted(k for k in keys if keys.count(k) > 1)[0]!r}; give one a label")
    check_eps_tables(spec)
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    """Read a TOML sweep spec (UTF-8, with or without a byte-order mark); the file stem is the default name."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(f"sweep spec {str(p)!r} is a folder, not a TOML file; name the spec file in it (e.g. attacks/quickstart.toml)")
    if not p.is_file():
        raise SpecError(f"sweep spec {str(p)!r} not found; see attacks/*.toml for examples")
    try:
        text = p.read_bytes().decode("utf-8-sig")  # editors on Windows write a BOM, which TOML does not allow
    except UnicodeDecodeError as err:
        raise SpecError(f"{p}: not UTF-8 text ({err}); save the spec as UTF-8") from None
    except OSError as err:
        raise SpecError(f"cannot read sweep spec {str(p)!r} ({err.strerror or err}); check its permissions") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{p}: not valid TOML ({err})") from None
    try:
        return replace(parse_spec(raw, default_name=p.stem), source=str(p))
    except TypeError as err:  # a field of the wrong kind (e.g. a table where a number belongs)
        raise SpecError(f"{p}: {err}") from None
