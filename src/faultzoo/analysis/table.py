"""The data every analysis works on: the fault table and a loaded result set, and the helpers that
the readers of results files and of campaign stores share (:mod:`faultzoo.analysis.load`,
:mod:`faultzoo.analysis.store`).

This module imports no other analysis module: the readers import it, never each other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from faultzoo.exceptions import AnalysisError
from faultzoo.outcome import OUTCOME_KEYS, RATE_KEYS

__all__ = ["OPTIONAL_COLUMNS", "Columns", "FaultTable", "Results", "check_provenance", "expect_results", "section",
           "selection_info"]


@dataclass(frozen=True, eq=False)
class FaultTable:
    """One row per fault: where it is and how its images came out (numpy columns, file order).

    The outcome columns are named by the outcome keys of :mod:`faultzoo.outcome` (``masked``,
    ``non_critical``, ``critical``; ``nonfinite`` when recorded).
    """

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
        """Images per fault with an outcome: one of :data:`faultzoo.outcome.RATE_KEYS`."""
        if not isinstance(outcome, str) or outcome not in RATE_KEYS:
            raise AnalysisError(f"Unknown outcome {outcome!r}; choose one of {', '.join(RATE_KEYS)}.")
        values = getattr(self, outcome)
        if values is None:
            raise AnalysisError(f"These results do not record {outcome!r} (upstream files hold the outcome classes "
                                "only).")
        return values

    def rate(self, outcome: str) -> np.ndarray:
        """Per-fault rate of an outcome (count / images); NaN where a row has no images."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.count(outcome) / np.maximum(self.n, 1), np.nan)

    def consistent(self) -> np.ndarray:
        """Rows that can be estimated from: images, outcome counts >= 0 that add up to the images, and a
        NaN/Inf count (when recorded) between 0 and the images."""
        counts = [self.count(key) for key in OUTCOME_KEYS]
        ok = (self.n > 0) & np.all(np.greater_equal(counts, 0), axis=0) & (np.sum(counts, axis=0) == self.n)
        if self.nonfinite is not None:
            ok &= (self.nonfinite >= 0) & (self.nonfinite <= self.n)
        return ok

    def take(self, rows: np.ndarray) -> FaultTable:
        """The rows at ``rows`` (positions), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        picked: dict[str, Any] = {}
        for f in fields(self):
            values = getattr(self, f.name)
            if values is None:
                picked[f.name] = None
            elif isinstance(values, tuple):
                picked[f.name] = tuple(values[i] for i in rows)
            else:
                picked[f.name] = values[rows]
        return FaultTable(**picked)


# Columns a table may lack (None): every field with a default.
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(FaultTable) if f.default is None)
_OBJECTS, _TUPLES, _FLOATS = ("param", "kind"), ("index", "bits"), ("seconds",)


class Columns:
    """Accumulates parsed rows column by column, then makes the :class:`FaultTable`.

    Args:
        optional: the optional columns the rows carry (the others stay None in the table).
    """

    def __init__(self, optional: tuple[str, ...] = ()) -> None:
        unknown = set(optional) - set(OPTIONAL_COLUMNS)
        if unknown:
            raise AnalysisError(f"Unknown optional columns {sorted(unknown)}; a fault table has "
                                f"{', '.join(OPTIONAL_COLUMNS)}.")
        self.cols: dict[str, list] = {f.name: [] for f in fields(FaultTable)
                                      if f.name not in OPTIONAL_COLUMNS or f.name in optional}

    def __len__(self) -> int:
        return len(self.cols["n"])

    def add(self, **values: Any) -> None:
        for k, v in values.items():
            self.cols[k].append(v)

    def table(self) -> FaultTable:
        def column(name: str, values: list):
            if name in _TUPLES:
                return tuple(values)
            if name in _OBJECTS:
                return np.asarray(values, dtype=object)
            return np.asarray(values, dtype=np.float64 if name in _FLOATS else np.int64)

        return FaultTable(**{name: column(name, values) for name, values in self.cols.items()})


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
        outcomes: faults x images outcome codes (:class:`faultzoo.outcome.Outcome` values), when stored.
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


def expect_results(value: Any, function: str) -> Results:
    """``value`` when it is loaded results.

    Raises:
        AnalysisError: naming the function and what it was given instead.
    """
    if not isinstance(value, Results):
        raise AnalysisError(f"{function} takes results loaded by faultzoo.analysis.load_results(path), found "
                            f"{type(value).__name__} {value!r:.80}.")
    return value


def section(mapping: Any, key: str) -> dict:
    """``mapping[key]`` when both are dicts, else an empty dict (provenance layouts differ between
    versions, and a hand-edited file may hold anything)."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, dict) else {}


def selection_info(provenance: dict) -> dict:
    """fault_sample / fault_seed / fault_limit, wherever a version of the provenance keeps them."""
    found: dict = {}
    for place in (provenance, section(provenance, "fault_list"), section(provenance, "identity"),
                  section(provenance, "selection")):
        if isinstance(place, dict):
            for key in ("fault_sample", "fault_seed", "fault_limit"):
                if place.get(key) is not None and key not in found:
                    found[key] = place[key]
    return found


# The values of a provenance the analysis computes with, and their types (sections that are not objects
# are read as empty: table.section).
_COUNT, _TEXT, _NUMBER = "a non-negative integer", "a string", "a number"
_FIELDS = {
    ("model", "model_id"): _TEXT, ("identity", "model_id"): _TEXT, ("data", "dataset"): _TEXT,
    ("fault_list", "faults"): _COUNT, ("identity", "faults"): _COUNT, ("data", "num_samples"): _COUNT,
    ("identity", "images"): _COUNT, ("fault_list", "sha256"): _TEXT, ("fault_list", "source"): _TEXT,
    ("golden_top1",): _NUMBER, ("workers",): _COUNT,
    **{(*where, key): _COUNT for where in ((), ("fault_list",), ("identity",), ("selection",))
       for key in ("fault_sample", "fault_seed", "fault_limit")},
}


def _fits(value: Any, kind: str) -> bool:
    if kind == _TEXT:
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind == _NUMBER or (isinstance(value, int) and value >= 0)


def check_provenance(provenance: Any, where: Path) -> dict:
    """The provenance when the values the analysis computes with have their types.

    Raises:
        AnalysisError: naming the file and the first value of a wrong type.
    """
    if not isinstance(provenance, dict):
        raise AnalysisError(f"{where} holds {type(provenance).__name__} where a provenance object ({{...}}) is "
                            "expected; restore the file or pass the results CSV alone.")
    wrong = []
    for keys, kind in _FIELDS.items():
        *parents, key = keys
        place = section(provenance, parents[0]) if parents else provenance
        value = place.get(key)
        if value is not None and not _fits(value, kind):
            wrong.append(f"{'.'.join(keys)} is {value!r:.60}, expected {kind}")
    shapes = section(provenance, "model").get("shapes")
    if shapes is not None and not (isinstance(shapes, dict) and all(
            isinstance(name, str) and isinstance(shape, (list, tuple))
            and all(_fits(v, _COUNT) for v in shape) for name, shape in shapes.items())):
        wrong.append("model.shapes is not an object of tensor names and shapes (lists of sizes)")
    if wrong:
        raise AnalysisError(f"{where} is not a provenance faultzoo can use: {'; '.join(wrong[:3])}. Restore the file "
                            "or pass the results CSV alone.")
    return provenance
