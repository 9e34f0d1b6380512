"""The run directory, a sweep's one data product: its format (:mod:`.schema`), writer and reader.

Reports, notebooks and other tools read it through :func:`load_run`, or read its Parquet and
CSV files directly with pandas, polars or DuckDB.
"""

from robust_attn.rundir.reader import CellOutcomes, Run, RunDirError, load_run, read_manifest
from robust_attn.rundir.schema import FORMAT_VERSION
from robust_attn.rundir.writer import AttackCell, CellOutcome, ModelInfo, ProbeCell, ProbeOutcome, RunWriter

__all__ = [
    "FORMAT_VERSION",
    "AttackCell",
    "CellOutcome",
    "CellOutcomes",
    "ModelInfo",
    "ProbeCell",
    "ProbeOutcome",
    "Run",
    "RunDirError",
    "RunWriter",
    "load_run",
    "read_manifest",
]
