"""The repository as a product: committed studies stay small and are sealed, sweeps write outside
the tracked tree, and no session diary is committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS_LIMIT = 15 * 2**20  # bytes of all tracked files under reports/


def _tracked(under: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", under], cwd=ROOT, capture_output=True, check=False)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.stdout.decode().split("\0") if name]


def test_the_committed_studies_fit_their_budget() -> None:
    """Each study is stored once (report.md with its figures, report.pdf, the data); report.html is
    written again by `robust-attn report` and not committed."""
    files = _tracked("reports")
    assert files and not [f for f in files if f.name == "report.html"]
    size = sum(f.stat().st_size for f in files if f.exists())
    assert size <= REPORTS_LIMIT, f"reports/ holds {size / 2**20:.1f} MB of tracked files (limit 15 MB)"


def test_sweep_outputs_and_diaries_stay_out_of_the_tree() -> None:
    for path in ("runs/quickstart/manifest.json", "reports/compare/report.html"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0, f"{path} is git-ignored"
    assert not _tracked(".notes"), "session notes go on the issues, not into the repository"
