"""The sweep-spec reference and the attack tables, read from the code: the spec's fields and their
defaults from :class:`robust_attn.sweeps.spec.SweepSpec`, each attack's parameters from its
constructor's signature, its traits from its class declaration. Nothing here is typed by hand, so
the pages cannot drift from the parser."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from md import code, first_paragraph, rst_to_md, table

ROOT = Path(__file__).resolve().parents[2]


def toml_value(value: Any) -> str:
    """A Python default as a spec would write it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _field_default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        return code(toml_value(f.default))
    if f.default_factory is not dataclasses.MISSING:
        return code(toml_value(f.default_factory()))
    return "see meaning" if "default" in f.metadata.get("doc", "") else "**required**"


def spec_fields() -> str:
    """Every top-level field of a sweep spec: its default and its documentation."""
    from robust_attn.sweeps.spec import TOP_FIELDS, SweepSpec

    by_name = {f.name: f for f in dataclasses.fields(SweepSpec)}
    rows = [(code(name), _field_default(by_name[name]), doc) for name, doc in TOP_FIELDS.items()]
    return table(("field", "default", "meaning"), rows)


def attack_fields() -> str:
    """The keys of an ``[[attacks]]`` table that are not parameters of the attack."""
    from robust_attn.sweeps.spec import ATTACK_FIELDS

    rows = [(code(name), doc) for name, doc in ATTACK_FIELDS.items()]
    rows.append(
        (
            "any other key",
            "a parameter of the attack (each attack's are listed on the spec reference); a key the attack does not take is an error listing the ones it does",
        )
    )
    return table(("key", "meaning"), rows)


def attack_entries() -> Iterator[tuple[str, tuple[str, ...]]]:
    """Each registered attack name with the backends it is registered for, in the registry's order."""
    from robust_attn.attacks.registry import backends, list_attacks

    for name in list_attacks():
        yield name, tuple(b for b in backends() if name in list_attacks(b))


def parameter_defaults(cls: type) -> dict[str, Any]:
    """Keyword-only parameter -> default, following ``__init__`` up the MRO as the parameter check
    does (the most derived constructor's default wins)."""
    defaults: dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty:
                defaults.setdefault(p.name, p.default)
    return defaults


def own_parameters(cls: type) -> list[tuple[str, str, str]]:
    """(name, accepted values, default) of the parameters an attack adds to the options every attack takes."""
    from robust_attn.attacks.base import AttackOptions
    from robust_attn.attacks.params import _describe, parameter_hints

    common = set(AttackOptions.__annotations__)
    defaults = parameter_defaults(cls)
    return [
        (name, _describe(hint), toml_value(defaults[name]) if name in defaults else "required")
        for name, hint in parameter_hints(cls).items()
        if name not in common
    ]


def traits_text(cls: Any) -> str:
    """The traits a class declares, in words."""
    t = cls.class_traits()
    flags = [
        label
        for label, on in (
            ("iterative", t.iterative),
            ("single-step", not t.iterative),
            ("traceable", t.traceable),
            ("minimum-norm", t.minimum_norm),
            ("ensemble", t.ensemble),
            ("randomized", t.randomized),
            ("probe", t.probe),
        )
        if on
    ]
    if t.threat_model != "white-box":
        flags.insert(0, t.threat_model)
    return ", ".join(flags) + (f"; strength {t.strength}" if t.strength else "")


def norm_text(cls: Any) -> str:
    """The norm of eps, or ``-`` for conditions without one (corruptions)."""
    t = cls.class_traits()
    return "-" if t.threat_model == "corruption" else code(t.norm)


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph."""
    text = first_paragraph(doc)
    match = re.search(r"\.\s+(?=[A-Z`(])", text)
    return text[: match.start() + 1] if match else text


def anchor(name: str, backend: str) -> str:
    """The id of an attack's section on the spec reference page."""
    return f"attack-{name}" + ("" if backend == "native" else f"-{backend}")


def attack_parameters() -> str:
    """One section per registered attack and backend: its description, traits and parameters."""
    from robust_attn.attacks.registry import attack_class

    parts = []
    for name, backends in attack_entries():
        for backend in backends:
            cls = attack_class(name, backend)
            title = name if backend == "native" else f"{name} ({backend})"
            parts.append(f"### {title} {{#{anchor(name, backend)}}}\n")
            parts.append(f"Norm {norm_text(cls)}; {traits_text(cls)}. Class {code(f'{cls.__module__}.{cls.__qualname__}')}.\n")
            if cls.__doc__:  # its own docstring (a class does not inherit one)
                parts.append(rst_to_md(inspect.cleandoc(cls.__doc__)) + "\n")
            params = own_parameters(cls)
            if params:
                parts.append(table(("parameter", "accepted values", "default"), [(code(n), d, code(v)) for n, d, v in params]) + "\n")
            else:
                parts.append("No parameters of its own.\n")
    return "\n".join(parts)


def common_options() -> str:
    """The options every attack takes, which a spec sets once at its top level."""
    from robust_attn.attacks.base import AttackOptions

    names = ", ".join(code(n) for n in AttackOptions.__annotations__ if n != "targeted")
    return (
        f"Every attack also takes the options {names}; in a spec they are top-level fields (one value for every attack), "
        f"and {code('targeted')} is refused because sweeps take no target labels."
    )


def attack_table() -> str:
    """Every registered attack: backends, norm, traits and parameters with defaults."""
    from robust_attn.attacks.registry import attack_class

    rows = []
    for name, backends in attack_entries():
        cls = attack_class(name, backends[0])
        params = ", ".join(code(n) for n, _, _ in own_parameters(cls)) or "-"
        link = f"[{code(name)}](spec.md#{anchor(name, backends[0])})"
        summary = first_sentence(rst_to_md(inspect.getdoc(cls) or ""))
        rows.append((link, ", ".join(backends), norm_text(cls), traits_text(cls), params, summary))
    return table(("name", "backends", "norm", "traits", "parameters", "what it is"), rows)


def _describe_attack(raw: dict[str, Any]) -> str:
    extra = {k: v for k, v in raw.items() if k not in ("name", "eps", "backend", "label")}
    text = str(raw.get("name", "?"))
    if raw.get("backend", "native") != "native":
        text += f"@{raw['backend']}"
    if extra:
        text += " " + ", ".join(f"{k}={toml_value(v)}" for k, v in extra.items())
    if "eps" in raw:
        text += f" at {', '.join(str(e) for e in raw['eps'])}"
    return code(text)


def _transfer_attack(raw: dict[str, Any]) -> dict[str, Any]:
    return {"name": raw.get("attack"), **{k: v for k, v in raw.items() if k not in ("attack", "sources", "targets")}}


def spec_paths() -> list[Path]:
    """The example specs, ``attacks/*.toml``."""
    return sorted((ROOT / "attacks").glob("*.toml"))


def spec_comment(path: Path) -> str:
    """What a spec is for: its top comment on one line, up to its "Run with:" instruction."""
    lines = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(" ".join(lines).split("Run with:")[0].split()).rstrip(" .;:(") + "."


def spec_files(links: bool = False) -> str:
    """The example specs in ``attacks/``, read from the files: what each is for (its top comment)
    and what it sweeps; ``links`` links each file (for ``attacks/README.md``, beside the files)."""
    rows = []
    for path in spec_paths():
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        models = [m if isinstance(m, str) else str(m.get("ref")) for m in raw.get("models", [])]
        seeds = raw.get("seeds")
        what = ", ".join(code(m) for m in models) + (f"; seeds {seeds}" if seeds else "")
        attacks = "; ".join(_describe_attack(a) for a in raw.get("attacks", []))
        transfer = raw.get("transfer", [])
        if transfer:
            attacks += "; transfer: " + "; ".join(_describe_attack(_transfer_attack(t)) for t in transfer)
        name = f"[{code(path.name)}]({path.name})" if links else code(path.name)
        rows.append((name, spec_comment(path), what, str(raw.get("n", 1000)), attacks))
    return table(("attacks/", "what it is for", "models", "n", "attacks"), rows)


def attack_names() -> str:
    """Every registered attack name, with the backends other than native it also runs on."""
    names = []
    for name, backends in attack_entries():
        others = [b for b in backends if b != "native"]
        names.append(code(name) + (f" (also {', '.join(others)})" if others else ""))
    return ", ".join(names)


def presets_doc() -> str:
    """The AutoAttack presets' module docstring, as Markdown."""
    from robust_attn.attacks import presets

    return rst_to_md(inspect.cleandoc(presets.__doc__ or ""))
