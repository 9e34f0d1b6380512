"""Users' data at real scale, on small files these tests write in the real on-disk layouts: an
ImageFolder tree of JPEGs (of several sizes and colour modes), ILSVRC2012 validation
(val/<wnid>/*.JPEG) with RobustBench's id list, an ImageNet-C tree, and a custom factory.
A streamed sweep and an in-memory sweep of the same images give identical per-sample tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import robust_attn as ra
from robust_attn.data.folders import imagenet_wnids
from robust_attn.data.streamed import StreamedDataset
from robust_attn.errors import DataError, DataNotFound

CLASSES = ("cat", "dog", "fox")


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (40, 48), mode: str = "RGB") -> None:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    image = image.convert(mode) if mode != "RGB" else image
    image.save(path, format="PNG" if mode == "RGBA" else "JPEG", quality=90)


def write_folder(root: Path, per_class: int = 4, classes: tuple[str, ...] = CLASSES, sizes: bool = False) -> Path:
    """root/<class>/<i>.jpg; with ``sizes``, the images differ in size and colour mode."""
    modes = ["RGB", "L", "CMYK", "RGBA"]
    for c, name in enumerate(classes):
        for i in range(per_class):
            size = (40 + 8 * i, 48 + 4 * c) if sizes else (40, 48)
            mode = modes[(i + c) % len(modes)] if sizes else "RGB"
            _jpeg(root / name / (f"{i}.png" if mode == "RGBA" else f"{i}.jpg"), seed=100 * c + i, size=size, mode=mode)
    return root


def test_an_image_folder_reads_its_classes_in_turn(tmp_path: Path) -> None:
    """Classes from the sorted folder names; samples take the classes in turn; every colour mode
    becomes RGB; resize and crop make one size of images that differed."""
    root = write_folder(tmp_path / "pets", per_class=3, sizes=True)
    data = ra.load_dataset("imagefolder", data_dir=root, resize=36, crop=32, stream=True)
    assert isinstance(data, StreamedDataset) and data.classes == CLASSES and len(data) == 9
    assert data.labels.tolist() == [0, 1, 2] * 3 and data.image_shape == (3, 32, 32)
    ids, x, _ = next(data.batches(9))
    assert ids.tolist() == list(range(9)) and x.shape == (9, 3, 32, 32) and float(x.min()) >= 0 and float(x.max()) <= 1
    fixed = ra.load_dataset("imagefolder", data_dir=root, resize=36, crop=32, classes=["fox", "dog", "cat", "owl"], stream=True)
    assert fixed.classes == ("fox", "dog", "cat", "owl") and sorted(set(fixed.labels.tolist())) == [0, 1, 2]
    with pytest.raises(DataError, match=r"has shape .* the images differ in size; set resize and crop"):
        list(ra.load_dataset("imagefolder", data_dir=root, stream=True).batches(9))


def test_streamed_and_in_memory_images_are_the_same(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "pets")
    streamed = ra.load_dataset("imagefolder", data_dir=root, stream=True)
    held = ra.load_dataset("imagefolder", data_dir=root, stream=False)
    assert isinstance(streamed, StreamedDataset) and not held.streamed
    a = torch.cat([x for _, x, _ in streamed.batches(5)])
    b = torch.cat([x for _, x, _ in held.batches(5)])
    assert torch.equal(a, b) and torch.equal(streamed.labels, held.labels)
    assert ra.load_dataset("imagefolder", data_dir=root).streamed is False, "auto: a small set is held in memory"


def test_a_streamed_and_an_in_memory_sweep_give_identical_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same images through the whole sweep (FGSM, PGD, the indicators), read batch by batch by
    DataLoader workers or held in memory: the per-sample tables are identical."""
    root = write_folder(tmp_path / "pets", per_class=6)
    (tmp_path / "folder_models.py").write_text(
        "import torch, torch.nn as nn\n\n\ndef make():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tables = []
    for stream in (True, False):
        spec = ra.parse_spec({"models": ["folder_models:make"], "n": 18, "batch_size": 5, "attention_samples": 0, "diagnostic_samples": 6,
                              "dataset": {"name": "imagefolder", "resize": 36, "crop": 32, "stream": stream, "loader_workers": 2},
                              "data_dir": str(root),
                              "attacks": [{"name": "fgsm", "eps": ["0", "4/255"]}, {"name": "pgd", "steps": 3, "eps": ["2/255"]}]})  # fmt: skip
        run = ra.run_sweep(spec, tmp_path / f"run-{stream}", progress=False)
        tables.append(pd.read_parquet(run / "samples.parquet"))
        manifest = ra.load_run(run).manifest
        assert manifest["dataset"]["streamed"] is stream and manifest["dataset"]["preprocessing"]["crop"] == 32
    pd.testing.assert_frame_equal(tables[0], tables[1])


def _imagenet(root: Path, wnids: tuple[str, ...], per_class: int = 2) -> list[str]:
    ids = []
    for c, wnid in enumerate(wnids):
        for i in range(per_class):
            name = f"ILSVRC2012_val_{c * 10 + i:08d}.JPEG"
            _jpeg(root / "val" / wnid / name, seed=c * 10 + i, size=(300, 280))
            ids.append(f"{wnid}/{name}")
    return ids


def test_imagenet_in_robustbench_layout_and_its_id_list(tmp_path: Path) -> None:
    """val/<wnid>/*.JPEG: labels are the wnid's index among the 1000 (a folder holding three classes
    keeps their ImageNet indices); Res256Crop224 by default; subset = "robustbench" reads its id
    list (here a copy, subset_file) in its order, and names a file it lacks."""
    wnids = imagenet_wnids()
    mine = (wnids[1], wnids[500], wnids[999])
    ids = _imagenet(tmp_path, mine)
    data = ra.load_dataset("imagenet", "val", data_dir=tmp_path, stream=True)
    assert len(data.classes) == 1000 and data.image_shape == (3, 224, 224)
    assert sorted(set(data.labels.tolist())) == [1, 500, 999]
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join([ids[3], ids[0], ids[5]]) + "\n")
    subset = ra.load_dataset("imagenet", "val", data_dir=tmp_path, subset="robustbench", subset_file=str(listed))
    assert subset.labels.tolist() == [500, 1, 999], "RobustBench's order, not the folder's"
    listed.write_text(ids[0] + f"\n{wnids[7]}/ILSVRC2012_val_00099999.JPEG\n")
    with pytest.raises(DataNotFound, match=r"1 of the 2 images of subset \"robustbench\" are not under .*val_00099999"):
        ra.load_dataset("imagenet", "val", data_dir=tmp_path, subset="robustbench", subset_file=str(listed))


def test_imagenet_c_serves_its_published_corruptions(tmp_path: Path) -> None:
    """ImageNet-C's tree <corruption>/<severity>/<wnid>/<file> beside val/: a corruption cell reads
    those images for the same samples."""
    wnids = imagenet_wnids()[:2]
    ids = _imagenet(tmp_path, wnids)
    for rel in ids:
        for severity in (1, 3):
            _jpeg(tmp_path / "ImageNet-C" / "fog" / str(severity) / rel, seed=7, size=(224, 224))
    data = ra.load_dataset("imagenet-c", "val", data_dir=tmp_path, stream=True)
    assert data.published_corruptions is not None and data.trained_as == "imagenet"
    images = data.published_corruptions("fog", 3, np.arange(4))
    assert images.shape == (4, 3, 224, 224) and images.dtype == np.uint8
    with pytest.raises(DataNotFound, match="snow/1 not found"):
        data.published_corruptions("snow", 1, np.arange(1))


FACTORY = """
import torch
from torch.utils.data import Dataset


class Squares(Dataset):
    classes = ["dark", "light"]

    def __init__(self, bad=False):
        self.bad = bad
        self.targets = [i % 2 for i in range(10)]

    def __len__(self):
        return 10

    def __getitem__(self, i):
        if self.bad:
            return torch.zeros(3, 16, 16, dtype=torch.uint8), 0
        image = torch.full((3, 16, 16), 0.2 + 0.6 * (i % 2))
        mask = torch.zeros(16, 16, dtype=torch.bool)
        mask[4:12, 4:12] = True
        return image, i % 2, mask


def make():
    return Squares()


def bad():
    return Squares(bad=True)
"""


def test_your_own_data_set_from_a_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "two_shades.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = ra.load_dataset("two_shades:make", n=6)
    assert data.classes == ("dark", "light") and len(data) == 6 and data.has_masks and data.image_shape == (3, 16, 16)
    x, y, masks = data.head(4)
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [0, 1, 0, 1] and masks is not None and masks.shape == (4, 16, 16)
    with pytest.raises(DataError, match=r"item 0's image is torch.uint8 \(3, 16, 16\); return a float tensor \(C, H, W\) in \[0, 1\]"):
        list(ra.load_dataset("two_shades:bad").batches(4))


MANY = """
import torch
import torch.nn as nn
from torch.utils.data import Dataset


class ManyClasses(Dataset):
    classes = [f"c{i:04d}" for i in range(1000)]

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(40, 3, 24, 24, generator=g)
        self.targets = [int(t) for t in torch.randint(0, 1000, (40,), generator=g)]

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return self.images[i], self.targets[i]


def data():
    return ManyClasses()


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 24 * 24, 1000))
"""


def test_a_thousand_classes_go_through_the_pipeline_and_the_report_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1000 classes through the sweep (FGSM, PGD, APGD-T's nine targets) and the report: its by-class
    table shows the least and most robust classes only, not a row per class."""
    (tmp_path / "many.py").write_text(MANY)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ra.parse_spec({"models": ["many:model"], "dataset": "many:data", "n": 40, "batch_size": 20, "attention_samples": 0,
                          "diagnostic_samples": 0, "attacks": [{"name": "fgsm", "eps": ["0", "2/255"]}, {"name": "pgd", "steps": 2, "eps": ["2/255"]},
                                                                {"name": "apgd-t", "steps": 2, "eps": ["2/255"]}]})  # fmt: skip
    run_dir = ra.run_sweep(spec, tmp_path / "run", progress=False)
    run = ra.load_run(run_dir)
    assert len(run.manifest["dataset"]["classes"]) == 1000 and set(run.results["attack"]) == {"fgsm", "pgd-2", "apgd-t-2"}
    from robust_attn.reports.tables import CLASS_EXTREMES, class_extremes

    attack, table = class_extremes(run)
    assert attack is not None and len(table) == 2 * CLASS_EXTREMES and set(table["end"]) == {"least robust", "most robust"}
    report = ra.make_report(run_dir, progress=False)
    section = report.markdown.read_text().split("Robust accuracy by class", 1)[1].split("##", 1)[0]
    assert section.count("\n| c0") == 2 * CLASS_EXTREMES


def test_a_models_own_preprocessing_applies_to_data_held_in_memory(tmp_path: Path) -> None:
    """A small folder is held in memory; a model that declares its preprocessing still gets the
    images decoded at its size (they are decoded again, not reused at the data's)."""
    from robust_attn.data.preprocessing import Preprocessing

    root = write_folder(tmp_path / "pets")  # 40x48 images
    data = ra.load_dataset("imagefolder", data_dir=root, resize=36, crop=32)
    assert not data.streamed and data.image_shape == (3, 32, 32)
    theirs = data.for_model(Preprocessing(28, 24))
    assert theirs.image_shape == (3, 24, 24) and torch.equal(theirs.labels, data.labels)
    assert theirs.record()["preprocessing"]["crop"] == 24


def test_another_folder_into_a_run_is_not_taken_for_the_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """data_dir says where the data lies, not what it is: a folder of other images swept into the
    same run directory with the same spec is computed again, not served the first folder's cells."""
    (tmp_path / "id_models.py").write_text("import torch, torch.nn as nn\n\n\ndef make():\n    torch.manual_seed(0)\n"
                                            "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 48 * 40, 3))\n")  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    a, b = write_folder(tmp_path / "a"), tmp_path / "b"
    for path in sorted(a.rglob("*.jpg")):
        (b / path.relative_to(a)).parent.mkdir(parents=True, exist_ok=True)
        _jpeg(b / path.relative_to(a), seed=999 + len(list(b.rglob("*.jpg"))))
    raw = {"models": ["id_models:make"], "n": 12, "attention_samples": 0, "diagnostic_samples": 0, "dataset": "imagefolder",
           "attacks": [{"name": "fgsm", "eps": ["0", "2/255"]}]}  # fmt: skip
    first = ra.run_sweep(ra.parse_spec({**raw, "data_dir": str(a)}), tmp_path / "run", progress=False)
    before = pd.read_parquet(first / "samples.parquet")
    second = ra.run_sweep(ra.parse_spec({**raw, "data_dir": str(b)}), tmp_path / "run", progress=False)
    after = pd.read_parquet(second / "samples.parquet")
    assert not before["clean_pred"].equals(after["clean_pred"]) or not before["pred"].equals(after["pred"]), "the second folder was swept"
    assert len(list((tmp_path / "run" / "cells").glob("*.parquet"))) == 2
