"""Errors in their class, in every process: an input error raised in a ``--workers`` rank is the
one line one process prints, a bug in a rank keeps its traceback; devices, every attack parameter
of every backend and every eps grid are checked against what exists before any work.

The rows of the bad-input table for these subjects are in tests/bad_input_cases/errors.py; the
tests here need more than a row holds (child processes, a machine with GPUs emulated, the
library's own declarations)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from badinput import USER_MODELS, _spec

import robust_attn as ra
from robust_attn.cli import main
from robust_attn.distributed import RankBug, error_from_ranks, launch_local, record_error, usable_cores
from robust_attn.errors import (
    AttackParameterError,
    ModelError,
    ModelOutputError,
    RankFailed,
    RobustAttnError,
    SpecError,
    UsageError,
    UserCodeError,
)

ROOT = Path(__file__).resolve().parents[1]
two_cores = pytest.mark.skipif(usable_cores() < 2, reason="two local ranks need two usable cores")


# -- records of a rank's error, read by the parent (no processes) ---------------------------------


def _recorded(folder: Path, err: BaseException, rank: int, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        raise err
    except BaseException as raised:  # a traceback, as a rank's error has one
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        record_error(folder, raised)


def test_a_recorded_input_error_comes_back_as_its_class_with_its_attributes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        AttackParameterError("steps", "attacks[0].steps: steps must be an integer, got 'ten'"),
        ModelOutputError("model 'm' returned NaN or infinite logits for 1 of 20 images", 1, 20),
        UserCodeError("model 'm': its forward raised ValueError: x; fix it in your code", ['  File "/u/m.py", line 3, in forward']),
    ]
    for i, err in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        _recorded(folder, err, 1, monkeypatch)
        back = error_from_ranks(folder, 2, {1: "exit code 2"})
        assert type(back) is type(err) and str(back) == str(err)
        assert {k: v for k, v in vars(back).items() if k != "__notes__"} == vars(err)
        assert "raised in local rank 1 of 2" in back.__notes__[0] and "Traceback" in back.__notes__[0], "--debug shows the rank's traceback"


def test_the_cause_wins_over_the_ranks_that_saw_it_die(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The survivor's 'another rank stopped' is written first here; the cause is still reported."""
    _recorded(tmp_path, RankFailed("another rank stopped during cell x (its connection closed)"), 0, monkeypatch)
    time.sleep(0.01)
    _recorded(tmp_path, SpecError("attacks[0].norm: bad"), 1, monkeypatch)
    back = error_from_ranks(tmp_path, 2, {0: "exit code 2"})
    assert isinstance(back, SpecError) and str(back) == "attacks[0].norm: bad"


def test_a_bug_in_a_rank_stays_a_bug_with_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _recorded(tmp_path, KeyError("params"), 1, monkeypatch)
    back = error_from_ranks(tmp_path, 2, {1: "exit code 1"})
    assert isinstance(back, RankBug) and not isinstance(back, RobustAttnError)
    assert str(back).startswith("local rank 1 of 2 stopped on a bug; its traceback:\nTraceback (most recent call last):")
    assert str(back).rstrip().endswith("KeyError: 'params'") and "test_errors.py" in str(back)


def test_a_rank_that_died_without_a_record_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _recorded(tmp_path, RankFailed("another rank stopped during a gather (timed out)"), 0, monkeypatch)
    back = error_from_ranks(tmp_path, 2, {1: "signal SIGKILL"})
    assert isinstance(back, RankFailed) and str(back).startswith("local rank 1 of 2 died (signal SIGKILL) without reporting an error")


def test_a_class_the_parent_cannot_import_is_still_an_input_error(tmp_path: Path) -> None:
    entry = {
        "rank": 0,
        "local_rank": 0,
        "time": 0,
        "input_error": True,
        "module": "gone_plugin",
        "class": "MyError",
        "message": "my plugin's one line",
        "attrs": {},
        "traceback": "",
    }
    (tmp_path / "rank-0.json").write_text(json.dumps(entry))
    back = error_from_ranks(tmp_path, 2, {})
    assert type(back) is RobustAttnError and str(back) == "my plugin's one line"


# -- real local ranks ------------------------------------------------------------------------------


def raise_in_rank_1() -> None:
    """A local rank's entrypoint: rank 1 raises an input error, rank 0 waits to be stopped."""
    if os.environ["LOCAL_RANK"] == "1":
        raise AttackParameterError("steps", "attacks[0].steps: torchattacks.PGD parameter steps must be an integer, got 'ten'")
    time.sleep(60)


def bug_in_rank_0() -> None:
    if os.environ["LOCAL_RANK"] == "0":
        raise KeyError("injected bug")
    time.sleep(60)


def killed_rank_1() -> None:
    if os.environ["LOCAL_RANK"] == "1":
        os.kill(os.getpid(), 9)
    time.sleep(60)


@pytest.mark.slow
@two_cores
def test_launch_local_raises_what_the_rank_raised(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AttackParameterError, match=r"^attacks\[0\]\.steps: torchattacks\.PGD parameter steps") as info:
        launch_local(2, raise_in_rank_1)
    assert info.value.param == "steps"
    with pytest.raises(RankBug, match=r"local rank 0 of 2 stopped on a bug(.|\n)*KeyError: 'injected bug'"):
        launch_local(2, bug_in_rank_0)
    with pytest.raises(RankFailed, match=r"local rank 1 of 2 died \(signal SIGKILL\)"):
        launch_local(2, killed_rank_1)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "torch/distributed" not in err, f"the ranks and torch's launcher print nothing: {err[-2000:]}"


def _cli(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    paths = os.pathsep.join([str(tmp_path / "user"), *(env or {}).get("PYTHONPATH", "").split(os.pathsep)])
    full = {**os.environ, **(env or {}), "ROBUST_ATTN_HOME": str(home), "PYTHONPATH": paths}
    return subprocess.run([sys.executable, "-m", "robust_attn", *argv], capture_output=True, text=True, timeout=240, cwd=ROOT, env=full)


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "bi_models.py").write_text(USER_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path / "user"))
    return tmp_path / "user"


@pytest.mark.slow
@two_cores
def test_an_input_error_in_a_workers_rank_is_the_line_one_process_prints(
    user_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NaN logits only on batches larger than the parent's 4-image dry run: only a rank sees them.
    The whole of stderr is the one line one process prints, and the exit code is 2."""
    spec = _spec(tmp_path, "", models='["bi_models:nan_sometimes"]')
    assert main(["sweep", spec, "--quiet", "--out", str(tmp_path / "one")]) == 2
    one = capsys.readouterr().err
    ranks = _cli(tmp_path, "sweep", spec, "--quiet", "--out", str(tmp_path / "two"), "--workers", "2")
    assert ranks.returncode == 2, ranks.stderr[-3000:]
    assert ranks.stderr == one and one.count("\n") == 1 and "returned NaN or infinite logits" in one


@pytest.mark.slow
@two_cores
def test_a_bug_in_a_workers_rank_keeps_its_traceback_and_exit_1(user_models: Path, tmp_path: Path) -> None:
    """A bug injected into robust-attn's batch loop of rank 1 (through the hooks module, from a
    sitecustomize file): the rank's traceback, the internal-error line, exit 1."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "from robust_attn import hooks\n\n\ndef _bug(rank, done):\n    if rank == 1:\n        {}['injected bug']\n\n\n"
        "hooks.after_batch.append(_bug)\n"
    )
    spec = _spec(tmp_path, "batch_size = 5", models='["bi_models:good"]')
    ranks = _cli(tmp_path, "sweep", spec, "--quiet", "--out", str(tmp_path / "two"), "--workers", "2", env={"PYTHONPATH": str(hooks)})
    assert ranks.returncode == 1, ranks.stderr[-3000:]
    lines = ranks.stderr.strip().splitlines()
    assert "RankBug: local rank 1 of 2 stopped on a bug; its traceback:" in ranks.stderr and "KeyError: 'injected bug'" in ranks.stderr
    assert "robust_attn/sweeps/cells.py" in ranks.stderr, "the rank's own frames"
    assert lines[-1].startswith("robust-attn: internal error: this is a bug in robust-attn")


# -- devices ---------------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_cuda_on_a_machine_without_it_names_what_exists() -> None:
    for name in ("cuda", "cuda:0"):
        with pytest.raises(UsageError, match=rf"^device '{name}' is not available here \(.*\); devices here: cpu; use one of them"):
            ra.resolve_device(name)


def test_a_gpu_index_beyond_the_machine_names_the_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with two GPUs, emulated: cuda:1 exists, cuda:2 does not (no tensor is made)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert ra.resolve_device("cuda:1") == torch.device("cuda", 1) and ra.resolve_device("auto").type == "cuda"
    with pytest.raises(
        UsageError,
        match=r"^device 'cuda:2' is not available here \(this machine has 2 CUDA device\(s\)\); devices here: cpu, cuda:0, cuda:1;",
    ):
        ra.resolve_device("cuda:2")
    with pytest.raises(UsageError, match=r"device 'cuda:5' is not available here"):
        ra.resolve_device(torch.device("cuda", 5))


def test_the_spec_and_the_device_code_agree_on_names() -> None:
    """One check of device names: what the spec accepts, resolve_device takes (mps neither)."""
    from robust_attn.device import check_device_name

    for name in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert check_device_name(name) == name
        ra.parse_spec({"models": ["builtin/vgg"], "device": name, "attacks": [{"name": "fgsm", "eps": ["0"]}]})
    for name in ("mps", "gpu", "cuda:", "cuda:x", "CPU", 0):
        with pytest.raises(UsageError):
            check_device_name(name)
        with pytest.raises(SpecError, match=r"^device: "):
            ra.parse_spec({"models": ["builtin/vgg"], "device": name, "attacks": [{"name": "fgsm", "eps": ["0"]}]})


# -- attack parameters of every backend ------------------------------------------------------------


def _torchattacks_eps_classes() -> list[str]:
    import torchattacks

    return [n for n in torchattacks.__all__ if "eps" in inspect.signature(getattr(torchattacks, n)).parameters]


def test_torchattacks_defaults_pass_their_own_check() -> None:
    """Every torchattacks class that takes eps accepts its own defaults (the check refuses only
    what the library would not take): each parameter given its default value comes back equal."""
    import torchattacks

    from robust_attn.attacks.external import torchattacks_params

    names = _torchattacks_eps_classes()
    assert {"PGD", "Square", "AutoAttack", "APGD", "FAB", "PGDL2"} <= set(names)
    for name in names:
        params = inspect.signature(getattr(torchattacks, name)).parameters
        given = {k: p.default for k, p in params.items() if k not in ("model", "eps") and p.default is not inspect.Parameter.empty}
        assert torchattacks_params(name, given) == given, name


def test_torchattacks_choices_are_the_ones_its_docstrings_declare() -> None:
    import torchattacks

    from robust_attn.attacks.external import _declared_choices

    assert _declared_choices(torchattacks.Square) == {"norm": ("Linf", "L2"), "loss": ("margin", "ce")}
    assert _declared_choices(torchattacks.AutoAttack) == {"norm": ("Linf", "L2"), "version": ("standard", "plus", "rand")}
    assert _declared_choices(torchattacks.FAB)["norm"] == ("Linf", "L2", "L1")
    assert _declared_choices(torchattacks.JSMA) == {}, "'[theta, 0]' in prose is not a list of choices"


def test_checked_torchattacks_parameters_run_and_set_the_norm() -> None:
    """Accepted values reach the library: Square with norm L2 and 20 queries runs, and its eps is
    an L2 radius; FAB's L1 is L1 (not L-inf), alpha may be written in eps units."""
    from robust_attn.attacks.registry import attack_traits, check_params

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 3)).eval()
    attack = ra.create_attack("torchattacks:Square", model, norm="L2", n_queries=20)
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    adv = attack.perturb(x, y, 0.5)
    assert attack.norm == "l2" and float((adv - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5
    assert attack_traits("torchattacks:FAB", "native", {"norm": "L1"}).norm == "l1"
    assert check_params("torchattacks:PGD", "torchattacks", {"alpha": "2/255"}) == {"alpha": pytest.approx(2 / 255)}
    with pytest.raises(AttackParameterError, match=r"torchattacks\.Square parameter norm must be one of 'Linf', 'L2', got 'L3'"):
        ra.create_attack("torchattacks:Square", model, norm="L3")


def test_list_parameters_check_their_elements() -> None:
    from robust_attn.attacks.params import coerce_params
    from robust_attn.corruptions.evaluation import CommonCorruptions as Corruptions

    assert coerce_params(Corruptions, {"severities": [3, 5]}) == {"severities": [3, 5]}
    for bad in ([3.0], [True], "3", [3, "5"]):
        with pytest.raises(AttackParameterError, match=r"severities must be a list of integers"):
            coerce_params(Corruptions, {"severities": bad})


# -- every eps grid through one check --------------------------------------------------------------


@pytest.mark.parametrize(("attack", "eps"), [("apgd-l1", "5000"), ("pgd-l2", "56"), ("pgd", "2"), ("fgsm", "8/0")])
def test_transfer_and_attacks_tables_give_the_same_eps_error(attack: str, eps: str) -> None:
    table = {"name": attack, "eps": ["0", eps]} | ({"steps": 2} if attack != "fgsm" else {})
    with pytest.raises(SpecError) as direct:
        ra.parse_spec({"models": ["builtin/vgg"], "attacks": [table]})
    transfer = {"sources": "all", "targets": "all", "attack": attack, **{k: v for k, v in table.items() if k != "name"}}
    with pytest.raises(SpecError) as crafted:
        ra.parse_spec({"models": ["builtin/vgg"], "attacks": [{"name": "fgsm", "eps": ["0"]}], "transfer": [transfer]})
    assert str(direct.value).startswith("attacks[0].eps: ")
    assert str(crafted.value) == str(direct.value).replace("attacks[0]", "transfer[0]", 1)


def test_an_eps_at_the_diameter_is_accepted() -> None:
    """55 < sqrt(3072) = 55.43 (an L2 radius that still binds) and 3072 itself (L1) pass."""
    spec = ra.parse_spec(
        {
            "models": ["builtin/vgg"],
            "attacks": [{"name": "pgd-l2", "steps": 2, "eps": ["0", "55"]}],
            "transfer": [{"sources": "all", "targets": "all", "attack": "apgd-l1", "steps": 2, "eps": ["3072"]}],
        }
    )
    assert spec.attacks[0].eps == (0.0, 55.0) and spec.transfer[0].attack.eps == (3072.0,)


# -- data folders, spec paths ----------------------------------------------------------------------


def test_data_dir_problems_are_named(tmp_path: Path) -> None:
    from robust_attn.data.torchvision_sets import check_data_dir
    from robust_attn.errors import DataError, DataNotFound

    (tmp_path / "file").write_text("x")
    for download in (False, True):
        with pytest.raises(DataError, match="is a file, not a folder"):
            check_data_dir(tmp_path / "file", "cifar-10-batches-py", download)
        with pytest.raises(DataError, match="lies under .*file', which is a file"):
            check_data_dir(tmp_path / "file" / "deeper" / "data", "cifar-10-batches-py", download)
    with pytest.raises(DataNotFound, match="does not exist; .* or add --download"):
        check_data_dir(tmp_path / "missing", "cifar-10-batches-py", False)
    assert check_data_dir(tmp_path / "missing", "x", True) == tmp_path / "missing", "--download creates it"
    assert check_data_dir(tmp_path, "x", False) == tmp_path


def test_data_sets_declare_the_shape_they_load(tmp_path: Path) -> None:
    from robust_attn.data.loading import dataset_source

    data = ra.load_dataset("builtin", "test", n=4)
    assert dataset_source("builtin").image_shape == data.image_shape and dataset_source("builtin").num_classes == len(data.classes)
    assert dataset_source("mnist").image_shape == (1, 28, 28) and dataset_source("cifar100c").num_classes == 100


# -- timm model tables -----------------------------------------------------------------------------


def _tiny_timm(tmp_path: Path, classes: int, suffix: str) -> Path:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=classes)
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    else:
        torch.save({"state_dict": model.state_dict()}, path)
    return path


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_the_classifier_size_is_read_from_the_checkpoint_header(tmp_path: Path, suffix: str) -> None:
    from robust_attn.hub.timm_source import _checkpoint_classes, qualify_timm

    path = _tiny_timm(tmp_path, 7, suffix)
    assert _checkpoint_classes("test_resnet", path) == 7
    with pytest.raises(ModelError, match=r"classifier has 7 outputs but the sweep's data cifar100 has 100 classes; set num_classes = 100"):
        qualify_timm("timm:test_resnet", {"checkpoint": str(path)}, {"dataset": "cifar100"})
    assert qualify_timm("timm:test_resnet", {"checkpoint": str(path)}, {"dataset": "nosuch"})[0] == "timm:test_resnet"


def test_timm_architecture_options_reach_the_model_and_unknown_ones_are_named(tmp_path: Path) -> None:
    from robust_attn.hub.timm_source import load_timm

    path = _tiny_timm(tmp_path, 10, ".pth")
    plain, meta = load_timm("timm:test_resnet", "cpu", checkpoint=str(path), data_dir=None, model_dir=None, progress=False)
    dropped, meta2 = load_timm("timm:test_resnet", "cpu", checkpoint=str(path), drop_rate=0.25)
    assert plain.model.drop_rate == 0.0 and dropped.model.drop_rate == 0.25 and meta["cache"] != meta2["cache"]
    assert meta["weights_sha256"] == meta2["weights_sha256"], "the same weights; the option changes the architecture's behaviour"
    with pytest.raises(ModelError, match=r"^timm:test_resnet: unknown option 'drop_rat'; did you mean 'drop_rate'\?"):
        load_timm("timm:test_resnet", "cpu", checkpoint=str(path), drop_rat=0.25)


def test_a_spec_folder_is_not_a_missing_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a folder, not a TOML file"):
        ra.load_spec(tmp_path)
