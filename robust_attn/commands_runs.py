"""The commands over run directories as wholes: ``robust-attn compare`` (one report over runs
swept apart), ``robust-attn leaderboard`` (models and architectures ranked across runs) and
``robust-attn seal`` (a finished study that no sweep may write again)."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_compare(args: argparse.Namespace) -> int:
    """Combine the runs into a new run directory, then write its report."""
    from robust_attn.reports import make_report
    from robust_attn.rundir import load_run
    from robust_attn.rundir.combine import combine_runs

    out = combine_runs(args.run_dirs, args.out, name=args.name, force=args.force)
    run = load_run(out)
    print(f"wrote {out}/: {len(run.models)} models, {len(run.manifest['cells'])} cells on {len(run.labels)} shared samples")
    for note in run.manifest.get("combined_notes", []):
        print(f"  {note}")
    report = make_report(out, attention=not args.no_attention, progress=not args.quiet)
    print(f"report: {report.pdf}\n        {report.markdown}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Write leaderboard.html, leaderboard.md and leaderboard.csv; print the top of each table."""
    from robust_attn.leaderboard import build_leaderboard

    board = build_leaderboard(args.run_dirs, args.out, title=args.title)
    print(f"leaderboard: {board.html}\n             {board.markdown}\n             {board.csv}")
    for title, rows in (("architectures", board.architectures), ("models", board.models)):
        print(f"{title} by robust accuracy under {board.headline.label} (clean):")
        for e in rows[: args.top]:
            v = e.scores.get(board.headline.key)
            print(f"  {e.rank:>3}. {e.name:<40} {100 * v.value if v else float('nan'):5.1f}%  ({100 * e.clean.value:.1f}%)")
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    """Seal (or unseal) finished run directories: a sealed one refuses every sweep, --force included."""
    from robust_attn.rundir import RunWriter
    from robust_attn.rundir.lock import RunLock

    for root in args.run_dirs:
        with RunLock(root, instead="", create=False):
            changed = RunWriter(root).seal(args.note, undo=args.undo)
        state = "unsealed" if args.undo else "sealed"
        print(f"{root}: {state}" if changed else f"{root}: already {state}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``compare``, ``leaderboard`` and ``seal`` to the CLI's subcommands (``sub``: argparse's subparsers)."""
    p = sub.add_parser("compare", help="combine run directories swept apart (same data, attacks) into one run and write its report")
    p.add_argument(
        "run_dirs", nargs="*", metavar="RUN_DIR", help="run directories of the same data set, split, samples and attack settings"
    )
    p.add_argument("--out", required=True, help="the new combined run directory (it must not exist, or use --force)")
    p.add_argument("--name", default=None, help="name of the combined run in its report (default: the --out folder's name)")
    p.add_argument("--force", action="store_true", help="replace a combined run written to --out before")
    p.add_argument("--no-attention", action="store_true", help="leave out the attention and segmentation pages of the report")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("leaderboard", help="rank the models and architectures of run directories: leaderboard.html, .md and .csv")
    p.add_argument(
        "run_dirs", nargs="*", metavar="RUN_DIR", help="run directories on one data set (e.g. reports/compare reports/adversarial)"
    )
    p.add_argument("--out", required=True, help="folder for leaderboard.html, leaderboard.md and leaderboard.csv (e.g. reports)")
    p.add_argument("--title", default=None, help="page title (default: Robustness leaderboard: DATASET SPLIT)")
    p.add_argument("--top", type=int, default=5, help="rows of each table to print (default: 5)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("seal", help="seal finished run directories (committed studies): no sweep may write them, --force included")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories (e.g. reports/compare)")
    p.add_argument("--undo", action="store_true", help="unseal them (to rerun or extend a study on purpose)")
    p.add_argument("--note", default="", help="why, kept in the manifest and shown when a sweep is refused")
    p.set_defaults(func=cmd_seal)
