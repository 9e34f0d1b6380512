"""Where everything of a run directory lives: the one object every reader and writer of its
paths goes through (the sweep, the reports, the CLI), so the layout is spelt in one place."""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from robust_attn.errors import RunDirError
from robust_attn.rundir import schema


@dataclass(frozen=True)
class RunDir:
    """A run directory at ``root``."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # -- the data product -----------------------------------------------------------------------
    @property
    def manifest(self) -> Path:
        return self.root / schema.MANIFEST

    @property
    def results(self) -> Path:
        return self.root / schema.RESULTS

    @property
    def samples(self) -> Path:
        return self.root / schema.SAMPLES

    def table(self, file_name: str) -> Path:
        """One of the merged Parquet tables or arrays (schema.DRIFT, schema.INDICATORS, ...)."""
        return self.root / file_name

    @property
    def cells(self) -> Path:
        return self.root / schema.CELLS

    @property
    def plan(self) -> Path:
        """The plan of a sweep in progress (its would-be manifest, every unit it will compute)."""
        return self.cells / schema.PLAN

    def unit_meta(self, slug: str) -> Path:
        return self.cells / f"{slug}.json"

    def unit_file(self, name: str) -> Path:
        return self.cells / name

    def examples(self, slug: str) -> Path:
        """Adversarial images kept for one cell (spec field save_examples)."""
        return self.root / schema.EXAMPLES_DIR / f"{slug}.npz"

    # -- what reports write ---------------------------------------------------------------------
    @property
    def figures(self) -> Path:
        return self.root / schema.FIGURES

    def report(self, kind: str) -> Path:
        """``pdf``, ``md`` or ``html``."""
        return self.root / {"pdf": schema.REPORT_PDF, "md": schema.REPORT_MD, "html": schema.REPORT_HTML}[kind]

    def csv(self, name: str) -> Path:
        """A derived table a report writes beside the data (schema.SUMMARY, schema.PAIRED, ...)."""
        return self.root / name

    @property
    def data_files(self) -> list[str]:
        """The files a finished sweep writes, for messages."""
        return list(schema.DATA_FILES)

    # -- checks ---------------------------------------------------------------------------------
    def check_writable(self, what: str = "write the run directory") -> None:
        """Fail in one line, before any work, when the directory (or the parent it would be made in)
        cannot be written."""
        folder = self.root
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise RunDirError(f"cannot {what}: {folder} is a file, not a folder; choose another --out")
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".robust-attn-write-test-"):
                pass
        except OSError as err:
            raise RunDirError(
                f"cannot {what} under {folder} ({os.strerror(err.errno or errno.EACCES)}); choose a folder you can write (--out)"
            ) from None


def disk_full(err: OSError) -> bool:
    return err.errno in (errno.ENOSPC, errno.EDQUOT)
