"""Campaign exports: the upstream results CSV, faultzoo's richer CSV, provenance JSON, per-image outcomes.

Exports are written only for a complete campaign, each to a temporary name and renamed into
place, and removed when a run starts: a file here always describes the finished store.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import nn

from faultzoo._files import atomic_write
from faultzoo.campaign.store import FaultResult
from faultzoo.faults import FaultList
from faultzoo.faults.io import upstream_cells
from faultzoo.layouts import EXPORT_FILES, RICH_RESULT_COLUMNS, UPSTREAM_LIST_COLUMNS, UPSTREAM_RESULT_COLUMNS
from faultzoo.outcome import OUTCOME_KEYS, RATE_KEYS

UPSTREAM, RICH, PROVENANCE, OUTCOMES = (EXPORT_FILES[k] for k in ("upstream", "results", "provenance", "outcomes"))
ALL = tuple(EXPORT_FILES.values())


def export_paths(folder: Path) -> dict[str, Path]:
    """Where each export of a campaign in ``folder`` lies (whether written or not)."""
    return {name: Path(folder) / file for name, file in EXPORT_FILES.items()}


def remove_exports(folder: Path) -> None:
    for path in export_paths(folder).values():
        path.unlink(missing_ok=True)


def _csv(rows: list[list]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def upstream_rows(fault_list: FaultList, results: Sequence[FaultResult], model: nn.Module | None = None
                  ) -> list[list]:
    """dnn-benchmarks results layout: the fault row plus n_injections, masked, non_critical, critical.

    The fault row is written as the list was read (:func:`faultzoo.faults.io.upstream_cells`; ``model``,
    the PyTorch model, gives the names of another layout)."""
    rows: list[list] = [[*UPSTREAM_LIST_COLUMNS, *UPSTREAM_RESULT_COLUMNS]]
    cells = upstream_cells(fault_list, [r.fault_id for r in results], model)
    for r, (layer, index) in zip(results, cells):
        f = fault_list[r.fault_id]
        bit = f.bits[0] if len(f.bits) == 1 else " ".join(map(str, f.bits))
        rows.append([fault_list.id_of(r.fault_id), layer, str(tuple(index)), bit, r.n,
                     *(getattr(r, key) for key in OUTCOME_KEYS)])
    return rows


def rich_rows(fault_list: FaultList, results: Sequence[FaultResult]) -> list[list]:
    rows: list[list] = [list(RICH_RESULT_COLUMNS)]
    for r in results:
        f = fault_list[r.fault_id]
        rows.append([r.fault_id, fault_list.id_of(r.fault_id), f.param, str(tuple(f.index)),
                     " ".join(map(str, f.bits)), f.kind.value, r.n, *(getattr(r, key) for key in RATE_KEYS),
                     r.faulty_correct, f"{r.seconds:.6f}"])
    return rows


def export_all(folder: Path, fault_list: FaultList, results: Sequence[FaultResult], *, provenance: dict,
               model: nn.Module | None = None) -> dict[str, Path]:
    """Write every export of a finished campaign (``model``: the PyTorch model, for the layout of a list read
    in another framework's names)."""
    where = export_paths(folder)
    paths = {name: where[name] for name in ("upstream", "results", "provenance")}
    atomic_write(paths["upstream"], _csv(upstream_rows(fault_list, results, model)))
    atomic_write(paths["results"], _csv(rich_rows(fault_list, results)))
    atomic_write(paths["provenance"], json.dumps(provenance, indent=2, default=str).encode())
    if results and all(r.outcomes is not None for r in results):
        buffer = io.BytesIO()
        np.save(buffer, np.stack([r.outcomes for r in results]))
        paths["outcomes"] = where["outcomes"]
        atomic_write(paths["outcomes"], buffer.getvalue())
    return paths
