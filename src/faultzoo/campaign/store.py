"""The result store: one SQLite file per campaign, written as results are computed.

Contract:
- A store belongs to one campaign identity (model, weights, fault list, data selection, numerics
  that define "golden"). Opening it with another identity raises CampaignMismatchError naming
  every differing field; nothing in the file is touched.
- A fault's result is written once, together with nothing else: each batch of finished faults is
  one transaction, so a crash (Ctrl-C, kill -9, power loss) leaves every fault either fully
  recorded or absent, never half. Re-running resumes with the absent ones.
- Recording a fault that is already recorded raises FinishedRecordError (never counted twice).
- Every run (start, end, engine, provenance) is appended to a history table.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faultzoo.exceptions import CampaignMismatchError, FaultzooError, SchemaVersionError

SCHEMA_VERSION = 1


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
    run_id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, ended REAL, status TEXT NOT NULL,
    provenance TEXT NOT NULL, faults_done INTEGER NOT NULL DEFAULT 0
);
"""


class ResultStore:
    """SQLite-backed results of one campaign. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection
        self.run_id: int | None = None

    # -------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, path: str | Path, identity: Mapping, meta: Mapping | None = None) -> ResultStore:
        """Create the store, or open an existing one after checking it belongs to the same campaign.

        Raises:
            SchemaVersionError: the file was written by an incompatible version.
            CampaignMismatchError: the file holds another campaign (lists every differing field).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        db = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit transactions below
        store = cls(path, db)
        try:
            if not fresh:
                store._check(dict(identity))  # before anything writes to a file that may not be ours
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if fresh:
                with store._transaction():
                    for statement in filter(str.strip, _SCHEMA.split(";")):  # executescript would commit early
                        db.execute(statement)
                    store._put("schema_version", SCHEMA_VERSION)
                    store._put("identity", dict(identity))
                    store._put("meta", dict(meta or {}))
                    store._put("created", time.time())
        except BaseException:
            db.close()
            raise
        return store

    def _check(self, identity: dict) -> None:
        try:
            version = self._get("schema_version")
        except sqlite3.DatabaseError as exc:
            raise SchemaVersionError(f"{self.path} is not a faultzoo result store ({exc}).") from None
        if version != SCHEMA_VERSION:
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

    def close(self) -> None:
        self._db.close()

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
        with self._transaction():
            cur = self._db.execute("INSERT INTO runs(started, status, provenance) VALUES (?, 'running', ?)",
                                   (time.time(), json.dumps(dict(provenance))))
        self.run_id = int(cur.lastrowid)
        return self.run_id

    def end_run(self, status: str) -> None:
        if self.run_id is None:
            return
        with self._transaction():
            self._db.execute("UPDATE runs SET ended = ?, status = ? WHERE run_id = ?", (time.time(), status, self.run_id))

    def runs(self) -> list[dict]:
        rows = self._db.execute("SELECT run_id, started, ended, status, provenance, faults_done FROM runs ORDER BY run_id")
        return [{"run_id": r[0], "started": r[1], "ended": r[2], "status": r[3], "provenance": json.loads(r[4]),
                 "faults_done": r[5]} for r in rows]

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
