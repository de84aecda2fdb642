"""What every campaign engine provides, and the registry the runner chooses engines from.

An engine evaluates faults on every selected image and classifies each inference against the
golden run. Engines are named per framework backend (``fast`` and ``reference`` of ``torch``, of
``keras``): a backend's module registers its engines (``@register_engine``) when the backend
registry (:mod:`faultzoo._registry`) first imports it, and the runner, the executors and the command
line look them up here by (backend, name) instead of comparing strings.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from faultzoo.backends.golden import GoldenRun
from faultzoo.backends.classify import Classified
from faultzoo._registry import BACKENDS
from faultzoo.exceptions import OptionError
from faultzoo.faults import Fault

__all__ = ["Engine", "EngineEntry", "engine_entry", "engine_names", "make_engine", "memory_budget", "register_engine"]


class Engine(Protocol):
    """Evaluates faults on every selected image and classifies each inference.

    Engines are built cheaply; their start-up work (checks, cached activations) happens in
    :meth:`start`, called explicitly by whoever prepares them or implicitly on first use.
    """

    name: str

    def start(self) -> None:
        """Do the start-up work now (idempotent)."""
        ...

    def run(self, faults: Sequence[tuple[int, Fault]]) -> dict[int, Classified]:
        """Outcomes of each (fault id, fault) on all images, keyed by fault id."""
        ...

    def cost(self, fault: Fault) -> float:
        """Relative work of one fault on one image (only for scheduling)."""
        ...

    def describe(self) -> dict:
        """Settings and start-up checks, for the campaign's provenance."""
        ...

    def export_state(self, *, threads: int = 1) -> dict | None:
        """Start up (on ``threads`` Python threads where that helps) and return what a twin engine in a
        worker process (same model, images, golden run, parameters and options) can reuse through its
        ``prepared`` option, tensors in shared memory; None when there is nothing worth sharing."""
        ...


EngineFactory = Callable[..., Engine]


@dataclass(frozen=True)
class EngineEntry:
    """A registered engine: its backend and name, how to build it, its default options, one line of help.

    ``label`` is the name results record (provenance, ``CampaignResult.engine``): the name itself for
    the default backend's engines, ``<backend>-<name>`` for the others', so that a record says which
    framework computed it."""

    backend: str
    name: str
    factory: EngineFactory
    summary: str
    default_options: Callable[[int], dict]  # engines sharing the machine's memory -> options unless the caller set them
    label: str
    targets: tuple[str, ...]  # the fault target kinds it runs (faultzoo.faults.target_kinds)


_REGISTRY: dict[str, dict[str, EngineEntry]] = {}  # backend -> name -> entry


def register_engine(backend: str, name: str, summary: str, *, label: str | None = None,
                    default_options: Callable[[int], dict] = lambda workers: {}, targets: tuple[str, ...] = ("weight",)):
    """Decorator of an engine class (or of a function that builds one): make it the engine ``name`` of
    the framework backend ``backend`` (to make_engine, the runner and ``--engine``), for faults of the
    target kinds ``targets``."""

    def decorate(cls):
        engines = _REGISTRY.setdefault(backend, {})
        if name in engines:
            raise ValueError(f"engine {name!r} of {backend} is already registered (by "
                             f"{engines[name].factory.__qualname__})")
        engines[name] = EngineEntry(backend, name, cls, summary, default_options, label or name, tuple(targets))
        return cls

    return decorate


def memory_budget(workers: int, *, share: int, floor: int) -> dict:
    """Default options of an engine that caches golden values: a ``memory_budget`` of 1/``share`` of the
    machine's memory, split between the ``workers`` that share it, and at least ``floor`` bytes."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 8 << 30
    return {"memory_budget": max(floor, physical // (share * max(1, workers)))}


def _engines(backend: str) -> dict[str, EngineEntry]:
    BACKENDS.get(backend)  # importing a backend registers its engines
    return _REGISTRY.get(backend, {})


def engine_names(backend: str) -> list[str]:
    """The engine names of a framework backend, sorted."""
    return sorted(_engines(backend))


def engine_entry(backend: str, name: object) -> EngineEntry:
    """The engine ``name`` of the framework backend ``backend`` (its label, e.g. ``keras-fast``, works too).

    Raises:
        OptionError: no such backend, or no such engine in it (the message lists its engines, and says
            which framework to choose where ``name`` is another backend's engine label).
    """
    engines = _engines(backend)
    if isinstance(name, str):
        for entry in engines.values():
            if name in (entry.name, entry.label):
                return entry
    names = ", ".join(sorted(engines))
    if isinstance(name, str):
        for other in BACKENDS.names():
            entry = next((e for e in _engines(other).values() if e.label == name and e.name != name), None)
            if other != backend and entry is not None:
                raise OptionError("engine", name, f"this engine runs on the {other} framework: choose framework "
                                  f"{other!r} with engine {entry.name!r}.", usage=True)
    close = difflib.get_close_matches(name, list(engines), n=1) if isinstance(name, str) else []
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise OptionError("engine", name, f"unknown engine of the {backend} framework; choose one of {names}.{hint}",
                      usage=True)


def make_engine(backend: str, name: str, model: nn.Module, x: torch.Tensor, golden: GoldenRun, *, batch_size: int,
                params: Sequence[str] = (), **options) -> Engine:
    """Build the engine ``name`` of ``backend`` for these images and this golden run.

    ``params`` lists the parameters the faults will hit (an engine may prepare for them);
    ``options`` are engine-specific (see each engine's constructor).
    """
    return engine_entry(backend, name).factory(model, x, golden, batch_size=batch_size, params=params, **options)
