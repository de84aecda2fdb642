"""Keras campaigns: the twin's exact numerics, its golden run, and two engines with identical outcomes.

The engines follow the campaign engine protocol (:class:`faultzoo.campaign.engines.Engine`) and take
the same fault lists as the PyTorch engines: each fault names a PyTorch tensor element, which is
mapped to the twin's layer, variable and index (:mod:`faultzoo.keras.campaign.targets`). Outcomes
are classified by :func:`faultzoo.outcome.classify` against a :class:`GoldenRun` of the twin.

Typical use::

    import faultzoo
    from faultzoo.data import load_selection
    from faultzoo.faults import read_fault_list
    from faultzoo.keras.campaign import KerasFastEngine, keras_golden_run

    model = faultzoo.get_model("cifar10/resnet20")
    twin = faultzoo.get_model("cifar10/resnet20", framework="keras")
    data = load_selection("cifar10", dataset="cifar10", limit=256)
    golden = keras_golden_run(twin, data.x, data.y, batch_size=128)
    engine = KerasFastEngine(model, data.x, golden, batch_size=128, twin=twin)
    faults = read_fault_list("resnet20_keras_FL.csv", model, format="keras")
    outcomes = engine.run(list(enumerate(faults)))

Importing :mod:`faultzoo.keras.campaign.engines` registers the engines as ``keras-reference`` and
``keras-fast``. Nothing in this package imports TensorFlow before it is used.
"""

from __future__ import annotations

from faultzoo.keras.campaign.fast import KerasFastEngine
from faultzoo.keras.campaign.golden import keras_golden_run
from faultzoo.keras.campaign.numerics import (
    BatchCheck,
    check_batch_dependence,
    exact_numerics,
    keras_numerics,
    pin_keras_threads,
    set_keras_threads,
    tf_versions,
)
from faultzoo.keras.campaign.reference import KerasReferenceEngine
from faultzoo.keras.campaign.targets import KerasTarget, TargetMap

__all__ = [
    "BatchCheck", "KerasFastEngine", "KerasReferenceEngine", "KerasTarget", "TargetMap", "check_batch_dependence",
    "exact_numerics", "keras_golden_run", "keras_numerics", "pin_keras_threads", "set_keras_threads",
    "tf_versions",
]
