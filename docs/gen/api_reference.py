"""The API reference pages: mkdocstrings directives for every public name, listed from the
packages' own ``__all__`` (and the top-level package's lazy export table), so a new export gets
its entry without an edit here."""

from __future__ import annotations

import importlib

# (page, package, title): one page per package; the package's __all__ is its content
PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("api/attacks.md", "robust_attn.attacks", "Attacks"),
    ("api/sweeps.md", "robust_attn.sweeps", "Sweeps"),
    ("api/rundir.md", "robust_attn.rundir", "Run directory"),
    ("api/errors.md", "robust_attn.errors", "Errors"),
)
SKIP = {"__version__"}


def public_names(package: str) -> list[str]:
    """A module's ``__all__``, or its public classes and functions defined in it when it has none."""
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_") and getattr(v, "__module__", None) == package]
    return [n for n in names if n not in SKIP]


def _documented_elsewhere() -> dict[str, str]:
    """Top-level name -> the identifier it is documented under on a package page."""
    out: dict[str, str] = {}
    for _, package, _ in PACKAGES:
        for name in public_names(package):
            out.setdefault(name, f"{package}.{name}")
    return out


def _directive(identifier: str, heading_level: int = 3) -> str:
    return f"::: {identifier}\n    options:\n      heading_level: {heading_level}\n"


def top_level_page() -> str:
    """``robust_attn``'s public API, grouped by the module each name is loaded from."""
    import robust_attn

    exports: dict[str, str] = robust_attn._EXPORTS
    missing = sorted(set(robust_attn.__all__) - set(exports) - SKIP)
    if missing:
        raise RuntimeError(f"robust_attn.__all__ names {missing[0]!r}, which robust_attn._EXPORTS does not load")
    elsewhere = _documented_elsewhere()
    groups: dict[str, list[str]] = {}
    public = set(robust_attn.__all__)
    for name, module in exports.items():  # the package's own order: attacks, epsilon, errors, ...
        if name in public:
            groups.setdefault(module, []).append(name)
    parts = ["# `robust_attn`\n", "::: robust_attn\n    options:\n      members: false\n      show_root_heading: false\n"]
    for module, names in groups.items():
        parts.append(f"## `{module}`\n")
        here = [n for n in names if n not in elsewhere]
        linked = [n for n in names if n in elsewhere]
        if linked:
            parts.append("Documented with their package: " + ", ".join(f"[`{n}`][{elsewhere[n]}]" for n in linked) + ".\n")
        parts += [_directive(f"{module}.{n}") for n in here]
    return "\n".join(parts)


def package_page(package: str, title: str) -> str:
    """A package's docstring and every name of its ``__all__``."""
    members = "\n".join(f"        - {n}" for n in public_names(package))
    return f"# {title}: `{package}`\n\n::: {package}\n    options:\n      show_root_heading: false\n      members:\n{members}\n"


def pages() -> dict[str, str]:
    """Page path -> Markdown of every API page."""
    out = {"api/index.md": top_level_page()}
    for page, package, title in PACKAGES:
        out[page] = package_page(package, title)
    return out
