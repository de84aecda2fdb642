"""Dataset facts: names, normalisation constants from the seed, categories, unknown names."""

from __future__ import annotations

import dataclasses

import pytest

from faultzoo.data import dataset_info, list_datasets
from faultzoo.exceptions import FaultzooError, UnknownDatasetError


def test_list_datasets_is_sorted_and_complete():
    assert list_datasets() == ["cifar10", "cifar100", "gtsrb"]


@pytest.mark.parametrize(
    ("name", "classes", "size", "mean", "std", "test_size"),
    [
        ("cifar10", 10, (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), 10000),
        (
            "cifar100",
            100,
            (3, 32, 32),
            (0.5070751592371323, 0.48654887331495095, 0.4409178433670343),
            (0.2673342858792401, 0.2564384629170883, 0.27615047132568404),
            10000,
        ),
        ("gtsrb", 43, (3, 50, 50), (0.3403, 0.3121, 0.3214), (0.2724, 0.2608, 0.2669), 12630),
    ],
)
def test_info_matches_seed(name, classes, size, mean, std, test_size):
    info = dataset_info(name)
    assert info.name == name
    assert info.num_classes == classes == len(info.categories)
    assert info.input_size == size
    assert info.mean == mean and info.std == std  # exact, digit for digit
    assert info.test_size == test_size
    assert len(set(info.categories)) == classes


def test_categories_known_positions():
    assert dataset_info("cifar10").categories[:3] == ("airplane", "automobile", "bird")
    c100 = dataset_info("cifar100").categories
    # torchvision's order is the meta file's, which is alphabetical.
    assert list(c100) == sorted(c100)
    assert (c100[0], c100[1], c100[99]) == ("apple", "aquarium_fish", "worm")
    gtsrb = dataset_info("gtsrb").categories
    assert (gtsrb[0], gtsrb[14], gtsrb[17], gtsrb[42]) == (
        "Speed limit (20km/h)",
        "Stop",
        "No entry",
        "End of no passing by vehicles over 3.5 metric tons",
    )


def test_info_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset_info("cifar10").num_classes = 11  # type: ignore[misc]


def test_unknown_dataset_lists_names_and_close_match():
    with pytest.raises(UnknownDatasetError) as exc:
        dataset_info("cifar-10")
    msg = str(exc.value)
    assert "'cifar-10'" in msg
    assert "Did you mean 'cifar10'?" in msg
    assert "cifar10, cifar100, gtsrb" in msg
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, FaultzooError)


def test_unknown_dataset_without_close_match():
    with pytest.raises(UnknownDatasetError) as exc:
        dataset_info("imagenet")
    assert "Did you mean" not in str(exc.value)
    assert "cifar10, cifar100, gtsrb" in str(exc.value)
