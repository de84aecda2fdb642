"""Read results into one table of faults plus what is known about them.

Accepted inputs: a campaign folder (``results.csv`` or ``results_upstream.csv``, ``provenance.json``,
optionally ``outcomes.npy``; or only ``campaign.sqlite`` with the fault list it names), faultzoo's
``results.csv``, and an upstream dnn-benchmarks results CSV
(``Injection,Layer,TensorIndex,Bit,n_injections,masked,non_critical,critical``). Rows that cannot be
read are kept aside as parse issues for the data-quality report instead of failing the load.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faultzoo.exceptions import AnalysisError, FaultzooError

_logger = logging.getLogger(__name__)

__all__ = ["FaultTable", "Results", "load_results"]

UPSTREAM_COLUMNS = ("Injection", "Layer", "TensorIndex", "Bit", "n_injections", "masked", "non_critical", "critical")
RICH_COLUMNS = ("fault_id", "injection", "param", "index", "bits", "kind", "n", "masked", "non_critical", "critical")
OPTIONAL_COLUMNS = ("nonfinite", "faulty_correct", "seconds")
OUTCOMES = ("masked", "non_critical", "critical")
_INTS = re.compile(r"-?\d+")
# Upstream file names: torch_gpu_image_classification_CIFAR10_fp32_resnet_ResNet32_FL.csv
_UPSTREAM_FILE = re.compile(r"(cifar10|cifar100|gtsrb)_fp32_[a-z0-9]+_([a-z0-9_]+?)_fl", re.IGNORECASE)
_OUR_FILE = re.compile(r"^(cifar10|cifar100|gtsrb)_([a-z0-9_]+?)_(?:torch|keras)_fl", re.IGNORECASE)

Progress = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class FaultTable:
    """One row per fault: where it is and how its images came out (numpy columns, file order)."""

    injection: np.ndarray  # int64 Injection id
    param: np.ndarray  # object: tensor name, e.g. "layer1.0.conv1.weight"
    index: tuple[tuple[int, ...], ...]
    bits: tuple[tuple[int, ...], ...]
    kind: np.ndarray  # object: bitflip / stuck-at-0 / stuck-at-1
    n: np.ndarray  # int64 images of the fault
    masked: np.ndarray
    non_critical: np.ndarray
    critical: np.ndarray
    line: np.ndarray  # int64 line of the source file (0 for a store)
    nonfinite: np.ndarray | None = None
    faulty_correct: np.ndarray | None = None
    seconds: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.n.size)

    @property
    def layer(self) -> np.ndarray:
        """Upstream ``Layer`` names: the tensor name without ``.weight``."""
        return np.array([p.removesuffix(".weight") for p in self.param], dtype=object)

    @property
    def bit(self) -> np.ndarray:
        """The flipped bit of each fault; -1 for a multi-bit fault."""
        return np.array([b[0] if len(b) == 1 else -1 for b in self.bits], dtype=np.int64)

    def count(self, outcome: str) -> np.ndarray:
        """Images per fault with an outcome: masked, non_critical, critical or nonfinite."""
        if outcome not in (*OUTCOMES, "nonfinite"):
            raise AnalysisError(f"Unknown outcome {outcome!r}; choose masked, non_critical, critical or nonfinite.")
        values = getattr(self, outcome)
        if values is None:
            raise AnalysisError(f"These results do not record {outcome!r} (upstream files hold masked, "
                                "non_critical and critical only).")
        return values

    def rate(self, outcome: str) -> np.ndarray:
        """Per-fault rate of an outcome (count / images); NaN where a row has no images."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.count(outcome) / np.maximum(self.n, 1), np.nan)

    def take(self, rows: np.ndarray) -> FaultTable:
        """The rows at ``rows`` (positions), in that order."""
        rows = np.asarray(rows, dtype=np.int64)

        def pick(a):
            return None if a is None else a[rows]
        return FaultTable(self.injection[rows], self.param[rows], tuple(self.index[i] for i in rows),
                          tuple(self.bits[i] for i in rows), self.kind[rows], self.n[rows], self.masked[rows],
                          self.non_critical[rows], self.critical[rows], self.line[rows], pick(self.nonfinite),
                          pick(self.faulty_correct), pick(self.seconds))


@dataclass(eq=False)
class Results:
    """A loaded result set: the fault table and everything known about how it was made.

    Attributes:
        table: one row per fault.
        source: the file or folder read.
        kind: ``campaign`` (a folder with exports), ``store`` (a folder with only campaign.sqlite),
            ``faultzoo-csv`` or ``upstream-csv``.
        model_id: the zoo model, and ``model_from`` how it is known (provenance, --model, file name).
        provenance: the campaign's provenance.json (empty for upstream files).
        fault_meta: the fault list's design metadata (FaultListMeta), None when unknown.
        design_note: how the design was established.
        shapes: tensor name -> shape of the model (None without a model).
        images: m, the images each fault was run on (the selection); None when unknown.
        test_size: M, the images of the dataset's test set.
        outcomes: faults x images outcome codes (0 masked, 1 non-critical, 2 critical), when stored.
        expected_faults: faults the run should hold (its fault list), when known.
        fault_selection: how the faults were chosen from their list (fault_sample, fault_seed, fault_limit).
        parse_issues: (line, message) of rows that could not be read.
        quality: the data-quality report (set by load_results).
    """

    table: FaultTable
    source: Path
    kind: str
    model_id: str | None = None
    model_from: str = "unknown"
    provenance: dict = field(default_factory=dict)
    fault_meta: Any = None
    design_note: str = ""
    shapes: dict[str, tuple[int, ...]] | None = None
    images: int | None = None
    test_size: int | None = None
    outcomes: np.ndarray | None = None
    expected_faults: int | None = None
    fault_selection: dict = field(default_factory=dict)
    parse_issues: list[tuple[int, str]] = field(default_factory=list)
    quality: Any = None

    @property
    def design(self) -> str:
        return getattr(self.fault_meta, "design", None) or "unknown"


# --------------------------------------------------------------------------- CSV parsing


def _ints(text: str) -> tuple[int, ...]:
    """``"0 1 2 2"`` or ``"(0, 1, 2, 2)"`` -> (0, 1, 2, 2); also a single ``"3"``."""
    return tuple(int(v) for v in _INTS.findall(text))


def _check_int_text(text: str) -> bool:
    return bool(re.fullmatch(r"\s*[\(\[]?\s*(-?\d+\s*,?\s*)*[\)\]]?\s*", text))


class _Columns:
    """Accumulates parsed rows column by column."""

    def __init__(self, optional: tuple[str, ...]) -> None:
        self.cols: dict[str, list] = {k: [] for k in ("injection", "param", "index", "bits", "kind", "n", *OUTCOMES,
                                                       "line", *optional)}

    def add(self, **values: Any) -> None:
        for k, v in values.items():
            self.cols[k].append(v)

    def table(self) -> FaultTable:
        c = self.cols

        def ints(name):
            return np.asarray(c[name], dtype=np.int64) if name in c else None
        return FaultTable(ints("injection"), np.asarray(c["param"], dtype=object), tuple(c["index"]),
                          tuple(c["bits"]), np.asarray(c["kind"], dtype=object), ints("n"), ints("masked"),
                          ints("non_critical"), ints("critical"), ints("line"), ints("nonfinite"),
                          ints("faulty_correct"),
                          np.asarray(c["seconds"], dtype=np.float64) if "seconds" in c else None)


def _read_csv(path: Path) -> tuple[FaultTable, str, list[tuple[int, str]]]:
    """Parse a results CSV (upstream or faultzoo layout) tolerantly: bad rows become issues."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise AnalysisError(f"Results file {path} does not exist; check the path.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnalysisError(f"Cannot read results file {path}: {exc}.") from None
    if not rows:
        raise AnalysisError(f"Results file {path} is empty.")
    # results.csv names its time column for what it is (a task's time per fault); older files said "seconds".
    header = ["seconds" if h.strip() == "task_seconds_per_fault" else h.strip() for h in rows[0]]
    if all(c in header for c in UPSTREAM_COLUMNS):
        layout, needed, optional = "upstream-csv", UPSTREAM_COLUMNS, ()
    elif all(c in header for c in RICH_COLUMNS):
        layout, needed = "faultzoo-csv", RICH_COLUMNS
        optional = tuple(c for c in OPTIONAL_COLUMNS if c in header)
    else:
        raise AnalysisError(
            f"{path} is not a results file: its header is {','.join(header)!r}. Expected the upstream layout "
            f"({','.join(UPSTREAM_COLUMNS)}) or faultzoo's results.csv ({','.join(RICH_COLUMNS)},...). A fault "
            "list without results cannot be analysed: run `faultzoo campaign` first.")
    col = {name: header.index(name) for name in (*needed, *optional)}
    out, issues = _Columns(optional), []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            issues.append((lineno, f"line {lineno} has {len(row)} fields, the header has {len(header)} "
                                   "(a file cut short?)"))
            continue
        try:
            out.add(**_parse_row(row, col, layout, optional), line=lineno)
        except ValueError as exc:
            issues.append((lineno, f"line {lineno}: {exc}"))
    if not out.cols["n"]:
        raise AnalysisError(f"{path} holds no readable result rows"
                            + (f" ({issues[0][1]})" if issues else "") + ".")
    return out.table(), layout, issues


def _int_cell(row: list[str], col: dict[str, int], name: str) -> int:
    text = row[col[name]].strip()
    if not re.fullmatch(r"-?\d+", text):
        raise ValueError(f"{name} is {text!r}, expected an integer")
    return int(text)


def _parse_row(row: list[str], col: dict[str, int], layout: str, optional: tuple[str, ...]) -> dict[str, Any]:
    if layout == "upstream-csv":
        layer = row[col["Layer"]].strip()
        param = layer if layer.endswith((".weight", ".bias")) else f"{layer}.weight"
        index_text, bits_text = row[col["TensorIndex"]], row[col["Bit"]]
        values = {"injection": _int_cell(row, col, "Injection"), "param": param, "kind": "bitflip",
                  "n": _int_cell(row, col, "n_injections")}
    else:
        index_text, bits_text = row[col["index"]], row[col["bits"]]
        values = {"injection": _int_cell(row, col, "injection"), "param": row[col["param"]].strip(),
                  "kind": row[col["kind"]].strip() or "bitflip", "n": _int_cell(row, col, "n")}
        for name in optional:
            values[name] = float(row[col[name]]) if name == "seconds" else _int_cell(row, col, name)
    if not _check_int_text(index_text):
        raise ValueError(f"tensor index is {index_text!r}, expected integers like '(3, 0, 2, 1)' or '3 0 2 1'")
    bits = _ints(bits_text)
    if not bits or not _check_int_text(bits_text):
        raise ValueError(f"bit is {bits_text!r}, expected an integer")
    values.update(index=_ints(index_text), bits=tuple(sorted(set(bits))))
    for name in OUTCOMES:
        values[name] = _int_cell(row, col, name)
    return values


# --------------------------------------------------------------------------- what is known about a result set


def guess_model_id(path: Path) -> str | None:
    """Zoo id from an upstream or faultzoo file name (None when the name says nothing)."""
    from faultzoo import list_models

    for pattern in (_UPSTREAM_FILE, _OUR_FILE):
        match = pattern.search(path.name)
        if match:
            candidate = f"{match.group(1).lower()}/{match.group(2).lower()}"
            if candidate in list_models():
                return candidate
    return None


def faultzoo_models() -> list[str]:
    from faultzoo import list_models

    return list_models()


def model_shapes(model_id: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a zoo model (built without weights: shapes only)."""
    import faultzoo

    model = faultzoo.get_model(model_id, weights=None)
    return {name: tuple(t.shape) for name, t in model.state_dict().items() if t.is_floating_point()}


def _fault_meta(data: Any):
    from faultzoo.faults import FaultListMeta

    if not isinstance(data, dict):
        return None
    try:
        return FaultListMeta.from_dict(data)
    except (FaultzooError, TypeError, ValueError, KeyError) as exc:
        _logger.warning("fault-list metadata in the provenance is unreadable (%s); the design is unknown", exc)
        return None


def _selection_info(provenance: dict) -> dict:
    """fault_sample / fault_seed / fault_limit, wherever a version of the provenance keeps them."""
    found: dict = {}
    for place in (provenance, provenance.get("fault_list") or {}, provenance.get("identity") or {},
                  provenance.get("selection") or {}):
        if isinstance(place, dict):
            for key in ("fault_sample", "fault_seed", "fault_limit"):
                if place.get(key) is not None and key not in found:
                    found[key] = place[key]
    return found


def _dataset_size(dataset: str | None) -> int | None:
    from faultzoo.data import dataset_info

    try:
        return dataset_info(dataset).test_size if dataset else None
    except FaultzooError:
        return None


def _identify_upstream(results: Results) -> None:
    """Recognise the dnn-benchmarks list of the model (row for row) behind an upstream results file."""
    import faultzoo
    from faultzoo.faults import dnn_benchmarks_fault_list

    model = faultzoo.get_model(results.model_id, weights=None)
    try:
        reference = dnn_benchmarks_fault_list(model, model_id=results.model_id)
    except FaultzooError as exc:
        results.design_note = f"the dnn-benchmarks list of {results.model_id} could not be regenerated ({exc})"
        return
    rows = {i: (f.param, f.index, f.bits) for i, f in enumerate(reference)}
    t = results.table
    same = sum(rows.get(int(i)) == (p, ix, b) for i, p, ix, b in zip(t.injection, t.param, t.index, t.bits))
    if same >= 0.99 * len(t):
        results.fault_meta = reference.meta
        results.expected_faults = len(reference)
        results.design_note = (f"the rows are those of the dnn-benchmarks list of {results.model_id} "
                               f"({same:,} of {len(t):,} rows identical)")
    else:
        results.design_note = (f"not the dnn-benchmarks list of {results.model_id} ({same:,} of {len(t):,} rows "
                               "match): analysed as a simple random sample of faults")


# --------------------------------------------------------------------------- campaign folders and stores


def _read_outcomes(path: Path, results: Results) -> None:
    try:
        outcomes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        results.parse_issues.append((0, f"{path.name} is unreadable ({exc}); per-image outcomes not used"))
        return
    t = results.table
    if outcomes.ndim != 2 or outcomes.shape[0] != len(t) or outcomes.dtype != np.uint8:
        results.parse_issues.append((0, f"{path.name} has shape {outcomes.shape} {outcomes.dtype}, expected "
                                        f"({len(t)}, images) uint8; per-image outcomes not used"))
        return
    critical = (outcomes == 2).sum(axis=1)
    masked = (outcomes == 0).sum(axis=1)
    bad = np.flatnonzero((critical != t.critical) | (masked != t.masked) | (outcomes.shape[1] != t.n))
    if bad.size:
        results.parse_issues.append((0, f"{path.name} disagrees with the result counts on {bad.size} faults (first: "
                                        f"row {int(bad[0])}); per-image outcomes not used"))
        return
    results.outcomes = outcomes


def _load_folder(folder: Path) -> Results:
    provenance: dict = {}
    prov_path = folder / "provenance.json"
    if prov_path.exists():
        try:
            provenance = json.loads(prov_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AnalysisError(f"{prov_path} is not valid JSON ({exc}); restore it or pass the CSV alone.") from None
    for name in ("results.csv", "results_upstream.csv"):
        if (folder / name).exists():
            table, _, issues = _read_csv(folder / name)
            results = Results(table, folder, "campaign", provenance=provenance, parse_issues=issues)
            if (folder / "outcomes.npy").exists():
                _read_outcomes(folder / "outcomes.npy", results)
            return results
    if (folder / "campaign.sqlite").exists():
        from faultzoo.analysis.store import read_store

        table, store_prov, outcomes = read_store(folder / "campaign.sqlite")
        return Results(table, folder, "store", provenance=provenance or store_prov, outcomes=outcomes)
    raise AnalysisError(f"{folder} holds no results: expected results.csv, results_upstream.csv or campaign.sqlite "
                        "(the output folder of `faultzoo campaign`).")


# --------------------------------------------------------------------------- entry point


def load_results(path: str | os.PathLike, *, model: str | None = None, check: bool = True,
                 progress: Progress | None = None) -> Results:
    """Load a campaign folder or a results CSV, and run the data-quality checks on it.

    Args:
        path: a campaign output folder, its ``results.csv``, or an upstream results CSV.
        model: zoo id of the model (``--model``); gives the layer shapes and, for upstream files,
            identifies the dnn-benchmarks design. Guessed from upstream file names when not given.
        check: run :func:`faultzoo.analysis.check_quality` and store it in ``results.quality``.
        progress: called with a short description of each loading step.

    Raises:
        AnalysisError: missing or unreadable input, an unknown file layout, no readable rows.
    """
    step = progress or (lambda _: None)
    path = Path(path)
    step(f"reading {path.name}")
    if path.is_dir():
        results = _load_folder(path)
    elif path.exists():
        table, layout, issues = _read_csv(path)
        results = Results(table, path, layout, parse_issues=issues)
        sibling = path.parent / "provenance.json"
        if layout == "faultzoo-csv" and sibling.exists():
            results.provenance = json.loads(sibling.read_text(encoding="utf-8"))
    else:
        raise AnalysisError(f"{path} does not exist; give a campaign folder or a results CSV.")
    _describe(results, model)
    recorded_shapes = (results.provenance.get("model") or {}).get("shapes")
    if results.shapes is None and recorded_shapes:  # a model outside the zoo: its campaign recorded them
        results.shapes = {name: tuple(shape) for name, shape in recorded_shapes.items()}
    if results.model_id and results.shapes is None and results.model_id in faultzoo_models():
        step(f"shapes of {results.model_id}")
        results.shapes = model_shapes(results.model_id)
        if results.kind == "upstream-csv" and results.fault_meta is None:
            step("identifying the fault-list design")
            _identify_upstream(results)
    if check:
        from faultzoo.analysis.quality import check_quality

        step("data-quality checks")
        results.quality = check_quality(results)
    return results


def _describe(results: Results, model: str | None) -> None:
    """Model, design, images and test-set size from the provenance, --model, or the file name."""
    from faultzoo import list_models
    from faultzoo.exceptions import UnknownModelError

    prov = results.provenance
    recorded = (prov.get("model") or {}).get("model_id") or (prov.get("identity") or {}).get("model_id")
    if model is not None:
        if model not in list_models():
            import difflib

            close = difflib.get_close_matches(model, list_models(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownModelError(f"Unknown model {model!r} (--model).{hint} Run `faultzoo models`.")
        if recorded and recorded != model:
            raise AnalysisError(f"--model {model} contradicts the campaign's provenance ({recorded}); drop --model.")
        results.model_id, results.model_from = model, "--model"
    elif recorded:
        results.model_id, results.model_from = recorded, "provenance"
    elif results.kind in ("upstream-csv", "faultzoo-csv"):
        guess = guess_model_id(results.source)
        if guess:
            results.model_id, results.model_from = guess, "file name"
    fl = prov.get("fault_list") or {}
    results.fault_meta = _fault_meta(fl.get("meta"))
    if results.fault_meta is not None:
        results.design_note = "from the campaign's fault-list metadata"
        results.expected_faults = fl.get("faults") or (prov.get("identity") or {}).get("faults")
    results.fault_selection = _selection_info(prov)
    data = prov.get("data") or {}
    images = data.get("num_samples") or (prov.get("identity") or {}).get("images")
    t = results.table
    if not images and len(t):
        values, counts = np.unique(t.n, return_counts=True)
        images = values[counts.argmax()]  # the usual image count of the rows
    results.images = int(images) if images else None
    dataset = data.get("dataset") or (results.model_id.split("/", 1)[0] if results.model_id else None)
    results.test_size = _dataset_size(dataset)
