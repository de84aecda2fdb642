"""Keras files as weights of a twin: Keras-2 legacy HDF5 (the upstream twins' era), Keras-3 files.

The legacy file is written here by hand in the layout Keras 2 (TF 2.14) used for ``model.save("x.h5")``:
``model_weights/<layer>/<layer>/kernel:0`` with ``layer_names`` / ``weight_names`` attributes,
and a model config Keras 3 could not rebuild (it is never read).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest

from faultzoo.exceptions import CheckpointError
from faultzoo.zoo import get_model
from tests.keras.conftest import needs_tensorflow

needs_tensorflow()

import h5py  # noqa: E402  (installed with keras)
import keras  # noqa: E402

from faultzoo.keras import keras_weights_sha256, load_keras_weights  # noqa: E402

MODEL_ID = "cifar10/resnet20"


def _variables(twin) -> dict[str, dict[str, np.ndarray]]:
    """layer -> {variable: array} of every weighted layer."""
    return {layer.name: {v.path.rsplit("/", 1)[-1]: v.numpy() for v in layer.weights}
            for layer in twin.layers if layer.weights}


def write_keras2_h5(path, layers: dict[str, dict[str, np.ndarray]], weightless=("input_1", "re_lu", "tf.math.add")):
    """A Keras-2 ``model.save("x.h5")`` file holding ``layers`` (and a few weightless layers)."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.14.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"layers": [
            {"class_name": "TFOpLambda", "config": {"name": "tf.math.add", "function": "math.add"}}]}})
        group = f.create_group("model_weights")
        names = list(weightless) + list(layers)
        for name in names:
            layer = group.create_group(name)
            weight_names = []
            for variable, array in layers.get(name, {}).items():
                full = f"{name}/{variable}:0"
                layer.create_dataset(full, data=array)
                weight_names.append(full.encode())
            layer.attrs["weight_names"] = weight_names
        group.attrs["layer_names"] = [n.encode() for n in names]
        group.attrs["keras_version"] = b"2.14.0"
        group.attrs["backend"] = b"tensorflow"


@pytest.fixture(scope="module")
def source(reference_twin):
    return reference_twin(MODEL_ID)


def test_legacy_keras2_h5_loads_by_layer_name(tmp_path, source):
    path = tmp_path / "ResNet20.h5"
    write_keras2_h5(path, _variables(source.twin))
    twin = get_model(MODEL_ID, weights=path, framework="keras")
    loaded, expected = _variables(twin), _variables(source.twin)
    assert loaded.keys() == expected.keys()
    for layer, variables in expected.items():
        for name, array in variables.items():
            assert np.array_equal(loaded[layer][name].view(np.uint32), array.view(np.uint32)), f"{layer}/{name}"
    x = source.x.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(twin(x, training=False).numpy(), source.twin(x, training=False).numpy())
    prov = twin.faultzoo
    assert prov.weights_source == str(path.resolve())
    assert prov.weights_file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov.torch_state_sha256 is None
    assert prov.keras_weights_sha256 == keras_weights_sha256(source.twin)


def test_files_that_do_not_fit_are_refused_whole(tmp_path, source):
    twin = get_model(MODEL_ID, weights=None, framework="keras")
    before = keras_weights_sha256(twin)
    good = _variables(source.twin)

    missing = {k: v for k, v in good.items() if k != "conv2d_5"}
    write_keras2_h5(tmp_path / "missing.h5", missing)
    with pytest.raises(CheckpointError, match="twin layers without tensors: conv2d_5"):
        load_keras_weights(twin, tmp_path / "missing.h5")

    transposed = {**good, "dense": {**good["dense"], "kernel": good["dense"]["kernel"].T.copy()}}
    write_keras2_h5(tmp_path / "shape.h5", transposed)
    with pytest.raises(CheckpointError, match=r"dense/kernel: expected float32 \(64, 10\), found float32 \(10, 64\)"):
        load_keras_weights(twin, tmp_path / "shape.h5")

    extra = {**good, "conv2d_99": good["conv2d"]}
    write_keras2_h5(tmp_path / "extra.h5", extra)
    with pytest.raises(CheckpointError, match="layers the twin does not have: conv2d_99"):
        load_keras_weights(twin, tmp_path / "extra.h5")

    renamed = {**good, "batch_normalization": {**good["batch_normalization"]}}
    renamed["batch_normalization"]["moving_std"] = renamed["batch_normalization"].pop("moving_variance")
    write_keras2_h5(tmp_path / "variable.h5", renamed)
    with pytest.raises(CheckpointError, match=r"batch_normalization/moving_variance: missing.*unexpected variables "
                                              r"\['moving_std'\]"):
        load_keras_weights(twin, tmp_path / "variable.h5")
    assert keras_weights_sha256(twin) == before  # nothing half-written


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_keras3_files_round_trip(tmp_path, source):  # (the warning comes from Keras' own saving code)
    model_file, weights_file = tmp_path / "twin.keras", tmp_path / "twin.weights.h5"
    source.twin.save(model_file)
    source.twin.save_weights(weights_file)
    expected = keras_weights_sha256(source.twin)
    for path in (model_file, weights_file):
        assert get_model(MODEL_ID, weights=path, framework="keras").faultzoo.keras_weights_sha256 == expected
    # The twin's own config (with faultzoo's padding and slicing layers) reloads as a Keras model.
    import faultzoo.keras.layers  # noqa: F401  registers the custom layers

    reloaded = keras.saving.load_model(model_file)
    x = source.x.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(reloaded(x, training=False).numpy(), source.twin(x, training=False).numpy())


def test_keras_2_13_archive_layout(tmp_path, source):
    """.keras archives of Keras 2.13-2.15 keep layers under '_layer_checkpoint_dependencies'."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        for layer, variables in _variables(source.twin).items():
            group = h5.create_group(f"_layer_checkpoint_dependencies/{layer}/vars")
            for i, array in enumerate(variables.values()):  # Keras order: kernel, bias / gamma, beta, mean, var
                group.create_dataset(str(i), data=array)
    path = tmp_path / "ResNet20.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Functional", "keras_version": "2.14.0"}))
        archive.writestr("model.weights.h5", buffer.getvalue())
    twin = get_model(MODEL_ID, weights=path, framework="keras")
    assert twin.faultzoo.keras_weights_sha256 == keras_weights_sha256(source.twin)


def test_unreadable_files(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(CheckpointError, match="Cannot read .*notes.h5 as a Keras file"):
        get_model(MODEL_ID, weights=text, framework="keras")
    archive = tmp_path / "other.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="without 'model.weights.h5'"):
        get_model(MODEL_ID, weights=archive, framework="keras")
    with pytest.raises(CheckpointError, match="not found"):
        get_model(MODEL_ID, weights=tmp_path / "absent.keras", framework="keras")
