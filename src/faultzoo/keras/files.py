"""Weights of Keras files (``.keras``, ``.h5``, ``.weights.h5``) read by layer name, without their model config.

Only tensors are read: each file's model configuration is ignored, because the upstream twins were
converted from PyTorch by a Keras-2 tool into configurations Keras 3 cannot rebuild. The tensors
are matched to the twin by layer name and shape (see :func:`faultzoo.keras.weights.assign_layer_arrays`).

Layouts understood:

* legacy HDF5 (Keras 2 ``model.save("x.h5")`` / ``save_weights("x.h5")``, Keras 3 ``.h5``):
  ``[model_weights/]<layer>/<layer>/kernel:0`` with the ``layer_names`` and ``weight_names`` attributes;
* Keras-3 weights (``.weights.h5``, and ``model.weights.h5`` inside a ``.keras`` zip):
  ``layers/<layer>/vars/0, 1, ...``, also under ``_layer_checkpoint_dependencies/`` (Keras 2.13-2.15).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from faultzoo.exceptions import CheckpointError

__all__ = ["KERAS_SUFFIXES", "is_keras_file", "read_keras_weights"]

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")

# Per layer: variable name -> array (legacy files name them), or a list in Keras order (saving_lib files).
LayerArrays = dict[str, np.ndarray] | list[np.ndarray]


def is_keras_file(path: object) -> bool:
    """Whether ``path`` names a Keras model or weights file (by suffix)."""
    return isinstance(path, (str, Path)) and str(path).lower().endswith(KERAS_SUFFIXES)


def read_keras_weights(path: str | Path) -> dict[str, LayerArrays]:
    """Layer name -> its arrays, for every layer of the file that holds weights.

    Raises:
        CheckpointError: the file is missing, not HDF5/zip, or has none of the known layouts.
    """
    import h5py  # installed with keras

    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"Keras weights file not found: {path}.")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "model.weights.h5" not in archive.namelist():
                    raise CheckpointError(f"{path} is a zip without 'model.weights.h5' (found {archive.namelist()}); "
                                          "it is not a .keras model file.")
                data = archive.read("model.weights.h5")
            with h5py.File(io.BytesIO(data), "r") as h5:
                return _read_layout(h5, path)
        with h5py.File(path, "r") as h5:
            return _read_layout(h5, path)
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path} as a Keras file (HDF5 or .keras zip): {exc}.") from exc


def _read_layout(h5, path: Path) -> dict[str, LayerArrays]:
    for root in ("layers", "_layer_checkpoint_dependencies"):
        if root in h5:
            return _read_saving_lib(h5[root])
    group = h5["model_weights"] if "model_weights" in h5 else h5
    if "layer_names" in group.attrs:
        return _read_legacy(group, path)
    raise CheckpointError(f"{path}: no Keras weights layout found (expected 'layers/', "
                          "'_layer_checkpoint_dependencies/' or a legacy 'layer_names' attribute).")


def _text(value: object) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _read_legacy(group, path: Path) -> dict[str, LayerArrays]:
    out: dict[str, LayerArrays] = {}
    for layer in map(_text, group.attrs["layer_names"]):
        if layer not in group:
            raise CheckpointError(f"{path}: layer {layer!r} is listed in 'layer_names' but has no group.")
        names = [_text(n) for n in group[layer].attrs.get("weight_names", [])]
        if not names:
            continue
        arrays: dict[str, np.ndarray] = {}
        for name in names:
            # "conv2d/kernel:0" (Keras 2) or "conv2d/kernel" (Keras 3): the variable is the last part.
            short = name.rsplit("/", 1)[-1].split(":", 1)[0]
            if short in arrays:
                raise CheckpointError(f"{path}: layer {layer!r} lists variable {short!r} twice ({names}).")
            arrays[short] = np.asarray(group[layer][name])
        out[layer] = arrays
    return out


def _read_saving_lib(root) -> dict[str, LayerArrays]:
    out: dict[str, LayerArrays] = {}
    for layer, group in root.items():
        variables = group.get("vars")
        if variables is None or not len(variables):
            continue
        out[layer] = [np.asarray(variables[str(i)]) for i in range(len(variables))]
    return out
