"""Campaigns on a user's own network and images: model objects, torchvision builders and factory files,
with tensors, a Dataset or an image folder; workers that rebuild the model from its recipe; and every
misfit refused before any compute, with nothing written.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faultzoo.campaign import run_campaign
from faultzoo.campaign import runner as runner_module
from faultzoo.campaign.runner import STORE_NAME
from faultzoo.campaign.worker import ModelFromRecipe
from faultzoo.exceptions import (
    CampaignMismatchError, CheckpointError, DatasetError, FaultzooError, OptionError, UnknownModelError,
)
from faultzoo.faults import make_fault_list, write_fault_list
from faultzoo.zoo import state_sha256
from faultzoo.zoo.recipes import build_model, parse_model_spec
from tests.campaign.test_runner import _read_csv, _without_seconds, cli_env

NET_SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class SmallNet(nn.Module):
        """A lab's own CNN: conv, depthwise conv, batch norm, linear."""

        def __init__(self, classes=3):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
            self.head = nn.Linear(32, classes)

        def forward(self, x):
            return self.head(torch.flatten(self.features(x), 1))


    def build_net():
        torch.manual_seed(0)
        return SmallNet()


    def not_a_module():
        return "a string"
''')


@pytest.fixture(scope="module")
def net_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "lab_nets.py"
    path.write_text(NET_SOURCE)
    return path


@pytest.fixture(scope="module")
def recipe_text(net_file) -> str:
    return f"{net_file}:build_net"


@pytest.fixture(scope="module")
def checkpoint(recipe_text, tmp_path_factory) -> Path:
    """Trained-looking weights of the lab's net: the factory's init, perturbed, saved as a state dict."""
    model = build_model(parse_model_spec(recipe_text, weights=None))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("ckpt") / "lab_net.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """An ImageFolder: 3 classes x 5 PNGs of 20x20 pixels."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "eel"):
        (root / c).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


TRANSFORM = "resize=18,crop=16,mean=0.5:0.5:0.5,std=0.25:0.25:0.25"


@pytest.fixture(scope="module")
def faults(recipe_text, tmp_path_factory) -> Path:
    model = build_model(parse_model_spec(recipe_text, weights=None))
    fault_list = make_fault_list(model, "network", n=24, seed=5, targets="weights,bias,bn")
    return write_fault_list(fault_list, tmp_path_factory.mktemp("fl") / "lab_FL.csv")


@pytest.fixture(scope="module")
def inline(recipe_text, checkpoint, images, faults, tmp_path_factory):
    """The reference result: the lab's net from its factory file, in this process, reference engine."""
    return run_campaign(recipe_text, faults, weights=checkpoint, data=f"imagefolder:{images}", transform=TRANSFORM,
                        batch_size=4, engine="reference", output=tmp_path_factory.mktemp("inline") / "run")


def test_factory_file_campaign_records_the_recipe(inline, checkpoint):
    assert inline.complete and inline.summary.faults_done == 24 and inline.summary.images == 15
    model = inline.provenance["model"]
    assert model["recipe"]["kind"] == "factory" and model["recipe"]["target"].endswith("lab_nets.py:build_net")
    assert model["class"].endswith("SmallNet") and model["num_classes"] == 3
    from faultzoo.campaign.store import ResultStore

    with ResultStore.open_readonly(inline.store_path) as store:
        identity = store.identity
    assert identity["model_id"] == "lab_nets.py:build_net"  # where the file lies does not matter
    assert identity["model"] == {"kind": "factory", "target": "lab_nets.py:build_net", "weights": True,
                                 "num_classes": None}
    assert "imagefolder" in inline.provenance["data"]["source"]


def test_cli_with_two_workers_rebuilds_the_model_and_agrees(inline, recipe_text, checkpoint, images, faults, tmp_path):
    out = tmp_path / "cli"
    done = subprocess.run([sys.executable, "-c", "from faultzoo.cli import main; main()", "campaign", recipe_text,
                           "--weights", str(checkpoint), "--faults", str(faults), "--data", f"imagefolder:{images}",
                           "--transform", TRANSFORM, "--batch-size", "4", "--workers", "2", "-o", str(out)],
                          env=cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _without_seconds(_read_csv(out / "results.csv")) == _without_seconds(_read_csv(inline.exports["results"]))


def test_a_changed_checkpoint_is_not_resumed(inline, recipe_text, checkpoint, images, faults, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(inline.output, out)
    state = torch.load(checkpoint)
    state["head.bias"] += 1.0
    changed = tmp_path / "changed.pt"
    torch.save(state, changed)
    with pytest.raises(CampaignMismatchError, match="weights_state_sha256"):
        run_campaign(recipe_text, faults, weights=changed, data=f"imagefolder:{images}", transform=TRANSFORM,
                     batch_size=4, output=out)


def test_model_object_with_tensors_and_with_a_dataset(recipe_text, checkpoint, images, faults, tmp_path):
    from faultzoo.data.custom import selection_from_imagefolder

    model = build_model(parse_model_spec(recipe_text, weights=str(checkpoint)))
    selection = selection_from_imagefolder(images, TRANSFORM)
    with_tensors = run_campaign(model, faults, data=(selection.x, selection.y), batch_size=4, output=tmp_path / "a",
                                model_name="lab-net")
    dataset = torch.utils.data.TensorDataset(selection.x, selection.y)
    with_dataset = run_campaign(model, faults, data=dataset, batch_size=4, output=tmp_path / "b", workers=2)
    rows_a = _without_seconds(_read_csv(with_tensors.exports["results"]))
    assert rows_a == _without_seconds(_read_csv(with_dataset.exports["results"]))
    assert with_tensors.provenance["model"]["id"] == "lab-net"
    assert with_dataset.provenance["model"]["recipe"] is None  # an object: its class is recorded
    assert with_tensors.summary.total.masked < 24 * 15  # faults changed something


def test_torchvision_builder_untrained_travels_as_state(tmp_path):
    """An untrained torchvision model: no file holds its weights, so workers get the driver's state."""
    from faultzoo.campaign.loading import LoadedCampaign
    from faultzoo.campaign.spec import CampaignSpec

    spec = CampaignSpec("torchvision:mobilenet_v3_small", "", num_classes=4)
    model = build_model(spec.recipe)
    assert runner_module._no_file_holds_the_weights(spec)
    shipped = ModelFromRecipe.ship(model, spec.recipe, state_sha256(model))
    rebuilt = shipped.build()
    assert state_sha256(rebuilt) == state_sha256(model) and rebuilt is not model
    assert LoadedCampaign  # the type the runner builds these from
    tampered = ModelFromRecipe(spec.recipe, {k: v.clone() for k, v in model.state_dict().items()}, "0" * 64)
    with pytest.raises(CampaignMismatchError, match="another state"):
        tampered.build()


# ------------------------------------------------------------------ bad input: refused before compute


def _refused(tmp_path, error, match, model, faults, **kwargs):
    out = tmp_path / "run"
    with pytest.raises(error, match=match):
        run_campaign(model, faults, output=out, batch_size=4, **kwargs)
    assert not (out / STORE_NAME).exists() and not (out / "results.csv").exists()


def test_factory_that_does_not_import(tmp_path, faults, no_compute):
    _refused(tmp_path, UnknownModelError, "cannot import 'no_such_package_xyz.nets'", "no_such_package_xyz.nets:build",
             faults, data="cifar10")
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('typo in the lab file')\n")
    _refused(tmp_path, UnknownModelError, "typo in the lab file", f"{broken}:build", faults, data="cifar10")


def test_factory_that_returns_no_module(net_file, faults, tmp_path, no_compute):
    _refused(tmp_path, UnknownModelError, "returned a str, not a torch.nn.Module", f"{net_file}:not_a_module", faults,
             data="cifar10")


def test_checkpoint_that_does_not_fit(recipe_text, images, faults, tmp_path, no_compute):
    state = build_model(parse_model_spec(recipe_text, weights=None)).state_dict()
    state["head.weight"] = torch.zeros(5, 32)
    del state["head.bias"]
    state["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointError) as info:
        run_campaign(recipe_text, faults, weights=bad, data=f"imagefolder:{images}", transform=TRANSFORM,
                     output=tmp_path / "run")
    for word in ("head.bias", "extra.weight", "head.weight"):
        assert word in str(info.value)


def test_images_that_do_not_fit_the_model(recipe_text, faults, tmp_path, no_compute):
    x, y = torch.zeros(6, 1, 16, 16), torch.zeros(6, dtype=torch.int64)  # one channel; the net wants three
    _refused(tmp_path, DatasetError, r"cannot take the images .*C×H×W 1×16×16", recipe_text, faults, data=(x, y))


def test_labels_outside_the_models_classes(recipe_text, faults, tmp_path, no_compute):
    x, y = torch.zeros(6, 3, 16, 16), torch.tensor([0, 1, 2, 3, 0, 1])
    _refused(tmp_path, DatasetError, r"label 3; model .* has 3 classes", recipe_text, faults, data=(x, y))


def test_a_model_outside_the_zoo_needs_data(recipe_text, faults, tmp_path, no_compute):
    _refused(tmp_path, DatasetError, "not a zoo model: name its images", recipe_text, faults)
    _refused(tmp_path, OptionError, "needs a transform", recipe_text, faults, data=f"imagefolder:{tmp_path}")


def test_things_that_are_no_model_or_data(faults, tmp_path, no_compute):
    _refused(tmp_path, FaultzooError, "found a int", 42, faults, data="cifar10")
    _refused(tmp_path, FaultzooError, "found a set", "torchvision:resnet18", faults, data={1, 2})


def test_analysis_reads_a_campaign_on_a_model_outside_the_zoo(inline, tmp_path):
    from faultzoo.analysis import load_results, write_report

    results = load_results(inline.output)
    assert results.model_id == "lab_nets.py:build_net" and results.model_from == "provenance"
    assert results.shapes["head.weight"] == (3, 32)  # recorded by the campaign: no zoo model to rebuild
    assert not [f for f in results.quality.findings if f.level == "error"]
    report = write_report(results, tmp_path / "report")
    assert "lab_nets.py:build_net" in (tmp_path / "report" / "report.md").read_text()
    assert report is not None


def test_cli_makes_fault_lists_for_torchvision_models_and_factories(net_file, tmp_path):
    from typer.testing import CliRunner

    from faultzoo.cli import app
    from faultzoo.faults import read_fault_list

    out = tmp_path / "r18_FL.csv"
    done = CliRunner().invoke(app, ["faultlist", "torchvision:resnet18", "--num-classes", "10", "--design", "network",
                                    "--n", "20", "-o", str(out)])
    assert done.exit_code == 0, done.output
    model = build_model(parse_model_spec("torchvision:resnet18", weights=None, num_classes=10))
    faults = read_fault_list(out, model)  # validates every fault against the model's tensors
    assert len(faults) == 20 and faults.meta.model_id == "torchvision:resnet18"
    done = CliRunner().invoke(app, ["faultlist", f"{net_file}:nope", "--design", "network", "--n", "5",
                                    "-o", str(tmp_path / "x.csv")])
    assert isinstance(done.exception, UnknownModelError) and "has no attribute 'nope'" in str(done.exception)
    assert not (tmp_path / "x.csv").exists()
