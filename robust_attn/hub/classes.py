"""Class names of the data sets RobustBench models are trained on, in label order.

Recorded without loading weights or data, so a sweep can refuse a model whose classes do not
fit its data before any work. The order is torchvision's (the order of the label indices).
"""

from __future__ import annotations

CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# fmt: off
CIFAR100_CLASSES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy", "bridge",
    "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach",
    "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster",
    "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree",
    "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck",
    "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea",
    "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
# fmt: on

IMAGENET_NUM_CLASSES = 1000

# What each RobustBench data set records: its name in this suite, image shape and classes (names,
# or a count where listing them is not worth it: no ImageNet loader exists in this suite).
RECORDED: dict[str, dict[str, object]] = {
    "cifar10": {"dataset": "cifar10", "image_shape": [3, 32, 32], "classes": list(CIFAR10_CLASSES)},
    "cifar100": {"dataset": "cifar100", "image_shape": [3, 32, 32], "classes": list(CIFAR100_CLASSES)},
    "imagenet": {"dataset": "imagenet", "image_shape": None, "classes": IMAGENET_NUM_CLASSES},
}
