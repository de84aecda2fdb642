"""Campaign engines: ``reference`` (the obvious oracle) and ``fast`` (same outcomes, less work), and
their Keras counterparts ``keras-reference`` and ``keras-fast`` (:mod:`faultzoo.keras.campaign`).

Importing this package registers every engine (without importing TensorFlow); choose one by name
with :func:`make_engine`.
"""

from __future__ import annotations

from faultzoo.campaign.engines import fast, reference  # noqa: F401  (registration)
from faultzoo.campaign.engines.base import Engine, EngineEntry, engine_entry, engine_names, make_engine, register_engine
from faultzoo.keras.campaign import engines as _keras_engines  # noqa: F401, E402  (registration)

__all__ = ["Engine", "EngineEntry", "engine_entry", "engine_names", "make_engine", "register_engine"]
