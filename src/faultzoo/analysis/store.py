"""Reading a campaign store alone: results with their fault rows, for a folder without exports.

Schema-2 stores keep the faults beside the results; older ones are matched with the fault list their
provenance names, sub-selected as the campaign did and checked by its fingerprint.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import numpy as np

from faultzoo.analysis.table import OPTIONAL_COLUMNS, Columns, FaultTable, check_provenance, section, selection_info
from faultzoo.exceptions import AnalysisError, FaultzooError

__all__ = ["read_store"]


def read_store(path: Path) -> tuple[FaultTable, dict, np.ndarray | None]:
    """Results of a campaign store (read-only), with their fault rows: stored beside the results
    (schema 2), or rebuilt from the fault list the provenance names (older stores)."""
    from faultzoo.campaign.store import ResultStore  # imports torch: only when needed

    try:
        store = ResultStore.open_readonly(path)
        try:
            identity, meta = store.identity or {}, store.meta or {}
            stored = store.results()
            faults = store.faults() if hasattr(store, "faults") else []
            runs = store.runs()
        finally:
            store.close()
    except (FaultzooError, sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:
        raise AnalysisError(f"{path} is not a readable faultzoo result store ({exc}).") from None
    if not isinstance(meta, dict) or not isinstance(identity, dict):
        raise AnalysisError(f"{path} is not a readable faultzoo result store (its metadata is not an object).")
    provenance = check_provenance({**meta, "identity": identity}, path)
    last = section(runs[-1], "provenance") if runs else {}
    if runs:
        provenance.setdefault("workers", last.get("workers"))
        provenance.setdefault("engine", {"engine": last.get("engine")})
    if not stored:
        raise AnalysisError(f"{path} holds no results yet: let the campaign run, then report.")
    rows = {f["fault_id"]: f for f in faults}
    if not all(r.fault_id in rows for r in stored):
        fault_list = _rebuild_fault_list(path, provenance)
        if max(r.fault_id for r in stored) >= len(fault_list):
            raise AnalysisError(f"{path} holds fault {max(r.fault_id for r in stored)} but its fault list has "
                                f"{len(fault_list)} faults.")
        rows = {i: {"injection": fault_list.id_of(i), "param": f.param, "index": f.index, "bits": f.bits,
                    "kind": f.kind.value} for i, f in enumerate(fault_list)}
    out = Columns(OPTIONAL_COLUMNS)
    for r in stored:
        f = rows[r.fault_id]
        out.add(injection=f["injection"], param=f["param"], index=tuple(f["index"]),
                bits=tuple(sorted(set(f["bits"]))), kind=f["kind"], n=r.n, masked=r.masked,
                non_critical=r.non_critical, critical=r.critical, nonfinite=r.nonfinite,
                faulty_correct=r.faulty_correct, seconds=r.seconds, line=0)
    kept = None
    if all(r.outcomes is not None for r in stored) and len({r.outcomes.size for r in stored}) == 1:
        kept = np.stack([r.outcomes for r in stored])
    return out.table(), provenance, kept


def _rebuild_fault_list(path: Path, provenance: dict):
    """The campaign's fault list: re-read from its source and sub-selected, checked by fingerprint."""
    from faultzoo.faults import read_fault_list  # imports torch: only when needed

    identity = section(provenance, "identity")
    info = section(provenance, "fault_list")
    source, wanted = info.get("source"), identity.get("fault_list_sha256") or info.get("sha256")
    remedy = ("Let the campaign finish (its exports then hold every fault row) or report on its results.csv.")
    if not isinstance(source, str) or not source or not Path(source).is_file():
        raise AnalysisError(f"{path} has no results.csv and its fault list {source!r} is not readable here. {remedy}")
    full = read_fault_list(source, model_id=identity.get("model_id"))
    selection = selection_info(provenance)
    count = identity.get("faults")
    candidates = [full]
    if selection.get("fault_limit"):
        candidates.append(full[: int(selection["fault_limit"])])
    for size in {selection.get("fault_sample"), count} - {None}:
        if int(size) < len(full):
            picks = sorted(random.Random(int(selection.get("fault_seed", 0))).sample(range(len(full)), int(size)))
            candidates.append(_subset(full, picks))
            candidates.append(full[: int(size)])
    for candidate in candidates:
        if candidate.fingerprint() == wanted:
            return candidate
    raise AnalysisError(f"The fault list {source} does not reproduce the campaign's faults in {path} (fingerprint "
                        f"{str(wanted)[:12]}). {remedy}")


def _subset(fault_list, positions):
    return fault_list.take(positions)
