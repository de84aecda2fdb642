"""The framework backend interface: what the campaign core asks of the framework a model runs in.

A campaign starts from a PyTorch model (the zoo's, a recipe's or the caller's) and its images. A
backend turns them into what its engines run (the model itself, or a converted twin), fixes and
records the numerics that decide every bit of a logit, computes the golden run, and names its
engines (registered in :mod:`faultzoo.backends.engines`). The core (spec, plan, runner, executors,
worker, store, exports) calls these methods and never asks which framework it talks to; backends
are found by name in :data:`faultzoo._registry.BACKENDS`.

Adding a framework: a package ``faultzoo.backends.<name>`` with a :class:`Backend` subclass as
``BACKEND``, engines registered under ``<name>``, and one ``BACKENDS.add`` line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

from faultzoo._registry import BACKENDS
from faultzoo.backends.golden import GoldenRun

__all__ = ["Backend", "Runnable", "backend_names", "get_backend"]


@dataclass(frozen=True)
class Runnable:
    """What a backend's engines run besides the PyTorch model: their extra inputs (a Keras twin, say),
    and what the campaign's provenance and versions record of them."""

    engine_inputs: dict = field(default_factory=dict, repr=False)
    provenance: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)


class Backend(ABC):
    """One framework a campaign can run in. Stateless: one instance per process, shared."""

    name: str  # the registry name, and the ``framework`` of a campaign
    title: str  # how messages name it ("PyTorch")

    @abstractmethod
    def zoo_model(self, model_id: str, weights, *, progress: bool = False):
        """A zoo model in this framework (what ``faultzoo.get_model(..., framework=name)`` returns)."""

    @abstractmethod
    def check_settings(self, *, device: str, tf32: bool) -> None:
        """Refuse settings this backend cannot honour (raising OptionError naming the parameter)."""

    @abstractmethod
    def apply_numerics(self, *, device: str, tf32: bool, threads: int | None, single_threaded: bool) -> dict:
        """Apply, in this process, the settings that decide the bits of every logit; return their record
        (the provenance's ``numerics``)."""

    @abstractmethod
    def identity(self, *, device: str, tf32: bool, numerics: dict) -> dict:
        """The campaign identity's numerics fields: everything of this backend that decides an outcome bit
        (a store written under one identity is never resumed under another)."""

    def worker_numerics(self, identity: dict) -> str:
        """Apply the identity's numerics in a worker process before it computes anything; return a short
        description for messages."""
        return f"torch {torch.__version__}, {torch.get_num_threads()} threads"

    def check_faults(self, model: nn.Module, fault_list) -> None:
        """Raise FaultListFormatError if a fault of the list cannot be injected in this backend (before any
        compute). The default: every fault that fits the PyTorch model does."""

    def runnable(self, model: nn.Module, selection) -> Runnable:
        """What the engines run besides ``model`` (built in every process that runs engines)."""
        return Runnable()

    @abstractmethod
    def golden_run(self, runnable: Runnable, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                   batch_size: int, threads: int = 1) -> GoldenRun:
        """The fault-free logits of every image, in the campaign's batches (the bits every engine compares
        with). ``threads`` > 1: Python threads that may run batches side by side, bits unchanged."""

    def shares_golden_state(self) -> bool:
        """Whether workers on this machine may adopt the driver's golden run from shared memory (after
        reproducing its first batch bit for bit)."""
        return True


def get_backend(name: object) -> Backend:
    """The backend registered as ``name`` (``"torch"``, ``"keras"``)."""
    return BACKENDS.get(name)


def backend_names() -> tuple[str, ...]:
    """Registered framework backends, the default first."""
    return BACKENDS.names()
