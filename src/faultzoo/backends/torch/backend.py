"""The PyTorch backend: the model runs as it is, on a CPU or a CUDA device, in strict float32 unless TF32 is
allowed; engines ``reference`` and ``fast``."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from faultzoo.backends.base import Backend, Runnable
from faultzoo.backends.golden import GoldenRun, golden_run
from faultzoo.backends.torch.numerics import numerics_settings
from faultzoo.exceptions import OptionError
from faultzoo.inference import batch_slices
from faultzoo.zoo import get_model

__all__ = ["TorchBackend"]

_logger = logging.getLogger(__name__)


class TorchBackend(Backend):
    name = "torch"
    title = "PyTorch"

    def zoo_model(self, model_id: str, weights, *, progress: bool = False) -> nn.Module:
        return get_model(model_id, weights, progress=progress)

    def check_settings(self, *, device: str, tf32: bool) -> None:
        self.device(device)

    @staticmethod
    def device(device: object) -> torch.device:
        """The torch device a campaign runs on (cpu or an available cuda[:i]).

        Raises:
            OptionError: not a device name, another kind of device, or CUDA that this machine lacks.
        """
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError):
            raise OptionError("device", device, "not a device torch knows; use cpu or cuda[:i].") from None
        if parsed.type not in ("cpu", "cuda"):
            raise OptionError("device", device, "campaigns run on cpu or cuda[:i].")
        if parsed.type == "cuda" and not torch.cuda.is_available():
            raise OptionError("device", device, f"CUDA is not available on this machine (torch {torch.__version__}).")
        return parsed

    def apply_numerics(self, *, device: str, tf32: bool, threads: int | None, single_threaded: bool) -> dict:
        if self.device(device).type == "cpu" and tf32:  # said here, once per campaign (a spec is checked often)
            _logger.warning("tf32=True has no effect on a CPU: CPU kernels compute in strict float32 (TF32 is a "
                            "GPU tensor-core mode); the campaign records tf32 as asked")
        numerics = numerics_settings(self.device(device), tf32=tf32, threads=threads)
        if single_threaded:
            # Every computation of such a campaign runs on one thread: the workers, and the driver's golden
            # run and engine preparation (which then leave the other cores to the workers' start-up).
            numerics["threads"] = 1
        return numerics

    def identity(self, *, device: str, tf32: bool, numerics: dict) -> dict:
        return {"device": torch.device(device).type, "dtype": "float32", "tf32": tf32, "torch": torch.__version__}

    def worker_numerics(self, identity: dict) -> str:
        numerics_settings(torch.device(identity["device"]), tf32=identity["tf32"], threads=None)
        return super().worker_numerics(identity)

    def golden_run(self, runnable: Runnable, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                   batch_size: int, threads: int = 1) -> GoldenRun:
        """The golden run. On ``threads`` > 1 Python threads its batches run side by side, each op on this
        process's single intra-op thread: the very batches and bits of a one-thread run (which the workers
        check: a worker reproduces the driver's golden logits before it computes anything)."""
        if threads <= 1 or x.device.type != "cpu":
            return golden_run(model, x, y, batch_size=batch_size)

        def forward(batch: slice) -> torch.Tensor:
            with torch.inference_mode():  # thread-local: entered in each thread
                return model(x[batch])

        with ThreadPoolExecutor(threads) as pool:
            logits = torch.cat(list(pool.map(forward, batch_slices(len(x), batch_size))))
        return GoldenRun(logits.contiguous(), y.to(torch.int64), batch_size)
