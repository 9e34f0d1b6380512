"""Bad-input rows about errors in their class: devices that do not exist here, recipes, every
attack parameter of every backend checked before any work, every eps grid (attacks, minimum-norm
attacks, transfer) through one check, data folders that are files, timm model options.

The rows about errors inside ``--workers`` ranks need two cores and child processes: they are in
tests/test_errors.py."""

from __future__ import annotations

from pathlib import Path

from badinput import Case, _sweep


def transfer_beyond_the_diameter(tmp: Path, attack: str) -> list[str]:
    """A ``[[transfer]]`` table crafting with ``attack`` (2 steps) at eps 5000, beyond the
    diameter of a 3x32x32 image in its norm (the same value in ``[[attacks]]`` is refused too)."""
    transfer = f'[[transfer]]\nsources = "all"\ntargets = "all"\nattack = "{attack}"\nsteps = 2\neps = ["5000"]\n'
    return _sweep(tmp, body="", attacks='[[attacks]]\nname = "fgsm"\neps = ["0"]\n' + transfer)


def a_file_as_data_dir(tmp: Path, *flags: str) -> list[str]:
    """A CIFAR-10 sweep whose data_dir is a file (a download saved under the folder's name), with
    the given flags (none, or ``--download``: torchvision would fail to create the folder)."""
    (tmp / "cifar").write_text("not a folder")
    return _sweep(tmp, *flags, body=f'dataset = "cifar10"\ndata_dir = "{tmp}/cifar"')


def a_data_dir_under_a_file(tmp: Path) -> list[str]:
    """``--download`` into a data_dir whose parent is a file: it cannot be created."""
    (tmp / "cifar").write_text("not a folder")
    return _sweep(tmp, "--download", body=f'dataset = "cifar10"\ndata_dir = "{tmp}/cifar/data"')


def _timm_checkpoint(tmp: Path, classes: int) -> Path:
    """A state dict of timm's tiny ``test_resnet`` (random weights) with a ``classes``-output classifier."""
    import timm
    import torch

    path = tmp / f"test_resnet-{classes}.pth"
    torch.save(timm.create_model("test_resnet", pretrained=False, num_classes=classes).state_dict(), path)
    return path


def a_1000_class_timm_checkpoint(tmp: Path) -> list[str]:
    """A timm checkpoint whose classifier has 1000 outputs (ImageNet's), swept on the built-in
    data's 10 classes, without num_classes."""
    table = f'{{ref = "timm:test_resnet", checkpoint = "{_timm_checkpoint(tmp, 1000)}"}}'
    return _sweep(tmp, body="", models=f"[{table}]")


def a_misspelt_timm_option(tmp: Path) -> list[str]:
    """A timm model table with ``num_clases = 10`` (a letter missing) and a 10-class checkpoint."""
    table = f'{{ref = "timm:test_resnet", checkpoint = "{_timm_checkpoint(tmp, 10)}", num_clases = 10}}'
    return _sweep(tmp, body="", models=f"[{table}]")


CASES: list[Case] = [
    # devices: one line naming the device and what exists here, in every command that takes one
    ("sweep on a GPU that does not exist", lambda t: _sweep(t, "--device", "cuda:99", body=""),
     r"device 'cuda:99' is not available here \(.*\); devices here: cpu"),
    ("train on a GPU that does not exist", lambda t: ["train", "vgg", "--device", "cuda:99", "--out", str(t)],
     r"device 'cuda:99' is not available here \(.*\); devices here: cpu"),
    ("zoo train on a GPU that does not exist", lambda t: ["zoo", "train", "--device", "cuda:99"],
     r"device 'cuda:99' is not available here \(.*\); devices here: cpu"),
    ("quickstart on a GPU that does not exist", lambda t: ["quickstart", "--device", "cuda:99", "--out", str(t / "q")],
     r"device 'cuda:99' is not available here \(.*\); devices here: cpu"),
    ("device mps in the spec", lambda t: _sweep(t, body='device = "mps"'),
     r"device: 'mps' \(Apple GPUs\) is not supported: robust-attn runs on cpu or CUDA; use auto, cpu, cuda or cuda:N \(here: cpu"),
    ("train on mps", lambda t: ["train", "vgg", "--device", "mps", "--out", str(t)], r"device 'mps' \(Apple GPUs\) is not supported"),
    ("train a ResNet with a fractional width",
     lambda t: ["train", "resnet", "--width", "0.5", "--train-size", "64", "--test-size", "16", "--out", str(t)],
     r"resnet: width is the base number of channels, a positive integer \(11 matches the compact VGG\); got 0.5"),
    ("an unknown device name", lambda t: _sweep(t, "--device", "gpu", body=""), r"device: unknown device 'gpu'; use auto, cpu, cuda or cuda:N"),
    ("an unknown recipe", lambda t: ["train", "vgg", "--recipe", "nosuch", "--out", str(t)],
     r"unknown recipe 'nosuch'; known: paper, cosine, fast, fgsm-at, pgd-at"),
    # every parameter of every backend, checked before any work
    ("torchattacks steps as a string", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "torchattacks:PGD"\nsteps = "ten"\neps = ["2/255"]\n'),
     r"attacks\[0\]\.steps: torchattacks\.PGD parameter steps must be an integer, got 'ten'"),
    ("torchattacks norm not among the declared ones",
     lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "torchattacks:Square"\nnorm = "L3"\neps = ["2/255"]\n'),
     r"attacks\[0\]\.norm: torchattacks\.Square parameter norm must be one of 'Linf', 'L2', got 'L3'"),
    ("torchattacks misspelt parameter", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "torchattacks:PGD"\nstepz = 3\neps = ["2/255"]\n'),
     r"attacks\[0\]\.stepz: torchattacks\.PGD takes no parameter 'stepz'; did you mean 'steps'\? it takes: alpha, steps, random_start"),
    ("torchattacks queries as a float",
     lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "torchattacks:Square"\nn_queries = 10.5\neps = ["2/255"]\n'),
     r"attacks\[0\]\.n_queries: torchattacks\.Square parameter n_queries must be an integer, got 10\.5"),
    ("torchattacks class without eps", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "torchattacks:CW"\neps = ["2/255"]\n'),
     r"attacks\[0\]\.eps: torchattacks\.CW takes no eps \(it is not an eps-ball attack\)"),
    ("foolbox steps as a string",
     lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "pgd"\nbackend = "foolbox"\nsteps = "ten"\neps = ["2/255"]\n'),
     r"attacks\[0\]\.steps: steps must be an integer, got 'ten'"),
    ("severities as floats", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "corruptions"\nseverities = [3.0]\n'),
     r"attacks\[0\]\.severities: severities must be a list of integers, got \[3\.0\]"),
    # every eps of every table through one check
    ("transfer eps beyond the L1 diameter", lambda t: transfer_beyond_the_diameter(t, "apgd-l1"),
     r"transfer\[0\]\.eps: l1 eps 5000 exceeds the l1 diameter of a 3x32x32 image in \[0, 1\] \(3072\); use a radius up to 3072"),
    ("transfer eps beyond the L2 diameter", lambda t: transfer_beyond_the_diameter(t, "pgd-l2"),
     r"transfer\[0\]\.eps: l2 eps 5000 exceeds the l2 diameter of a 3x32x32 image in \[0, 1\] \(55\.4256\)"),
    ("minimum-norm eps beyond the L2 diameter", lambda t: _sweep(t, body="", attacks='[[attacks]]\nname = "fmn-l2"\nsteps = 2\neps = ["5000"]\n'),
     r"attacks\[0\]\.eps: l2 eps 5000 exceeds the l2 diameter of a 3x32x32 image in \[0, 1\] \(55\.4256\)"),
    ("eps beyond the diameter of the declared data set",
     lambda t: _sweep(t, body='dataset = "mnist"', attacks='[[attacks]]\nname = "pgd-l2"\nsteps = 2\neps = ["30"]\n'),
     r"attacks\[0\]\.eps: l2 eps 30 exceeds the l2 diameter of a 1x28x28 image in \[0, 1\] \(28\)"),
    # data folders and spec paths that are not what they should be
    ("data_dir is a file", lambda t: a_file_as_data_dir(t), r"data dir '.*cifar' is a file, not a folder; point --data-dir at the folder holding cifar-10"),
    ("download into a data_dir that is a file", lambda t: a_file_as_data_dir(t, "--download"), r"data dir '.*cifar' is a file, not a folder"),
    ("download under a file", lambda t: a_data_dir_under_a_file(t), r"data dir '.*cifar/data' lies under '.*cifar', which is a file"),
    ("spec path is a folder", lambda t: ["sweep", str(t)], r"sweep spec '.*' is a folder, not a TOML file"),
    # timm model tables: the missing or unknown option, not the logits
    ("timm checkpoint of 1000 classes on 10", lambda t: a_1000_class_timm_checkpoint(t),
     r"models\[0\]: timm:test_resnet: its checkpoint's classifier has 1000 outputs but the sweep's data builtin has 10 classes; set num_classes = 10"),
    ("timm option misspelt", lambda t: a_misspelt_timm_option(t), r"timm:test_resnet: unknown option 'num_clases'; did you mean 'num_classes'\?"),
]  # fmt: skip
