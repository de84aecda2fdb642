"""Registers the Keras backend's engines ``reference`` and ``fast`` (recorded as ``keras-reference`` and
``keras-fast``) with the engine registry. Nothing here imports TensorFlow; the engines do, when built."""

from __future__ import annotations

from faultzoo.backends.engines import memory_budget, register_engine
from faultzoo.backends.keras.fast import KerasFastEngine
from faultzoo.backends.keras.reference import KerasReferenceEngine

__all__ = ["keras_fast_engine", "keras_reference_engine"]


def _fast_defaults(workers: int) -> dict:
    """Golden activations may use an eighth of the machine's memory, split between workers."""
    return memory_budget(workers, share=8, floor=256 << 20)


@register_engine("keras", "reference", "Keras twin: writes the faulty word and runs the whole twin; slow, obviously right",
                 label="keras-reference")
def keras_reference_engine(*args, **kwargs):
    return KerasReferenceEngine(*args, **kwargs)


@register_engine("keras", "fast", "Keras twin: recomputes only the faulty layer and what depends on it; outcomes "
                 "identical to the reference", label="keras-fast", default_options=_fast_defaults)
def keras_fast_engine(*args, **kwargs):
    return KerasFastEngine(*args, **kwargs)
