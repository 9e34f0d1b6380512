"""Data sets: the generated built-in shapes set, torchvision's natural-image sets, image folders and
ImageNet (streamed from files), and your own (``package.module:factory``)."""

from robust_attn.data.dataset import ImageData, ImageDataset
from robust_attn.data.loading import BUILTIN, list_datasets, load_builtin, load_dataset
from robust_attn.data.shapes import SHAPE_CLASSES, generate_shapes

__all__ = ["BUILTIN", "SHAPE_CLASSES", "ImageData", "ImageDataset", "generate_shapes", "list_datasets", "load_builtin", "load_dataset"]
