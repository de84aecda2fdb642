"""Datasets, the upstream suite's transforms, and deterministic image selections for campaigns."""

from __future__ import annotations

from faultzoo.data.info import DatasetInfo, dataset_info, list_datasets
from faultzoo.data.custom import IMAGEFOLDER, load_data
from faultzoo.data.selection import DataSelection, load_selection, select_indices
from faultzoo.data.sources import NpzDataset, dataset_labels, default_data_root, load_dataset
from faultzoo.data.transforms import test_transform, to_nhwc, train_transform

__all__ = [
    "IMAGEFOLDER",
    "DataSelection",
    "DatasetInfo",
    "NpzDataset",
    "dataset_info",
    "dataset_labels",
    "default_data_root",
    "list_datasets",
    "load_data",
    "load_dataset",
    "load_selection",
    "select_indices",
    "test_transform",
    "to_nhwc",
    "train_transform",
]
