"""What every campaign engine provides, and the registry the runner chooses engines from.

An engine evaluates faults on every selected image and classifies each inference against the
golden run. Engines register themselves by name (``@register_engine``); the runner, the executors
and the command line look names up here instead of comparing strings.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from faultzoo.campaign.golden import GoldenRun
from faultzoo.outcome import Classified
from faultzoo.exceptions import FaultzooError
from faultzoo.faults import Fault

__all__ = ["Engine", "EngineEntry", "engine_entry", "engine_names", "make_engine", "register_engine"]


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
    """A registered engine: its name, how to build it, its default options, one line of help."""

    name: str
    factory: EngineFactory
    summary: str
    default_options: Callable[[int], dict]  # engines sharing the machine's memory -> options unless the caller set them


_REGISTRY: dict[str, EngineEntry] = {}


def register_engine(name: str, summary: str, *, default_options: Callable[[int], dict] = lambda workers: {}):
    """Decorator of an engine class (or of a function that builds one): make it available as ``name`` (to
    make_engine, the runner and ``--engine``)."""

    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"engine {name!r} is already registered (by {_REGISTRY[name].factory.__qualname__})")
        _REGISTRY[name] = EngineEntry(name, cls, summary, default_options)
        return cls

    return decorate


def engine_names() -> list[str]:
    """Registered engine names, sorted."""
    return sorted(_REGISTRY)


def engine_entry(name: str) -> EngineEntry:
    """The registered engine ``name``.

    Raises:
        FaultzooError: no such engine (the message lists the registered ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise FaultzooError(f"Unknown engine {name!r}; choose one of {', '.join(engine_names())} (--engine).{hint}") \
            from None


def make_engine(name: str, model: nn.Module, x: torch.Tensor, golden: GoldenRun, *, batch_size: int,
                params: Sequence[str] = (), **options) -> Engine:
    """Build the registered engine ``name`` for these images and this golden run.

    ``params`` lists the parameters the faults will hit (an engine may prepare for them);
    ``options`` are engine-specific (see each engine's constructor).
    """
    return engine_entry(name).factory(model, x, golden, batch_size=batch_size, params=params, **options)
