"""Small Keras layers for PyTorch operations that Keras has no layer for (serializable, so twins save)."""

from __future__ import annotations

from faultzoo.keras._tf import require_keras

keras, _tf = require_keras()

__all__ = ["ConstantPad", "StridedSlice"]


@keras.saving.register_keras_serializable(package="faultzoo")
class ConstantPad(keras.layers.Layer):
    """Pad every non-batch axis by ``(before, after)`` with a constant (``-inf`` for max pools).

    Args:
        pads: One ``(before, after)`` pair per non-batch axis, in the Keras (channels-last) order.
        value: The fill value.
    """

    def __init__(self, pads, value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.pads = tuple(tuple(int(v) for v in pair) for pair in pads)
        self.value = float(value)

    def call(self, inputs):
        return keras.ops.pad(inputs, ((0, 0), *self.pads), constant_values=self.value)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(None if d is None else d + a + b for d, (a, b) in zip(input_shape[1:], self.pads)))

    def get_config(self):
        return {**super().get_config(), "pads": [list(p) for p in self.pads], "value": self.value}


@keras.saving.register_keras_serializable(package="faultzoo")
class StridedSlice(keras.layers.Layer):
    """``x[:, start:stop:step, ...]`` on every non-batch axis (PyTorch basic slicing, positive steps).

    Args:
        slices: One ``(start, stop, step)`` triple per non-batch axis; ``None`` as in Python slices.
    """

    def __init__(self, slices, **kwargs):
        super().__init__(**kwargs)
        self.slices = tuple(tuple(None if v is None else int(v) for v in triple) for triple in slices)

    def call(self, inputs):
        return inputs[(slice(None), *(slice(*triple) for triple in self.slices))]

    def compute_output_shape(self, input_shape):
        dims = [None if d is None else len(range(*slice(*t).indices(d))) for d, t in zip(input_shape[1:], self.slices)]
        return (input_shape[0], *dims)

    def get_config(self):
        return {**super().get_config(), "slices": [list(t) for t in self.slices]}
