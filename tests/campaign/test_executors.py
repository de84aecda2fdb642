"""One campaign, three executors (inline, local processes, Dask): identical results, and faults survived.

cifar10/resnet20 with its real weights on real CIFAR-10 images, kept small (32 faults x 64 images).
One Dask LocalCluster (2 single-thread worker processes, loopback only) serves the whole module
and is closed at its end. Workers are killed for real (SIGKILL) in the middle of campaigns, and so
is the driver; every run must end with the uninterrupted run's results, no fault missing or doubled.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faultzoo.campaign import run_campaign
from faultzoo.campaign.executors import ProcessesExecutor, local_cluster
from faultzoo.campaign.runner import STORE_NAME, subset
from faultzoo.campaign.worker import memory_sharers
from faultzoo.faults import dnn_benchmarks_fault_list, write_fault_list
from tests.campaign.test_runner import (
    _exports_present, _read_csv, _without_seconds, _worker_processes, cli_env, start_and_interrupt,
)

MODEL = "cifar10/resnet20"
SAMPLE, LIMIT, TASK = 32, 64, 4  # small tasks: a kill lands with most of the campaign still to run




@pytest.fixture(scope="module")
def fault_csv(env, tmp_path_factory) -> Path:
    import faultzoo

    full = dnn_benchmarks_fault_list(faultzoo.get_model(MODEL), model_id=MODEL)
    chosen = subset(full, sorted(random.Random(2).sample(range(len(full)), SAMPLE)))
    return write_fault_list(chosen, tmp_path_factory.mktemp("faults") / "rn20_FL.csv", format="torch")


@pytest.fixture(scope="module")
def cluster(env):
    """One LocalCluster for the module (2 worker processes, loopback) and a client to watch it; closed at the end."""
    from distributed import Client

    with local_cluster(2) as cluster, Client(cluster, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        yield cluster, client


def campaign(fault_csv, npz, output, **overrides):
    kwargs = dict(output=output, data=str(npz), limit=LIMIT, task_size=TASK, keep_outcomes=True)
    return run_campaign(MODEL, fault_csv, **{**kwargs, **overrides})


@pytest.fixture(scope="module")
def baseline(env, fault_csv, npz, tmp_path_factory):
    """The uninterrupted in-process run every other run is compared with."""
    return campaign(fault_csv, npz, tmp_path_factory.mktemp("inline"))


def assert_same_results(result, baseline) -> None:
    assert result.complete
    assert result.exports["upstream"].read_bytes() == baseline.exports["upstream"].read_bytes()
    assert _without_seconds(_read_csv(result.exports["results"])) == \
        _without_seconds(_read_csv(baseline.exports["results"]))
    assert np.array_equal(np.load(result.exports["outcomes"]), np.load(baseline.exports["outcomes"]))


def stored_once(store: Path) -> tuple[list[int], int]:
    """Fault ids in the store, and the faults its runs say they recorded."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        ids = [row[0] for row in db.execute("SELECT fault_id FROM results ORDER BY fault_id")]
        recorded = db.execute("SELECT SUM(faults_done) FROM runs").fetchone()[0]
    finally:
        db.close()
    return ids, recorded


# ------------------------------------------------------------------ identical results
def test_inline_baseline(baseline):
    assert baseline.complete and baseline.engine["executor"] == "inline" and baseline.engine["fallback"] is None


def test_two_local_processes_give_identical_results(baseline, fault_csv, npz, tmp_path):
    result = campaign(fault_csv, npz, tmp_path / "processes", workers=2)
    assert result.engine["executor"] == "processes" and result.engine["workers"] == 2
    assert_same_results(result, baseline)


def test_dask_cluster_gives_identical_results(baseline, cluster, fault_csv, npz, tmp_path):
    local, client = cluster
    result = campaign(fault_csv, npz, tmp_path / "dask", dask=local.scheduler_address)
    assert result.engine["executor"] == "dask" and result.engine["workers"] == 2
    assert result.engine["fallback"] is None and result.engine["checks"]["graph_equals_eager"]
    assert result.provenance["numerics"]["threads"] == 1
    assert_same_results(result, baseline)
    # Each worker built the campaign's engine once and keeps exactly that one campaign.
    cached = client.run(lambda: len(__import__("faultzoo.campaign.worker", fromlist=["_ENGINES"])._ENGINES))
    assert sorted(cached.values()) == [1, 1]
    # A worker sizes its engine's caches by its own memory limit, not by the driver's machine.
    # (a LocalCluster of 2 gives each worker half of the machine's memory).
    shares = {address: client.submit(memory_sharers, workers=[address], pure=False).result()
              for address in client.scheduler_info()["workers"]}
    assert set(shares.values()) == {2} and memory_sharers() == 1  # the driver: not a Dask worker


def test_a_local_dask_cluster_maps_the_drivers_golden_maps(baseline, fault_csv, npz, tmp_path):
    """--dask local:N: the workers adopt the driver's golden run and maps from shared-memory files (after
    reproducing the first batch), with the same results; the files are gone when the campaign ends."""
    from faultzoo._sharedmem import SHARE_ROOT

    mine = f"faultzoo-share-{os.getpid()}-*"
    result = campaign(fault_csv, npz, tmp_path / "dask-local", dask="local:2")
    assert result.engine["executor"] == "dask" and result.engine["golden_maps"] == "adopted"
    assert_same_results(result, baseline)
    assert not list(SHARE_ROOT.glob(mine))


# ------------------------------------------------------------------ killed workers
def test_a_dask_worker_killed_mid_campaign(baseline, cluster, fault_csv, npz, tmp_path):
    local, client = cluster
    killed: list[int] = []

    def kill_a_busy_worker(progress) -> None:
        if killed or progress.faults_done >= SAMPLE - 2 * TASK:
            return
        busy = [address for address, keys in client.processing().items() if keys] or list(client.processing())
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    result = campaign(fault_csv, npz, tmp_path / "dask-killed", dask=local.scheduler_address,
                      callbacks=[kill_a_busy_worker])
    assert killed, "no worker was killed"
    assert_same_results(result, baseline)
    ids, recorded = stored_once(result.store_path)
    assert ids == list(range(SAMPLE)) and recorded == SAMPLE  # none missing, none twice
    client.wait_for_workers(2, timeout=120)  # the nanny restarts it: the cluster is whole again
    assert killed[0] not in client.run(os.getpid).values()


def test_a_worker_process_killed_mid_campaign(baseline, fault_csv, npz, tmp_path):
    executor = ProcessesExecutor(2)
    killed: list[int] = []

    def kill_a_worker(progress) -> None:
        if not killed and progress.faults_done < SAMPLE - 2 * TASK and executor.worker_pids():
            killed.append(executor.worker_pids()[0])
            os.kill(killed[0], signal.SIGKILL)

    result = campaign(fault_csv, npz, tmp_path / "processes-killed", executor=executor, callbacks=[kill_a_worker])
    assert killed and result.engine["restarts"] >= 1
    assert_same_results(result, baseline)
    ids, recorded = stored_once(result.store_path)
    assert ids == list(range(SAMPLE)) and recorded == SAMPLE


# ------------------------------------------------------------------ killed driver, resumed with another executor
def cli(fault_csv: Path, npz: Path, out: Path, executor: list[str]) -> list[str]:
    return [sys.executable, "-c", "from faultzoo.cli import main; main()", "campaign", MODEL, "--faults",
            str(fault_csv), "--data", str(npz), "--limit", str(LIMIT), "--keep-outcomes", *executor, "-o", str(out)]


@pytest.mark.slow
def test_driver_killed_then_resumed_with_another_executor(baseline, fault_csv, npz, tmp_path):
    """kill -9 of a driver running its own local Dask cluster: its workers go with it, and the same
    campaign resumed in-process ends as if nothing had happened."""
    first, second = ["--dask", "local:2"], ["--workers", "1"]
    out, store = tmp_path / "killed", tmp_path / "killed" / STORE_NAME
    before = _worker_processes()
    proc, seen = start_and_interrupt(cli(fault_csv, npz, out, first), store, SAMPLE, signal.SIGKILL,
                                     tmp_path / "first.log")
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while _worker_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _worker_processes() - before, "worker processes outlived their killed driver"
    ids, _ = stored_once(store)
    assert seen <= len(ids) < SAMPLE and _exports_present(out) == []

    resumed = subprocess.run(cli(fault_csv, npz, out, second), env=cli_env(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ids, recorded = stored_once(store)
    assert ids == list(range(SAMPLE)) and recorded == SAMPLE
    assert (out / "results_upstream.csv").read_bytes() == baseline.exports["upstream"].read_bytes()
    assert _without_seconds(_read_csv(out / "results.csv")) == _without_seconds(_read_csv(baseline.exports["results"]))
    assert np.array_equal(np.load(out / "outcomes.npy"), np.load(baseline.exports["outcomes"]))


def test_the_golden_run_on_idle_worker_cores_has_the_bits_of_a_one_thread_run(env, npz):
    """With workers of one thread each, the driver runs its golden batches on several Python threads."""
    import torch

    from faultzoo.backends import Runnable, get_backend
    from faultzoo.campaign.loading import load_images, load_model
    from faultzoo.campaign.spec import CampaignSpec

    spec = CampaignSpec(MODEL, "", data=str(npz), limit=LIMIT)
    model, selection = load_model(spec), load_images(spec)
    backend = get_backend("torch")
    one = backend.golden_run(Runnable(), model, selection.x, selection.y, batch_size=16, threads=1)
    two = backend.golden_run(Runnable(), model, selection.x, selection.y, batch_size=16, threads=2)
    assert torch.equal(one.logits.view(torch.int32), two.logits.view(torch.int32))
    assert torch.equal(one.labels, two.labels) and two.batch_size == 16


# ------------------------------------------------------------------ a campaign started from a script, stdin or a notebook
SCRIPT = """\
import faultzoo
result = faultzoo.run_campaign({model!r}, {faults!r}, output={out!r}, data={npz!r}, limit=16, fault_sample=4,
                               batch_size=8, workers=2)
print("critical", result.summary.total.rate("critical"), result.complete)
"""


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_worker_processes_never_run_the_callers_script_again(env, fault_csv, npz, tmp_path, how):
    """The README's example as written (no ``if __name__ == "__main__":`` guard), saved as a script or piped
    into ``python -`` (which has no file, like a notebook): the workers must not re-run it."""
    out = tmp_path / "run"
    code = SCRIPT.format(model=MODEL, faults=str(fault_csv), out=str(out), npz=str(npz))
    if how == "script":
        (tmp_path / "tour.py").write_text(code)
        done = subprocess.run([sys.executable, "tour.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    else:
        done = subprocess.run([sys.executable, "-"], input=code, cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "critical" in done.stdout and done.stdout.strip().endswith("True")
    assert "Traceback" not in done.stderr and (out / "results.csv").is_file()


def test_ctrl_c_on_a_local_dask_campaign_prints_no_worker_traceback(fault_csv, npz, tmp_path):
    """A terminal's Ctrl-C reaches the whole process group (driver, nannies, workers): only the driver answers."""
    from tests.campaign.test_runner import _count_results

    out, log = tmp_path / "run", tmp_path / "run.log"
    cmd = [sys.executable, "-c", "from faultzoo.cli import main; main()", "campaign", MODEL, "--faults", str(fault_csv),
           "--data", str(npz), "--limit", "300", "--dask", "local:2", "-o", str(out)]
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, env=cli_env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline, sent = time.monotonic() + 240, False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if (_count_results(out / STORE_NAME) or 0) > 0:
                os.killpg(proc.pid, signal.SIGINT)
                sent = True
                break
            time.sleep(0.05)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert sent, f"the campaign ended before it could be interrupted:\n{text[-2000:]}"
    assert proc.returncode == 130, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    assert "re-run the same command to resume" in text
