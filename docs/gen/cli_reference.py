"""The CLI reference, read from the ``robust-attn`` argument parser itself
(:func:`robust_attn.cli.build_parser`): every command, its usage line and its options."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from md import code, table


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each subcommand, depth first (``zoo list`` after ``zoo``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in dict(action.choices).items():
                yield name, helps.get(name, ""), child
                for sub_name, sub_help, grandchild in _subcommands(child):
                    yield f"{name} {sub_name}", sub_help, grandchild


def _fixed_width(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=88)


def _default(action: argparse.Action) -> str:
    if action.default is None or action.default is False or action.default == argparse.SUPPRESS or action.nargs == 0:
        return ""
    return code(str(action.default))


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.dest == "debug":
            continue  # --debug is on every command: the page's introduction says what it does
        names = ", ".join(action.option_strings) or (action.metavar if isinstance(action.metavar, str) else action.dest)
        if action.option_strings and action.nargs != 0:
            names += " " + (action.metavar if isinstance(action.metavar, str) else action.dest.upper())
        choices = f" (one of {', '.join(map(str, action.choices))})" if action.choices and not isinstance(action.choices, dict) else ""
        rows.append((code(names), (action.help or "") + choices, _default(action)))
    return rows


def cli_reference() -> str:
    """A section per command: what it does, its usage line, and a table of its arguments."""
    from robust_attn.cli import build_parser

    parser = build_parser()
    parts = []
    for name, help_text, child in _subcommands(parser):
        has_children = any(isinstance(a, argparse._SubParsersAction) for a in child._actions)
        parts.append(f"## robust-attn {name}\n\n{help_text}\n")
        child.formatter_class = _fixed_width  # the same lines whatever terminal builds the docs
        parts.append(f"```text\n{child.format_usage().strip()}\n```\n")
        if not has_children:
            parts.append(table(("argument", "meaning", "default"), _options(child)) + "\n")
    return "\n".join(parts)
