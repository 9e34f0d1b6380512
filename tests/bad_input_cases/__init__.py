"""Rows of the table-driven bad-input test (tests/test_bad_inputs.py), grouped by subject: each
module holds a ``CASES`` list of (id, argv builder, regex of the one error line). The docs page of
bad inputs is generated from these tables."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from badinput import Case

MODULES = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem != "__init__")
EXTRA_CASES: list[Case] = [row for name in MODULES for row in import_module(f"bad_input_cases.{name}").CASES]
