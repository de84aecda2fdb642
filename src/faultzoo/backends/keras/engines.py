"""Registers the Keras backend's engines ``reference`` and ``fast`` (recorded as ``keras-reference`` and
``keras-fast``) with the engine registry. Nothing here imports TensorFlow; the engines do, when built."""

from __future__ import annotations

import os

from faultzoo.backends.engines import register_engine
from faultzoo.backends.keras.fast import KerasFastEngine
from faultzoo.backends.keras.reference import KerasReferenceEngine

__all__ = ["keras_fast_engine", "keras_reference_engine"]


def _fast_defaults(workers: int) -> dict:
    """Golden activations may use an eighth of the machine's memory, split between workers."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 8 << 30
    return {"memory_budget": max(256 << 20, physical // (8 * max(1, workers)))}


@register_engine("keras", "reference", "Keras twin: writes the faulty word and runs the whole twin; slow, obviously right",
                 label="keras-reference")
def keras_reference_engine(*args, **kwargs):
    return KerasReferenceEngine(*args, **kwargs)


@register_engine("keras", "fast", "Keras twin: recomputes only the faulty layer and what depends on it; outcomes "
                 "identical to the reference", label="keras-fast", default_options=_fast_defaults)
def keras_fast_engine(*args, **kwargs):
    return KerasFastEngine(*args, **kwargs)
