"""The fingerprint of a sweep spec: what a run directory holds the results of.

Two specs have the same fingerprint when they compute the same numbers: the fields that only say
how or where the sweep runs (its name, device, ranks, where data and weights lie, whether to
download) are left out, and so is every field at its default value, so that a field added to the
spec later does not change the fingerprints of the runs made before it. A run directory keeps its
spec's fingerprint; a sweep of another spec into it is refused (see :mod:`robust_attn.rundir.writer`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import MISSING, asdict, fields
from typing import Any

from robust_attn.errors import RobustAttnError
from robust_attn.sweeps.spec import SweepSpec

# Fields that say how or where a sweep runs, not what it computes, as the spec declares them (the
# per-unit config hashes do not contain them either).
RUN_ONLY = frozenset(f.name for f in fields(SweepSpec) if f.metadata.get("run_only"))


def _default(name: str) -> Any:
    f = next(f for f in fields(SweepSpec) if f.name == name)
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else MISSING


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def identity(spec: SweepSpec | dict[str, Any]) -> dict[str, Any]:
    """The fields of ``spec`` that decide its numbers (``spec`` as a dataclass or as the dict a
    manifest stores), as plain JSON values, defaults left out."""
    record = _jsonable(asdict(spec) if isinstance(spec, SweepSpec) else spec)
    if isinstance(record.get("data_options"), dict) and isinstance(record.get("dataset"), str):
        from robust_attn.data.loading import dataset_source

        # how the data is read (streamed or held, its workers) is not what it computes; a stored spec of a
        # data set this robust-attn does not know is compared as it is
        with contextlib.suppress(RobustAttnError):
            record["data_options"] = dataset_source(record["dataset"]).result_options(record["data_options"])
    known = {f.name for f in fields(SweepSpec)}
    out = {}
    for key, value in record.items():
        if key in RUN_ONLY:
            continue
        default = _default(key) if key in known else MISSING
        if default is not MISSING and value == _jsonable(default):
            continue
        out[key] = value
    return out


def fingerprint(spec: SweepSpec | dict[str, Any]) -> str:
    """sha256 (hex, first 16 digits) of :func:`identity`."""
    return hashlib.sha256(json.dumps(identity(spec), sort_keys=True).encode()).hexdigest()[:16]


def differences(a: SweepSpec | dict[str, Any], b: SweepSpec | dict[str, Any]) -> list[str]:
    """The fields in which two specs compute different numbers."""
    x, y = identity(a), identity(b)
    return sorted(k for k in set(x) | set(y) if x.get(k, MISSING) != y.get(k, MISSING))
