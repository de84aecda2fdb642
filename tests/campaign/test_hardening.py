"""What a new user meets first: untrained models resume, a model's own exception is shown as the model's,
settings without effect say so, a resumed run says what it found."""

from __future__ import annotations

import logging

import pytest
import torch

from faultzoo.campaign import run_campaign
from faultzoo.campaign.spec import CampaignSpec
from faultzoo.exceptions import DatasetError
from faultzoo.faults import Fault, FaultList, write_fault_list
from tests.cli_runner import run_faultzoo

MODEL = "cifar10/resnet20"


@pytest.fixture
def faults(tmp_path):
    fl = FaultList((Fault("conv1.weight", (0, 0, 1, 1), (30,)), Fault("linear.weight", (2, 17), (31,)),
                    Fault("layer1.0.conv1.weight", (3, 2, 1, 0), (22,))))
    return write_fault_list(fl, tmp_path / "fl.csv", format="torch")


def _images(n: int = 8):
    generator = torch.Generator().manual_seed(5)
    return torch.rand(n, 3, 32, 32, generator=generator), torch.arange(n) % 10


@pytest.mark.parametrize("model, head, kwargs", [(MODEL, "linear", {"weights": None}),
                                                 ("torchvision:resnet18", "fc", {"num_classes": 10})],
                         ids=["zoo-untrained", "torchvision-untrained"])
def test_an_untrained_model_is_seeded_so_the_same_call_resumes(tmp_path, model, head, kwargs):
    faults = write_fault_list(FaultList((Fault("conv1.weight", (0, 0, 1, 1), (30,)),
                                         Fault(f"{head}.weight", (2, 17), (31,)))), tmp_path / "fl.csv", format="torch")
    out = tmp_path / "run"
    first = run_campaign(model, faults, output=out, data=_images(), batch_size=4, **kwargs)
    assert first.complete
    # The same call again (a resume of a complete campaign): the same initialisation, the same identity.
    again = run_campaign(model, faults, output=out, data=_images(), batch_size=4, **kwargs)
    assert again.complete and again.summary.to_dict() == first.summary.to_dict()
    other = run_campaign(model, faults, output=tmp_path / "seed1", data=_images(), batch_size=4, init_seed=1,
                         **kwargs)
    assert other.provenance["model"] != first.provenance["model"]  # another seed, another model (state hash)


def test_the_init_seed_is_in_the_identity_of_untrained_models_only():
    untrained = CampaignSpec(MODEL, "x.csv", weights=None, init_seed=7)
    trained = CampaignSpec(MODEL, "x.csv")
    assert untrained.untrained and not trained.untrained
    from faultzoo.campaign.spec import campaign_identity

    args = dict(weights_sha256="w", fault_list_sha256="f", faults=1, data_sha256="d", images=1)
    assert campaign_identity(untrained, **args)["init_seed"] == 7
    assert "init_seed" not in campaign_identity(trained, **args)  # stores of trained models are unchanged


def test_an_exception_raised_by_the_model_names_the_models_own_code(tmp_path, faults):
    net = tmp_path / "lab_nets.py"
    net.write_text("import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
                   "        super().__init__()\n        self.fc = nn.Linear(3, 10)\n\n    def forward(self, x):\n"
                   "        return self.fc(x.mean(dim=(2, 3))) / self.missing\n\n\ndef build():\n    return Net()\n")
    fl = write_fault_list(FaultList((Fault("fc.weight", (0, 0), (30,)),)), tmp_path / "net.csv", format="torch")
    with pytest.raises(DatasetError) as caught:
        run_campaign(f"{net}:build", fl, output=tmp_path / "run", data=_images())
    message = str(caught.value)
    assert "AttributeError" in message and "'Net' object has no attribute 'missing'" in message
    assert f"raised in the model's code: {net}, line 11, in forward: return self.fc" in message
    assert "site-packages" not in message and "faultzoo/" not in message.split("raised in")[1]
    assert not (tmp_path / "run").exists()


def test_tf32_on_a_cpu_says_it_has_no_effect(tmp_path, faults, caplog):
    with caplog.at_level(logging.WARNING, logger="faultzoo"):
        run_campaign(MODEL, faults, output=tmp_path / "tf32", weights=None, data=_images(), batch_size=4, tf32=True)
    assert sum("no effect on a CPU" in r.getMessage() for r in caplog.records) == 1  # once per campaign
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="faultzoo"):
        run_campaign(MODEL, faults, output=tmp_path / "strict", weights=None, data=_images(), batch_size=4)
    assert not caplog.records


def test_a_resumed_run_says_how_many_faults_were_stored(tmp_path, faults, capsys, npz):
    import sqlite3

    out = tmp_path / "run"
    args = ("campaign", MODEL, "--weights", "none", "--faults", faults, "--data", npz, "--limit", "8",
            "--batch-size", "4", "-o", out)
    code, _, err = run_faultzoo(capsys, *args)
    assert code == 0, err
    with sqlite3.connect(out / "campaign.sqlite") as db:  # as if the run had stopped after two faults
        db.execute("DELETE FROM results WHERE rowid = (SELECT MAX(rowid) FROM results)")
    code, out_text, err = run_faultzoo(capsys, *args)
    assert code == 0, err
    assert "resuming: 2 of 3 faults already stored" in out_text


LAB_NET = ("import torch\nfrom torch import nn\n\n\ndef build():\n    torch.manual_seed(0)\n"
           "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))\n")


def test_npz_images_work_for_a_model_outside_the_zoo_with_their_datasets_transform(tmp_path, capsys, npz):
    (tmp_path / "lab_nets.py").write_text(LAB_NET)
    fl = write_fault_list(FaultList((Fault("0.weight", (0, 0, 1, 1), (30,)), Fault("3.weight", (1, 2), (31,)))),
                          tmp_path / "net.csv", format="torch")
    base = ("campaign", f"{tmp_path / 'lab_nets.py'}:build", "--faults", fl, "--data", npz, "--limit", "16")
    code, _, err = run_faultzoo(capsys, *base, "-o", tmp_path / "refused")
    assert code == 1 and "--transform: the images of" in err and "cifar10, cifar100, gtsrb" in err
    assert not (tmp_path / "refused").exists()
    code, out, err = run_faultzoo(capsys, *base, "--transform", "cifar10", "-o", tmp_path / "run")
    assert code == 0, err
    assert (tmp_path / "run" / "results.csv").is_file()


def test_keras_and_dask_start_up_messages_are_hidden_unless_verbose(tmp_path):
    """TensorFlow's C++ start-up banner (absl, oneDNN) and Dask's INFO lines stay off the terminal."""
    import subprocess
    import sys

    script = ("import faultzoo, logging\nfrom faultzoo.cli import main\n"
              "faultzoo.get_model('cifar10/resnet20', weights=None, framework='keras')\n"
              "from faultzoo.campaign.executors import local_cluster\n"
              "logging.basicConfig(format='%(levelname)s %(name)s: %(message)s')\n"
              "from faultzoo.cli import _log_level\n_log_level('WARNING')\n"
              "with local_cluster(1):\n    pass\n")
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "oneDNN" not in quiet.stderr and "absl" not in quiet.stderr and "INFO distributed" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-c", script.replace("_log_level('WARNING')", "_log_level('INFO')")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**__import__("os").environ, "FAULTZOO_VERBOSE": "1"})
    assert "oneDNN" in loud.stderr and "INFO distributed" in loud.stderr


def test_a_campaign_made_from_a_plan_prints_its_time_next_to_the_prediction(tmp_path, faults, capsys, npz):
    import json

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"prediction": {"seconds": 12.5, "startup_s": 2.0}}))
    args = ("campaign", MODEL, "--weights", "none", "--faults", faults, "--data", npz, "--limit", "8",
            "--batch-size", "4")
    code, out, err = run_faultzoo(capsys, *args, "--plan", plan, "-o", tmp_path / "run")
    assert code == 0, err
    assert "s measured, 12.5 s predicted by the plan" in " ".join(out.split())
    (tmp_path / "bad.json").write_text("{}")
    code, _, err = run_faultzoo(capsys, *args, "--plan", tmp_path / "bad.json", "-o", tmp_path / "run2")
    assert code == 1 and "--plan" in err and "faultzoo plan --json" in " ".join(err.split())
    assert not (tmp_path / "run2").exists()
