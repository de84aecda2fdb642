"""The Keras backend: the campaign's PyTorch model converted to its Keras 3 twin (same weights, bit for bit),
run under exact TensorFlow numerics on the CPU; engines ``reference`` and ``fast`` (recorded as
``keras-reference`` and ``keras-fast``). The fault list stays the PyTorch model's: each fault lands on
the twin's copy of the same tensor element."""

from __future__ import annotations

import torch
from torch import nn

from faultzoo.backends.base import Runnable
from faultzoo.backends.keras.golden import keras_golden_run
from faultzoo.backends.keras.numerics import keras_numerics, pin_keras_threads, set_keras_threads, tf_versions
from faultzoo.backends.keras.reference import twin_for
from faultzoo.backends.keras.targets import TargetMap
from faultzoo.backends.golden import GoldenRun
from faultzoo.backends.torch.backend import TorchBackend
from faultzoo.exceptions import FaultError, FaultListFormatError, OptionError
from faultzoo.keras import get_keras_model
from faultzoo.keras._tf import require_keras
from faultzoo.keras.weights import keras_weights_sha256
from faultzoo.zoo import state_sha256

__all__ = ["KerasBackend"]


class KerasBackend(TorchBackend):
    """Extends the PyTorch backend: the PyTorch model is loaded and checked as there, then converted."""

    name = "keras"
    title = "Keras"

    def zoo_model(self, model_id: str, weights, *, progress: bool = False):
        """The zoo model's Keras twin (TensorFlow is imported now); ``weights`` may also be a ``.keras``/``.h5``
        file."""
        return get_keras_model(model_id, weights, progress=progress)

    def check_settings(self, *, device: str, tf32: bool) -> None:
        if tf32:
            raise OptionError("tf32", tf32, "TF32 applies to PyTorch campaigns; Keras campaigns run strict float32.")
        if device != "cpu":
            raise OptionError("device", device, "Keras campaigns run on TensorFlow's CPU device (the tensorflow-cpu "
                              "build of the tf extra); leave the device at cpu.")

    def apply_numerics(self, *, device: str, tf32: bool, threads: int | None, single_threaded: bool) -> dict:
        """The PyTorch settings (the model is loaded and converted there), and TensorFlow's intra-op threads
        pinned: TensorFlow's convolutions round differently on another number of threads, so the count is
        part of the campaign's identity; it is the same (one, unless ``threads`` says otherwise) whichever
        executor runs the campaign, so that a campaign can be resumed with any of them."""
        require_keras()  # a missing TensorFlow is reported before anything is loaded
        numerics = super().apply_numerics(device=device, tf32=tf32, threads=threads, single_threaded=single_threaded)
        pin_keras_threads(threads or 1)
        return {**numerics, "keras": keras_numerics()}

    def identity(self, *, device: str, tf32: bool, numerics: dict) -> dict:
        keras = numerics["keras"]
        return {**super().identity(device=device, tf32=tf32, numerics=numerics), "framework": self.name,
                "tensorflow": keras["tensorflow"], "keras": keras["keras"], "keras_backend": keras["backend"],
                "keras_threads": keras["intra_op_threads"]}

    def worker_numerics(self, identity: dict) -> str:
        set_keras_threads(identity["keras_threads"], 1)
        return f"TensorFlow {identity['tensorflow']}, {identity['keras_threads']} intra-op threads"

    def check_faults(self, model: nn.Module, fault_list) -> None:
        """Every fault must land on a twin variable (the twin holds conv, linear and batch-norm tensors)."""
        targets = TargetMap(model)
        for position, fault in enumerate(fault_list):
            try:
                targets.target(fault)
            except FaultError as exc:
                raise FaultListFormatError(f"{fault_list.meta.source_file or 'fault list'}: Injection "
                                           f"{fault_list.id_of(position)}: {exc}") from None

    def runnable(self, model: nn.Module, selection) -> Runnable:
        """The twin: ``model`` converted, tensors copied bit for bit."""
        twin = twin_for(model, selection.x)
        return Runnable({"twin": twin}, {"twin": {"framework": self.name, "keras_weights_sha256":
                                                  keras_weights_sha256(twin),
                                                  "converted_from_torch_state_sha256": state_sha256(model)}},
                        tf_versions())

    def golden_run(self, runnable: Runnable, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                   batch_size: int, threads: int = 1) -> GoldenRun:
        return keras_golden_run(runnable.engine_inputs["twin"], x, y, batch_size=batch_size)

    def shares_golden_state(self) -> bool:
        return False  # each worker converts its own twin and computes its own golden run
