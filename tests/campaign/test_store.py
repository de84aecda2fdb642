"""The SQLite result store: identity checks, schema version, all-or-nothing batches, round trips, run history."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from faultzoo.campaign.store import SCHEMA_VERSION, FaultResult, FinishedRecordError, ResultStore
from faultzoo.exceptions import CampaignMismatchError, FaultzooError, SchemaVersionError

IDENTITY = {"model_id": "cifar10/resnet20", "weights_state_sha256": "a" * 64, "fault_list_sha256": "b" * 64,
            "faults": 3, "data_sha256": "c" * 64, "images": 4, "batch_size": 128, "tf32": False}


def _result(fid: int, outcomes: list[int] | None = None, seconds: float = 0.5) -> FaultResult:
    codes = np.array(outcomes if outcomes is not None else [0, 1, 2, 2], np.uint8)
    counts = np.bincount(codes, minlength=3)
    return FaultResult(fid, len(codes), int(counts[0]), int(counts[1]), int(counts[2]), nonfinite=1,
                       faulty_correct=2, seconds=seconds, outcomes=codes if outcomes is not None else None)


def _rows(path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM results ORDER BY fault_id").fetchall()


def test_create_then_reopen_same_identity(tmp_path):
    path = tmp_path / "sub" / "campaign.sqlite"  # the folder is created
    with ResultStore.open(path, IDENTITY, {"note": "first"}) as store:
        assert store.identity == IDENTITY and store.meta == {"note": "first"}
        assert store.done_ids() == set() and store.results() == []
        store.begin_run({"engine": "fast"})
        store.record([_result(0)])
    with ResultStore.open(path, dict(reversed(list(IDENTITY.items()))), {"note": "ignored"}) as store:
        # Key order does not matter; the first run's meta is kept.
        assert store.meta == {"note": "first"}
        assert store.done_ids() == {0}


def test_empty_file_is_a_fresh_store(tmp_path):
    path = tmp_path / "campaign.sqlite"
    path.touch()
    with ResultStore.open(path, IDENTITY) as store:
        assert store.identity == IDENTITY


def test_other_identity_is_refused_naming_every_field(tmp_path):
    path = tmp_path / "campaign.sqlite"
    with ResultStore.open(path, IDENTITY) as store:
        store.begin_run({})
        store.record([_result(0), _result(1)])
    before = _rows(path)
    other = {**IDENTITY, "images": 8, "fault_list_sha256": "d" * 64}
    with pytest.raises(CampaignMismatchError) as err:
        ResultStore.open(path, other)
    message = str(err.value)
    assert "images: stored 4, requested 8" in message
    assert f"fault_list_sha256: stored {'b' * 64!r}, requested {'d' * 64!r}" in message
    assert "model_id" not in message  # only the fields that differ
    assert str(path) in message and "another output path" in message
    assert isinstance(err.value, FaultzooError) and isinstance(err.value, ValueError)
    # A field present on one side only is a difference too.
    with pytest.raises(CampaignMismatchError, match=r"device: stored None, requested 'cpu'"):
        ResultStore.open(path, {**IDENTITY, "device": "cpu"})
    # Nothing was touched: same results, and the right identity still opens it.
    assert _rows(path) == before
    with ResultStore.open(path, IDENTITY) as store:
        assert store.done_ids() == {0, 1} and len(store.runs()) == 1


def test_wrong_schema_version(tmp_path):
    path = tmp_path / "campaign.sqlite"
    ResultStore.open(path, IDENTITY).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (json.dumps(SCHEMA_VERSION + 1),))
    with pytest.raises(SchemaVersionError) as err:
        ResultStore.open(path, IDENTITY)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(err.value) and f"writes {SCHEMA_VERSION}" in str(err.value)


def test_sqlite_file_of_another_program(tmp_path):
    path = tmp_path / "campaign.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE other (x)")
    with pytest.raises(SchemaVersionError, match="not a faultzoo result store"):
        ResultStore.open(path, IDENTITY)


def test_file_that_is_not_sqlite(tmp_path):
    # A stray file under the store's name must give a faultzoo error (one line in the CLI), not a raw sqlite3 one.
    path = tmp_path / "campaign.sqlite"
    path.write_bytes(b"these are not the bytes of a database " * 50)
    with pytest.raises(FaultzooError, match="campaign.sqlite"):
        ResultStore.open(path, IDENTITY)


def test_record_needs_a_run(tmp_path):
    with ResultStore.open(tmp_path / "c.sqlite", IDENTITY) as store:
        with pytest.raises(RuntimeError, match="begin_run"):
            store.record([_result(0)])


def test_record_is_all_or_nothing(tmp_path):
    path = tmp_path / "campaign.sqlite"
    with ResultStore.open(path, IDENTITY) as store:
        store.begin_run({})
        store.record([_result(0), _result(1)])
        with pytest.raises(FinishedRecordError, match=r"\[1\]") as err:
            store.record([_result(2), _result(1)])  # 2 is new, 1 is already recorded
        assert "never counted twice" in str(err.value)
        assert store.done_ids() == {0, 1}  # fault 2 was rolled back with the batch
        assert store.runs()[0]["faults_done"] == 2
        # A duplicate inside one batch is refused the same way.
        with pytest.raises(FinishedRecordError):
            store.record([_result(2), _result(2)])
        assert store.done_ids() == {0, 1}
        # The store is still usable after a refused batch.
        store.record([_result(2)])
        assert store.done_ids() == {0, 1, 2}
    assert len(_rows(path)) == 3


def test_failure_while_preparing_a_batch_stores_none_of_it(tmp_path):
    with ResultStore.open(tmp_path / "campaign.sqlite", IDENTITY) as store:
        store.begin_run({})
        broken = FaultResult(4, 1, 1, 0, 0, 0, 0, 0.1, outcomes="not an array")  # type: ignore[arg-type]
        with pytest.raises(AttributeError):
            store.record([_result(3), broken])
        assert store.done_ids() == set() and store.runs()[0]["faults_done"] == 0


def test_results_round_trip(tmp_path):
    path = tmp_path / "campaign.sqlite"
    written = [_result(2, [2, 2, 0, 1, 1], seconds=0.125), _result(0, seconds=1.5), _result(1, [0] * 300)]
    with ResultStore.open(path, IDENTITY) as store:
        store.begin_run({})
        store.record(written)
    with ResultStore.open(path, IDENTITY) as store:
        read = store.results()
    assert [r.fault_id for r in read] == [0, 1, 2]  # ordered by fault id
    by_id = {r.fault_id: r for r in written}
    for r in read:
        w = by_id[r.fault_id]
        assert (r.n, r.masked, r.non_critical, r.critical, r.nonfinite, r.faulty_correct, r.seconds) == \
               (w.n, w.masked, w.non_critical, w.critical, w.nonfinite, w.faulty_correct, w.seconds)
        if w.outcomes is None:
            assert r.outcomes is None
        else:
            assert r.outcomes.dtype == np.uint8 and r.outcomes.tolist() == w.outcomes.tolist()


def test_counts_must_add_up():
    with pytest.raises(ValueError, match="fault 7"):
        FaultResult(7, 4, 1, 1, 1, 0, 0, 0.0)


def test_run_history(tmp_path):
    path = tmp_path / "campaign.sqlite"
    with ResultStore.open(path, IDENTITY) as store:
        first = store.begin_run({"engine": "fast", "workers": 2})
        store.record([_result(0)])
        store.record([_result(1)])
        # No end_run: as after kill -9.
    with ResultStore.open(path, IDENTITY) as store:
        second = store.begin_run({"engine": "reference"})
        store.record([_result(2)])
        store.end_run("complete")
        runs = store.runs()
    assert second > first
    assert [r["run_id"] for r in runs] == [first, second]
    # The first run's process died without ending it: the next open marks it interrupted.
    assert [r["status"] for r in runs] == ["interrupted", "complete"]
    assert [r["faults_done"] for r in runs] == [2, 1]
    provenance = dict(runs[0]["provenance"])
    own_tempdir = provenance.pop("tempdir", None)
    assert provenance == {"engine": "fast", "workers": 2, "pid": os.getpid()} and runs[0]["ended"] is None
    # The "dead" run was this live process: its multiprocessing folder must survive the clean-up.
    assert own_tempdir is None or Path(own_tempdir).is_dir()
    for value in (runs[1]["started"], runs[1]["ended"]):
        assert datetime.fromisoformat(value).tzinfo is not None  # ISO 8601 with the UTC offset
    assert runs[1]["ended"] >= runs[1]["started"]
    # Which run computed each result is kept too.
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT fault_id, run_id FROM results ORDER BY fault_id").fetchall() == \
               [(0, first), (1, first), (2, second)]


def test_end_run_without_run_is_a_no_op(tmp_path):
    with ResultStore.open(tmp_path / "campaign.sqlite", IDENTITY) as store:
        store.end_run("complete")
        assert store.runs() == []


def test_faults_are_stored_with_the_results(tmp_path):
    from faultzoo.faults import Fault, FaultKind, FaultList, FaultListMeta

    faults = FaultList((Fault("conv1.weight", (1, 0, 2, 2), (30,)), Fault("fc.weight", (3, 4), (0, 31),
                                                                            FaultKind.STUCK_AT_1)),
                       FaultListMeta(design="custom"), ids=(7, 9))
    path = tmp_path / "campaign.sqlite"
    with ResultStore.open(path, IDENTITY, fault_list=faults):
        pass
    with ResultStore.open(path, IDENTITY, fault_list=faults) as store:  # a resume stores nothing twice
        stored = store.faults()
    assert stored == [
        {"fault_id": 0, "injection": 7, "param": "conv1.weight", "index": (1, 0, 2, 2), "bits": (30,),
         "kind": "bitflip"},
        {"fault_id": 1, "injection": 9, "param": "fc.weight", "index": (3, 4), "bits": (0, 31), "kind": "stuck-at-1"},
    ]


def test_a_second_writer_is_refused_at_once_naming_the_first(tmp_path):
    from faultzoo.exceptions import CampaignLockedError

    path = tmp_path / "campaign.sqlite"
    with ResultStore.open(path, IDENTITY) as store:
        store.begin_run({"engine": "fast"})
        # Another process: flock locks belong to open files, so a second open in this process collides too.
        with pytest.raises(CampaignLockedError, match=rf"pid {os.getpid()}\) is running in {tmp_path}"):
            ResultStore.open(path, IDENTITY)
        store.end_run("complete")
    with ResultStore.open(path, IDENTITY):  # the lock went with the first store
        pass


def test_a_finished_store_opens_read_only(tmp_path):
    path = tmp_path / "campaign.sqlite"
    with ResultStore.open(path, IDENTITY) as store:
        store.begin_run({})
        store.record([_result(0), _result(1)])
        store.end_run("complete")
    before = sorted(p.name for p in tmp_path.iterdir())
    with ResultStore.open_readonly(path) as store:
        assert store.identity == IDENTITY and len(store.results()) == 2
        with pytest.raises(sqlite3.OperationalError):
            store.begin_run({})
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_not_a_store_is_named(tmp_path):
    path = tmp_path / "campaign.sqlite"
    path.write_text("not a database, " * 100)
    with pytest.raises(SchemaVersionError, match="not a faultzoo result store"):
        ResultStore.open_readonly(path)
    with pytest.raises(SchemaVersionError, match="not a faultzoo result store"):
        ResultStore.open(path, IDENTITY)


def test_dead_runs_folder_is_removed_but_a_live_ones_is_kept(tmp_path):
    import subprocess, sys
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folders = {}
    for who, pid in (("dead", dead.pid), ("live", os.getppid())):
        folders[who] = tmp_path / f"pymp-{who}"
        folders[who].mkdir()
        path = tmp_path / f"{who}.sqlite"
        with ResultStore.open(path, IDENTITY) as store:
            store._db.execute("INSERT INTO runs(started, status, provenance) VALUES ('2026-01-01T00:00:00+00:00', "
                              "'running', ?)", (json.dumps({"pid": pid, "tempdir": str(folders[who])}),))
        with ResultStore.open(path, IDENTITY):
            pass
    assert not folders["dead"].exists()
    assert folders["live"].is_dir()
