"""Keras campaigns through run_campaign and the CLI: one fault list drives the twin as it drives the model.

cifar10/resnet20 with its real weights, 48 exact CIFAR-10 test images, 16 faults of its dnn-benchmarks
list. The CLI campaign (a fresh process, as a user runs it) is the baseline; the same campaign from
the PyTorch form of the list, in this process, with the reference engine on two workers, and after a
kill -9 and the same command again must all give it byte for byte (timing column aside).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from faultzoo.campaign import run_campaign
from faultzoo.campaign.runner import STORE_NAME
from faultzoo.exceptions import CampaignMismatchError, FaultzooError
from faultzoo.faults import dnn_benchmarks_fault_list, write_fault_list
from tests.campaign.test_runner import _read_csv, _store_rows, _without_seconds, cli_env, start_and_interrupt
from tests.keras.conftest import needs_tensorflow

needs_tensorflow()

MODEL = "cifar10/resnet20"
FAULTS, LIMIT, BATCH = 16, 48, 24




@pytest.fixture(scope="module")
def model(env):
    import faultzoo

    return faultzoo.get_model(MODEL)


@pytest.fixture(scope="module")
def lists(model, tmp_path_factory) -> dict[str, Path]:
    """16 faults of resnet20's dnn-benchmarks list (upstream Injection ids kept), as a PyTorch and a Keras list."""
    full = dnn_benchmarks_fault_list(model, model_id=MODEL)
    faults = full.take(sorted(random.Random(3).sample(range(len(full)), FAULTS)))
    folder = tmp_path_factory.mktemp("keras-lists")
    return {"torch": write_fault_list(faults, folder / "rn20_torch_FL.csv", format="torch"),
            "keras": write_fault_list(faults, folder / "rn20_keras_FL.csv", format="keras", model=model)}


def cli(faults: Path, npz: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from faultzoo.cli import main; main()", "campaign", MODEL, "--framework", "keras",
            "--faults", str(faults), "--data", str(npz), "--limit", str(LIMIT), "--batch-size", str(BATCH),
            "-o", str(out), *extra]


@pytest.fixture(scope="module")
def baseline(env, lists, npz, tmp_path_factory) -> Path:
    """The Keras campaign from the Keras list, run by the CLI in a fresh process."""
    out = tmp_path_factory.mktemp("keras-cli") / "run"
    done = subprocess.run(cli(lists["keras"], npz, out), env=cli_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "keras" in done.stderr  # the progress bar names the framework
    return out


def test_cli_campaign_exports_in_the_keras_lists_layout(baseline, lists):
    upstream = _read_csv(baseline / "results_upstream.csv")
    listed = _read_csv(lists["keras"])
    assert upstream[0][:4] == listed[0] == ["Injection", "Layer", "TensorIndex", "Bit"]
    assert [row[:4] for row in upstream[1:]] == listed[1:]  # Keras layer names, HWIO indices, upstream ids
    for row in upstream[1:]:
        n, masked, non_critical, critical = map(int, row[4:])
        assert n == LIMIT and masked + non_critical + critical == n
    assert {row[1].rstrip("_0123456789") for row in listed[1:]} <= {"conv2d", "dense"}


def test_cli_campaign_records_the_keras_numerics(baseline):
    provenance = json.loads((baseline / "provenance.json").read_text())
    identity = provenance["identity"]
    assert identity["framework"] == "keras" and identity["keras_threads"] == 1
    assert identity["tensorflow"] == provenance["versions"]["tensorflow"]
    assert identity["keras"] == provenance["versions"]["keras"]
    assert provenance["engine"]["engine"] == "keras-fast"
    keras = provenance["numerics"]["keras"]
    assert keras["tf32"] is False and keras["dtype"] == "float32" and keras["intra_op_threads"] == 1
    assert provenance["twin"]["converted_from_torch_state_sha256"] == identity["weights_state_sha256"]
    assert len(provenance["twin"]["keras_weights_sha256"]) == 64
    # Some faults are masked, some not: the campaign measured something.
    assert 0 < provenance["summary"]["total"]["masked"] < FAULTS * LIMIT


def test_the_pytorch_list_gives_the_same_keras_results_in_this_process(baseline, lists, npz, tmp_path):
    result = run_campaign(MODEL, lists["torch"], output=tmp_path / "run", data=str(npz), limit=LIMIT,
                          batch_size=BATCH, framework="keras")
    assert result.complete and result.engine["engine"] == "keras-fast"
    assert _without_seconds(_read_csv(result.exports["results"])) == _without_seconds(_read_csv(baseline / "results.csv"))
    # The export follows the list: PyTorch tensor names this time.
    torch_rows = _read_csv(result.exports["upstream"])
    assert [row[:4] for row in torch_rows[1:]] == _read_csv(lists["torch"])[1:]
    assert [row[4:] for row in torch_rows] == [row[4:] for row in _read_csv(baseline / "results_upstream.csv")]


def test_reference_engine_on_two_workers_agrees(baseline, lists, npz, tmp_path):
    result = run_campaign(MODEL, lists["keras"], output=tmp_path / "run", data=str(npz), limit=LIMIT,
                          batch_size=BATCH, framework="keras", engine="reference", workers=2)
    assert result.engine["engine"] == "keras-reference" and result.engine["executor"] == "processes"
    assert _without_seconds(_read_csv(result.exports["results"])) == _without_seconds(_read_csv(baseline / "results.csv"))


def test_kill_9_then_same_command_resumes_exactly(baseline, lists, npz, tmp_path):
    out = tmp_path / "killed"
    cmd = cli(lists["keras"], npz, out)
    proc, seen = start_and_interrupt(cmd, out / STORE_NAME, FAULTS, signal.SIGKILL, tmp_path / "first.log", timeout=300)
    assert proc.returncode == -signal.SIGKILL
    results, runs = _store_rows(out / STORE_NAME)
    assert seen <= len(results) < FAULTS and [s for _, s, _ in runs] == ["running"]
    again = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    _, runs = _store_rows(out / STORE_NAME)
    assert [s for _, s, _ in runs] == ["interrupted", "complete"] and sum(d for _, _, d in runs) == FAULTS
    assert (out / "results_upstream.csv").read_bytes() == (baseline / "results_upstream.csv").read_bytes()
    assert _without_seconds(_read_csv(out / "results.csv")) == _without_seconds(_read_csv(baseline / "results.csv"))


def test_a_keras_campaign_is_never_resumed_as_a_pytorch_one(baseline, lists, npz, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(baseline, copy)
    with pytest.raises(CampaignMismatchError, match="framework"):
        run_campaign(MODEL, lists["keras"], output=copy, data=str(npz), limit=LIMIT, batch_size=BATCH)


@pytest.mark.parametrize("kwargs, message", [
    ({"framework": "jax"}, "framework='jax': unknown framework"),
    ({"engine": "keras-fast"}, "choose framework 'keras' with engine 'fast'"),
    ({"framework": "keras", "tf32": True}, "tf32=True"),
    ({"framework": "keras", "device": "cuda"}, "device='cuda'"),
])
def test_settings_that_do_not_fit_a_framework_are_refused(lists, tmp_path, kwargs, message):
    with pytest.raises(FaultzooError, match=message):
        run_campaign(MODEL, lists["torch"], output=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_cli_refuses_an_unknown_framework(lists, tmp_path):
    done = subprocess.run([sys.executable, "-c", "from faultzoo.cli import main; main()", "campaign", MODEL,
                           "--framework", "tf", "--faults", str(lists["torch"]), "-o", str(tmp_path / "run")],
                          env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--framework" in done.stderr and "unknown framework; choose one of torch, keras" in done.stderr


def _own_net():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 4)).eval()


def test_a_model_of_ones_own_runs_in_keras_too(tmp_path):
    import torch

    from faultzoo.faults import make_fault_list

    model = _own_net()
    x, y = torch.randn(40, 3, 16, 16, generator=torch.Generator().manual_seed(1)), torch.arange(40) % 4
    faults = make_fault_list(model, "network", n=20, seed=1, targets="weights,bias,bn")
    runs = {engine: run_campaign(model, faults, data=(x, y), batch_size=20, output=tmp_path / engine,
                                 framework="keras", engine=engine) for engine in ("fast", "reference")}
    assert _without_seconds(_read_csv(runs["fast"].exports["results"])) == \
        _without_seconds(_read_csv(runs["reference"].exports["results"]))
    assert runs["fast"].provenance["twin"]["framework"] == "keras"
    assert 0 < runs["fast"].summary.total.masked < 20 * 40


def test_a_model_the_twin_cannot_be_built_for_is_refused_before_compute(tmp_path, monkeypatch):
    import torch
    from torch import nn

    from faultzoo.campaign import runner as runner_module
    from faultzoo.exceptions import TranslationError
    from faultzoo.faults import make_fault_list

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.special.erfcx(self.conv(x)).mean((2, 3))  # no Keras counterpart

    model = Odd().eval()
    monkeypatch.setattr(runner_module, "make_engine", lambda *a, **k: pytest.fail("compute started"))
    faults = make_fault_list(model, "network", n=4, seed=1)
    with pytest.raises(TranslationError):
        run_campaign(model, faults, data=(torch.randn(4, 3, 8, 8), torch.arange(4)), batch_size=2,
                     output=tmp_path / "run", framework="keras")
    assert not (tmp_path / "run" / STORE_NAME).exists()
