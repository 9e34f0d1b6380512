"""``robust-attn zoo``: list the entries (shipped, cached or not trained, with their clean accuracy),
train them (``--retrain`` a shipped one into the cache and compare), and ship trained weights
(maintainers: copy a cached checkpoint into the package's weights with its provenance record)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def _states(name: str) -> tuple[list[int], list[int], dict[int, str]]:
    """(shipped seeds, cached seeds, damaged or unreadable cache files by seed) of an entry."""
    from robust_attn.shipped import WEIGHTS
    from robust_attn.zoo import seed_states, split_seed

    stem = split_seed(name)[0]
    shipped = sorted({0 if p.stem == stem.split("/")[-1] else int(p.stem.split("@seed=")[1])
                      for p in (WEIGHTS / stem).parent.glob(f"{stem.split('/')[-1]}*.safetensors")
                      if p.stem == stem.split("/")[-1] or p.stem.startswith(f"{stem.split('/')[-1]}@seed=")})  # fmt: skip
    states = seed_states(name)
    bad = {s: v for s, v in states.items() if v.startswith(("damaged", "unreadable"))}
    return shipped, [s for s, v in states.items() if v == "cached"], bad


def cmd_zoo_list(args: argparse.Namespace) -> int:
    from robust_attn.errors import RobustAttnError
    from robust_attn.zoo import ZOO, resumable_seeds, trained_metadata

    rows = [("name", "model", "data", "epochs", "recipe", "shipped seeds", "cached seeds", "clean acc (seed 0)", "description")]
    problems: list[str] = []
    for name, e in ZOO.items():
        shipped, cached, bad = _states(name)
        problems += [f"  {name}@seed={s}: {v}" for s, v in bad.items()]
        try:
            meta = trained_metadata(name)
        except RobustAttnError:  # a damaged file: listed under the table, not a stop
            meta = None
        acc = f"{meta['clean_accuracy']:.2%}" if meta and "clean_accuracy" in meta else "-"
        cached_text = ",".join([*map(str, cached), *(f"{s}!" for s in bad)]) or "-"
        resumable = resumable_seeds(name)
        cached_text += f" (resumable: {','.join(map(str, resumable))})" if resumable else ""
        rows.append(
            (name, e.model, e.dataset, str(e.epochs), e.recipe, ",".join(map(str, shipped)) or "-", cached_text, acc, e.description)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    if problems:
        print("cached files marked ! cannot be used (retrain with `robust-attn zoo train NAME --retrain`, or delete them):")
        print("\n".join(problems))
    return 0


def cmd_zoo_train(args: argparse.Namespace) -> int:
    from robust_attn.device import resolve_device
    from robust_attn.errors import UsageError
    from robust_attn.zoo import QUICK_ZOO, get_entry, shipped_metadata, train_entries, with_seed

    names = (
        [with_seed(n, s) for n in (args.names or QUICK_ZOO) for s in (args.seeds or [0])] if args.seeds else list(args.names or QUICK_ZOO)
    )
    for n in names:
        get_entry(n)  # an unknown entry is one line before any training
    resolve_device(args.device)  # so is a device that does not exist here
    retrain = args.retrain or args.force
    if not retrain:
        already = [n for n in names if shipped_metadata(n) is not None]
        if already and len(already) == len(names):
            raise UsageError(f"{', '.join(already)}: shipped with the package, nothing to train; --retrain trains them here (into the cache) "
                             "and compares with the shipped weights")  # fmt: skip
    before = {n: shipped_metadata(n) for n in names}
    try:
        trained = train_entries(names, device=args.device, data_dir=args.data_dir, force=retrain, workers=args.workers)
    except KeyboardInterrupt:
        print("stopped; run the same command again to resume", file=sys.stderr)
        return 130
    for n, meta in trained.items():
        print(f"{n}: clean test accuracy {meta['clean_accuracy']:.2%}" + _against_shipped(before.get(n), meta, retrain))
    return 0


def _against_shipped(shipped: dict[str, Any] | None, meta: dict[str, Any], retrained: bool) -> str:
    if shipped is None or not retrained:
        return ""
    same = shipped.get("weights_sha256") == meta.get("weights_sha256")
    delta = 100 * (float(meta["clean_accuracy"]) - float(shipped["clean_accuracy"]))
    return (f" (shipped {float(shipped['clean_accuracy']):.2%}, {delta:+.2f} points; weights "
            + ("identical to the shipped ones)" if same else "differ from the shipped ones: this CPU's floating-point order; "
               "the sweep loads the shipped weights until you delete the cached file)"))  # fmt: skip


def cmd_zoo_ship(args: argparse.Namespace) -> int:
    """Copy cached, trained checkpoints into the package's shipped weights with their provenance."""
    from robust_attn.shipped import ship
    from robust_attn.zoo import cached_metadata, checkpoint_path, shipped_file, with_seed

    names = [with_seed(n, s) for n in args.names for s in (args.seeds or [0])] if args.seeds else list(args.names)
    for n in names:
        meta = cached_metadata(n)
        if meta is None:
            from robust_attn.errors import UsageError

            raise UsageError(f"{n} has no cached checkpoint to ship; train it first: robust-attn zoo train {n} --retrain")
        record = ship(checkpoint_path(n), shipped_file(n), meta, args.command)
        print(f"{n}: shipped {shipped_file(n)} ({record['size']:,} bytes, clean accuracy {record['clean_accuracy']:.2%})")
    return 0


def add_parser(sub: Any, add_device: Callable[[argparse.ArgumentParser], None]) -> None:
    """``zoo list``, ``zoo train`` and ``zoo ship`` (``sub``: argparse's subparsers)."""
    zoo = sub.add_parser("zoo", help="list, train or ship the model zoo").add_subparsers(dest="zoo_command", required=True)
    p = zoo.add_parser("list", help="zoo entries: shipped and cached seeds, clean accuracy")
    p.set_defaults(func=cmd_zoo_list)
    p = zoo.add_parser("train", help="train zoo entries into the cache (default: the quick zoo); shipped ones only with --retrain")
    p.add_argument("names", nargs="*", help="zoo names, optionally NAME@seed=N (default: the quick zoo)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N", help="train each name with these seeds (0 is the plain name)")
    p.add_argument("--retrain", action="store_true", help="train here even if shipped or cached, and compare with the shipped weights")
    p.add_argument("--force", action="store_true", help=argparse.SUPPRESS)  # the older name of --retrain
    p.add_argument("--data-dir", default=None, help="folder holding torchvision data sets")
    p.add_argument("--workers", type=int, default=None, help="parallel training processes on CPU (default: one per core)")
    add_device(p)
    p.set_defaults(func=cmd_zoo_train)
    p = zoo.add_parser("ship", help="(maintainers) copy cached checkpoints into the package's shipped weights, with provenance")
    p.add_argument("names", nargs="+", help="zoo names, optionally NAME@seed=N")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N", help="ship each name at these seeds")
    p.add_argument("--command", required=True, help="the command that trained them (recorded in each provenance record)")
    p.set_defaults(func=cmd_zoo_ship)
