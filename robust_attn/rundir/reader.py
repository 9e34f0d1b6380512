"""Reading a run directory: the manifest (checked for the format version), ``results.csv``, the
per-sample table and the probe tables, with one-line errors for anything missing or malformed."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robust_attn.errors import RunDirError
from robust_attn.rundir import manifest as manifest_file
from robust_attn.rundir import schema
from robust_attn.rundir.aggregate import results_table
from robust_attn.rundir.integrity import check_files
from robust_attn.rundir.layout import RunDir
from robust_attn.rundir.store import PROBE_TABLES, Assembled, assemble, finished_records

OPTIONAL_TABLES = ("generalisation",)  # tables added after version 3's first release: absent means empty


@dataclass
class CellOutcomes:
    """Per-sample outcomes of one (model, attack, mode) cell, as matrices over (eps, sample)."""

    model: str
    attack: str
    mode: str
    norm: str
    eps: np.ndarray  # (K,)  (corruption cells: K = corruption x severity conditions, eps NaN)
    correct: np.ndarray  # (K, N) bool
    pred: np.ndarray  # (K, N)
    min_norm: np.ndarray | None = None  # (N,) minimum-norm attacks: smallest fooling norm (inf: none found)
    fooled_by: np.ndarray | None = None  # (K, N) ensembles: member that fooled the sample (None: not fooled)
    name: str = ""  # registered attack name
    source: str | None = None  # transfer cells: the model (or models joined by +) the images were crafted on


@dataclass
class CorruptionOutcomes:
    """Per-sample outcomes of one corruption cell, as matrices over (condition, sample)."""

    model: str
    attack: str
    conditions: list[tuple[str, int]]  # (corruption, severity), corruption-major
    correct: np.ndarray  # (K, N) bool
    pred: np.ndarray  # (K, N)


@dataclass
class Run:
    """Everything a report needs, read from a run directory alone."""

    root: Path
    manifest: dict[str, Any]
    results: pd.DataFrame
    samples: pd.DataFrame
    drift: pd.DataFrame
    segmentation: pd.DataFrame
    indicators: pd.DataFrame
    examples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> images, maps, preds, eps
    cells: dict[tuple[str, str, str], CellOutcomes] = field(default_factory=dict)  # eps-ball cells (white-box, transfer)
    corruptions: dict[tuple[str, str], CorruptionOutcomes] = field(default_factory=dict)  # corruption cells, by (model, attack)
    transfers: dict[tuple[str, str, str], CellOutcomes] = field(default_factory=dict)  # transfer cells by (target, attack id, source)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,) by sample index
    clean_pred: dict[str, np.ndarray] = field(default_factory=dict)  # model -> (N,)
    missing: list[dict[str, Any]] = field(default_factory=list)  # planned units not finished (kind, model, attack, mode)
    generalisation: pd.DataFrame = field(default_factory=pd.DataFrame)  # linear probes on unseen data sets, per sample

    @property
    def dir(self) -> RunDir:
        return RunDir(self.root)

    @property
    def complete(self) -> bool:
        return not self.missing

    def missing_summary(self) -> str:
        """One line naming the unfinished units and how to finish them ('' when complete)."""
        if not self.missing:
            return ""
        planned = len(self.manifest.get(schema.PLANNED, []))
        shown = "; ".join(
            f"{u['model']}: {u['attack']}" + (f" [{u['mode']}]" if u.get("mode") else f" ({u.get('probe')})") for u in self.missing[:4]
        )
        more = f"; and {len(self.missing) - 4} more" if len(self.missing) > 4 else ""
        spec = self.manifest.get("spec_path") or "SPEC"
        return (
            f"{len(self.missing)} of {planned} units of this run are not finished ({shown}{more}); finish them with "
            f"`robust-attn sweep {spec} --out {self.root}` (it resumes), then report again"
        )

    def cell_traits(self, model: str, attack: str, mode: str = "worst-case") -> dict[str, Any]:
        """The declared traits of the attack of a cell (norm, iterative, traceable, minimum_norm,
        ensemble, strength, probe), as recorded by the sweep."""
        for entry in self.manifest.get("cells", []):
            if (entry.get("model"), entry.get("attack"), entry.get("mode")) == (model, attack, mode):
                return dict(entry.get("traits") or {})
        return {}

    def results_with_traits(self) -> pd.DataFrame:
        """``results`` with each attack's declared traits as columns (iterative, traceable,
        minimum_norm, ensemble, strength, probe, randomized), for checks that ask what an attack can do."""
        names = ["iterative", "traceable", "minimum_norm", "ensemble", "strength", "probe", "randomized"]
        rows = [{"attack": a, **{k: self.attack_traits(a).get(k) for k in names}} for a in self.attacks]
        out = self.results.merge(pd.DataFrame(rows, columns=["attack", *names]), on="attack", how="left")
        return out.merge(self._cell_clean_counts(), on=["model", "attack", "mode"], how="left")

    def _cell_clean_counts(self) -> pd.DataFrame:
        """Per cell, how many samples its own clean forward pass got right (``clean_correct``): cells
        in another memory layout (library backends run NCHW) can round a near-tie the other way."""
        first = self.samples.drop_duplicates(["model", "attack", "mode", "sample"])
        right = (first["clean_pred"] == first["label"]).groupby([first["model"], first["attack"], first["mode"]], sort=False).sum()
        return right.rename("clean_correct").reset_index()

    def attack_traits(self, attack: str) -> dict[str, Any]:
        """The traits of a spec attack id (the same for every model)."""
        for entry in self.manifest.get("cells", []):
            if entry.get("attack") == attack:
                return dict(entry.get("traits") or {})
        return {}

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.results["model"]))

    @property
    def attacks(self) -> list[str]:
        return list(dict.fromkeys(self.results["attack"]))

    @property
    def probes(self) -> list[dict[str, Any]]:
        """The attention probes (the indicator units are in ``indicators``)."""
        return [p for p in self.manifest.get("probes", []) if p.get("kind", "attention") == "attention"]

    def model_info(self, model: str) -> dict[str, Any]:
        return dict(self.manifest.get("models", {}).get(model, {}))

    def ensemble_members(self, model: str, attack: str, mode: str) -> list[str]:
        """An ensemble cell's members in order (empty for other attacks, and for runs written
        before robust-attn recorded them)."""
        for entry in self.manifest.get("cells", []):
            if (entry.get("model"), entry.get("attack"), entry.get("mode")) == (model, attack, mode):
                return list(entry.get("members") or [])
        return []

    def clean_correct(self, model: str) -> np.ndarray:
        return self.clean_pred[model] == self.labels

    def clean_accuracy(self, model: str) -> float:
        return float(self.clean_correct(model).mean())


def _need(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise RunDirError(f"{root} has no {name}; run `robust-attn sweep SPEC --out {root}` first (or finish it: it resumes)")
    return path


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest, refusing another format version with both versions named, and a missing
    field or one of the wrong type in one line naming it (:func:`robust_attn.rundir.manifest.read`)."""
    root = Path(root)
    if not root.is_dir():
        raise RunDirError(f"run directory {str(root)!r} does not exist; run `robust-attn sweep SPEC` to create it")
    return manifest_file.read(_need(root, schema.MANIFEST))


def _parquet(root: Path, name: str, columns: tuple[schema.Column, ...]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _need(root, name)
    try:
        df: pd.DataFrame = pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        raise RunDirError(
            f"{path} is not a readable Parquet file ({err}); rerun the sweep (finished cells are kept under cells/)"
        ) from None
    missing = [c.name for c in columns if c.name not in df.columns]
    if missing:
        raise RunDirError(f"{path} lacks columns {missing}; it was not written by this robust-attn, rerun the sweep")
    return df


def _corruption_cells(samples: pd.DataFrame) -> dict[tuple[str, str], CorruptionOutcomes]:
    """Per corruption cell, (K, N) matrices over its (corruption, severity) conditions."""
    out = {}
    for (model, attack), g in samples[samples["threat_model"] == "corruption"].groupby(["model", "attack"], sort=False):
        conditions = list(dict.fromkeys(zip(g["corruption"], g["severity"].astype(int))))
        order = {c: i for i, c in enumerate(conditions)}
        g = g.assign(_k=[order[c] for c in zip(g["corruption"], g["severity"].astype(int))]).sort_values(["_k", "sample"], kind="stable")
        k = len(conditions)
        out[(str(model), str(attack))] = CorruptionOutcomes(
            str(model),
            str(attack),
            [(str(c), int(v)) for c, v in conditions],
            g["correct"].to_numpy(bool).reshape(k, -1),
            g["pred"].to_numpy().reshape(k, -1),
        )
    return out


def _cells(samples: pd.DataFrame, threat_model: str = "white-box") -> dict[tuple[str, str, str, str | None], CellOutcomes]:
    """Per eps-ball cell of ``threat_model`` (white-box, or transfer), (K, N) matrices from the long
    table (rows of a cell are eps-major, samples ascending), by (model, attack, mode, source)."""
    out = {}
    rows = samples[samples["threat_model"] == threat_model]
    for (model, attack, mode, source), g in rows.groupby(["model", "attack", "mode", "source"], sort=False, dropna=False):
        g = g.sort_values(["eps", "sample"], kind="stable")
        eps = np.unique(g["eps"].to_numpy())
        k = len(eps)
        first = g[g["eps"] == eps[0]]
        src = None if pd.isna(source) else str(source)
        out[(str(model), str(attack), str(mode), src)] = CellOutcomes(
            str(model),
            str(attack),
            str(mode),
            str(g["norm"].iloc[0]),
            eps,
            g["correct"].to_numpy(bool).reshape(k, -1),
            g["pred"].to_numpy().reshape(k, -1),
            first["min_norm"].to_numpy(float) if first["min_norm"].notna().all() else None,
            g["fooled_by"].to_numpy(object).reshape(k, -1) if g["fooled_by"].notna().any() else None,
            str(g["name"].iloc[0]),
            src,
        )
    return out


def _merged(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """The tables a finished sweep merged: results, samples, probe tables, example arrays."""
    try:
        results = pd.read_csv(_need(root, schema.RESULTS))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RunDirError(f"{root / schema.RESULTS} is not a readable CSV ({err}); rerun the sweep") from None
    missing = [c for c in schema.RESULT_COLUMNS if c not in results.columns]
    if missing or results.empty:
        raise RunDirError(f"{root / schema.RESULTS} is malformed (missing columns {missing} or no rows); rerun the sweep with --force")
    samples = _parquet(root, schema.SAMPLES, schema.SAMPLE_COLUMNS)
    tables = {
        part: _parquet(root, name, columns)
        if (root / name).is_file() or part not in OPTIONAL_TABLES
        else pd.DataFrame(columns=[c.name for c in columns])
        for part, (name, columns) in PROBE_TABLES.items()
    }
    try:
        with np.load(_need(root, schema.EXAMPLES)) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise RunDirError(f"{root / schema.EXAMPLES} is corrupt ({err}); rerun the sweep (finished cells are kept under cells/)") from None
    return results, samples, tables, arrays


def _from_units(
    root: Path, manifest: dict[str, Any], product: Assembled
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """The tables of a sweep that stopped before its merge, rebuilt from its finished units."""
    samples = product.samples.to_pandas()
    if samples.empty:
        raise RunDirError(
            f"{root} has no finished attack cell yet; run `robust-attn sweep {manifest.get('spec_path') or 'SPEC'} --out {root}`"
        )
    manifest["cells"], manifest["probes"] = product.cells, product.probes
    return results_table(samples, product.cells), samples, {k: t.to_pandas() for k, t in product.probe_tables.items()}, product.examples


def load_run(root: str | Path) -> Run:
    """Load and cross-check a run directory; never loads a model or the data set. A sweep that has
    not finished (a plan under ``cells/`` and no merged manifest yet) is read from its finished
    units, and ``Run.missing`` names the rest; a merged run's tables are checked against the
    manifest's record of their sizes and sha256."""
    root = Path(root)
    unmerged = RunDir(root).plan
    if not (root / schema.MANIFEST).is_file() and unmerged.is_file():
        manifest = _read_plan(unmerged)
    else:
        manifest = read_manifest(root)
        if isinstance(manifest.get("files"), dict):
            check_files(
                root,
                manifest["files"],
                f"rerun its sweep (`robust-attn sweep {manifest.get('spec_path') or 'SPEC'} --out {root}`) to merge its finished units again",
            )
    planned = list(manifest.get(schema.PLANNED, []))
    finished = finished_records(RunDir(root), planned) if (root / schema.CELLS).is_dir() else []
    if manifest.get("complete") or not finished:
        results, samples, tables, arrays = _merged(root)
        done_slugs = {c.get("slug") for c in manifest.get("cells", [])} | {p.get("slug") for p in manifest.get("probes", [])}
    else:
        results, samples, tables, arrays = _from_units(root, manifest, assemble(RunDir(root), finished))
        done_slugs = {r["config_hash"][:16] for r in finished}
    missing = [u for u in planned if u["slug"] not in done_slugs and not manifest.get("complete")]
    run = Run(
        root,
        manifest,
        results,
        samples,
        tables["drift"],
        tables["segmentation"],
        tables["indicators"],
        missing=missing,
        generalisation=tables["generalisation"],
    )
    _index_samples(run)
    for i, probe in enumerate(run.manifest.get("probes", [])):
        if probe.get("examples"):
            prefix = schema.example_key(i, "")
            run.examples[probe["model"]] = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    return run


def _read_plan(path: Path) -> dict[str, Any]:
    """The plan of a sweep that has not merged yet (the manifest it will write, incomplete)."""
    plan = manifest_file.load_object(path)
    manifest_file.format_version(plan, path)
    return manifest_file.parse({**plan, "complete": False}, path)


def _index_samples(run: Run) -> None:
    """Labels, clean predictions and per-cell matrices from the long per-sample table."""
    samples, root = run.samples, run.root
    first = samples.drop_duplicates("sample").sort_values("sample")
    run.labels = first["label"].to_numpy(np.int64)
    for model, g in samples.groupby("model", sort=False):
        clean = g.drop_duplicates("sample").sort_values("sample")
        run.clean_pred[str(model)] = clean["clean_pred"].to_numpy(np.int64)
    for model in run.models:
        if model not in run.clean_pred or len(run.clean_pred[model]) != len(run.labels):
            raise RunDirError(f"{root / schema.SAMPLES} has no complete rows for {model!r}; rerun the sweep with --force")
    run.cells = {(m, a, mode): c for (m, a, mode, _), c in _cells(samples).items()}
    run.transfers = {(m, a, src or ""): c for (m, a, _, src), c in _cells(samples, "transfer").items()}
    run.corruptions = _corruption_cells(samples)
