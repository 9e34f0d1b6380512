"""Data sets: the generated built-in shapes set and torchvision's natural-image sets."""

from robust_attn.data.dataset import ImageDataset
from robust_attn.data.loading import BUILTIN, list_datasets, load_builtin, load_dataset
from robust_attn.data.shapes import SHAPE_CLASSES, generate_shapes

__all__ = ["BUILTIN", "SHAPE_CLASSES", "ImageDataset", "generate_shapes", "list_datasets", "load_builtin", "load_dataset"]
