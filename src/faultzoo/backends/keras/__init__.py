"""Keras campaigns: the twin's exact numerics, its golden run, and two engines with identical outcomes.

The engines follow the campaign engine protocol (:class:`faultzoo.backends.engines.Engine`) and take
the same fault lists as the PyTorch engines: each fault names a PyTorch tensor element, which is
mapped to the twin's layer, variable and index (:mod:`faultzoo.backends.keras.targets`). Outcomes
are classified by :func:`faultzoo.outcome.classify` against a :class:`GoldenRun` of the twin.

Typical use::

    import faultzoo
    from faultzoo.data import load_selection
    from faultzoo.faults import read_fault_list
    from faultzoo.backends.keras import KerasFastEngine, keras_golden_run

    model = faultzoo.get_model("cifar10/resnet20")
    twin = faultzoo.get_model("cifar10/resnet20", framework="keras")
    data = load_selection("cifar10", dataset="cifar10", limit=256)
    golden = keras_golden_run(twin, data.x, data.y, batch_size=128)
    engine = KerasFastEngine(model, data.x, golden, batch_size=128, twin=twin)
    faults = read_fault_list("resnet20_keras_FL.csv", model, format="keras")
    outcomes = engine.run(list(enumerate(faults)))

Importing this package registers the backend's engines ``reference`` and ``fast`` (recorded as
``keras-reference`` and ``keras-fast``). Nothing in this package imports TensorFlow before it is used.
"""

from __future__ import annotations

from faultzoo.backends.keras import engines  # noqa: F401  (engine registration)
from faultzoo.backends.keras.backend import KerasBackend
from faultzoo.backends.keras.fast import KerasFastEngine
from faultzoo.backends.keras.golden import keras_golden_run
from faultzoo.backends.keras.numerics import (
    BatchCheck,
    check_batch_dependence,
    exact_numerics,
    keras_numerics,
    pin_keras_threads,
    set_keras_threads,
    tf_versions,
)
from faultzoo.backends.keras.reference import KerasReferenceEngine
from faultzoo.backends.keras.targets import KerasTarget, TargetMap

__all__ = [
    "BACKEND", "BatchCheck", "KerasBackend", "KerasFastEngine", "KerasReferenceEngine", "KerasTarget", "TargetMap",
    "check_batch_dependence", "exact_numerics", "keras_golden_run", "keras_numerics", "pin_keras_threads",
    "set_keras_threads", "tf_versions",
]

BACKEND = KerasBackend()
