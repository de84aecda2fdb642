"""The result store: one SQLite file per campaign, written as results are computed.

Contract:
- A store belongs to one campaign identity (model, weights, fault list, data selection, numerics
  that define "golden"). Opening it with another identity raises CampaignMismatchError naming
  every differing field; nothing in the file is touched.
- A fault's result is written once, together with nothing else: each batch of finished faults is
  one transaction, so a crash (Ctrl-C, kill -9, power loss) leaves every fault either fully
  recorded or absent, never half. Re-running resumes with the absent ones.
- Recording a fault that is already recorded raises FinishedRecordError (never counted twice).
- Every run (start, end as ISO 8601 UTC, engine, provenance, pid) is appended to a history table.
- The faults themselves (tensor, index, bits, kind, Injection id) are stored beside their results,
  so a store can be analysed alone.
- One campaign at a time: a writer holds an advisory lock (flock) on the file; a second writer is
  refused at once, naming the first one's pid. A run still marked "running" when the lock is free
  belonged to a process that died (kill -9, power loss): it is marked "interrupted".
- A finished campaign can be opened read-only (:meth:`ResultStore.open_readonly`), also in a folder
  that cannot be written.
"""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import os
import shutil
import sqlite3
import zlib
from datetime import datetime, timezone
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faultzoo._files import process_alive
from faultzoo.exceptions import CampaignLockedError, CampaignMismatchError, FaultzooError, OutputError, SchemaVersionError
from faultzoo.faults import FaultList

SCHEMA_VERSION = 2


class FinishedRecordError(FaultzooError, RuntimeError):
    """A fault whose result is already stored was recorded again."""


@dataclass(frozen=True)
class FaultResult:
    """Counts of one fault over the selected images (and optionally the per-image outcomes)."""

    fault_id: int  # position in the fault list
    n: int
    masked: int
    non_critical: int
    critical: int
    nonfinite: int  # images whose faulty logits hold a NaN or an Inf
    faulty_correct: int  # images whose faulty top-1 equals the label
    seconds: float
    outcomes: np.ndarray | None = None  # uint8 Outcome per image, when kept

    def __post_init__(self) -> None:
        if self.masked + self.non_critical + self.critical != self.n:
            raise ValueError(f"fault {self.fault_id}: outcome counts do not add up to n={self.n}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    fault_id INTEGER PRIMARY KEY,
    n INTEGER NOT NULL, masked INTEGER NOT NULL, non_critical INTEGER NOT NULL, critical INTEGER NOT NULL,
    nonfinite INTEGER NOT NULL, faulty_correct INTEGER NOT NULL, seconds REAL NOT NULL,
    run_id INTEGER NOT NULL, outcomes BLOB
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, ended TEXT, status TEXT NOT NULL,
    provenance TEXT NOT NULL, faults_done INTEGER NOT NULL DEFAULT 0
);
"""

# Added by schema 2 (a schema-1 store gains it when opened for writing).
_FAULTS = """
CREATE TABLE IF NOT EXISTS faults (
    fault_id INTEGER PRIMARY KEY, injection INTEGER NOT NULL, param TEXT NOT NULL, tensor_index TEXT NOT NULL,
    bits TEXT NOT NULL, kind TEXT NOT NULL
)
"""


def now_iso() -> str:
    """The current time, ISO 8601 in UTC (what the store and the exports write)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _iso(value) -> str | None:
    # Schema-1 stores kept seconds since the epoch.
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="seconds")
    return value


class ResultStore:
    """SQLite-backed results of one campaign. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection
        self.run_id: int | None = None

    # -------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, path: str | Path, identity: Mapping, meta: Mapping | None = None, *,
             fault_list: FaultList | None = None) -> ResultStore:
        """Create the store, or open an existing one after checking it belongs to the same campaign,
        and take the campaign's lock. ``fault_list``: the faults of the campaign, stored once.

        Raises:
            CampaignLockedError: another process has the campaign open (its pid is named).
            SchemaVersionError: the file was written by an incompatible version, or is not a store.
            CampaignMismatchError: the file holds another campaign (lists every differing field).
            OutputError: the folder or the file cannot be written.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"Cannot write the result store {path}: {exc.strerror}. Choose a writable -o folder "
                              "(a finished campaign there can still be read: faultzoo report FOLDER).") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(lock)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise CampaignLockedError(f"Another campaign ({_running_pid(path)}) is running in {path.parent}; wait "
                                      "for it to finish, or stop it, or use another -o folder.") from None
        fresh = path.stat().st_size == 0
        db = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit transactions below
        store = cls(path, db)
        store._lock = lock
        try:
            if not fresh:
                store._check(dict(identity))  # before anything writes to a file that may not be ours
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with store._transaction():
                if fresh:
                    for statement in filter(str.strip, _SCHEMA.split(";")):  # executescript would commit early
                        db.execute(statement)
                    store._put("identity", dict(identity))
                    store._put("meta", dict(meta or {}))
                    store._put("created", now_iso())
                db.execute(_FAULTS)
                store._put("schema_version", SCHEMA_VERSION)
                # We hold the lock: a run still "running" belonged to a process that died.
                store._clean_after_dead_runs()
                db.execute("UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
            if fault_list is not None:
                store.put_faults(fault_list)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, path: str | Path) -> ResultStore:
        """Open a store for reading only (no lock, nothing written; works in a read-only folder).

        Raises:
            SchemaVersionError: the file is not a faultzoo result store, or of another schema.
        """
        path = Path(path)
        if not path.is_file():
            raise SchemaVersionError(f"{path} does not exist: not a faultzoo result store.")
        # Without a -wal file no writer is active (a writer checkpoints and removes it on close): read the
        # file as immutable, which creates no -shm/-wal files, so a read-only folder works too. With one,
        # a writer may be running: read through SQLite's locking.
        live = path.with_name(path.name + "-wal").exists()
        mode = "mode=ro" if live else "immutable=1"
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, isolation_level=None)
        store = cls(path, db)
        try:
            version = store._get("schema_version")
        except sqlite3.DatabaseError as exc:
            store.close()
            raise SchemaVersionError(f"{path} is not a faultzoo result store ({exc}).") from None
        if version not in (1, SCHEMA_VERSION):
            store.close()
            raise SchemaVersionError(f"Result store {path} has schema version {version}; this faultzoo reads 1 and "
                                     f"{SCHEMA_VERSION}.")
        return store

    def _check(self, identity: dict) -> None:
        try:
            version = self._get("schema_version")
        except sqlite3.DatabaseError as exc:
            raise SchemaVersionError(f"{self.path} is not a faultzoo result store ({exc}).") from None
        if version not in (1, SCHEMA_VERSION):  # schema 1 lacks the faults table: added on open
            raise SchemaVersionError(
                f"Result store {self.path} has schema version {version}; this faultzoo writes {SCHEMA_VERSION}. "
                "Use the faultzoo version that wrote it, or start a new campaign with another -o path."
            )
        stored = self._get("identity")
        diffs = [f"{k}: stored {stored.get(k)!r}, requested {identity.get(k)!r}"
                 for k in sorted(set(stored) | set(identity)) if stored.get(k) != identity.get(k)]
        if diffs:
            raise CampaignMismatchError(
                f"{self.path} holds a different campaign; refusing to resume into it. Differences: "
                + "; ".join(diffs) + ". Use another output path for a new campaign."
            )

    _lock: int | None = None

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- key/value meta
    def _put(self, key: str, value) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def _get(self, key: str):
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    @property
    def identity(self) -> dict:
        return self._get("identity")

    @property
    def meta(self) -> dict:
        return self._get("meta")

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, *rest):
                db.execute("ROLLBACK" if exc_type else "COMMIT")
        return _Tx()

    # -------------------------------------------------------------- runs
    def begin_run(self, provenance: Mapping) -> int:
        # multiprocessing's temporary folder (the fork server's socket): removed at exit, but not when the
        # process is killed; recorded so that the next run removes it then.
        tempdir = multiprocessing.current_process()._config.get("tempdir")
        with self._transaction():
            cur = self._db.execute("INSERT INTO runs(started, status, provenance) VALUES (?, 'running', ?)",
                                   (now_iso(), json.dumps({**dict(provenance), "pid": os.getpid(),
                                                           **({"tempdir": tempdir} if tempdir else {})},
                                                          default=str)))
        self.run_id = int(cur.lastrowid)
        return self.run_id

    def _clean_after_dead_runs(self) -> None:
        """Remove the temporary folders that runs which died (still marked running) left behind."""
        rows = self._db.execute("SELECT provenance FROM runs WHERE status = 'running'").fetchall()
        for (text,) in rows:
            try:
                provenance = json.loads(text)
            except ValueError:
                continue
            tempdir, pid = provenance.get("tempdir"), provenance.get("pid")
            if not tempdir or process_alive(pid):  # a live process still uses its folder (this one, say)
                continue
            if Path(tempdir).name.startswith("pymp-") and Path(tempdir).is_dir():
                shutil.rmtree(tempdir, ignore_errors=True)

    def end_run(self, status: str) -> None:
        if self.run_id is None:
            return
        with self._transaction():
            self._db.execute("UPDATE runs SET ended = ?, status = ? WHERE run_id = ?", (now_iso(), status, self.run_id))

    def runs(self) -> list[dict]:
        rows = self._db.execute("SELECT run_id, started, ended, status, provenance, faults_done FROM runs ORDER BY run_id")
        return [{"run_id": r[0], "started": _iso(r[1]), "ended": _iso(r[2]), "status": r[3],
                 "provenance": json.loads(r[4]), "faults_done": r[5]} for r in rows]

    # -------------------------------------------------------------- faults
    def put_faults(self, fault_list: FaultList) -> None:
        """Store the campaign's faults (once; a resume finds them there)."""
        rows = [(i, fault_list.id_of(i), f.param, json.dumps(list(f.index)), json.dumps(list(f.bits)), f.kind.value)
                for i, f in enumerate(fault_list.faults)]
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO faults VALUES (?, ?, ?, ?, ?, ?)", rows)

    def faults(self) -> list[dict]:
        """The stored faults: fault_id, injection, param, index, bits, kind (empty for a schema-1 store)."""
        try:
            rows = self._db.execute("SELECT fault_id, injection, param, tensor_index, bits, kind FROM faults "
                                    "ORDER BY fault_id").fetchall()
        except sqlite3.OperationalError:  # schema 1, opened read-only
            return []
        return [{"fault_id": r[0], "injection": r[1], "param": r[2], "index": tuple(json.loads(r[3])),
                 "bits": tuple(json.loads(r[4])), "kind": r[5]} for r in rows]

    # -------------------------------------------------------------- results
    def done_ids(self) -> set[int]:
        return {r[0] for r in self._db.execute("SELECT fault_id FROM results")}

    def record(self, results: Iterable[FaultResult]) -> None:
        """Store a batch of finished faults in one transaction (all or nothing)."""
        results = list(results)
        if self.run_id is None:
            raise RuntimeError("begin_run() before record()")
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(r.fault_id, r.n, r.masked, r.non_critical, r.critical, r.nonfinite, r.faulty_correct,
                      r.seconds, self.run_id,
                      zlib.compress(r.outcomes.astype(np.uint8).tobytes()) if r.outcomes is not None else None)
                     for r in results])
                self._db.execute("UPDATE runs SET faults_done = faults_done + ? WHERE run_id = ?",
                                 (len(results), self.run_id))
        except sqlite3.IntegrityError:
            done = self.done_ids() & {r.fault_id for r in results}
            raise FinishedRecordError(f"{self.path}: faults {sorted(done)[:10]} are already recorded; "
                                      "a result is never counted twice.") from None

    def results(self) -> list[FaultResult]:
        rows = self._db.execute(
            "SELECT fault_id, n, masked, non_critical, critical, nonfinite, faulty_correct, seconds, outcomes "
            "FROM results ORDER BY fault_id")
        return [FaultResult(*r[:8], outcomes=np.frombuffer(zlib.decompress(r[8]), np.uint8) if r[8] else None)
                for r in rows]


def _running_pid(path: Path) -> str:
    """'pid N' of the run that holds the lock, as its run record says (best effort)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute("SELECT provenance FROM runs WHERE status = 'running' ORDER BY run_id DESC").fetchone()
        finally:
            db.close()
        pid = json.loads(row[0]).get("pid") if row else None
    except (sqlite3.Error, ValueError):
        pid = None
    return f"pid {pid}" if pid else "another process"
