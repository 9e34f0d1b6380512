"""Attack parameters as their classes declare them: names and types come from the keyword-only
parameters of ``__init__`` (and :class:`~robust_attn.attacks.base.AttackOptions`), so a spec is
checked against the attack's own signature before any work starts, and a new attack needs no
list kept elsewhere."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Annotated, Any, Literal, Union, Unpack, get_args, get_origin

from robust_attn.attacks.base import EPS_VALUE, AttackOptions, Evaluation, is_number
from robust_attn.epsilon import parse_eps
from robust_attn.errors import AttackParameterError


def parameter_hints(cls: type[Evaluation]) -> dict[str, Any]:
    """Keyword parameter -> type hint of ``cls``, plus the options every attack takes. The walk
    follows ``__init__`` up the MRO only while a constructor passes its other keywords on
    (``**params``); one that passes only ``**options: Unpack[AttackOptions]`` ends it, so a
    parameter a subclass fixes (APGD-T's loss) is not offered. Unannotated parameters map to ``Any``."""
    hints: dict[str, Any] = dict(typing.get_type_hints(AttackOptions, include_extras=True))
    for klass in cls.__mro__[: cls.__mro__.index(Evaluation) + 1]:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        resolved = typing.get_type_hints(init, include_extras=True)
        passes_on = False
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                hints.setdefault(p.name, resolved.get(p.name, Any))
            elif p.kind is p.VAR_KEYWORD:
                passes_on = get_origin(resolved.get(p.name)) is not Unpack
        if not passes_on:
            break
    return hints


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Annotated:
        base, *marks = get_args(hint)
        return "an eps value such as 2/255 or 0.01" if EPS_VALUE in marks else _describe(base)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint) if a is not type(None))
    if origin in (list, tuple):
        element = get_args(hint)[0] if get_args(hint) else Any
        return "a list" + (f" of {_PLURAL.get(element, _describe(element))}" if element is not Any else "")
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, getattr(hint, "__name__", str(hint)))


_PLURAL = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _convert(hint: Any, value: Any) -> Any:
    """``value`` as ``hint`` asks for it; raises TypeError or ValueError when it cannot be."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin is Annotated:
        base, *marks = get_args(hint)
        return parse_eps(value, max_eps=None) if EPS_VALUE in marks else _convert(base, value)
    if origin is Literal:
        if value in get_args(hint) and not isinstance(value, bool):
            return value
        raise ValueError(value)
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            if option is type(None):
                continue
            try:
                return _convert(option, value)
            except (TypeError, ValueError):
                continue
        raise ValueError(value)
    if origin in (list, tuple):  # list[int], tuple[str, ...]: every element of its type (3.0 is not a severity)
        if not isinstance(value, (list, tuple)):
            raise TypeError(value)
        element = get_args(hint)[0] if get_args(hint) else Any
        items = [_convert(element, v) for v in value]
        return items if origin is list else tuple(items)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(value)
    if hint is float:
        if is_number(value):
            return float(value)
        raise TypeError(value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError(value)
    return value  # another annotation (a class): the constructor checks it


def coerce_params(cls: type[Evaluation], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against the signature of ``cls``: an unknown name, or a value of the
    wrong type (``"false"`` for a bool, ``2.5`` for an int, ``"nonsense"`` for a Literal), is an
    :class:`AttackParameterError` naming the parameter; eps-valued ones may be strings (``"2/255"``)."""
    hints = parameter_hints(cls)
    own = sorted(set(hints) - set(AttackOptions.__annotations__) | {"targeted"})
    out = {}
    for name, value in params.items():
        if name not in hints:
            raise AttackParameterError(
                name,
                f"takes no parameter {name!r}; it takes: {', '.join(own)} "
                "(and the options of every attack: seed, precision, channels_last, fold_bn)",
            )
        try:
            out[name] = _convert(hints[name], value)
        except (TypeError, ValueError):
            raise AttackParameterError(name, f"{name} must be {_describe(hints[name])}, got {value!r}") from None
    return out


def coerce_options(params: dict[str, Any]) -> dict[str, Any]:
    """The options every attack takes (targeted, seed, precision, ...) among ``params``, checked
    against their declared types; for backends whose other parameters a library class declares."""
    hints = typing.get_type_hints(AttackOptions, include_extras=True)
    out = {}
    for name, value in params.items():
        try:
            out[name] = _convert(hints[name], value)
        except (TypeError, ValueError):
            raise AttackParameterError(name, f"{name} must be {_describe(hints[name])}, got {value!r}") from None
    return out
