"""Indicators of attack failure, computed during a sweep (see :mod:`.indicators`)."""

from robust_attn.diagnostics.indicators import Indicator
from robust_attn.diagnostics.run import diagnose
from robust_attn.diagnostics.trace import AttackTrace

__all__ = ["AttackTrace", "Indicator", "diagnose"]
