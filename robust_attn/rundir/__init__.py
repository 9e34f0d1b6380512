"""The run directory, a sweep's one data product: its format (:mod:`.schema`), where its files
live (:class:`RunDir`), its units (:mod:`.units`), writer, reader and upgrader.

Reports, notebooks and other tools read it through :func:`load_run`, or read its Parquet and
CSV files directly with pandas, polars or DuckDB.
"""

from robust_attn.errors import RunDirError
from robust_attn.rundir.layout import RunDir
from robust_attn.rundir.reader import CellOutcomes, CorruptionOutcomes, Run, load_run, read_manifest
from robust_attn.rundir.schema import FORMAT_VERSION
from robust_attn.rundir.units import AttackCell, Cell, CellOutcome, CorruptionCell, ModelInfo, ProbeCell, ProbeOutcome, TransferCell
from robust_attn.rundir.upgrade import upgrade_run_dir
from robust_attn.rundir.writer import RunWriter

__all__ = [
    "FORMAT_VERSION",
    "AttackCell",
    "Cell",
    "CellOutcome",
    "CellOutcomes",
    "CorruptionCell",
    "CorruptionOutcomes",
    "ModelInfo",
    "ProbeCell",
    "ProbeOutcome",
    "Run",
    "RunDir",
    "RunDirError",
    "RunWriter",
    "TransferCell",
    "load_run",
    "read_manifest",
    "upgrade_run_dir",
]
