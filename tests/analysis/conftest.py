"""Fixtures of the analysis tests: one real resnet20 campaign per session, and the published upstream files.

The campaign (200 faults of resnet20's dnn-benchmarks list x 50 exact CIFAR-10 test images, upstream
weights, per-image outcomes kept) is built once, in a temporary folder, and read by every test that
needs real results; tests that change it work on copies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import offline_weights, require_shared

MODEL = "cifar10/resnet20"
FAULTS, IMAGES = 200, 50
PUBLISHED = "faultlists/dnn-benchmarks/published-results"
RESNET32 = "torch_gpu_image_classification_CIFAR10_fp32_resnet_ResNet32_FL.csv"
VGG11 = "torch_gpu_image_classification_CIFAR10_fp32_vgg_Vgg11_bn_FL.csv"


@pytest.fixture(scope="session")
def offline_env(tmp_path_factory):
    """The offline weights setup of tests/conftest.py, for session fixtures (which run before it)."""
    with offline_weights(tmp_path_factory, "faultzoo-home-analysis"):
        yield


@pytest.fixture(scope="session")
def campaign_dir(offline_env, tmp_path_factory) -> Path:
    """A finished real campaign folder with outcomes.npy (read-only for the tests: copy before changing)."""
    import faultzoo
    from faultzoo.campaign import run_campaign
    from faultzoo.faults import dnn_benchmarks_fault_list, write_fault_list

    npz = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    model = faultzoo.get_model(MODEL, weights=None)
    root = tmp_path_factory.mktemp("analysis")
    faults = write_fault_list(dnn_benchmarks_fault_list(model, model_id=MODEL), root / "rn20_FL.csv", format="torch")
    out = root / "campaign"
    result = run_campaign(MODEL, faults, output=out, data=str(npz), limit=IMAGES, fault_sample=FAULTS, fault_seed=0,
                          keep_outcomes=True)
    assert result.complete and (out / "outcomes.npy").exists()
    return out


@pytest.fixture
def campaign_copy(campaign_dir, tmp_path) -> Path:
    """A private copy of the session campaign, free to change."""
    return Path(shutil.copytree(campaign_dir, tmp_path / "campaign"))


@pytest.fixture(scope="session")
def published() -> dict[str, Path]:
    """The two published upstream results files (read in place)."""
    folder = require_shared(*PUBLISHED.split("/"))
    return {"resnet32": folder / RESNET32, "vgg11_bn": folder / VGG11}


@pytest.fixture(scope="session")
def resnet32(published, offline_env):
    """The published resnet32 results, loaded once (model guessed from the file name)."""
    from faultzoo.analysis import load_results

    return load_results(published["resnet32"])
