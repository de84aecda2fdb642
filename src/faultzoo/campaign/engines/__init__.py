"""Campaign engines: ``reference`` (the obvious oracle) and ``fast`` (same outcomes, less work).

Importing this package registers every engine; choose one by name with :func:`make_engine`.
"""

from __future__ import annotations

from faultzoo.campaign.engines import fast, reference  # noqa: F401  (registration)
from faultzoo.campaign.engines.base import Engine, EngineEntry, engine_entry, engine_names, make_engine, register_engine

__all__ = ["Engine", "EngineEntry", "engine_entry", "engine_names", "make_engine", "register_engine"]
