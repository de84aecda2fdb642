"""Design-aware estimates of a result set: inference-level rates, fault-level shares, by layer and bit.

Inference-level rates (masked, non-critical, critical, NaN/Inf) are means of per-fault rates, with
the interval from the between-fault variance and, when the images are a sample of the test set and
per-image outcomes are stored, the image component (crossed faults x images). Fault-level shares
(critical on at least one image, masked on every image) get Wilson intervals. Each is computed for
the whole population and by bit class, bit, layer and layer x bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faultzoo.analysis.design import BIT_CLASSES, GROUPINGS, AnalysisDesign, design_of
from faultzoo.analysis.stats import (
    Estimate, cell_stats, cell_variance, check_method, image_variance, interval, overall_fpc, proportion,
    rare_faults, z_value,
)
from faultzoo.analysis.table import expect_results, section
from faultzoo.exceptions import AnalysisError
from faultzoo.outcome import OUTCOME_KEYS, RATE_KEYS, Outcome

__all__ = ["Estimates", "GroupEstimate", "estimate"]

FAULT_LEVEL = {"critical_any": "critical on at least one image", "masked_all": "masked on every image"}


@dataclass(frozen=True)
class GroupEstimate:
    """Estimates of one group (a layer, a bit, a bit class, a layer x bit cell)."""

    key: object
    label: str
    faults: int
    population: int | None
    rates: dict[str, Estimate]
    shares: dict[str, Estimate] = field(default_factory=dict)  # fault-level: critical_any, masked_all

    def to_dict(self) -> dict:
        return {"key": self.key if not isinstance(self.key, tuple) else list(self.key), "label": self.label,
                "faults": self.faults, "population": self.population,
                "rates": {k: v.to_dict() for k, v in self.rates.items()},
                "shares": {k: v.to_dict() for k, v in self.shares.items()}}


@dataclass
class Estimates:
    """Everything the report shows, as numbers (proportions in 0..1).

    Attributes:
        confidence: the confidence level of every interval.
        design: the sampling design the estimators follow.
        faults: faults analysed (rows with images and consistent counts).
        images, test_size: m images per fault, M images in the test set.
        image_component: ``included`` / ``none`` (the whole test set) / ``not estimated`` (why in notes).
        overall: rate -> Estimate for the whole population.
        fault_level: share of faults critical on some image / masked on every image.
        by_bit_class, by_bit, by_layer, by_layer_bit: GroupEstimates.
        per_fault: rate -> the per-fault rates (for the distribution plot).
        notes: what the reader should know about the estimates.
    """

    confidence: float
    design: AnalysisDesign
    faults: int
    images: int | None
    test_size: int | None
    image_component: str
    overall: dict[str, Estimate]
    fault_level: dict[str, Estimate]
    by_bit_class: list[GroupEstimate]
    by_bit: list[GroupEstimate]
    by_layer: list[GroupEstimate]
    by_layer_bit: list[GroupEstimate]
    per_fault: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"confidence": self.confidence, "design": self.design.describe(), "faults": self.faults,
                "images": self.images, "test_size": self.test_size, "image_component": self.image_component,
                "overall": {k: v.to_dict() for k, v in self.overall.items()},
                "fault_level": {k: v.to_dict() for k, v in self.fault_level.items()},
                "by_bit_class": [g.to_dict() for g in self.by_bit_class], "by_bit": [g.to_dict() for g in self.by_bit],
                "by_layer": [g.to_dict() for g in self.by_layer],
                "by_layer_bit": [g.to_dict() for g in self.by_layer_bit], "notes": list(self.notes)}


class _Domain:
    """Estimation of any group of faults under the design (cells = strata x group)."""

    def __init__(self, results, design: AnalysisDesign, rows: np.ndarray, confidence: float, method: str) -> None:
        self.table = results.table.take(rows)
        self.outcomes = results.outcomes[rows] if results.outcomes is not None else None
        self.design, self.confidence, self.method = design, confidence, method
        self.test_size = results.test_size
        self.m = results.images
        self.image_mode = _image_mode(results, self.outcomes)
        self.bits = self.table.bit
        self.strata = [design.stratum(p, int(b)) for p, b in zip(self.table.param, self.bits)]
        self.per_fault = {rate: self.table.rate(rate) for rate in RATE_KEYS if getattr(self.table, rate) is not None}
        self._sizes: dict[str, dict | None] = {}

    def group(self, grouping: str) -> dict[object, np.ndarray]:
        key = GROUPINGS[grouping]
        keys = [key(p, int(b)) for p, b in zip(self.table.param, self.bits)]
        groups: dict[object, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
        return {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}

    def _cells(self, rows: np.ndarray, grouping: str, group: object):
        cells = [self.strata[i] for i in rows]
        labels = sorted(set(cells), key=repr)
        index = {c: j for j, c in enumerate(labels)}
        codes = np.array([index[c] for c in cells], dtype=np.int64)
        if grouping not in self._sizes:
            self._sizes[grouping] = self.design.cell_sizes(grouping)
        all_sizes = self._sizes[grouping]
        sizes = None if all_sizes is None else [all_sizes.get((c, group), np.inf) for c in labels]
        return codes, len(labels), sizes

    def rates(self, rows: np.ndarray, grouping: str, group: object) -> tuple[dict[str, Estimate], int | None]:
        codes, k, sizes = self._cells(rows, grouping, group)
        t = self.table
        out: dict[str, Estimate] = {}
        population = int(sum(sizes)) if sizes is not None and np.isfinite(sizes).all() else None
        for rate, per_fault in self.per_fault.items():
            y = per_fault[rows]
            stats = cell_stats(y, codes, k, sizes)
            value = float(np.nansum(stats.weights * np.nan_to_num(stats.means)))
            census = bool(np.isfinite(stats.sizes).all() and (stats.counts >= stats.sizes).all())
            out[rate] = interval(value, cell_variance(stats), self._image_var(rate, rows, codes, stats),
                                 faults=int(rows.size), confidence=self.confidence, census=census,
                                 max_n_eff=float(t.n[rows].sum()), method=self.method, population=population,
                                 rare=rare_faults(y), fpc=overall_fpc(stats))
        return out, population

    def _image_var(self, rate: str, rows, codes, stats) -> float | None:
        if self.image_mode == "none":
            return 0.0
        if self.image_mode != "included" or rate not in OUTCOME_KEYS:
            return None
        code = next(o for o in Outcome if o.key == rate)
        matrix = (self.outcomes[rows] == code).astype(np.float64)
        return image_variance(matrix, codes, stats, self.test_size)

    def shares(self, rows: np.ndarray, grouping: str = "all", group: object = "all") -> dict[str, Estimate]:
        """Fault-level shares of a group: critical on at least one image, masked on every image."""
        codes, k, sizes = self._cells(rows, grouping, group)
        t = self.table
        flags = {"critical_any": t.critical[rows] > 0, "masked_all": t.masked[rows] == t.n[rows]}
        return {name: proportion(x, codes, k, sizes, confidence=self.confidence) for name, x in flags.items()}


def _image_mode(results, outcomes) -> str:
    m, big_m = results.images, results.test_size
    if m is not None and big_m is not None and m >= big_m:
        return "none"
    if outcomes is not None and outcomes.shape[1] >= 2:
        return "included"
    return "not estimated"


def _label(grouping: str, key: object) -> str:
    if grouping == "layer":
        return str(key).removesuffix(".weight")
    if grouping == "layer_bit":
        return f"{str(key[0]).removesuffix('.weight')} bit {key[1]}"  # type: ignore[index]
    if grouping == "bit":
        return f"bit {key}" if int(key) >= 0 else "multi-bit"  # type: ignore[call-overload]
    return str(key)


def _order(grouping: str, keys, layer_order: dict[str, int]):
    if grouping == "bit_class":
        return sorted(keys, key=BIT_CLASSES.index)
    if grouping == "bit":
        return sorted(keys, key=lambda b: -b if b >= 0 else 99)  # 31 (sign) first, as the tables read
    if grouping == "layer":
        return sorted(keys, key=lambda p: layer_order.get(p, 10**9))
    if grouping == "layer_bit":
        return sorted(keys, key=lambda pb: (layer_order.get(pb[0], 10**9), pb[1]))
    return list(keys)


def _usable(results) -> tuple[np.ndarray, list[str]]:
    """Rows to estimate from, and a note on those left out.

    Raises:
        AnalysisError: no row is left (naming the first row and its counts).
    """
    t = results.table
    ok = t.consistent()
    if not ok.any():
        where = f"line {int(t.line[0])}" if t.line[0] else f"Injection {int(t.injection[0])}"
        counts = " + ".join(f"{int(t.count(k)[0])} {k}" for k in OUTCOME_KEYS)
        raise AnalysisError(f"No row of {results.source} can be estimated: each has no images, or outcome counts that "
                            f"do not add up to its images (first: {where}, {counts} for {int(t.n[0])} images).")
    notes = []
    if not ok.all():
        notes.append(f"{int((~ok).sum())} rows without images or with counts that do not add up are left out "
                     "of every estimate (see the data-quality checks)")
    return np.flatnonzero(ok), notes


def estimate(results, *, confidence: float = 0.99, method: str = "wilson") -> Estimates:
    """Design-aware estimates of a loaded result set (see the module docstring).

    Args:
        results: from :func:`faultzoo.analysis.load_results`.
        confidence: two-sided confidence level of every interval (default 0.99, upstream's).
        method: ``wilson`` (Wilson score interval on the effective sample size) or ``wald``.

    Example:
        >>> res = load_results("demo-out/campaign")  # doctest: +SKIP
        >>> est = estimate(res)  # doctest: +SKIP
        >>> est.overall["critical"].value, est.overall["critical"].margin  # doctest: +SKIP

    Raises:
        AnalysisError: ``results`` that are not loaded results or hold no usable row, a wrong
            ``confidence`` or ``method``.
    """
    expect_results(results, "estimate")
    z_value(confidence)  # refuse a bad level before any work
    check_method(method)
    design = design_of(results)
    rows, notes = _usable(results)
    notes = list(design.notes) + notes
    domain = _Domain(results, design, rows, confidence, method)
    layer_order = {p: i for i, p in enumerate(results.shapes or {})}
    for p in domain.table.param:
        layer_order.setdefault(p, len(layer_order))
    everything = np.arange(len(domain.table))
    overall, _ = domain.rates(everything, "all", "all")
    groups = {}
    for grouping in ("bit_class", "bit", "layer", "layer_bit"):
        members = domain.group(grouping)
        groups[grouping] = []
        for key in _order(grouping, members, layer_order):
            rates, population = domain.rates(members[key], grouping, key)
            groups[grouping].append(GroupEstimate(key, _label(grouping, key), int(members[key].size), population,
                                                  rates, domain.shares(members[key], grouping, key)))
    notes += _image_notes(results, domain.image_mode)
    return Estimates(confidence, design, len(domain.table), results.images, results.test_size, domain.image_mode,
                     overall, domain.shares(everything), groups["bit_class"], groups["bit"], groups["layer"],
                     groups["layer_bit"], domain.per_fault, notes)


def _image_notes(results, mode: str) -> list[str]:
    m, big_m = results.images, results.test_size
    if mode == "none":
        return [f"the images are the whole test set ({big_m:,}): no image sampling error"]
    if mode == "included":
        population = f"the {big_m:,} test images" if big_m else "a large test set"
        return [f"the {m:,} images are treated as a random sample of {population}: the intervals include the "
                "image component (faults x images crossed)"]
    selection = section(results.provenance, "data")
    how = ("the first images of each class" if selection.get("per_class") else
           f"the first {m:,} images" if selection.get("limit") or (m and big_m and m < big_m) else "these images")
    return [f"the intervals are for {how} of the test set only: per-image outcomes were not stored "
            "(campaign --keep-outcomes), so the extra uncertainty of generalising to the whole test set is not "
            "included"] if m else ["the number of images per fault is unknown"]
