"""The PyTorch backend (:class:`TorchBackend`) and its engines: ``reference`` (flip the stored word, run the
whole network) and ``fast`` (recompute only what the fault can change; identical outcomes)."""

from faultzoo.backends.torch import fast, reference  # noqa: F401  (engine registration)
from faultzoo.backends.torch.backend import TorchBackend

__all__ = ["BACKEND", "TorchBackend"]

BACKEND = TorchBackend()
