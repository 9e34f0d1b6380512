"""Bad-input rows about a run directory's manifest.json (valid JSON that is not a manifest, a field
missing or of the wrong type) and about writing a report into a folder that cannot be written."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from badinput import Case, _spec

import robust_attn as ra


def _damaged(t: Path, edit: Callable[[dict[str, Any]], Any]) -> str:
    """A finished sweep into DIR/run whose manifest.json is then replaced by ``edit(manifest)``."""
    run = ra.run_sweep(ra.load_spec(_spec(t, "")), t / "run", progress=False)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(edit(manifest)))
    return str(run)


def _unwritable(folder: Path) -> None:
    """``folder`` made read-only (as root, whom permissions do not bind, it becomes a link to /proc,
    where nobody can create a file)."""
    if os.geteuid() != 0:
        folder.mkdir(exist_ok=True)
        folder.chmod(0o555)
        return
    if folder.is_dir():
        folder.rmdir()
    folder.symlink_to("/proc", target_is_directory=True)


def _report_of_a_list(t: Path) -> list[str]:
    """``robust-attn report DIR/run``, where DIR/run/manifest.json holds ``[]`` (valid JSON, not a manifest)."""
    return ["report", _damaged(t, lambda m: [])]


def _compare_of_a_list(t: Path) -> list[str]:
    """``robust-attn compare DIR/run --out DIR/both``, where DIR/run/manifest.json holds ``[]``."""
    return ["compare", _damaged(t, lambda m: []), "--out", str(t / "both")]


def _leaderboard_of_a_list(t: Path) -> list[str]:
    """``robust-attn leaderboard DIR/run --out DIR/board``, where DIR/run/manifest.json holds ``[]``."""
    return ["leaderboard", _damaged(t, lambda m: []), "--out", str(t / "board")]


def _upgrade_of_a_list(t: Path) -> list[str]:
    """``robust-attn upgrade DIR/run``, where DIR/run/manifest.json holds ``[]``."""
    return ["upgrade", _damaged(t, lambda m: [])]


def _report_without_models(t: Path) -> list[str]:
    """``robust-attn report DIR/run``, its manifest.json without the ``models`` field (the report
    read it as "no model has attention": the segmentation claim became "none tested", exit 0)."""
    return ["report", _damaged(t, lambda m: {k: v for k, v in m.items() if k != "models"})]


def _report_with_cells_an_object(t: Path) -> list[str]:
    """``robust-attn report DIR/run``, its manifest.json's ``cells`` an object instead of a list
    (the report dropped half the instance comparisons, exit 0)."""
    return ["report", _damaged(t, lambda m: {**m, "cells": {"0": m["cells"]}})]


def _report_into_read_only_figures(t: Path) -> list[str]:
    """``robust-attn report DIR/run``, a finished run directory whose ``figures/`` folder alone is
    read-only (as root: a link to /proc)."""
    run = ra.run_sweep(ra.load_spec(_spec(t, "")), t / "run", progress=False)
    _unwritable(run / "figures")
    return ["report", str(run)]


def _report_with_figures_a_file(t: Path) -> list[str]:
    """``robust-attn report DIR/run``, where DIR/run/figures is a file."""
    run = ra.run_sweep(ra.load_spec(_spec(t, "")), t / "run", progress=False)
    (run / "figures").write_text("not a folder")
    return ["report", str(run)]


def _report_into_read_only_run_dir(t: Path) -> list[str]:
    """``robust-attn report DIR/run``, a finished run directory that is read-only (as root: a link
    to /proc standing in for it). ``report`` has no ``--out``: the line must not advise one."""
    if os.geteuid() == 0:
        _unwritable(t / "run")
        return ["report", str(t / "run")]
    run = ra.run_sweep(ra.load_spec(_spec(t, "")), t / "run", progress=False)
    _unwritable(run)
    return ["report", str(run)]


CASES: list[Case] = [
    ("manifest a list: report", lambda t: _report_of_a_list(t),
     r"manifest\.json is not a run manifest: it must be a JSON object, got a list"
     r"; the file is damaged: restore it from version control, or delete it and rerun the sweep \(its finished cells under cells/ are merged again, not recomputed\)$"),
    ("manifest a list: compare", lambda t: _compare_of_a_list(t),
     r"manifest\.json is not a run manifest: it must be a JSON object, got a list"
     r"; the file is damaged: restore it from version control, or delete it and rerun the sweep \(its finished cells under cells/ are merged again, not recomputed\)$"),
    ("manifest a list: leaderboard", lambda t: _leaderboard_of_a_list(t),
     r"manifest\.json is not a run manifest: it must be a JSON object, got a list"
     r"; the file is damaged: restore it from version control, or delete it and rerun the sweep \(its finished cells under cells/ are merged again, not recomputed\)$"),
    ("manifest a list: upgrade", lambda t: _upgrade_of_a_list(t),
     r"manifest\.json is not a run manifest: it must be a JSON object, got a list"
     r"; the file is damaged: restore it from version control, or delete it and rerun the sweep \(its finished cells under cells/ are merged again, not recomputed\)$"),
    ("manifest without models", lambda t: _report_without_models(t),
     r"manifest\.json: field 'models' is missing"
     r"; the file is damaged: restore it from version control, or delete it and rerun the sweep \(its finished cells under cells/ are merged again, not recomputed\)$"),
    ("manifest cells an object", lambda t: _report_with_cells_an_object(t),
     r"manifest\.json: field 'cells' must be a list of cell records, got an object"
     r"; the file is damaged: restore it from version control, or delete it and rerun the sweep \(its finished cells under cells/ are merged again, not recomputed\)$"),
    ("report into read-only figures", lambda t: _report_into_read_only_figures(t),
     r"cannot write the report's figures under .*/run/figures \(.*\)"
     r"; make it writable, or copy the run directory and report the copy$"),
    ("report figures a file", lambda t: _report_with_figures_a_file(t),
     r"cannot write the report's figures: .*/run/figures is a file, not a folder; move it away"),
    ("report into a read-only run directory", lambda t: _report_into_read_only_run_dir(t),
     r"cannot write the report under .*/run \(.*\)"
     r"; make it writable, or copy the run directory and report the copy$"),
]  # fmt: skip
