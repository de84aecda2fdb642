"""Shared fixtures: where the offline reference material lives, and skips when it is absent.

Tests that need real data or reference files read them from the folder named by
FAULTZOO_TEST_SHARED (default: ``../shared`` beside the checkout) and skip with a reason
when it is missing, so the suite runs anywhere.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Results of these tests are compared bit for bit: pin the thread count like the campaigns do.
torch.set_num_threads(1)


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


@pytest.fixture
def shared() -> Path:
    return require_shared()


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
