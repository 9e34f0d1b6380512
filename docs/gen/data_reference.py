"""The data sets of the "Your data" page, read from the registry (:mod:`robust_attn.data.loading`):
every registered data source with its description, splits, how it is read, its image shape and
class count, and every option a spec's data table may set, with the documentation the source
declares for it. Your own data set (``package.module:factory``) is described by the same registry.
Nothing here is typed by hand, so the page cannot drift from the loaders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from md import code, table

FACTORY = "package.module:factory"  # how the registry is asked about your own data set
YOURS = "my_pkg.data:make"  # an import spec, for dataset_source to describe


def sources() -> list[tuple[str, Any]]:
    """(name shown, its DataSource) for every registered data set, then your own."""
    from robust_attn.data.loading import dataset_source, list_datasets

    return [(name, dataset_source(name)) for name in list_datasets()] + [(FACTORY, dataset_source(YOURS))]


def _read(source: Any) -> str:
    if source.generated:
        return "generated (any seed is a new draw)"
    if source.streams:
        return "decoded from files batch by batch, or held in memory (`stream`)" if "stream" in source.options else "read batch by batch"
    return "read whole into memory"


def _shape(source: Any) -> str:
    if source.image_shape is None:
        return "varies: set by resize and crop" if "resize" in source.options else "the items'"
    return "x".join(str(d) for d in source.image_shape)


def data_sources() -> str:
    """One row per data set: what it is, its splits, how it is read, its images, its classes, masks."""
    rows = [
        (
            code(name),
            source.description,
            ", ".join(source.splits),
            _read(source),
            _shape(source),
            str(source.num_classes) if source.num_classes is not None else "from the data",
            "yes" if source.has_masks else ("optional" if name == FACTORY else "no"),
        )
        for name, source in sources()
    ]
    return table(("`dataset`", "what it is", "splits", "read", "image (C x H x W)", "classes", "masks"), rows)


def data_options() -> str:
    """Every option of a data table: what it does and the data sets that take it (an option whose
    documentation differs between data sets gets one row per documentation)."""
    rows: dict[tuple[str, str], list[str]] = {}
    for name, source in sources():
        for option, doc in source.options.items():
            rows.setdefault((option, doc), []).append(code(name))
    return table(("option", "meaning", "taken by"), [(code(option), doc, ", ".join(names)) for (option, doc), names in rows.items()])


def my_data_example() -> str:
    """The runnable example of your own data set, docs/examples/my_data.py, as it is."""
    path = Path(__file__).resolve().parents[1] / "examples" / "my_data.py"
    return f"```python\n{path.read_text(encoding='utf-8').rstrip()}\n```"
