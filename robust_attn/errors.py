"""The errors a user can cause, under one base class.

Every problem with what a user gave us (a spec field, a data directory, a checkpoint, a model
that does not fit the data or returns NaN, a run directory, a failed rank, a full disk) raises a
:class:`RobustAttnError` whose message is one line naming the problem and the fix. The CLI
prints exactly those as ``robust-attn: error: ...`` (exit 2); anything else is a bug in
robust-attn and keeps its traceback (exit 1).

The subclasses that describe a bad value also derive from :class:`ValueError` (and missing data
files from :class:`FileNotFoundError`), so ``except ValueError`` around the public API keeps
working.
"""

from __future__ import annotations

import traceback
from pathlib import Path


class RobustAttnError(Exception):
    """Base class of every error caused by the user's input or environment, not by a bug."""


class SpecError(RobustAttnError, ValueError):
    """A sweep spec field is missing or invalid; the message names the field."""


class UsageError(RobustAttnError, ValueError):
    """An option of a command or function with a value it cannot take (``--workers 99``, ...)."""


class AttackParameterError(SpecError):
    """An attack parameter with a bad value; ``param`` names it so a spec can point at its field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class DataError(RobustAttnError, ValueError):
    """A data set that is malformed or asked for in a way it cannot serve."""


class DataNotFound(DataError, FileNotFoundError):
    """A data set whose files are not where the user said they are."""


class ModelError(RobustAttnError, ValueError):
    """A model reference that cannot be resolved, or a model that misbehaves (NaN logits, ...)."""


class ModelOutputError(ModelError):
    """A model whose logits are NaN or infinite; ``count`` of ``total`` images were affected."""

    def __init__(self, message: str, count: int = 0, total: int = 0) -> None:
        super().__init__(message)
        self.count, self.total = count, total


class ModelDataMismatch(ModelError):
    """A model that cannot be evaluated on the sweep's data."""


class CheckpointError(RobustAttnError, ValueError):
    """A checkpoint that cannot be used: corrupt, tampered with, or for another model."""


class RunDirError(RobustAttnError, ValueError):
    """A run directory is missing a file, holds a malformed one, has another format version, or
    cannot be written."""


class RankFailed(RobustAttnError, RuntimeError):
    """Another rank stopped answering (it died, or a collective timed out)."""


class UserCodeError(ModelError):
    """The user's own code (an import spec's module, factory or forward) raised.

    ``frames`` holds the traceback lines of the user's files only (file, line, code), which the
    CLI prints under the one-line message instead of robust-attn's own frames."""

    def __init__(self, message: str, frames: list[str] | None = None) -> None:
        super().__init__(message)
        self.frames = frames or []


def user_frames(err: BaseException) -> list[str]:
    """The traceback lines of ``err`` that lie outside robust-attn, the standard library and
    installed packages: the user's own files, where the fix is."""
    package = str(Path(__file__).resolve().parent)
    lines = []
    for frame in traceback.extract_tb(err.__traceback__):
        path = str(Path(frame.filename).resolve()) if not frame.filename.startswith("<") else frame.filename
        if path.startswith(package) or not _outside_libraries(path):
            continue
        lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}' + (f"\n    {frame.line}" if frame.line else ""))
    if isinstance(err, SyntaxError) and err.filename:  # the failing line is not a frame of the traceback
        lines.append(f'  File "{err.filename}", line {err.lineno}' + (f"\n    {(err.text or '').strip()}" if err.text else ""))
    return lines


def _outside_libraries(path: str) -> bool:
    return not ("site-packages" in path or "/lib/python3" in path or path.startswith("<frozen"))


def raised_in_user_code(err: BaseException) -> bool:
    """Whether the innermost frame of ``err`` that lies outside the standard library and installed
    packages is the user's own code (not robust-attn's): their forward raised, not our engine."""
    package = str(Path(__file__).resolve().parent)
    own = [f for f in traceback.extract_tb(err.__traceback__) if _outside_libraries(f.filename)]
    return bool(own) and not str(Path(own[-1].filename).resolve()).startswith(package)


def first_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception, for a one-line report."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
