"""Read results into one table of faults plus what is known about them.

Accepted inputs: a campaign folder (``results.csv`` or ``results_upstream.csv``, ``provenance.json``,
optionally ``outcomes.npy``; or only ``campaign.sqlite`` with the fault list it names), faultzoo's
``results.csv``, and an upstream dnn-benchmarks results CSV
(``Injection,Layer,TensorIndex,Bit,n_injections,masked,non_critical,critical``). Rows that cannot be
read are kept aside as parse issues for the data-quality report instead of failing the load.
"""

from __future__ import annotations

import csv
import difflib
import json
import logging
import math
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from faultzoo.analysis.quality import check_quality
from faultzoo.analysis.store import read_store
from faultzoo.analysis.table import (
    OPTIONAL_COLUMNS, Columns, FaultTable, Results, check_provenance, section, selection_info,
)
from faultzoo.exceptions import AnalysisError, FaultzooError, UnknownModelError
from faultzoo.layouts import EXPORT_FILES, RICH_RESULT_COLUMNS, STORE_NAME, UPSTREAM_LIST_COLUMNS, UPSTREAM_RESULT_COLUMNS
from faultzoo.outcome import OUTCOME_KEYS, Outcome

_logger = logging.getLogger(__name__)

__all__ = ["FaultTable", "Results", "load_results"]

# The columns of faultzoo's results.csv before its outcome columns.
RICH_HEAD = RICH_RESULT_COLUMNS[:RICH_RESULT_COLUMNS.index(OUTCOME_KEYS[0])]
_INT_LIMIT = 2 ** 62  # counts, ids and indices beyond this are not a campaign's
_INTS = re.compile(r"-?\d+")
# Upstream file names: torch_gpu_image_classification_CIFAR10_fp32_resnet_ResNet32_FL.csv
_UPSTREAM_FILE = re.compile(r"(cifar10|cifar100|gtsrb)_fp32_[a-z0-9]+_([a-z0-9_]+?)_fl", re.IGNORECASE)
_OUR_FILE = re.compile(r"^(cifar10|cifar100|gtsrb)_([a-z0-9_]+?)_(?:torch|keras)_fl", re.IGNORECASE)

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- CSV parsing


def _ints(text: str) -> tuple[int, ...]:
    """``"0 1 2 2"`` or ``"(0, 1, 2, 2)"`` -> (0, 1, 2, 2); also a single ``"3"``."""
    values = tuple(int(v) for v in _INTS.findall(text))
    if any(abs(v) >= _INT_LIMIT for v in values):
        raise ValueError(f"{text!r} holds an integer beyond {_INT_LIMIT:.1e}")
    return values


_INT_TEXT = re.compile(r"\s*+[\(\[]?\s*+(?:-?\d++\s*+,?\s*+)*+[\)\]]?\s*+")  # possessive: no backtracking


def _check_int_text(text: str) -> bool:
    return bool(_INT_TEXT.fullmatch(text))


def _layouts() -> dict[str, tuple[str, ...]]:
    """The columns each results layout must have (as faultzoo.layouts declares them)."""
    return {"upstream-csv": (*UPSTREAM_LIST_COLUMNS, *UPSTREAM_RESULT_COLUMNS),
            "faultzoo-csv": (*RICH_HEAD, *OUTCOME_KEYS)}


def campaign_files() -> tuple[dict[str, str], str]:
    """The export files of a campaign folder (name -> file) and its store's file."""
    return EXPORT_FILES, STORE_NAME


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
    layouts = _layouts()
    for layout, needed in layouts.items():
        if all(c in header for c in needed):
            break
    else:
        shown = ",".join(header)
        raise AnalysisError(
            f"{path} is not a results file: its header is {shown[:200]!r}{'...' if len(shown) > 200 else ''}. "
            f"Expected the upstream layout ({','.join(layouts['upstream-csv'])}) or faultzoo's results.csv "
            f"({','.join(layouts['faultzoo-csv'])},...). A fault list without results cannot be analysed: run "
            "`faultzoo campaign` first.")
    optional = tuple(c for c in OPTIONAL_COLUMNS if c in header) if layout == "faultzoo-csv" else ()
    col = {name: header.index(name) for name in (*needed, *optional)}
    out, issues = Columns(optional), []
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
    if not len(out):
        raise AnalysisError(f"{path} holds no readable result rows"
                            + (f" ({issues[0][1]})" if issues else "") + ".")
    return out.table(), layout, issues


def _int_cell(row: list[str], col: dict[str, int], name: str) -> int:
    text = row[col[name]].strip()
    if not re.fullmatch(r"-?\d{1,18}", text):
        raise ValueError(f"{name} is {text[:40]!r}, expected an integer")
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
        raise ValueError(f"tensor index is {index_text[:40]!r}, expected integers like '(3, 0, 2, 1)' or '3 0 2 1'")
    bits = _ints(bits_text) if _check_int_text(bits_text) else ()
    if not bits:
        raise ValueError(f"bit is {bits_text[:40]!r}, expected an integer")
    values.update(index=_ints(index_text), bits=tuple(sorted(set(bits))))
    for name in OUTCOME_KEYS:
        values[name] = _int_cell(row, col, name)
    return values


# --------------------------------------------------------------------------- what is known about a result set


def guess_model_id(path: Path) -> str | None:
    """Zoo id from an upstream or faultzoo file name (None when the name says nothing)."""
    for pattern in (_UPSTREAM_FILE, _OUR_FILE):
        match = pattern.search(Path(path).name)
        if match:
            candidate = f"{match.group(1).lower()}/{match.group(2).lower()}"
            if candidate in faultzoo_models():
                return candidate
    return None


def faultzoo_models() -> list[str]:
    from faultzoo.zoo import list_models  # imports torch: only when needed

    return list_models()


def model_shapes(model_id: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a zoo model (built without weights: shapes only)."""
    from faultzoo.zoo import get_model  # imports torch: only when needed

    model = get_model(model_id, weights=None)
    return {name: tuple(t.shape) for name, t in model.state_dict().items() if t.is_floating_point()}


def _fault_meta(data: Any):
    from faultzoo.faults import FaultListMeta  # imports torch: only when needed

    if not isinstance(data, dict):
        return None
    try:
        meta = FaultListMeta.from_dict(data)
        problem = _meta_problem(meta)
    except (FaultzooError, TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        problem = str(exc)
    if problem:
        _logger.warning("fault-list metadata in the provenance is unreadable (%s); the design is unknown", problem)
        return None
    return meta


def _meta_problem(meta) -> str | None:
    """What in a fault list's metadata the analysis cannot compute with (None: nothing)."""
    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    params = meta.design_params if meta.design_params is not None else {}
    factor = params.get("population_factor") if isinstance(params, dict) else None
    checks = {
        "design": meta.design is None or isinstance(meta.design, str),
        "design_params": isinstance(params, dict) and (factor is None or (
            isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 < factor < math.inf)),
        "bits": all(whole(b) and 0 <= b < 64 for b in meta.bits or ()),
        "layers": all(isinstance(name, str) for name in meta.layers or ()),
        "strata": all(all(isinstance(p, str) for p in s.params) and all(whole(b) for b in s.bits)
                      and whole(s.population) and s.population >= 0 for s in meta.strata),
    }
    wrong = [name for name, ok in checks.items() if not ok]
    return f"{', '.join(wrong)} of another type than a fault list writes" if wrong else None


def _dataset_size(dataset: str | None) -> int | None:
    from faultzoo.data import dataset_info  # imports torch: only when needed

    try:
        return dataset_info(dataset).test_size if dataset else None
    except FaultzooError:
        return None


def _identify_upstream(results: Results) -> None:
    """Recognise the dnn-benchmarks list of the model (row for row) behind an upstream results file."""
    from faultzoo.faults import dnn_benchmarks_fault_list  # imports torch: only when needed
    from faultzoo.zoo import get_model

    model = get_model(results.model_id, weights=None)
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


# --------------------------------------------------------------------------- provenance

def _read_provenance(path: Path) -> dict:
    try:
        provenance = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise AnalysisError(f"{path} is not valid JSON ({exc}); restore it or pass the CSV alone.") from None
    return check_provenance(provenance, path)


# --------------------------------------------------------------------------- campaign folders and stores


def _read_outcomes(path: Path, results: Results) -> None:
    try:
        with open(path, "rb") as handle:
            outcomes = np.load(handle, allow_pickle=False)
            if not isinstance(outcomes, np.ndarray):  # an .npz archive by that name
                outcomes.close()
                raise ValueError("an .npz archive, not one array")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        results.parse_issues.append((0, f"{path.name} is unreadable ({exc}); per-image outcomes not used"))
        return
    t = results.table
    if outcomes.ndim != 2 or outcomes.shape[0] != len(t) or outcomes.dtype != np.uint8 \
            or (outcomes.size and outcomes.max() > max(Outcome)):
        results.parse_issues.append((0, f"{path.name} has shape {outcomes.shape} {outcomes.dtype}, expected "
                                        f"({len(t)}, images) uint8 outcome codes; per-image outcomes not used"))
        return
    critical = (outcomes == Outcome.CRITICAL).sum(axis=1)
    masked = (outcomes == Outcome.MASKED).sum(axis=1)
    bad = np.flatnonzero((critical != t.critical) | (masked != t.masked) | (outcomes.shape[1] != t.n))
    if bad.size:
        results.parse_issues.append((0, f"{path.name} disagrees with the result counts on {bad.size} faults (first: "
                                        f"row {int(bad[0])}); per-image outcomes not used"))
        return
    results.outcomes = outcomes


def _load_folder(folder: Path) -> Results:
    files, store = campaign_files()
    provenance: dict = {}
    prov_path = folder / files["provenance"]
    if prov_path.exists():
        provenance = _read_provenance(prov_path)
    for name in (files["results"], files["upstream"]):
        if (folder / name).exists():
            table, _, issues = _read_csv(folder / name)
            results = Results(table, folder, "campaign", provenance=provenance, parse_issues=issues)
            if (folder / files["outcomes"]).exists():
                _read_outcomes(folder / files["outcomes"], results)
            return results
    if (folder / store).exists():
        table, store_prov, outcomes = read_store(folder / store)
        return Results(table, folder, "store", provenance=provenance or store_prov, outcomes=outcomes)
    raise AnalysisError(f"{folder} holds no results: expected {files['results']}, {files['upstream']} or {store} "
                        "(the output folder of `faultzoo campaign`).")


# --------------------------------------------------------------------------- entry point


def as_path(value: Any, what: str) -> Path:
    """A path argument as a Path (str or os.PathLike, not empty).

    Raises:
        AnalysisError: another type, an empty string, or a name the system cannot hold.
    """
    if isinstance(value, (str, os.PathLike)):
        try:
            path = Path(value)
        except TypeError:  # a PathLike that returns bytes
            path = None
        if path is not None and str(value) and "\x00" not in str(path):
            return path
    raise AnalysisError(f"{what} must be a path (a str or os.PathLike naming a file or folder), found "
                        f"{type(value).__name__} {value!r:.80}.")


def _kind_of(path: Path) -> str:
    """'dir', 'file' or 'missing'; an error that stops the system from looking becomes AnalysisError."""
    try:
        return "dir" if path.is_dir() else "file" if path.exists() else "missing"
    except OSError as exc:
        raise AnalysisError(f"Cannot look at {str(path)[:200]}: {exc.strerror or exc}.") from None


def check_model_arg(model: Any) -> None:
    """Refuse a --model that is not a string (the id itself is checked against the zoo later)."""
    if model is not None and not isinstance(model, str):
        raise AnalysisError(f"model must be a zoo id such as 'cifar10/resnet20' (a str), found "
                            f"{type(model).__name__} {model!r:.80}.")


def check_progress_arg(progress: Any) -> None:
    if progress is not None and not callable(progress):
        raise AnalysisError(f"progress must be a function of one string (or None), found {type(progress).__name__}.")


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
        AnalysisError: a wrong argument, missing or unreadable input, an unknown file layout, no
            readable rows, a provenance.json that does not fit.
        UnknownModelError: a ``model`` that is not in the zoo.
    """
    path = as_path(path, "path")
    check_model_arg(model)
    check_progress_arg(progress)
    step = progress or (lambda _: None)
    step(f"reading {path.name}")
    kind = _kind_of(path)
    if kind == "dir":
        results = _load_folder(path)
    elif kind == "file":
        table, layout, issues = _read_csv(path)
        results = Results(table, path, layout, parse_issues=issues)
        sibling = path.parent / campaign_files()[0]["provenance"]
        if layout == "faultzoo-csv" and sibling.exists():
            results.provenance = _read_provenance(sibling)
    else:
        raise AnalysisError(f"{path} does not exist; give a campaign folder or a results CSV.")
    _describe(results, model)
    recorded_shapes = section(results.provenance, "model").get("shapes")
    if results.shapes is None and recorded_shapes:  # a model outside the zoo: its campaign recorded them
        results.shapes = {name: tuple(shape) for name, shape in recorded_shapes.items()}
    if results.model_id and results.shapes is None and results.model_id in faultzoo_models():
        step(f"shapes of {results.model_id}")
        results.shapes = model_shapes(results.model_id)
        if results.kind == "upstream-csv" and results.fault_meta is None:
            step("identifying the fault-list design")
            _identify_upstream(results)
    if check:
        step("data-quality checks")
        results.quality = check_quality(results)
    return results


def _describe(results: Results, model: str | None) -> None:
    """Model, design, images and test-set size from the provenance, --model, or the file name."""
    prov = results.provenance
    recorded = section(prov, "model").get("model_id") or section(prov, "identity").get("model_id")
    if model is not None:
        models = faultzoo_models()
        if model not in models:
            close = difflib.get_close_matches(model, models, n=3)
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
    fl = section(prov, "fault_list")
    results.fault_meta = _fault_meta(fl.get("meta"))
    if results.fault_meta is not None:
        results.design_note = "from the campaign's fault-list metadata"
    # A campaign knows how many faults it runs, with or without the list's metadata: fewer stored is a partial run.
    expected = fl.get("faults") or section(prov, "identity").get("faults")
    if isinstance(expected, int) and not isinstance(expected, bool) and expected > 0:
        results.expected_faults = expected
    results.fault_selection = selection_info(prov)
    data = section(prov, "data")
    images = data.get("num_samples") or section(prov, "identity").get("images")
    t = results.table
    if not images and len(t):
        values, counts = np.unique(t.n[t.n > 0], return_counts=True)
        images = values[counts.argmax()] if values.size else None  # the usual image count of the rows
    results.images = int(images) if images else None
    dataset = data.get("dataset") or (results.model_id.split("/", 1)[0] if results.model_id else None)
    results.test_size = _dataset_size(dataset)
