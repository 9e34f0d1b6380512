"""A griffe extension for the API pages: the project's docstrings use reST roles
(``:class:`~robust_attn.rundir.RunDir```) and ``::`` before literal blocks, which Markdown would
show raw; this rewrites them (docs/gen/md.py's ``rst_to_md``) as each object is loaded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).parent))
from md import rst_to_md


class ReSTRoles(griffe.Extension):
    """Rewrite reST roles in every docstring into Markdown code spans."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_md(obj.docstring.value)
