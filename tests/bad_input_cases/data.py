"""Bad-input rows about users' data (issue 38): image folders and their files, ImageNet's subset
list, the data table's options, your own data set's factory, and models whose classes do not fit
the folder's. Every file is small and written by the row (Pillow), so every row runs in a second.

Grayscale, CMYK, palette and RGBA images are not rows: they are converted to RGB (documented,
tested in tests/test_your_data.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from badinput import Case, _sweep
from PIL import Image
from torch.utils.data import Dataset

import robust_attn as ra

CLASSES = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "owl", "yak")  # ten, as bi_models:good's logits
HERE = "bad_input_cases.data"  # this module, importable in the test: the data factories and the model below


def _image(path: Path, size: tuple[int, int] = (32, 32), seed: int = 0) -> Path:
    """A random RGB image of ``size`` (width, height), saved in the format of its suffix."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _folder(root: Path, classes: tuple[str, ...] = CLASSES, per_class: int = 2) -> Path:
    """root/<class>/<i>.jpg: ``per_class`` 32x32 JPEGs per class."""
    for c, name in enumerate(classes):
        for i in range(per_class):
            _image(root / name / f"{i}.jpg", seed=10 * c + i)
    return root


def _on(t: Path, root: Path, **options: object) -> list[str]:
    """A sweep of bi_models:good on the image folder ``root`` with the data table's ``options``."""
    table = ", ".join(["name = 'imagefolder'", *(f"{k} = {_toml(v)}" for k, v in options.items())])
    return _sweep(t, body=f"dataset = {{{table}}}\ndata_dir = '{root}'")


def _toml(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


# -- files in the folder -------------------------------------------------------------------------


def empty_class_folder(t: Path) -> list[str]:
    """An image folder ``pets/<class>/*.jpg`` whose class folder ``pets/dog`` holds no image."""
    root = _folder(t / "pets", ("cat", "dog", "fox"))
    for image in (root / "dog").iterdir():
        image.unlink()
    return _on(t, root)


def text_as_jpeg(t: Path) -> list[str]:
    """An image folder whose ``pets/cat`` holds ``0.jpg`` and a text file saved as ``x.jpg`` (a web page a download saved)."""
    root = _folder(t / "pets")
    (root / "cat" / "1.jpg").unlink()
    (root / "cat" / "x.jpg").write_text("<html>404 not found</html>")
    return _on(t, root)


def truncated_jpeg(t: Path) -> list[str]:
    """An image folder whose ``pets/fox/1.jpg`` lost the second half of its bytes (an interrupted copy)."""
    root = _folder(t / "pets")
    path = _image(root / "fox" / "1.jpg", size=(64, 64), seed=99)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return _on(t, root)


def sizes_differ(t: Path) -> list[str]:
    """An image folder of 32x32 JPEGs and one 48x40 PNG, ``pets/owl/big.png``, with no ``resize`` or ``crop``."""
    root = _folder(t / "pets")
    (root / "owl" / "1.jpg").unlink()
    _image(root / "owl" / "big.png", size=(48, 40), seed=5)
    return _on(t, root)


# -- the data table's options --------------------------------------------------------------------


def images_without_class_folders(t: Path) -> list[str]:
    """``data_dir = "pets"`` holding the images themselves, ``pets/*.jpg``, not one folder per class."""
    for i in range(3):
        _image(t / "pets" / f"{i}.jpg", seed=i)
    return _on(t, t / "pets")


def misspelt_option(t: Path) -> list[str]:
    """``dataset = {name = "imagefolder", rezise = 256}`` (two letters swapped)."""
    return _on(t, _folder(t / "pets"), rezise=256)


def stream_maybe(t: Path) -> list[str]:
    """``dataset = {name = "imagefolder", stream = "maybe"}``."""
    return _on(t, _folder(t / "pets"), stream="maybe")


def class_named_twice(t: Path) -> list[str]:
    """``classes = ["cat", "dog", "cat"]`` in the data table of a folder of cat, dog and fox."""
    return _on(t, _folder(t / "pets", ("cat", "dog", "fox")), classes=["cat", "dog", "cat"])


def folder_not_in_classes(t: Path) -> list[str]:
    """``classes = ["cat", "dog"]`` in the data table of a folder of cat, dog and fox."""
    return _on(t, _folder(t / "pets", ("cat", "dog", "fox")), classes=["cat", "dog"])


def no_data_dir(t: Path) -> list[str]:
    """``dataset = "imagefolder"`` with no ``data_dir`` (nor ``--data-dir``)."""
    return _sweep(t, body='dataset = "imagefolder"')


def data_dir_missing(t: Path) -> list[str]:
    """``dataset = "imagefolder"`` whose ``data_dir``, ``pets``, does not exist (a typo, or a disk not mounted)."""
    return _sweep(t, body=f"dataset = 'imagefolder'\ndata_dir = '{t / 'pets'}'")


def data_dir_a_file(t: Path) -> list[str]:
    """``dataset = "imagefolder"`` whose ``data_dir``, ``pets.zip``, is a file (the archive, not unpacked)."""
    (t / "pets.zip").write_bytes(b"PK\x03\x04")
    return _sweep(t, body=f"dataset = 'imagefolder'\ndata_dir = '{t / 'pets.zip'}'")


def absent_subset_ids(t: Path) -> list[str]:
    """ImageNet validation ``val/<wnid>/*.JPEG`` with ``subset = "robustbench"`` and a
    ``subset_file`` naming two images, one of which is not in the folder."""
    from robust_attn.data.folders import imagenet_wnids

    wnid = imagenet_wnids()[0]
    _image(t / "imagenet" / "val" / wnid / "ILSVRC2012_val_00000001.JPEG", seed=1)
    (t / "ids.txt").write_text(f"{wnid}/ILSVRC2012_val_00000001.JPEG\n{wnid}/ILSVRC2012_val_00000002.JPEG\n")
    table = f"{{name = 'imagenet', subset = 'robustbench', subset_file = '{t / 'ids.txt'}'}}"
    return _sweep(t, body=f"dataset = {table}\ndata_dir = '{t / 'imagenet'}'")


def absent_subset_file(t: Path) -> list[str]:
    """``subset = "robustbench"`` with ``subset_file = "ids.txt"``, a file that does not exist."""
    _folder(t / "imagenet" / "val", ("n01440764",))
    table = f"{{name = 'imagenet', subset = 'robustbench', subset_file = '{t / 'ids.txt'}'}}"
    return _sweep(t, body=f"dataset = {table}\ndata_dir = '{t / 'imagenet'}'")


def no_corrupted_dir(t: Path) -> list[str]:
    """``dataset = "imagefolder-c"`` (an image folder with published corrupted copies) without ``corrupted_dir``."""
    return _sweep(t, body=f"dataset = 'imagefolder-c'\ndata_dir = '{_folder(t / 'pets')}'")


def bad_option_value(t: Path, **option: object) -> list[str]:
    """An image folder whose data table sets the option the case names to a value outside those it takes."""
    return _on(t, _folder(t / "pets"), **option)


# -- models whose classes do not fit the folder's ------------------------------------------------


class _Logits(nn.Module):
    """A linear model of 3x32x32 images with ``classes`` logits (fixed random weights)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 32 * 32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def imagenet_head() -> nn.Module:
    """The user's model with ImageNet's 1000 logits."""
    return _Logits(1000)


def thousand_classes_on_ten(t: Path) -> list[str]:
    """A model returning 1000 logits (an ImageNet classifier, ``models = ["my_models:imagenet_head"]``)
    swept on an image folder of 10 classes."""
    return _sweep(t, body=f"dataset = 'imagefolder'\ndata_dir = '{_folder(t / 'pets')}'", models=f'["{HERE}:imagenet_head"]')


def classes_in_another_order(t: Path) -> list[str]:
    """A checkpoint trained on an image folder of 10 classes that records them in reverse order
    (``classes = ["yak", ..., "ant"]``), swept on the folder, whose classes are its sorted folder names."""
    torch.manual_seed(0)
    model = ra.create_model("vgg", num_classes=10, image_size=32, width=0.0625, layout="compact", dropout=0.0)
    meta = {"dataset": "imagefolder", "image_shape": [3, 32, 32], "classes": list(reversed(CLASSES))}
    ra.save_checkpoint(t / "pets-model.safetensors", model, meta)
    return _sweep(t, body=f"dataset = 'imagefolder'\ndata_dir = '{_folder(t / 'pets')}'", models=f'["{t / "pets-model.safetensors"}"]')


# -- your own data set: factories that return the wrong things -----------------------------------


class _Squares(Dataset[tuple[torch.Tensor, int]]):
    """Ten 3x16x16 images of two classes; ``image`` makes item i's image (the ways users get it wrong)."""

    def __init__(self, image: str = "float", labels: int = 2) -> None:
        self.classes = ["dark", "light"]
        self.image, self.targets = image, [i % labels for i in range(10)]

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        value = 0.2 + 0.6 * (i % 2)
        if self.image == "uint8":
            return torch.full((3, 16, 16), int(255 * value), dtype=torch.uint8), self.targets[i]
        if self.image == "hw":
            return torch.full((16, 16), value), self.targets[i]
        return torch.full((3, 16, 16), value), self.targets[i]


class _NoClasses(Dataset[tuple[torch.Tensor, int]]):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.zeros(3, 16, 16), 0


def a_list() -> list[tuple[torch.Tensor, int]]:
    return [(torch.zeros(3, 16, 16), 0), (torch.ones(3, 16, 16), 1)]


def no_classes() -> Dataset[tuple[torch.Tensor, int]]:
    return _NoClasses()


def uint8_images() -> Dataset[tuple[torch.Tensor, int]]:
    return _Squares(image="uint8")


def images_without_channels() -> Dataset[tuple[torch.Tensor, int]]:
    return _Squares(image="hw")


def labels_beyond_classes() -> Dataset[tuple[torch.Tensor, int]]:
    return _Squares(labels=3)


def factory_returns_a_list(t: Path) -> list[str]:
    """Your own data set, ``dataset = "my_data:make"``, whose factory returns a list of (image, label) pairs, not a torch Dataset."""
    return _sweep(t, body=f'dataset = "{HERE}:a_list"')


def factory_without_classes(t: Path) -> list[str]:
    """Your own data set whose Dataset has no ``classes`` attribute."""
    return _sweep(t, body=f'dataset = "{HERE}:no_classes"')


def factory_of_uint8_images(t: Path) -> list[str]:
    """Your own data set whose items are 8-bit images, uint8 tensors (3, 16, 16) in 0..255."""
    return _sweep(t, body=f'dataset = "{HERE}:uint8_images"')


def factory_of_2d_images(t: Path) -> list[str]:
    """Your own data set whose items are float images of shape (16, 16), without the channel axis."""
    return _sweep(t, body=f'dataset = "{HERE}:images_without_channels"')


def factory_labels_beyond_classes(t: Path) -> list[str]:
    """Your own data set with two classes whose targets include the label 2."""
    return _sweep(t, body=f'dataset = "{HERE}:labels_beyond_classes"')


CASES: list[Case] = [
    ("image folder: an empty class folder", lambda t: empty_class_folder(t),
     r"class folder '.*pets/dog' holds no image \(.*\); add images or remove it"),
    ("image folder: a text file as x.jpg", lambda t: text_as_jpeg(t),
     r".*pets/cat/x\.jpg cannot be read \(UnidentifiedImageError: .*\); remove or replace it \(nothing is skipped"),
    ("image folder: a truncated JPEG", lambda t: truncated_jpeg(t),
     r".*pets/fox/1\.jpg cannot be read \(OSError: image file is truncated.*\); remove or replace it \(nothing is skipped"),
    ("image folder: sizes differ, no resize", lambda t: sizes_differ(t),
     r".*pets/owl/big\.png has shape \(3, 40, 48\) .* the images differ in size; set resize and crop in the data table"),
    ("image folder of images, no class folders", lambda t: images_without_class_folders(t),
     r".*pets holds no class folders; an image folder is root/<class>/<image>"),
    ("data table: a misspelt option", lambda t: misspelt_option(t),
     r"dataset: data set 'imagefolder' takes no option 'rezise'; it takes: resize, crop"),
    ("data table: stream = maybe", lambda t: stream_maybe(t), r"dataset\.stream must be true, false or \"auto\", got 'maybe'"),
    ("data table: a class named twice", lambda t: class_named_twice(t), r"dataset\.classes names 'cat' twice; each class once, in the model's order"),
    ("data table: a folder not in classes", lambda t: folder_not_in_classes(t),
     r"class folder '.*pets/fox' is not among the 2 classes given; add it to classes, or remove the folder"),
    ("image folder without data_dir", lambda t: no_data_dir(t), r"imagefolder needs data_dir: the folder holding one folder of images per class"),
    ("image folder: data_dir does not exist", lambda t: data_dir_missing(t),
     r"image folder '.*pets' does not exist; point data_dir at the folder holding <class>/<image>"),
    ("image folder: data_dir is a file", lambda t: data_dir_a_file(t),
     r"image folder '.*pets\.zip' is a file, not a folder; point data_dir at the folder holding <class>/<image>"),
    ("ImageNet subset naming absent files", lambda t: absent_subset_ids(t),
     r"1 of the 2 images of subset \"robustbench\" are not under .*val, e\.g\. .*ILSVRC2012_val_00000002\.JPEG"),
    ("ImageNet subset_file absent", lambda t: absent_subset_file(t),
     r"subset_file '.*ids\.txt' not found; it lists the images as wnid/file lines \(RobustBench's helper_files/imagenet_test_image_ids\.txt\)"),
    ("imagefolder-c without corrupted_dir", lambda t: no_corrupted_dir(t),
     r"imagefolder-c needs corrupted_dir: the folder holding <corruption>/<severity>/<class>/<image>"),
    ("imagefolder-c with a corrupted_dir that does not exist",
     lambda t: _sweep(t, body=f"dataset = {{name = 'imagefolder-c', corrupted_dir = '{t / 'nope'}'}}\ndata_dir = '{_folder(t / 'pets')}'"),
     r"corrupted image folder '.*nope' does not exist; point dataset.corrupted_dir at the folder holding <corruption>/<severity>/<class>/<image>"),
    ("data table: order = random", lambda t: bad_option_value(t, order="random"), r"dataset\.order must be \"stratified\" or \"folder\", got 'random'"),
    ("data table: loader_workers = -1", lambda t: bad_option_value(t, loader_workers=-1), r"dataset\.loader_workers must be an integer >= 0, got -1"),
    ("data table: resize = 0", lambda t: bad_option_value(t, resize=0), r"dataset\.resize must be a positive integer or \[height, width\], got 0"),
    ("data table: interpolation = cubic", lambda t: bad_option_value(t, interpolation="cubic"),
     r"dataset\.interpolation must be one of nearest, bilinear, bicubic, lanczos, box, hamming, got 'cubic'"),
    ("a 1000-class model on a 10-class folder", lambda t: thousand_classes_on_ten(t),
     r"model '.*:imagenet_head' returns \(4, 1000\) for a batch of 4, but the sweep's data imagefolder \(3x32x32 images, 10 classes\) needs logits"),
    ("a model's classes in another order", lambda t: classes_in_another_order(t),
     r"model '.*pets-model\.safetensors' orders its classes differently from the data: its class 0 is 'yak', the data's 'ant'; set classes"),
    ("data factory returns a list", lambda t: factory_returns_a_list(t),
     r"data set '.*:a_list' returned list, not a torch\.utils\.data\.Dataset with a length"),
    ("data factory without classes", lambda t: factory_without_classes(t),
     r"data set '.*:no_classes' has no classes attribute \(a list of class names in label order\); add one"),
    ("data factory of uint8 images", lambda t: factory_of_uint8_images(t),
     r"data set '.*:uint8_images': item 0's image is torch\.uint8 \(3, 16, 16\); return a float tensor \(C, H, W\) in \[0, 1\]"),
    ("data factory of 2-D images", lambda t: factory_of_2d_images(t),
     r"data set '.*:images_without_channels': item 0's image is torch\.float32 \(16, 16\); return a float tensor \(C, H, W\)"),
    ("data factory labels beyond its classes", lambda t: factory_labels_beyond_classes(t),
     r"data set '.*:labels_beyond_classes': a label is outside 0\.\.1 \(its 2 classes\)"),
]  # fmt: skip
