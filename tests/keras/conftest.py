"""Fixtures of the Keras twin tests: each twin is built once per session and reused by every test.

TensorFlow is imported only by the tests that need it (``needs_tensorflow``), so the test that
simulates its absence still runs where it is installed.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from faultzoo.zoo.architectures import all_architectures
from faultzoo.zoo import model_info
from tests.conftest import require_shared, shared_root


def needs_tensorflow() -> None:
    """Skip the calling module when TensorFlow/Keras 3 are not installed (the `tf` extra).

    Imports them through faultzoo (which loads triton first: the other order crashes torchvision).
    """
    from faultzoo.exceptions import FrameworkUnavailableError
    from faultzoo.keras._tf import require_keras

    try:
        require_keras()
    except FrameworkUnavailableError as exc:
        pytest.skip(f"Keras twin tests skipped: {exc}", allow_module_level=True)
    # One intra-op thread, as in every Keras campaign (the count decides TensorFlow's rounding): results
    # computed in this process then equal those of campaigns run by the CLI in subprocesses.
    from faultzoo.exceptions import ExactnessError
    from faultzoo.backends.keras import set_keras_threads

    try:
        set_keras_threads(1, 1)
    except ExactnessError:  # TensorFlow already started in this session (with this setting, by this function)
        pass


def reference_module():
    """../shared/zoo/reference_weights.py, imported in place (never copied)."""
    path = require_shared("zoo", "reference_weights.py")
    spec = importlib.util.spec_from_file_location("faultzoo_reference_weights", path)
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


@dataclass
class ReferenceTwin:
    """A zoo architecture with the reference state dict, its Keras twin and the reference input/logits."""

    model_id: str
    model: nn.Module
    twin: object
    x: torch.Tensor  # N×C×H×W reference input
    expected: np.ndarray  # upstream logits for x


def build_reference_twin(model_id: str) -> ReferenceTwin:
    from faultzoo.keras import convert

    ref = reference_module()
    key = model_id.replace("/", "_")
    listing = require_shared("zoo", "upstream_keys", f"{key}.txt")
    expected = np.load(require_shared("zoo", "reference_outputs", f"{key}.npz"))["logits"]
    state = {k: torch.from_numpy(v) for k, v in ref.make_state(ref.read_keys(listing)).items()}
    with torch.device("meta"):  # no random init: every tensor comes from the reference state
        model = all_architectures()[model_id]()
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    info = model_info(model_id)
    x = torch.from_numpy(ref.make_input((4, *info.input_size)))
    return ReferenceTwin(model_id, model, convert(model, info.input_size, name=key), x, expected)


@pytest.fixture(scope="session")
def reference_twin() -> Callable[[str], ReferenceTwin]:
    """model id -> :class:`ReferenceTwin`, built on first request and kept for the session."""
    cache: dict[str, ReferenceTwin] = {}

    def get(model_id: str) -> ReferenceTwin:
        if model_id not in cache:
            cache[model_id] = build_reference_twin(model_id)
        return cache[model_id]

    return get


@pytest.fixture(scope="session")
def offline_env(tmp_path_factory):
    """The offline mirror and a private cache for session-scoped fixtures that load real checkpoints
    (the per-test autouse isolation of tests/conftest.py is not active yet when they run)."""
    mirror = require_shared("mirror")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAULTZOO_HOME", str(tmp_path_factory.mktemp("keras-home")))
        mp.setenv("FAULTZOO_OFFLINE", "1")
        mp.setenv("FAULTZOO_MIRROR", str(mirror))
        yield shared_root()
