"""Campaign engines: ``reference`` (the obvious oracle) and ``fast`` (same outcomes, less work)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from faultzoo.campaign.outcome import Classified
from faultzoo.faults import Fault


class Engine(Protocol):
    """Evaluates faults on every selected image and classifies each inference."""

    name: str

    def run(self, faults: Sequence[tuple[int, Fault]]) -> dict[int, Classified]:
        """Outcomes of each (fault id, fault) on all images, keyed by fault id."""
        ...

    def cost(self, fault: Fault) -> float:
        """Relative work of one fault on one image (only for scheduling)."""
        ...

    def describe(self) -> dict:
        """Settings and start-up checks, for the campaign's provenance."""
        ...


ENGINES = ("fast", "reference")


def make_engine(name: str, model, x, golden, *, batch_size: int, params: Sequence[str] = (), **options) -> Engine:
    from faultzoo.campaign.engines.fast import FastEngine
    from faultzoo.campaign.engines.reference import ReferenceEngine

    if name == "reference":
        return ReferenceEngine(model, x, golden, batch_size=batch_size)
    if name == "fast":
        return FastEngine(model, x, golden, batch_size=batch_size, params=params, **options)
    raise ValueError(f"Unknown engine {name!r}; expected one of {ENGINES}.")
