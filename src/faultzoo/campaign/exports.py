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

UPSTREAM = "results_upstream.csv"
RICH = "results.csv"
PROVENANCE = "provenance.json"
OUTCOMES = "outcomes.npy"
ALL = (UPSTREAM, RICH, PROVENANCE, OUTCOMES)


def remove_exports(folder: Path) -> None:
    for name in ALL:
        (folder / name).unlink(missing_ok=True)


def _csv(rows: list[list]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def upstream_rows(fault_list: FaultList, results: Sequence[FaultResult], model: nn.Module | None = None
                  ) -> list[list]:
    """dnn-benchmarks results layout: the fault row plus n_injections, masked, non_critical, critical.

    The fault row is written as the list was: a list read from an upstream Keras file gets Keras layer
    names and HWIO/IO indices (``model``, the PyTorch model, gives the names), any other the PyTorch ones."""
    rows: list[list] = [["Injection", "Layer", "TensorIndex", "Bit", "n_injections", "masked", "non_critical",
                         "critical"]]
    keras_names = model is not None and fault_list.meta.source_format == "keras"
    if keras_names:
        from faultzoo.faults.keras import keras_layer_names, torch_to_keras_index

        names = keras_layer_names(model)
    for r in results:
        f = fault_list[r.fault_id]
        bit = f.bits[0] if len(f.bits) == 1 else " ".join(map(str, f.bits))
        layer, index = (names[f.param], torch_to_keras_index(f.index)) if keras_names else (f.layer, f.index)
        rows.append([fault_list.id_of(r.fault_id), layer, str(tuple(index)), bit, r.n, r.masked, r.non_critical,
                     r.critical])
    return rows


def rich_rows(fault_list: FaultList, results: Sequence[FaultResult]) -> list[list]:
    rows: list[list] = [["fault_id", "injection", "param", "index", "bits", "kind", "n", "masked", "non_critical",
                         "critical", "nonfinite", "faulty_correct", "task_seconds_per_fault"]]
    for r in results:
        f = fault_list[r.fault_id]
        rows.append([r.fault_id, fault_list.id_of(r.fault_id), f.param, str(tuple(f.index)),
                     " ".join(map(str, f.bits)), f.kind.value, r.n, r.masked, r.non_critical, r.critical, r.nonfinite,
                     r.faulty_correct, f"{r.seconds:.6f}"])
    return rows


def export_all(folder: Path, fault_list: FaultList, results: Sequence[FaultResult], *, provenance: dict,
               model: nn.Module | None = None) -> dict[str, Path]:
    """Write every export of a finished campaign (``model``: the PyTorch model, for a Keras list's layout)."""
    paths = {"upstream": folder / UPSTREAM, "results": folder / RICH, "provenance": folder / PROVENANCE}
    atomic_write(paths["upstream"], _csv(upstream_rows(fault_list, results, model)))
    atomic_write(paths["results"], _csv(rich_rows(fault_list, results)))
    atomic_write(paths["provenance"], json.dumps(provenance, indent=2, default=str).encode())
    if results and all(r.outcomes is not None for r in results):
        buffer = io.BytesIO()
        np.save(buffer, np.stack([r.outcomes for r in results]))
        paths["outcomes"] = folder / OUTCOMES
        atomic_write(paths["outcomes"], buffer.getvalue())
    return paths
