"""Epsilon values as users write them: ``8/255``, ``"0.031"``, ``0``."""

from __future__ import annotations

import math
from fractions import Fraction

from robust_attn.errors import SpecError


def parse_eps(value: str | float | int, max_eps: float | None = 1.0) -> float:
    """A float in pixel units from a number or a ``a/b`` string; rejects NaN, negatives and
    values above ``max_eps`` (L-inf: 1, since for [0, 1] images an eps of 8 almost always means
    8/255; L2 radii may exceed 1, so they pass ``None``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError(f"eps must be a number or 'a/b', got {value!r}")
    try:
        eps = float(Fraction(value.strip())) if isinstance(value, str) else float(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        raise SpecError(f"cannot read eps {value!r}; write a number like 0.03 or a fraction like 8/255") from None
    if math.isnan(eps) or math.isinf(eps) or eps < 0:
        raise SpecError(f"eps must be a finite number >= 0, got {value!r}")
    if max_eps is not None and eps > max_eps:
        raise SpecError(f"eps {value!r} exceeds 1 (images are in [0, 1]); did you mean {value}/255?")
    return eps


def format_eps(eps: float, norm: str = "linf") -> str:
    """How reports write an eps: L-inf as ``8/255`` when it is a whole number of 255ths, else
    (and always for L2) the decimal."""
    k = eps * 255
    if norm == "linf" and abs(k - round(k)) < 1e-6:
        return f"{round(k)}/255"
    return f"{eps:g}"
