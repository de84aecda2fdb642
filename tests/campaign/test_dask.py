"""The Dask executor without a running cluster: ``--dask`` targets, refusals before any compute, the
checks a worker makes on what it loaded, and the SLURM example of docs/cluster.md rendered by dask-jobqueue."""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from faultzoo.campaign import run_campaign
from faultzoo.campaign.executors import DaskExecutor, make_executor, parse_dask_target
from faultzoo.backends.golden import golden_run
from faultzoo.campaign.loading import load_images, load_model
from faultzoo._sharedmem import FileShare, SharedFile, open_shared
from faultzoo.campaign.spec import CampaignSpec, campaign_identity
from faultzoo.campaign.worker import Recipe, logits_sha256
from tests.cli_runner import run_faultzoo
from faultzoo.exceptions import CampaignMismatchError, ExactnessError, FaultzooError
from faultzoo.faults import Fault, FaultList, write_fault_list
from faultzoo.faults.bits import same_bits
from tests.conftest import REPO, require_shared

MODEL = "cifar10/resnet20"
DOCS = REPO / "docs" / "cluster.md"


# ------------------------------------------------------------------ targets
@pytest.mark.parametrize("text, field, value", [
    ("local:3", "workers", 3),
    ("tcp://10.1.0.12:8786", "address", "tcp://10.1.0.12:8786"),
    ("tls://scheduler.example:8786", "address", "tls://scheduler.example:8786"),
])
def test_targets(text, field, value):
    assert getattr(parse_dask_target(text), field) == value


def test_scheduler_file_target(tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text('{"address": "tcp://127.0.0.1:1"}')
    assert parse_dask_target(str(path)).scheduler_file == path.resolve()


@pytest.mark.parametrize("text, message", [
    ("local:0", "whole number >= 1"),
    ("local:two", "whole number >= 1"),
    ("tcp://10.1.0.12", "needs a host and a port"),
    ("no-such-scheduler.json", "does not exist"),
    ("cluster", "expected local:N"),
])
def test_bad_targets_say_what_is_expected(text, message):
    with pytest.raises(FaultzooError, match=message):
        parse_dask_target(text)


def test_workers_and_dask_together_are_refused():
    with pytest.raises(FaultzooError, match=r"dask='local:2': choose workers or dask, not both.*local:2"):
        make_executor(workers=2, dask="local:2")
    assert isinstance(make_executor(dask="local:2"), DaskExecutor)




def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_nobody_runs_is_refused_before_anything_is_written(tmp_path, no_compute):
    require_shared("mirror")
    npz = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "out"
    with pytest.raises(FaultzooError, match=rf"dask='{address}': no Dask scheduler answers there"):
        run_campaign(MODEL, FaultList((Fault("conv1.weight", (0, 0, 0, 0), (30,)),)), output=out, data=str(npz),
                     limit=8, dask=address)
    assert not out.exists()


# ------------------------------------------------------------------ command line
def _cli(capsys, *args) -> tuple[int, str]:
    code, out, err = run_faultzoo(capsys, "campaign", *args)
    return code, out + err


def test_cli_help_shows_dask(capsys):
    code, text = _cli(capsys, "--help")
    flat = "".join(text.split())
    assert code == 0 and "--dask" in flat and "--daskscheduler.json" in flat and "--dasklocal:2" in flat


@pytest.mark.parametrize("args, words", [
    (["--dask", "local:0"], ["--dask", "whole number >= 1"]),
    (["--dask", "local:2", "--workers", "2"], ["--dask", "workers"]),
], ids=["bad-target", "with-workers"])
def test_cli_usage_errors_exit_2(capsys, tmp_path, args, words):
    faults = write_fault_list(FaultList((Fault("conv1.weight", (0, 0, 0, 0), (30,)),)), tmp_path / "f.csv",
                              format="torch")
    code, text = _cli(capsys, MODEL, "--faults", faults, "-o", tmp_path / "out", *args)
    assert code == 2, text
    assert all(word in text for word in words) and "Traceback" not in text
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ what a worker checks before computing
@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The driver's side of a small campaign: spec, identity and golden run."""
    require_shared("mirror")
    npz = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    with pytest.MonkeyPatch.context() as mp:
        from tests.conftest import shared_root

        mp.setenv("FAULTZOO_HOME", str(tmp_path_factory.mktemp("faultzoo-home-dask")))
        mp.setenv("FAULTZOO_OFFLINE", "1")
        mp.setenv("FAULTZOO_MIRROR", str(shared_root() / "mirror"))
        spec = CampaignSpec(MODEL, "", data=str(npz), limit=16, batch_size=8).portable()
        model, selection = load_model(spec), load_images(spec)
        identity = campaign_identity(spec, weights_sha256=model.faultzoo.state_sha256, fault_list_sha256="-",
                                     faults=0, data_sha256=selection.fingerprint(), images=16)
        golden = golden_run(model, selection.x, selection.y, batch_size=8)
        yield spec, identity, golden


def test_a_worker_reproduces_the_driver_inputs(loaded):
    spec, identity, golden = loaded
    inputs = Recipe(spec, identity, logits_sha256(golden.logits)).load()
    assert torch.equal(inputs.golden.logits.view(torch.int32), golden.logits.view(torch.int32))


@pytest.mark.parametrize("field, error, words", [
    ("data_sha256", CampaignMismatchError, "other images than the driver"),
    ("weights_state_sha256", CampaignMismatchError, "other weights"),
    ("golden", ExactnessError, "other fault-free logits than the driver"),
])
def test_a_worker_with_other_inputs_refuses_to_compute(loaded, field, error, words):
    spec, identity, golden = loaded
    sha = logits_sha256(golden.logits)
    if field == "golden":
        sha = "0" * 64
    else:
        identity = {**identity, field: "0" * 64}
    with pytest.raises(error, match=words):
        Recipe(spec, identity, sha).load()


def test_a_worker_on_the_drivers_machine_maps_its_golden_run(loaded, tmp_path, monkeypatch):
    """A local cluster's worker adopts the driver's golden logits from shared memory after reproducing the
    first batch; a file whose first batch it does not reproduce is ignored (the full golden run decides)."""
    from faultzoo.backends.torch import backend as torch_backend

    spec, identity, golden = loaded
    with FileShare(tmp_path) as share:
        handle = share.put(golden.logits)
        calls = []  # golden runs of all the images (the first batch is recomputed to check the file)

        def counted(model, x, y, **kwargs):
            calls.extend([1] if len(x) == len(golden.logits) else [])
            return golden_run(model, x, y, **kwargs)

        monkeypatch.setattr(torch_backend, "golden_run", counted)
        inputs = Recipe(spec, identity, logits_sha256(golden.logits), golden_file=handle).load()
        assert calls == [] and same_bits(inputs.golden.logits, golden.logits)
        assert inputs.golden.logits.data_ptr() != golden.logits.data_ptr()  # mapped from the file, not recomputed

        altered = golden.logits.clone()
        altered[0, 0] += 1.0
        inputs = Recipe(spec, identity, logits_sha256(golden.logits), golden_file=share.put(altered)).load()
        assert calls == [1] and same_bits(inputs.golden.logits, golden.logits)
    # Removed with its FileShare: a worker then loads everything itself.
    assert handle.open() is None and not share.folder.exists()


def test_untrained_weights_travel_with_the_recipe(loaded):
    spec, _, _ = loaded
    torch.manual_seed(123)
    model = load_model(CampaignSpec(MODEL, "", weights=None))
    selection = load_images(spec)
    golden = golden_run(model, selection.x, selection.y, batch_size=8)
    identity = campaign_identity(spec, weights_sha256=model.faultzoo.state_sha256, fault_list_sha256="-", faults=0,
                                 data_sha256=selection.fingerprint(), images=16)
    untrained = CampaignSpec(MODEL, "", weights=None, data=spec.data, limit=16, batch_size=8)
    inputs = Recipe(untrained, identity, logits_sha256(golden.logits), model.state_dict()).load()
    assert torch.equal(inputs.golden.logits, golden.logits)


# ------------------------------------------------------------------ docs/cluster.md
def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _slurm_cluster_kwargs() -> dict:
    """The keyword arguments of the SLURMCluster(...) call in the docs' example, as values."""
    block = next(b for b in _python_blocks(DOCS.read_text()) if "SLURMCluster(" in b)
    call = next(node for node in ast.walk(ast.parse(block)) if isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "SLURMCluster")
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def test_docs_slurm_example_renders_the_job_script_it_shows():
    from dask_jobqueue import SLURMCluster

    kwargs = _slurm_cluster_kwargs()
    cluster_only = {"scheduler_options", "n_workers", "interface"}
    job = SLURMCluster.job_cls(scheduler="tcp://10.1.0.12:8786", name="dummy-name", python="python",
                               **{k: v for k, v in kwargs.items() if k not in cluster_only})
    script = job.job_script()
    for line in ("#SBATCH -p cpu", "#SBATCH -A my-project", "#SBATCH --cpus-per-task=16", "#SBATCH -t 04:00:00",
                 "source /shared/faultzoo/venv/bin/activate", "export FAULTZOO_HOME=/shared/faultzoo/cache"):
        assert line in script.splitlines(), f"{line!r} not in the rendered job script:\n{script}"
    worker = next(line for line in script.splitlines() if "dask_worker" in line)
    for part in ("tcp://10.1.0.12:8786", "--nthreads 1", "--nworkers 16", "--preload faultzoo.campaign.worker"):
        assert part in worker, worker
    # The script the docs show is the one dask-jobqueue renders for that configuration.
    shown = next(b for b in re.findall(r"```bash\n(.*?)```", DOCS.read_text(), flags=re.S) if "#SBATCH" in b)
    assert shown.strip() == script.strip()
    assert kwargs["scheduler_options"]["scheduler_file"] in DOCS.read_text().split("### The campaign")[1]


def test_docs_name_the_real_options():
    text = DOCS.read_text()
    for option in ("--dask local:N", "--dask tcp://HOST:PORT", "--dask scheduler.json", "--workers N",
                   "FAULTZOO_HOME", "benchmarks/scale_speed.py"):
        assert option in text, option
    assert Path(REPO / "benchmarks" / "scale_speed.py").exists()


# ------------------------------------------------------------------ shared-memory files for local workers
def test_file_share_round_trip_copy_on_write_and_removal(tmp_path):
    tree = {"maps": {"a": torch.randn(3, 4), "flags": torch.tensor([True, False])}, "checks": [1, "x"],
            "empty": torch.empty(0, 5), "scalar": torch.tensor(2.5, dtype=torch.float64)}
    with FileShare(tmp_path) as share:
        handles = share.put_all(tree)
        assert isinstance(handles["maps"]["a"], SharedFile) and handles["checks"] == [1, "x"]
        assert not list(share.folder.glob("*.partial"))  # nothing half-written left behind
        opened = open_shared(handles)
        for key in ("a", "flags"):
            assert same_bits(opened["maps"][key], tree["maps"][key])
        assert opened["empty"].shape == (0, 5) and same_bits(opened["scalar"], tree["scalar"])
        opened["maps"]["a"][0, 0] = 99.0  # a reader's writes stay its own
        assert same_bits(open_shared(handles)["maps"]["a"], tree["maps"]["a"])
        # Another share's token (a same-named folder elsewhere) does not open.
        forged = SharedFile(handles["maps"]["a"].path, "0" * 32, (3, 4), "float32")
        assert forged.open() is None and open_shared({"x": forged}) is None
    assert not share.folder.exists() and open_shared(handles) is None


def test_file_shares_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f"faultzoo-share-{dead.stdout.strip()}-abc"
    live = tmp_path / f"faultzoo-share-{os.getpid()}-def"
    orphan.mkdir(), live.mkdir()
    with FileShare(tmp_path):
        assert not orphan.exists() and live.exists()
