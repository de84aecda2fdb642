"""Registers the Keras engines with the campaign's engine registry: ``keras-reference`` and ``keras-fast``.

Importing this module makes both names available to :func:`faultzoo.campaign.engines.make_engine`
(and so to the runner and ``--engine``). Nothing here imports TensorFlow; the engines do, when built.
The engine classes are imported when an engine is built, not here: they import faultzoo.campaign,
whose engine registry imports this module (either package may then be imported first).
"""

from __future__ import annotations

import os

from faultzoo.campaign.engines.base import register_engine

__all__ = ["KERAS_ENGINES", "keras_fast_engine", "keras_reference_engine"]

KERAS_ENGINES = ("keras-fast", "keras-reference")


def _fast_defaults(workers: int) -> dict:
    """Golden activations may use an eighth of the machine's memory, split between workers."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 8 << 30
    return {"memory_budget": max(256 << 20, physical // (8 * max(1, workers)))}


@register_engine("keras-reference", "Keras twin: writes the faulty word and runs the whole twin; slow, obviously right")
def keras_reference_engine(*args, **kwargs):
    from faultzoo.keras.campaign.reference import KerasReferenceEngine

    return KerasReferenceEngine(*args, **kwargs)


@register_engine("keras-fast", "Keras twin: recomputes only the faulty layer and what depends on it; outcomes "
                 "identical to keras-reference", default_options=_fast_defaults)
def keras_fast_engine(*args, **kwargs):
    from faultzoo.keras.campaign.fast import KerasFastEngine

    return KerasFastEngine(*args, **kwargs)
