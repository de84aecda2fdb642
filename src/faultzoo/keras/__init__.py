"""Keras 3 twins of the zoo models: the same function, the same tensors, the upstream layer names.

Importing this package does not import TensorFlow; the functions below do, on first use, and
raise :class:`~faultzoo.exceptions.FrameworkUnavailableError` naming ``pip install "faultzoo[tf]"``
when it is missing.

Typical use::

    import faultzoo
    from faultzoo.data import load_selection
    from faultzoo.keras import predict_logits

    twin = faultzoo.get_model("cifar10/resnet20", framework="keras")
    data = load_selection("cifar10", limit=1000)
    logits = predict_logits(twin, data.x)  # N×C×H×W tensors are converted with to_nhwc
"""

from __future__ import annotations

from typing import Any

from faultzoo.keras.naming import WeightLayer, weight_layers

__all__ = [
    "WeightLayer", "check_available", "convert", "evaluate", "get_keras_model", "keras_weights_sha256",
    "load_keras_weights", "predict_logits", "read_keras_weights", "transfer_weights", "weight_layers",
]


def check_available() -> None:
    """Import TensorFlow and Keras 3 now (numerics pinned: strict float32).

    Raises:
        FrameworkUnavailableError: they are missing or unusable; the message names the `tf` extra.
    """
    from faultzoo.keras._tf import require_keras

    require_keras()


def get_keras_model(model_id: str, weights: Any = "default", *, progress: bool = False) -> Any:
    """The Keras twin of a zoo model; see :func:`faultzoo.keras.twins.get_keras_model`."""
    from faultzoo.keras.twins import get_keras_model as build

    return build(model_id, weights, progress=progress)


def convert(model: Any, input_size: Any, *, name: str = "twin") -> Any:
    """A Keras model computing a PyTorch model; see :func:`faultzoo.keras.twins.convert`."""
    from faultzoo.keras.twins import convert as run

    return run(model, input_size, name=name)


def predict_logits(twin: Any, x: Any, *, batch_size: int = 128, callback: Any = None) -> Any:
    """Logits of a twin on images; see :func:`faultzoo.keras.inference.predict_logits`."""
    from faultzoo.keras.inference import predict_logits as run

    return run(twin, x, batch_size=batch_size, callback=callback)


def evaluate(twin: Any, x: Any, y: Any, *, batch_size: int = 128, callback: Any = None) -> Any:
    """Top-1/top-5 and time of a twin; see :func:`faultzoo.keras.inference.evaluate`."""
    from faultzoo.keras.inference import evaluate as run

    return run(twin, x, y, batch_size=batch_size, callback=callback)


def read_keras_weights(path: Any) -> Any:
    """Layer name -> arrays of a Keras file; see :func:`faultzoo.keras.files.read_keras_weights`."""
    from faultzoo.keras.files import read_keras_weights as run

    return run(path)


def load_keras_weights(twin: Any, path: Any) -> None:
    """Load a Keras file's tensors into a twin by layer name and shape, all or nothing.

    Raises:
        CheckpointError: a missing, extra or differently shaped layer or variable (all named).
    """
    from faultzoo.keras.files import read_keras_weights as read
    from faultzoo.keras.weights import assign_layer_arrays

    assign_layer_arrays(twin, read(path), source=str(path))


def transfer_weights(twin: Any, model: Any) -> None:
    """Copy a PyTorch model's tensors into a twin of the same architecture, bit for bit, all or nothing."""
    from faultzoo.keras.weights import transfer_weights as run

    run(twin, model)


def keras_weights_sha256(twin: Any) -> str:
    """sha256 over every variable of a twin; see :func:`faultzoo.keras.weights.keras_weights_sha256`."""
    from faultzoo.keras.weights import keras_weights_sha256 as run

    return run(twin)
