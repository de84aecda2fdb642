"""Shared fixtures: where the offline reference material lives, and skips when it is absent.

Tests that need real data or reference files read them from the folder named by
FAULTZOO_TEST_SHARED (default: ``../shared`` beside the checkout) and skip with a reason
when it is missing, so the suite runs anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]

# Results of these tests are compared bit for bit: pin the thread count like the campaigns do.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Files that hold slow tests first (stable otherwise): ``make test`` hands whole files to its
    pytest-xdist processes in this order (--no-loadscope-reorder), so the longest start first and the
    short ones fill the gaps at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def shared_root() -> Path:
    return Path(os.environ.get("FAULTZOO_TEST_SHARED", REPO.parent / "shared")).resolve()


def require_shared(*parts: str) -> Path:
    """Path under the shared reference folder, or skip the test saying what is missing."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference material not available: {path} (set FAULTZOO_TEST_SHARED)")
    return path


@contextmanager
def offline_weights(tmp_path_factory, name: str):
    """The offline weights setup of the autouse fixture below, for module- or session-scoped fixtures
    (which run before it): a fresh cache named ``name``, no network, the shared mirror."""
    require_shared("mirror")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FAULTZOO_HOME", str(tmp_path_factory.mktemp(name)))
        mp.setenv("FAULTZOO_OFFLINE", "1")
        mp.setenv("FAULTZOO_MIRROR", str(shared_root() / "mirror"))
        yield


@pytest.fixture(scope="session")
def computed_once(tmp_path_factory) -> Callable[[str, Callable[[], np.ndarray]], np.ndarray]:
    """``computed_once(key, compute)``: the array ``compute()`` returns, computed by one process of the test
    run and read from disk by every other (pytest-xdist runs test files in several processes; the 10,000-
    image logits of a checkpoint, say, are needed by the PyTorch and the Keras tests alike)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "computed-once"
    folder.mkdir(exist_ok=True)

    def get(key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        path = folder / f"{name}.npy"
        with FileLock(str(path) + ".lock"):
            if not path.is_file():
                partial = path.with_suffix(".partial.npy")
                np.save(partial, np.asarray(compute()))
                os.replace(partial, path)  # never a half-written file under the final name
        return np.load(path)

    return get


def checkpoint_logits(computed_once, model_id: str, data_name: str, model: torch.nn.Module,
                      x: torch.Tensor) -> np.ndarray:
    """A zoo model's PyTorch logits on a shared data file (batch 128, one thread), computed once per test run.

    ``model`` must carry the checkpoint of ``model_id`` (whichever test computes them first loads it)."""
    from faultzoo.inference import predict_logits

    return computed_once(f"torch-logits-{model_id}-{data_name}-b128",
                         lambda: predict_logits(model, x, batch_size=128).numpy())


@pytest.fixture
def shared() -> Path:
    return require_shared()


# ------------------------------------------------------------------ campaign fixtures built once per test module
@pytest.fixture(scope="module")
def env(tmp_path_factory, request):
    """The offline weights setup, for a module's module-scoped fixtures (which run before the autouse one)
    and for the worker processes its campaigns start (they inherit it)."""
    with offline_weights(tmp_path_factory, f"faultzoo-home-{request.module.__name__.rsplit('.', 1)[-1]}"):
        yield


@pytest.fixture(scope="module")
def npz() -> Path:
    """The 1,000 exact CIFAR-10 test images."""
    return require_shared("datasets", "cifar10", "test-first1000-exact.npz")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty weights cache, and never the network."""
    cache = tmp_path_factory.mktemp("faultzoo-home")
    monkeypatch.setenv("FAULTZOO_HOME", str(cache))
    monkeypatch.setenv("FAULTZOO_OFFLINE", "1")
    mirror = shared_root() / "mirror"
    if mirror.exists():
        monkeypatch.setenv("FAULTZOO_MIRROR", str(mirror))
    else:
        monkeypatch.delenv("FAULTZOO_MIRROR", raising=False)
    yield
