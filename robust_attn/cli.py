"""The ``robust-attn`` command: a thin shell over the public API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from robust_attn.errors import RobustAttnError, UserCodeError

Handler = Callable[[argparse.Namespace], int]


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)")


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="folder holding torchvision data sets (not needed for builtin)")
    p.add_argument("--download", action="store_true", help="let torchvision download the data set into --data-dir")
    p.add_argument("--no-verify", action="store_true", help="skip torchvision's MD5 check of CIFAR/SVHN files")


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from robust_attn.data.loading import load_in_memory
    from robust_attn.device import resolve_device
    from robust_attn.models import create_model_for
    from robust_attn.models.registry import get_factory
    from robust_attn.training import check_epochs, get_recipe, train_model
    from robust_attn.zoo import model_defaults

    get_factory(args.model)  # fail on a bad name before generating or loading data
    recipe = get_recipe(args.recipe)
    overrides = {k: v for k, v in (("lr", args.lr), ("batch_size", args.batch_size)) if v is not None}
    recipe = dataclasses.replace(recipe, **overrides)
    if args.epochs is not None:
        check_epochs(args.epochs)  # before any data is generated or loaded
    from robust_attn import distributed

    device = resolve_device(args.device)
    ctx = distributed.context(device)  # under torchrun: one model over all ranks (DistributedDataParallel)
    device = distributed.device_for(ctx, device)
    main = ctx is None or ctx.is_main
    data = {"data_dir": args.data_dir, "download": args.download, "verify": not args.no_verify, "seed": args.seed}
    train = load_in_memory(args.dataset, "train", n=args.train_size, **data)
    test = load_in_memory(args.dataset, "test", n=args.test_size, **data)
    torch.manual_seed(args.seed)
    given = {k: v for k, v in (("width", args.width), ("layout", args.layout), ("dropout", args.dropout)) if v is not None}
    options = model_defaults(args.model) | given
    model = create_model_for(args.model, train, **options)
    out = Path(args.out) / f"{args.model}.safetensors"
    ranks = f", {ctx.world} ranks ({ctx.backend}, DistributedDataParallel)" if ctx is not None else ""
    if main:
        print(
            f"training {args.model} on {len(train)} {train.name} images ({', '.join(f'{k} {v}' for k, v in options.items())}, recipe {recipe.name}, {device}{ranks})"
        )
    try:
        result = train_model(
            model, train, test, recipe, epochs=args.epochs, seed=args.seed, device=device, out=out, resume=args.resume, ddp=ctx
        )
    except KeyboardInterrupt:
        return 130
    if not main:
        return 0
    print(f"clean test accuracy {result.test_accuracy:.2%} after {result.epochs} epochs, {result.seconds:.0f} s -> {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from robust_attn.sweeps import load_spec, run_sweep

    spec = load_spec(args.spec).with_overrides(
        models=tuple(args.models) if args.models else None,
        n=args.n,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        data_dir=args.data_dir,
        download=True if args.download else None,
        verify=False if args.no_verify else None,
        modes=("independent",) if args.independent else (("worst-case", "independent") if args.both_modes else None),
        save_examples=args.save_examples,
        fold_bn=True if args.fold_bn else None,
        workers=args.workers,
    )
    try:
        root = run_sweep(spec, args.out, force=args.force, progress=not args.quiet)
    except KeyboardInterrupt as err:
        _print_stopped(err)
        return 130
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        from robust_attn.rundir import RunDir, load_run

        run = load_run(root)
        print(f"wrote {root}/: {', '.join(RunDir(root).data_files)}")
        print(summary_table(run))
        _print_answer(run)
    return 0


def _print_stopped(err: KeyboardInterrupt) -> None:
    """What Ctrl-C left: the sweep's own account when it had started its units."""
    summary = getattr(err, "summary", None)
    print(
        summary
        or "stopped before the sweep's first unit: nothing was written to the run directory (trained zoo models "
        "stay in the cache); run the same command again to resume",
        file=sys.stderr,
    )


def cmd_report(args: argparse.Namespace) -> int:
    from robust_attn.reports import make_report

    report = make_report(args.run_dir, attention=not args.no_attention, progress=not args.quiet)
    _print_report(report)
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from robust_attn.attacks.registry import attack_traits
    from robust_attn.rundir import upgrade_run_dir
    from robust_attn.sweeps.spec import AttackSpec

    def describe(a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        spec = AttackSpec(
            str(a["name"]), tuple(a["eps"]), str(a.get("backend", "native")), dict(a.get("params", {})), str(a.get("label", ""))
        )
        return spec.key, attack_traits(spec.name, spec.backend, spec.params).as_dict()

    for root in args.run_dirs:
        changes = upgrade_run_dir(root, describe)
        print(f"{root}: " + ("; ".join(changes) if changes else "already at the current format version"))
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from robust_attn.quickstart import quickstart

    try:
        report = quickstart(args.out, device=args.device, progress=not args.quiet)
    except KeyboardInterrupt as err:
        _print_stopped(err)
        return 130
    _print_report(report)
    return 0


def _print_report(report: object) -> None:
    from robust_attn.reports import Report
    from robust_attn.rundir import load_run

    assert isinstance(report, Report)
    run = load_run(report.pdf.parent)
    print(summary_table(run, modes=("worst-case",)))
    for c in report.checks:
        print(f"check {c.status:>7}: {c.name}" + ("" if c.status == "pass" else f" - {c.detail}"))
    _print_answer(run)
    print(f"report: {report.pdf}\n        {report.html}\n        {report.markdown}\n        {report.summary_csv}")
    if report.incomplete:
        print(f"warning: {report.incomplete}")


def _print_answer(run: object) -> None:
    """The answer last, where the terminal leaves it: the claims' verdicts (or 'instances only') and the headline."""
    from robust_attn.reports import terminal_summary
    from robust_attn.rundir import Run

    assert isinstance(run, Run)
    print("\n".join(terminal_summary(run)))


def summary_table(run: object, modes: tuple[str, ...] = ("worst-case", "independent")) -> str:
    """Accuracy per model and eps for each eps-ball attack, and per severity (mean over the
    corruptions) for each corruption cell, as plain text, from a loaded run directory."""
    from robust_attn.epsilon import format_eps
    from robust_attn.rundir import Run

    assert isinstance(run, Run)
    results = run.results
    rows = results[results["mode"].isin(modes) & (results["threat_model"] == "white-box")]
    lines = []
    for (attack, mode), sel in rows.groupby(["attack", "mode"], sort=False):
        eps = list(dict.fromkeys(sel["eps"]))
        models = list(dict.fromkeys(sel["model"]))
        width = max(len(m) for m in models)
        lines.append(f"{attack} ({mode}) accuracy at eps:")
        lines.append(" " * width + "".join(f"{format_eps(e, str(sel['norm'].iloc[0])):>8}" for e in eps))
        for m in models:
            acc = dict(zip(sel.loc[sel["model"] == m, "eps"], sel.loc[sel["model"] == m, "accuracy"]))
            lines.append(m.ljust(width) + "".join(f"{acc[e]:>8.1%}" if e in acc else f"{'-':>8}" for e in eps))
    corr = results[results["threat_model"] == "corruption"]
    for attack, sel in corr.groupby("attack", sort=False):
        per = sel.groupby(["model", "severity"], sort=False)["accuracy"].mean().unstack("severity")
        width = max(len(str(m)) for m in per.index)
        lines.append(f"{attack}: accuracy at each severity, mean over {sel['corruption'].nunique()} corruptions:")
        lines.append(" " * width + "".join(f"{int(s):>8}" for s in per.columns))
        lines += [str(m).ljust(width) + "".join(f"{v:>8.1%}" for v in row) for m, row in per.iterrows()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from robust_attn import __version__

    parser = argparse.ArgumentParser(prog="robust-attn", description="Adversarial robustness of Learn-To-Pay-Attention CNNs.")
    parser.add_argument("--version", action="version", version=f"robust-attn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one model and write a checkpoint")
    p.add_argument(
        "model",
        help="architecture, e.g. vgg, vgg-att3-pc, vgg-att2-dp-indep (python -c 'import robust_attn; print(robust_attn.list_models())')",
    )
    p.add_argument("--dataset", default="builtin", help="builtin (default), cifar10, cifar100, svhn, mnist, fashionmnist")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    p.add_argument(
        "--width",
        type=float,
        help="VGG family: channel width multiplier, 1.0 = paper; ResNet: base channels (default: the zoo's, 0.125 and 11)",
    )
    p.add_argument(
        "--layout", choices=["compact", "paper"], help="VGG family: compact (CPU, stages at 16/8/4, the default) or paper (32/16/8)"
    )
    p.add_argument("--dropout", type=float, help="VGG family: dropout scale, 1.0 = the paper's rates (default: 0)")
    p.add_argument("--recipe", default="fast", help="fast (few epochs, CPU), paper (SGD, step schedule) or cosine")
    p.add_argument("--lr", type=float, default=None, help="override the recipe's learning rate")
    p.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch size")
    p.add_argument("--train-size", type=int, default=20_000, help="training samples to use (default: 20000)")
    p.add_argument("--test-size", type=int, default=2_000, help="test samples evaluated each epoch (default: 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="checkpoints", help="output folder (default: checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/MODEL.resume.safetensors")
    _add_device(p)
    _add_data(p)
    p.set_defaults(func=cmd_train)

    from robust_attn.commands_zoo import add_parser as add_zoo_commands

    add_zoo_commands(sub, _add_device)

    p = sub.add_parser("sweep", help="run an epsilon sweep spec (attacks/*.toml); resumes unfinished cells")
    p.add_argument("spec", help="TOML sweep spec, e.g. attacks/quickstart.toml")
    p.add_argument("--out", default=None, help="run directory (default: runs/<spec name>)")
    p.add_argument("--models", nargs="+", default=None, help="override the spec's models (zoo names, .safetensors, pkg.mod:factory)")
    p.add_argument("-n", type=int, default=None, help="override the number of samples")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None, help="forward precision (default fp32)")
    p.add_argument("--independent", action="store_true", help="classic per-eps attacks instead of worst-case")
    p.add_argument("--both-modes", action="store_true", help="record worst-case and independent numbers")
    p.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into convs for the native engine (faster; may flip near-ties)")
    p.add_argument("--save-examples", type=int, default=None, metavar="N", help="keep adversarial images of the first N samples")
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="CPU processes for native attacks (same numbers, faster on small models)"
    )
    p.add_argument("--force", action="store_true", help="recompute finished cells")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--data-dir", default=None, help="folder holding torchvision data sets")
    p.add_argument("--download", action="store_true", help="let torchvision download the data set into --data-dir")
    p.add_argument("--no-verify", action="store_true", help="skip torchvision's MD5 check of CIFAR/SVHN files (a re-packed copy)")
    p.add_argument("--device", default=None, help="override the spec's device: auto, cpu, cuda, cuda:N")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="write report.pdf, report.md and summary.csv for a sweep's run directory")
    p.add_argument("run_dir", help="run directory written by robust-attn sweep (e.g. runs/quickstart)")
    p.add_argument("--no-attention", action="store_true", help="leave out the attention and segmentation pages")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("upgrade", help="convert run directories written by an older robust-attn to the current format, in place")
    p.add_argument("run_dirs", nargs="+", help="run directories (e.g. reports/compare)")
    p.set_defaults(func=cmd_upgrade)

    p = sub.add_parser("quickstart", help="train the quick zoo if needed, run attacks/quickstart.toml, write the report")
    p.add_argument("--out", default="runs/quickstart", help="run directory (default: runs/quickstart)")
    p.add_argument("--quiet", action="store_true")
    _add_device(p)
    p.set_defaults(func=cmd_quickstart)
    from robust_attn.commands_runs import add_parsers as add_run_commands

    add_run_commands(sub)
    for child in dict.fromkeys(sub.choices.values()):
        _add_debug(child)
    return parser


def _where() -> str:
    """``rank 1/2: `` inside a torchrun job, so a one-line error names the rank that failed."""
    from robust_attn.distributed import launched

    return f"rank {os.environ.get('RANK', '?')}/{os.environ.get('WORLD_SIZE', '?')}: " if launched() else ""


def _on_launcher_stop(signum: int, frame: object) -> None:
    """torchrun stops the surviving ranks when one fails: say so in one line (finished units are on disk)."""
    print(
        f"robust-attn: error: {_where()}stopped by the launcher because another rank failed (see the launcher's report for which); "
        "rerun the same command to resume from the finished units",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """Every command and subcommand takes ``--debug``."""
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error in the input too (bugs always show theirs)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _add_debug(child)


def _report_error(err: RobustAttnError) -> None:
    """One line naming the problem and the fix; for errors in the user's own code, their frames."""
    print(f"robust-attn: error: {_where()}{err}", file=sys.stderr)
    if isinstance(err, UserCodeError) and err.frames:
        print("Traceback (your code, most recent call last):\n" + "\n".join(err.frames), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. Errors in the input (a RobustAttnError) print one line and exit 2 (with
    ``--debug``: their traceback too); anything else is a bug in robust-attn: its traceback, a
    line saying so, exit 1."""
    from robust_attn.distributed import launched

    if launched():
        import signal

        signal.signal(signal.SIGTERM, _on_launcher_stop)
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except RobustAttnError as err:
        if getattr(args, "debug", False):
            raise
        _report_error(err)
        return 2
    except KeyboardInterrupt:
        raise
    except BrokenPipeError:  # the reader of our output went away (| head): not an error of ours or the user's
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            f"robust-attn: internal error: {_where()}this is a bug in robust-attn, not in your input; please report it with the traceback above",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
