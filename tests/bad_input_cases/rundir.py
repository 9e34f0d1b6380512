"""Bad-input rows about run directories: one writer, one spec, sealed studies, their files."""

from __future__ import annotations

from badinput import Case

CASES: list[Case] = []
