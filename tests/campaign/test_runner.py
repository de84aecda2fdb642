"""run_campaign() end to end on cifar10/resnet20 with its real weights and real CIFAR-10 images.

Covers the exports (upstream CSV, results.csv, provenance.json), resuming (no-op when complete,
refused for another campaign, exact after kill -9), validation before any compute, and the two
engines agreeing. Kept small (tens of faults x 64 images) so the file runs in well under a minute.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from faultzoo.campaign import run_campaign
from faultzoo import _sharedmem as sharedmem
from faultzoo.campaign import runner as runner_module
from faultzoo.campaign.exports import ALL as EXPORT_NAMES
from faultzoo.campaign.runner import STORE_NAME, subset
from faultzoo.exceptions import CampaignMismatchError, DatasetError, FaultListFormatError, FaultzooError
from faultzoo.faults import Fault, FaultList, dnn_benchmarks_fault_list, read_fault_list, write_fault_list
from tests.conftest import REPO, require_shared

MODEL = "cifar10/resnet20"
UPSTREAM_HEADER = ["Injection", "Layer", "TensorIndex", "Bit", "n_injections", "masked", "non_critical", "critical"]
SAMPLE, LIMIT = 40, 64


# ------------------------------------------------------------------ shared fixtures (module scope: computed once)


@pytest.fixture(scope="module")
def model(env):
    import faultzoo

    return faultzoo.get_model(MODEL)


@pytest.fixture(scope="module")
def fault_list(model) -> FaultList:
    """400 faults of resnet20's dnn-benchmarks list, over every layer, keeping their upstream Injection ids."""
    full = dnn_benchmarks_fault_list(model, model_id=MODEL)
    return subset(full, sorted(random.Random(1).sample(range(len(full)), 400)))


@pytest.fixture(scope="module")
def fault_csv(fault_list, tmp_path_factory) -> Path:
    return write_fault_list(fault_list, tmp_path_factory.mktemp("faults") / "rn20_FL.csv", format="torch")


def _campaign(fault_csv, npz, output, **overrides):
    kwargs = dict(output=output, data=str(npz), limit=LIMIT, fault_sample=SAMPLE, engine="fast", workers=1)
    kwargs.update(overrides)
    return run_campaign(MODEL, fault_csv, **kwargs)


@pytest.fixture(scope="module")
def baseline(env, fault_csv, npz, tmp_path_factory):
    """One uninterrupted fast campaign, with per-image outcomes: the reference for every comparison below."""
    return _campaign(fault_csv, npz, tmp_path_factory.mktemp("baseline"), keep_outcomes=True)


# ------------------------------------------------------------------ helpers
def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _without_seconds(rows: list[list[str]]) -> list[list[str]]:
    col = rows[0].index("task_seconds_per_fault")
    return [row[:col] + row[col + 1:] for row in rows]


def _store_rows(store: Path) -> tuple[list, list]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        results = db.execute("SELECT * FROM results ORDER BY fault_id").fetchall()
        runs = db.execute("SELECT run_id, status, faults_done FROM runs ORDER BY run_id").fetchall()
    finally:
        db.close()
    return results, runs


def _count_results(store: Path) -> int | None:
    """Committed results of a store another process is writing; None while it is not readable yet."""
    if not store.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:  # schema not created yet, or locked for a moment
        return None


def _exports_present(folder: Path) -> list[str]:
    return [name for name in EXPORT_NAMES if (folder / name).exists()]




# ------------------------------------------------------------------ a full campaign
def test_full_campaign_upstream_csv(baseline, fault_list):
    assert baseline.complete
    rows = _read_csv(baseline.exports["upstream"])
    assert baseline.exports["upstream"].name == "results_upstream.csv"
    assert rows[0] == UPSTREAM_HEADER
    body = rows[1:]
    assert len(body) == SAMPLE
    by_id = {fault_list.id_of(i): f for i, f in enumerate(fault_list)}
    ids = [int(r[0]) for r in body]
    assert len(set(ids)) == SAMPLE and set(ids) <= set(by_id)
    assert ids != list(range(SAMPLE))  # the list's own Injection numbers, not positions
    for injection, layer, index, bit, n, masked, non_critical, critical in body:
        fault = by_id[int(injection)]
        assert (layer, index, int(bit)) == (fault.layer, str(fault.index), fault.bits[0])
        assert int(n) == LIMIT
        assert int(masked) + int(non_critical) + int(critical) == LIMIT
    totals = np.array([[int(c) for c in r[5:]] for r in body]).sum(axis=0)
    # Real faults over all 32 bits: some are masked, most are not; the counts are not degenerate.
    assert totals.sum() == SAMPLE * LIMIT and (totals > 0).sum() >= 2


def test_exports_are_readable_like_any_new_file(baseline):
    # Written through a temporary file: the final mode must follow the umask, not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    for path in baseline.exports.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert not list(baseline.output.glob(".*.part"))  # no temporary file left behind


def test_upstream_csv_reads_back_as_a_fault_list(baseline, model):
    again = read_fault_list(baseline.exports["upstream"], model, model_id=MODEL)
    rows = _read_csv(baseline.exports["upstream"])[1:]
    assert list(again.ids) == [int(r[0]) for r in rows]
    assert list(again.extra["critical"]) == [int(r[7]) for r in rows]


def test_results_csv_and_store_agree(baseline, fault_list):
    rich = _read_csv(baseline.exports["results"])
    assert rich[0][:2] == ["fault_id", "injection"] and "nonfinite" in rich[0] and "faulty_correct" in rich[0]
    upstream = _read_csv(baseline.exports["upstream"])
    h = rich[0]
    for r, u in zip(rich[1:], upstream[1:], strict=True):
        assert r[h.index("injection")] == u[0]
        assert [r[h.index(k)] for k in ("n", "masked", "non_critical", "critical")] == u[4:]
    outcomes = np.load(baseline.exports["outcomes"])
    assert outcomes.shape == (SAMPLE, LIMIT) and outcomes.dtype == np.uint8
    for row, r in zip(outcomes, rich[1:], strict=True):
        assert np.bincount(row, minlength=3).tolist() == [int(r[h.index(k)]) for k in ("masked", "non_critical",
                                                                                       "critical")]
    results, runs = _store_rows(baseline.store_path)
    assert len(results) == SAMPLE and [(s, d) for _, s, d in runs] == [("complete", SAMPLE)]


def test_provenance(baseline, model, npz):
    prov = json.loads(baseline.exports["provenance"].read_text())
    identity = prov["identity"]
    assert identity["model_id"] == MODEL and prov["model"]["model_id"] == MODEL
    assert identity["weights_state_sha256"] == model.faultzoo.state_sha256
    assert identity["fault_list_sha256"] == prov["fault_list"]["sha256"] and len(prov["fault_list"]["sha256"]) == 64
    assert identity["data_sha256"] == prov["data"]["fingerprint"] and len(identity["data_sha256"]) == 64
    assert identity["images"] == LIMIT and identity["faults"] == SAMPLE
    assert prov["versions"]["torch"] == torch.__version__ == identity["torch"]
    numerics = prov["numerics"]
    assert numerics["threads"] == torch.get_num_threads()
    assert numerics["tf32"] is False and numerics["device"] == "cpu" and numerics["dtype"] == "float32"
    assert prov["engine"]["engine"] == "fast"
    assert prov["summary"]["total"]["n"] == SAMPLE * LIMIT
    assert 0 < prov["golden_top1"] <= 100


# ------------------------------------------------------------------ resuming
def _copy(result, dest: Path) -> Path:
    shutil.copytree(result.output, dest)
    return dest


def test_resume_of_a_complete_campaign_does_no_work(baseline, fault_csv, npz, tmp_path, monkeypatch):
    out = _copy(baseline, tmp_path / "again")
    monkeypatch.setattr(runner_module, "make_engine",
                        lambda *a, **k: pytest.fail("an engine was started for a complete campaign"))
    progress = []
    result = _campaign(fault_csv, npz, out, keep_outcomes=True, callbacks=[progress.append])
    assert result.complete and progress == []
    for key in ("upstream", "results", "outcomes"):
        assert result.exports[key].read_bytes() == baseline.exports[key].read_bytes(), key
    before, after = (json.loads(r.exports["provenance"].read_text()) for r in (baseline, result))
    for key in ("identity", "summary", "fault_list", "data", "model", "golden_top1"):
        assert after[key] == before[key], key
    _, runs = _store_rows(result.store_path)
    assert [(s, d) for _, s, d in runs] == [("complete", SAMPLE), ("complete", 0)]


@pytest.mark.parametrize("change, fields", [
    ({"fault_seed": 1}, ["fault_list_sha256"]),
    ({"limit": LIMIT - 1}, ["data_sha256", "images"]),
    ({"weights": None}, ["weights_state_sha256"]),
    ({"batch_size": 64}, ["batch_size"]),
], ids=["fault-list", "data", "weights", "batch-size"])
def test_resume_with_another_campaign_is_refused(baseline, fault_csv, npz, tmp_path, no_compute, change, fields):
    out = _copy(baseline, tmp_path / "other")
    store = out / STORE_NAME
    before = _store_rows(store)
    stored = json.loads(baseline.exports["provenance"].read_text())["identity"]
    with pytest.raises(CampaignMismatchError) as err:
        _campaign(fault_csv, npz, out, **change)
    message = str(err.value)
    for field in fields:
        assert f"{field}: stored {stored[field]!r}, requested " in message, message
    assert str(store) in message
    assert _store_rows(store) == before  # no run was even begun


def test_refused_resume_keeps_the_exports(baseline, fault_csv, npz, tmp_path, no_compute):
    # A typo in --limit must not delete the finished campaign's result files.
    out = _copy(baseline, tmp_path / "other")
    with pytest.raises(CampaignMismatchError):
        _campaign(fault_csv, npz, out, limit=LIMIT - 1)
    assert sorted(_exports_present(out)) == sorted(p.name for p in baseline.exports.values()), \
        "a refused resume removed the exports of the complete campaign in the folder"


# ------------------------------------------------------------------ bad input, before any compute
BAD_FAULTS = {
    "unknown-layer": (Fault("conv9.weight", (0, 0, 0, 0), (3,)), "unknown layer 'conv9'"),
    "index-out-of-range": (Fault("conv1.weight", (16, 0, 0, 0), (3,)), "out of bounds for 'conv1'"),
    "wrong-rank": (Fault("conv1.weight", (0, 0, 0), (3,)), "has 3 dimensions; expected 4"),
}


@pytest.mark.parametrize("bad", BAD_FAULTS, ids=list(BAD_FAULTS))
@pytest.mark.parametrize("as_file", [True, False], ids=["file", "object"])
def test_fault_list_that_does_not_fit_the_model(env, npz, tmp_path, no_compute, bad, as_file):
    fault, what = BAD_FAULTS[bad]
    faults = FaultList((Fault("conv1.weight", (0, 0, 0, 0), (30,)), Fault("fc.weight", (1, 2), (5,)), fault),
                       ids=(10, 11, 12))
    source = write_fault_list(faults, tmp_path / "bad.csv", format="torch") if as_file else faults
    out = tmp_path / "out"
    with pytest.raises(FaultListFormatError) as err:
        run_campaign(MODEL, source, output=out, data=str(npz), limit=8)
    message = str(err.value)
    assert what in message
    assert ("bad.csv, line 4 (Injection 12)" if as_file else "row 2 (Injection 12)") in message, message
    assert not (out / STORE_NAME).exists() and not out.exists()


def test_data_whose_classes_do_not_fit(env, tmp_path, no_compute):
    cifar100 = require_shared("datasets", "cifar100", "test-166-exact.npz")
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="label"):
        run_campaign(MODEL, FaultList((Fault("conv1.weight", (0, 0, 0, 0), (30,)),)), output=out, data=str(cifar100))
    assert not out.exists()


def test_workers_are_refused_when_shared_memory_cannot_hold_the_images(env, fault_csv, npz, tmp_path, no_compute,
                                                                       monkeypatch):
    monkeypatch.setattr(sharedmem, "shared_memory_free", lambda: 1 << 20)
    out = tmp_path / "out"
    with pytest.raises(FaultzooError, match=r"workers=2: .* /dev/shm has only 1 MB free: use one worker"):
        _campaign(fault_csv, npz, out, workers=2)
    assert not out.exists()


# ------------------------------------------------------------------ engines
def test_reference_engine_gives_the_same_outcomes(baseline, fault_csv, npz, tmp_path):
    ref = _campaign(fault_csv, npz, tmp_path / "ref", engine="reference", keep_outcomes=True)
    assert ref.complete and ref.engine["engine"] == "reference"
    assert _without_seconds(_read_csv(ref.exports["results"])) == \
        _without_seconds(_read_csv(baseline.exports["results"]))
    assert ref.exports["upstream"].read_bytes() == baseline.exports["upstream"].read_bytes()
    assert np.array_equal(np.load(ref.exports["outcomes"]), np.load(baseline.exports["outcomes"]))


def test_two_worker_processes_give_the_same_outcomes(baseline, fault_csv, npz, tmp_path):
    """Workers share the parent's golden maps and start-up checks; results must not change."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two = _campaign(fault_csv, npz, tmp_path / "two", workers=2, keep_outcomes=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert two.complete and two.engine["workers"] == 2 and two.engine["fallback"] is None
    # Everything ran on one thread per process (recorded so), and the caller's setting is back.
    assert two.provenance["numerics"]["threads"] == 1
    assert _without_seconds(_read_csv(two.exports["results"])) == \
        _without_seconds(_read_csv(baseline.exports["results"]))
    assert np.array_equal(np.load(two.exports["outcomes"]), np.load(baseline.exports["outcomes"]))


def test_tasks_keep_layers_together_balance_work_and_start_with_the_heaviest(fault_list):
    from faultzoo.campaign.tasks import plan_tasks

    pending = list(range(len(fault_list)))
    depth = {p: k for k, p in enumerate(dict.fromkeys(sorted(f.param for f in fault_list)))}

    def cost(fault):  # early layers cost more, as in a real network
        return 1.0 + 10.0 / (1 + depth[fault.param])

    tasks = plan_tasks(fault_list, pending, cost, parallel=2)
    assert sorted(i for t in tasks for i in t) == pending  # each fault exactly once
    loads = [sum(cost(fault_list[i]) for i in t) for t in tasks]
    assert loads == sorted(loads, reverse=True)
    assert 8 <= len(tasks) <= 20 and max(loads) <= 2.5 * sum(loads) / len(tasks)
    assert loads[-1] <= 0.6 * sorted(loads)[len(loads) // 2]  # the last tasks are short: a short tail
    for task in tasks:  # faults of a layer are contiguous within a task (the engine stacks them)
        params = [fault_list[i].param for i in task]
        assert params == sorted(params)
    one = plan_tasks(fault_list, pending, cost, parallel=1, size=50)
    assert [len(t) for t in one] == [50] * 8 and sum(one, []) == sorted(pending, key=lambda i: (fault_list[i].param, i))


# ------------------------------------------------------------------ kill -9, then the same command
def cli_command(fault_csv: Path, npz: Path, out: Path, workers: int = 1) -> list[str]:
    return [sys.executable, "-c", "from faultzoo.cli import main; main()", "campaign", MODEL, "--faults",
            str(fault_csv), "--data", str(npz), "--limit", str(LIMIT), "--fault-sample", str(SAMPLE),
            "--workers", str(workers), "-o", str(out)]


# Marks the processes that campaigns started by this test process run in (their environment holds it), so
# that a check for leftover workers ignores those of tests running in parallel in other processes.
_MARK = f"FAULTZOO_TEST_DRIVER={os.getpid()}"


def cli_env() -> dict[str, str]:
    env = dict(os.environ)  # FAULTZOO_HOME/MIRROR/OFFLINE from the autouse fixture
    env.update([_MARK.split("=", 1)])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"  # same numerics settings as the in-process baseline, and fair to a shared machine
    return env


def start_and_interrupt(cmd: list[str], store: Path, total: int, sig: int, log: Path,
                        timeout: float = 180) -> tuple[subprocess.Popen, int]:
    """Start ``cmd``; once some but not all results are committed, send ``sig``. Returns the process and count seen.

    Also checks that no export file appears while the store is incomplete.
    """
    with open(log, "w") as handle:
        # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an
        # inherited SIG_IGN: restore the default so the child sees Ctrl-C as a user would.
        proc = subprocess.Popen(cmd, env=cli_env(), stdout=handle, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + timeout
    seen = None
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            count = _count_results(store)
            assert not _exports_present(store.parent), "export written while the store is incomplete"
            if count is not None and 0 < count < total:
                proc.send_signal(sig)
                seen = count
                break
            time.sleep(0.01)
    finally:
        if seen is None and proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    if seen is None:
        pytest.fail(f"never saw a partially written store (exit {proc.returncode}); the campaign finished or "
                    f"failed too fast. Output:\n{log.read_text()[-3000:]}")
    return proc, seen


def _worker_processes() -> set[int]:
    """Live processes started by multiprocessing's spawn or fork server (the campaign's workers) for campaigns
    this test process started (see cli_env), by pid."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if (b"multiprocessing.spawn" in cmdline or b"multiprocessing.forkserver" in cmdline) and state != "Z" \
                and _MARK.encode() in environ:
            found.add(int(entry.name))
    return found


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_then_same_command_resumes_exactly(baseline, fault_csv, npz, tmp_path, workers):
    out = tmp_path / "killed"
    store = out / STORE_NAME
    cmd = cli_command(fault_csv, npz, out, workers)
    before = _worker_processes()
    proc, seen = start_and_interrupt(cmd, store, SAMPLE, signal.SIGKILL, tmp_path / "first.log")
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30  # orphaned workers notice within a second; a loaded machine is slower
    while _worker_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _worker_processes() - before, "worker processes outlived their killed parent"
    results, runs = _store_rows(store)
    assert seen <= len(results) < SAMPLE
    assert [s for _, s, _ in runs] == ["running"]  # killed: the run never ended
    assert runs[0][2] == len(results)
    assert _exports_present(out) == []
    with sqlite3.connect(store) as db:
        tempdir = json.loads(db.execute("SELECT provenance FROM runs").fetchone()[0]).get("tempdir")
    if workers > 1:  # the fork server's folder, left behind by the killed process
        assert tempdir and Path(tempdir).is_dir()

    second = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    printed = "".join(second.stdout.split())  # rich wraps long paths at the terminal width
    assert str(out / "results_upstream.csv") in printed

    _, runs = _store_rows(store)
    assert [s for _, s, _ in runs] == ["interrupted", "complete"]  # the resume found the dead run
    assert not (tempdir and Path(tempdir).exists()), "the dead run's temporary folder was left behind"
    assert sum(d for _, _, d in runs) == SAMPLE  # no fault lost or counted twice
    assert runs[1][2] == SAMPLE - len(results)
    assert (out / "results_upstream.csv").read_bytes() == baseline.exports["upstream"].read_bytes()
    assert _without_seconds(_read_csv(out / "results.csv")) == _without_seconds(_read_csv(baseline.exports["results"]))


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_saves_results_and_says_how_to_resume(fault_csv, npz, tmp_path, workers):
    out = tmp_path / "interrupted"
    store = out / STORE_NAME
    log = tmp_path / "run.log"
    proc, seen = start_and_interrupt(cli_command(fault_csv, npz, out, workers), store, SAMPLE, signal.SIGINT, log)
    output = log.read_text()
    results, runs = _store_rows(store)
    assert seen <= len(results) < SAMPLE, output
    assert [(s, d) for _, s, d in runs] == [("interrupted", len(results))], output
    assert _exports_present(out) == []
    assert proc.returncode == 130, f"exit status {proc.returncode} after Ctrl-C; output:\n{output[-2000:]}"
    assert "re-run" in output
