"""Image folders on disk: any ``root/<class>/<image>`` tree (torchvision's ImageFolder semantics),
ILSVRC2012 validation (``<data_dir>/val/<wnid>/*.JPEG``: RobustBench's layout, and torchvision's
ImageNet layout after it sorts its validation set), and their published corrupted copies
(``<corruption>/<severity>/<class>/<image>``: ImageNet-C).

Classes come from the folder names, sorted (torchvision's order; for ImageNet the 1000 wnids,
so a folder holding a few of them keeps their indices); ``classes = [...]`` fixes another order,
a model's. Samples are ordered class by class in turn (the first image of each class, then the
second, ...), so the first ``n`` are spread over the classes; ``order = "folder"`` keeps
torchvision's order (class-major). Files whose extension is not an image's are ignored.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robust_attn.data.dataset import ImageData
from robust_attn.data.preprocessing import Preprocessing, from_options
from robust_attn.data.streamed import FileItems, StreamedDataset
from robust_attn.errors import DataError, DataNotFound

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # shown in reports; models normalise themselves
ROBUSTBENCH_IDS = "helper_files/imagenet_test_image_ids.txt"  # in the robustbench package: its 5,000 ImageNet test images


def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ILSVRC2012 class ids in torchvision's (sorted) order."""
    return tuple(resources.files("robust_attn.data").joinpath("imagenet_wnids.txt").read_text().split())


def _folder(path: Path, what: str, layout: str = "<class>/<image>", field: str = "data_dir") -> Path:
    """``path``, a folder; else one line saying what it should hold (``layout``) and which field names it."""
    if path.is_file():
        raise DataNotFound(f"{what} {str(path)!r} is a file, not a folder; point {field} at the folder holding {layout}")
    if not path.is_dir():
        raise DataNotFound(f"{what} {str(path)!r} does not exist; point {field} at the folder holding {layout}")
    return path


def scan(root: Path, classes: tuple[str, ...] | None = None) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """(image paths, labels, class names) of ``root/<class>/<image>``; class names sorted, or the
    given order (every folder must be one of them; a class may have no folder)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    folders = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not folders:
        raise DataNotFound(f"{root} holds no class folders; an image folder is root/<class>/<image> (see docs: Your data)")
    names = classes if classes is not None else tuple(folders)
    index = {c: i for i, c in enumerate(names)}
    unknown = [f for f in folders if f not in index]
    if unknown:
        raise DataError(f"class folder {str(root / unknown[0])!r} is not among the {len(names)} classes given; "
                        f"add it to classes, or remove the folder ({len(unknown)} such folder(s))")  # fmt: skip
    paths, labels = [], []
    for folder in folders:
        files = sorted(p for p in (root / folder).iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
        if not files:
            raise DataError(f"class folder {str(root / folder)!r} holds no image ({', '.join(IMG_EXTENSIONS)}); add images or remove it")
        paths += files
        labels += [index[folder]] * len(files)
    return paths, labels, names


def stratified(labels: list[int]) -> np.ndarray:
    """An order that takes each class's images in turn (first of each class, then second, ...)."""
    labels_arr = np.asarray(labels)
    rank = np.zeros(len(labels_arr), dtype=np.int64)
    for c in np.unique(labels_arr):
        where = np.flatnonzero(labels_arr == c)
        rank[where] = np.arange(len(where))
    return np.lexsort((labels_arr, rank))


def _classes(options: dict[str, Any]) -> tuple[str, ...] | None:
    given = options.get("classes")
    if given is None:
        return None
    if not isinstance(given, list | tuple) or not given or not all(isinstance(c, str) for c in given):
        raise DataError(f"dataset.classes must be a non-empty list of class names (folder names), got {given!r}")
    twice = next((c for c in given if given.count(c) > 1), None)
    if twice is not None:
        raise DataError(f"dataset.classes names {twice!r} twice; each class once, in the model's order")
    return tuple(given)


def finish(data: StreamedDataset, n: int | None, options: dict[str, Any]) -> ImageData:
    """The first ``n`` samples, held in memory when they fit (``stream = "auto"``), else streamed."""
    data = data.subset(n)
    stream = options.get("stream", "auto")
    if stream not in ("auto", True, False):
        raise DataError(f'dataset.stream must be true, false or "auto", got {stream!r}')
    return _as_asked(data, stream)


def _as_asked(data: StreamedDataset, stream: object) -> ImageData:
    """``stream = false``: decoded and held; ``"auto"``: held when it fits; ``true``: streamed."""
    if stream is False:
        return data.in_memory()
    return data.held_if_small() if stream == "auto" else data


def _streamed(name: str, split: str, paths: list[Path], labels: list[int], classes: tuple[str, ...], options: dict[str, Any],
              mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.25, 0.25, 0.25)) -> StreamedDataset:  # fmt: skip
    order = stratified(labels) if options.get("order", "stratified") == "stratified" else np.arange(len(paths))
    if options.get("order", "stratified") not in ("stratified", "folder"):
        raise DataError(f'dataset.order must be "stratified" or "folder", got {options.get("order")!r}')
    workers = options.get("loader_workers", 2)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise DataError(f"dataset.loader_workers must be an integer >= 0, got {workers!r}")
    pre = from_options(options)
    items = FileItems([paths[i] for i in order], pre)
    return StreamedDataset(name, split, items, torch.tensor([labels[i] for i in order], dtype=torch.long), classes, mean, std, pre,
                           workers=workers)  # fmt: skip


def load_imagefolder(split: str, n: int | None, data_dir: str | Path | None, *, name: str = "imagefolder", **options: Any) -> ImageData:
    """``data_dir`` is the folder of class folders (the split is only a label)."""
    if data_dir is None:
        raise DataNotFound(f"{name} needs data_dir: the folder holding one folder of images per class (root/<class>/<image>)")
    root = _folder(Path(data_dir).expanduser(), "image folder")
    paths, labels, classes = scan(root, _classes(options))
    return finish(_streamed(name, split, paths, labels, classes, options), n, options)


def robustbench_ids(options: dict[str, Any]) -> list[str]:
    """RobustBench's ImageNet test images (``wnid/file`` lines, in its order): from ``subset_file``,
    else from the installed robustbench package."""
    given = options.get("subset_file")
    if given is not None:
        path = Path(str(given)).expanduser()
        if not path.is_file():
            raise DataNotFound(
                f"subset_file {str(path)!r} not found; it lists the images as wnid/file lines (RobustBench's {ROBUSTBENCH_IDS})"
            )
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        text = resources.files("robustbench").joinpath(ROBUSTBENCH_IDS).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        raise DataNotFound(f"subset = \"robustbench\" needs RobustBench's list of its 5,000 ImageNet test images, robustbench/{ROBUSTBENCH_IDS}: "
                           "pip install robustbench, or set subset_file = PATH to a copy") from None  # fmt: skip
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_imagenet(split: str, n: int | None, data_dir: str | Path | None, **options: Any) -> ImageData:
    """ILSVRC2012 validation: ``<data_dir>/val/<wnid>/*.JPEG``; ``subset = "robustbench"``: its
    5,000 images in its order. Preprocessing defaults to RobustBench's Res256Crop224."""
    if data_dir is None:
        raise DataNotFound("imagenet needs data_dir: the folder holding val/<wnid>/*.JPEG (ILSVRC2012 validation, RobustBench's layout)")
    if split not in ("val", "test"):
        raise DataError(f'imagenet has the validation images only (split = "val" or "test", both ILSVRC2012 val), not {split!r}')
    root = _folder(Path(data_dir).expanduser() / "val", "ImageNet validation folder", "val/<wnid>/*.JPEG")
    options = {"resize": 256, "crop": 224, **options}
    wnids = imagenet_wnids()
    subset = options.get("subset")
    if subset not in (None, "robustbench"):
        raise DataError(f'subset must be "robustbench" (RobustBench\'s 5,000 images) or left out (every image), got {subset!r}')
    if subset is None:
        paths, labels, _ = scan(root, wnids)
        return finish(_streamed("imagenet", split, paths, labels, wnids, options, IMAGENET_MEAN, IMAGENET_STD), n, options)
    ids = robustbench_ids(options)
    index = {w: i for i, w in enumerate(wnids)}
    paths = [root / i for i in ids]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataNotFound(f"{len(missing)} of the {len(ids)} images of subset \"robustbench\" are not under {root}, e.g. {missing[0]}; "
                           "the folder must hold ILSVRC2012 validation as val/<wnid>/<file>")  # fmt: skip
    labels = [index[i.split("/")[0]] for i in ids]
    data = _streamed("imagenet", split, paths, labels, wnids, {**options, "order": "folder"}, IMAGENET_MEAN, IMAGENET_STD)
    return finish(data, n, options)


def published_from(tree: Path, data: ImageData, relative: list[str]) -> Any:
    """A loader of the published corrupted copies ``tree/<corruption>/<severity>/<relative path>``
    of the data's samples, as uint8 (B, C, H, W): what the corruption cells evaluate."""

    @lru_cache(maxsize=4)
    def exists(corruption: str, severity: int) -> Path:
        folder = tree / corruption / str(severity)
        if not folder.is_dir():
            raise DataNotFound(f"{folder} not found: the published corruptions are <corruption>/<severity>/<class>/<image> under {tree}")
        return folder

    def load(corruption: str, severity: int, idx: np.ndarray) -> np.ndarray:
        folder = exists(corruption, int(severity))
        items = FileItems([folder / relative[int(i)] for i in idx], Preprocessing())
        out = []
        for i in range(len(items)):
            path = items.paths[i]
            if not path.is_file():
                raise DataNotFound(f"{path} not found: {corruption} severity {severity} lacks a sample of the clean set")
            out.append(items.load(i)[0])
        images = torch.stack(out).numpy()
        if images.shape[1:] != tuple(data.image_shape):
            raise DataError(f"{folder}: its images are {images.shape[1:]}, the clean ones {tuple(data.image_shape)} after preprocessing; "
                            "set resize and crop so that both match")  # fmt: skip
        return images

    return load


def _relative(data: StreamedDataset, root: Path) -> list[str]:
    assert isinstance(data.items, FileItems) and data.indices is not None
    return [str(data.items.paths[int(i)].relative_to(root)) for i in data.indices]


def load_imagenet_c(split: str, n: int | None, data_dir: str | Path | None, **options: Any) -> ImageData:
    """ImageNet validation with ImageNet-C's published copies under ``<data_dir>/ImageNet-C``."""
    clean = load_imagenet(split, n, data_dir, **{**options, "stream": True})
    assert isinstance(clean, StreamedDataset) and data_dir is not None
    tree = _folder(Path(data_dir).expanduser() / "ImageNet-C", "ImageNet-C folder", "ImageNet-C/<corruption>/<severity>/<wnid>/<image>")
    relative = _relative(clean, Path(data_dir).expanduser() / "val")
    return _with_published(clean, tree, relative, "imagenet-c", "imagenet", options)


def load_imagefolder_c(split: str, n: int | None, data_dir: str | Path | None, **options: Any) -> ImageData:
    """An image folder (``data_dir``) with published corrupted copies under ``corrupted_dir``."""
    corrupted = options.get("corrupted_dir")
    if corrupted is None:
        raise DataNotFound("imagefolder-c needs corrupted_dir: the folder holding <corruption>/<severity>/<class>/<image>")
    clean = load_imagefolder(split, n, data_dir, name="imagefolder-c", **{**options, "stream": True})
    assert isinstance(clean, StreamedDataset) and data_dir is not None
    tree = _folder(
        Path(str(corrupted)).expanduser(), "corrupted image folder", "<corruption>/<severity>/<class>/<image>", "dataset.corrupted_dir"
    )
    return _with_published(clean, tree, _relative(clean, Path(data_dir).expanduser()), "imagefolder-c", "imagefolder", options)


def _with_published(
    clean: StreamedDataset, tree: Path, relative: list[str], name: str, trained_as: str, options: dict[str, Any]
) -> ImageData:
    from dataclasses import replace

    data = replace(clean, name=name, trained_as=trained_as)
    data = replace(data, published_corruptions=published_from(tree, data, relative))
    return _as_asked(data, options.get("stream", "auto"))
