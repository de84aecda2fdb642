"""Framework backends: the frameworks a campaign's model runs in, each with its own engines.

* :mod:`faultzoo.backends.base`: the :class:`Backend` interface the campaign core calls.
* :mod:`faultzoo.backends.engines`: the engine protocol and the registry of each backend's engines.
* :mod:`faultzoo.backends.golden`: the golden run every engine compares with.
* :mod:`faultzoo.backends.torch`: PyTorch (the default): ``reference`` and ``fast``.
* :mod:`faultzoo.backends.keras`: the Keras 3 twin of the PyTorch model: ``reference`` and ``fast``.

Backends are imported on first use through :data:`faultzoo._registry.BACKENDS`.
"""

from faultzoo.backends.base import Backend, Runnable, backend_names, get_backend
from faultzoo.backends.engines import Engine, EngineEntry, engine_entry, engine_names, make_engine, register_engine
from faultzoo.backends.golden import GoldenRun

__all__ = ["Backend", "Engine", "EngineEntry", "GoldenRun", "Runnable", "backend_names", "engine_entry",
           "engine_names", "get_backend", "make_engine", "register_engine"]
