"""Import what a ``package.module:attribute`` reference names (a user's model or data set factory).

Shared by the model and data sources; errors name the role (``model``, ``data set``) so the user
knows which line of the spec to fix, and a user's own code that raises keeps its frames.
"""

from __future__ import annotations

import importlib
from typing import Any

from robust_attn.errors import ModelError, RobustAttnError, UserCodeError, first_line, user_frames


def is_import_spec(ref: str) -> bool:
    """``package.module:factory`` (a module attribute: a factory, a model or a data set)."""
    mod, sep, attr = ref.partition(":")
    return bool(sep and mod and attr) and all(p.isidentifier() for p in mod.split(".")) and attr.isidentifier()


def user_error(ref: str, what: str, err: BaseException, role: str = "model") -> UserCodeError:
    """The user's code raised: one line naming the reference, and the traceback of their files."""
    return UserCodeError(
        f"{role} {ref!r}: {what} raised {first_line(err)}; fix it in your code (traceback of your files below)", user_frames(err)
    )


def import_object(ref: str, role: str = "model", error: type[RobustAttnError] = ModelError) -> Any:
    """The attribute after ':' of the module before it; a missing module or name is ``error``."""
    mod_name, attr = ref.split(":")
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as err:
        if err.name and mod_name.startswith(err.name):  # the module itself is missing, not one it imports
            raise error(f"cannot import {mod_name!r} for {role} {ref!r} ({err}); check PYTHONPATH and the name before ':'") from None
        raise user_error(ref, f"importing {mod_name}", err, role) from err
    except Exception as err:  # the user's module raised at import (NameError, SyntaxError, ...)
        raise user_error(ref, f"importing {mod_name}", err, role) from err
    if not hasattr(module, attr):
        raise error(f"module {mod_name!r} has no {attr!r} for {role} {ref!r}; check the name after ':'")
    return getattr(module, attr)
