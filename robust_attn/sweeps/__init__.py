"""Epsilon sweeps: TOML specs, the resumable runner and its run-directory format."""

from robust_attn.sweeps.runner import run_sweep
from robust_attn.sweeps.spec import AttackSpec, SpecError, SweepSpec, load_spec, parse_spec

__all__ = ["AttackSpec", "SpecError", "SweepSpec", "load_spec", "parse_spec", "run_sweep"]
