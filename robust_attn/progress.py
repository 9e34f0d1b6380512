"""Progress that suits both a terminal and a log file.

On a terminal: tqdm bars. Otherwise (output redirected, CI, a batch job): no carriage-return
stream, one line when a task finishes, saying what ran, how far it got and how fast.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, text: str) -> None: ...
    def close(self) -> None: ...


def interactive() -> bool:
    """True when progress goes to a terminal (tqdm writes to stderr)."""
    return sys.stderr.isatty()


class LineProgress:
    """Counts quietly; ``close`` prints one line: ``desc: done/total unit in s (rate unit/s)``."""

    def __init__(self, total: int | None, desc: str, unit: str, enabled: bool) -> None:
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.n = 0
        self.postfix = ""
        self.t0 = time.perf_counter()
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        if self.closed or not self.enabled:
            return
        self.closed = True
        seconds = time.perf_counter() - self.t0
        how_far = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        rate = f" ({self.n / seconds:,.0f} {self.unit}/s)" if seconds > 0 and self.n / seconds >= 1 else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {how_far} {self.unit} in {seconds:.1f} s{rate}{extra}", file=sys.stderr, flush=True)


def progress_bar(total: int | None, desc: str, *, unit: str = "img", enabled: bool = True, leave: bool = False, **kwargs: Any) -> Progress:
    """A tqdm bar on a terminal, else a :class:`LineProgress` that prints one line at the end."""
    if enabled and interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, mininterval=0.5, **kwargs)
    return LineProgress(total, desc, unit, enabled)
