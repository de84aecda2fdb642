"""Static facts about the supported datasets: classes, input size, normalisation, test-set size."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from faultzoo.exceptions import DatasetError, UnknownDatasetError, found

__all__ = ["DatasetInfo", "check_image_size", "dataset_info", "list_datasets"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model trained on a dataset expects from its input.

    Attributes:
        name: Registry name (``"cifar10"``, ``"cifar100"``, ``"gtsrb"``).
        num_classes: Number of output classes.
        input_size: Network input as (C, H, W), after the test transform.
        mean: Per-channel mean of the seed's ``Normalize``, exactly as written there.
        std: Per-channel std of the seed's ``Normalize``, exactly as written there.
        categories: Class names, index = label.
        test_size: Number of images in the official test split.
    """

    name: str
    num_classes: int
    input_size: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    categories: tuple[str, ...]
    test_size: int

    def __post_init__(self) -> None:
        # A wrong table entry would silently mislabel every report: refuse it at import.
        if len(self.categories) != self.num_classes:
            raise DatasetError(
                f"DatasetInfo {self.name!r}: {len(self.categories)} categories for {self.num_classes} classes"
            )


_CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# Fine labels in the order of the dataset's meta file (alphabetical), which is torchvision's `classes`.
_CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip

# GTSRB ClassId 0..42 (checked against one test image of every class).
_GTSRB_CLASSES = (
    "Speed limit (20km/h)",
    "Speed limit (30km/h)",
    "Speed limit (50km/h)",
    "Speed limit (60km/h)",
    "Speed limit (70km/h)",
    "Speed limit (80km/h)",
    "End of speed limit (80km/h)",
    "Speed limit (100km/h)",
    "Speed limit (120km/h)",
    "No passing",
    "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection",
    "Priority road",
    "Yield",
    "Stop",
    "No vehicles",
    "Vehicles over 3.5 metric tons prohibited",
    "No entry",
    "General caution",
    "Dangerous curve to the left",
    "Dangerous curve to the right",
    "Double curve",
    "Bumpy road",
    "Slippery road",
    "Road narrows on the right",
    "Road work",
    "Traffic signals",
    "Pedestrians",
    "Children crossing",
    "Bicycles crossing",
    "Beware of ice/snow",
    "Wild animals crossing",
    "End of all speed and passing limits",
    "Turn right ahead",
    "Turn left ahead",
    "Ahead only",
    "Go straight or right",
    "Go straight or left",
    "Keep right",
    "Keep left",
    "Roundabout mandatory",
    "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
)

# mean/std are copied digit for digit from the upstream suite's test transforms (its README):
# rounding them differently changes the input bits and therefore every fault outcome.
_DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="cifar10",
            num_classes=10,
            input_size=(3, 32, 32),
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2023, 0.1994, 0.2010),
            categories=_CIFAR10_CLASSES,
            test_size=10000,
        ),
        DatasetInfo(
            name="cifar100",
            num_classes=100,
            input_size=(3, 32, 32),
            mean=(0.5070751592371323, 0.48654887331495095, 0.4409178433670343),
            std=(0.2673342858792401, 0.2564384629170883, 0.27615047132568404),
            categories=_CIFAR100_CLASSES,
            test_size=10000,
        ),
        DatasetInfo(
            name="gtsrb",
            num_classes=43,
            input_size=(3, 50, 50),
            mean=(0.3403, 0.3121, 0.3214),
            std=(0.2724, 0.2608, 0.2669),
            categories=_GTSRB_CLASSES,
            # The upstream README says 12,640; the official GT-final_test.csv lists 12,630.
            test_size=12630,
        ),
    )
}


def list_datasets() -> list[str]:
    """Names of the supported datasets, sorted."""
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """Facts about one dataset.

    Args:
        name: A name from :func:`list_datasets` (case-sensitive).

    Raises:
        UnknownDatasetError: ``name`` is not supported; the message lists the valid names.
    """
    try:
        return _DATASETS[name]
    except (KeyError, TypeError):
        raise UnknownDatasetError(unknown_dataset_message(name)) from None


def unknown_dataset_message(name: object) -> str:
    """The shared wording for an unknown dataset name (with a close match when there is one)."""
    valid = list_datasets()
    msg = f"Unknown dataset {found(name)}."
    close = difflib.get_close_matches(name.lower(), valid, n=1) if isinstance(name, str) else []
    if close:
        msg += f" Did you mean {close[0]!r}?"
    return msg + f" Valid datasets: {', '.join(valid)}."


def check_image_size(where: str, dataset: str, height: int, width: int) -> None:
    """The one rule for images given to a zoo dataset's models (an ``.npz``'s pixels, an image folder's
    images after their transform): they must be the dataset's input size; no model is left to resize
    them silently (a CIFAR model with global pooling takes 64×64 images and computes something else).

    Raises:
        DatasetError: naming ``where`` (the file or folder), the images' size and the size expected.
    """
    info = dataset_info(dataset)
    _, h, w = info.input_size
    if (height, width) != (h, w):
        raise DatasetError(
            f"{where} does not fit {info.name}: images are {height}×{width}, {info.name} models expect {h}×{w}."
        )
