"""Two result sets of one model on the same faults, compared fault by fault (PyTorch vs Keras, two devices, ...).

The faults of A and B are paired by what they hit: the same tensor element and bits. A Keras list
(``conv2d_3``, HWIO index) is first mapped to the PyTorch tensor it names (``layer1.1.conv1.weight``,
OIHW index; :mod:`faultzoo.faults.keras`), so a PyTorch campaign pairs with a Keras one. Every rate is
the mean of per-fault rates over the paired faults, with the fault as the sampling unit (the paired
faults are treated as a simple random sample, without a finite-population correction). The
difference A - B is the mean of the per-fault differences, with its paired interval
(:func:`faultzoo.analysis.stats.paired_difference`): faults on which both agree add no noise.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faultzoo._files import atomic_write
from faultzoo.analysis.design import BIT_CLASSES, bit_class
from faultzoo.analysis.load import as_path, check_model_arg, load_results
from faultzoo.analysis.plots import COLORS, _figure, save_figure
from faultzoo.analysis.quality import require_complete
from faultzoo.analysis.report import pct
from faultzoo.analysis.stats import Estimate, paired_difference, rate_from_counts, wilson, z_value
from faultzoo.analysis.table import Results
from faultzoo.exceptions import AnalysisError, FaultzooError, OutputError
from faultzoo.outcome import NONFINITE, OUTCOME_KEYS, RATE_LABELS

__all__ = ["Comparison", "Disagreement", "GroupComparison", "RateComparison", "Side", "compare_results",
           "comparison_lines", "plot_critical_scatter", "write_comparison"]

MIN_PAIRED_SHARE = 0.5  # fewer faults in common than this share of the smaller list: not the same list


@dataclass(frozen=True)
class Side:
    """One of the two result sets: where it came from and how its faults were named."""

    label: str  # "A" or "B"
    source: Path
    framework: str | None  # as recorded in its provenance (None: not recorded)
    layout: str  # "pytorch" (tensor names, OIHW) or "keras" (Keras layer names, HWIO)
    faults: int  # fault rows read
    images: int | None

    @property
    def title(self) -> str:
        return f"{self.label}: {self.source.name}" + (f" ({self.framework})" if self.framework else "")


@dataclass(frozen=True)
class RateComparison:
    """One outcome class: A's and B's rates and their paired difference A - B."""

    outcome: str
    a: Estimate
    b: Estimate
    difference: Estimate


@dataclass(frozen=True)
class GroupComparison:
    """The critical rates of one bit class or layer, their paired difference, the share of identical faults."""

    group: str
    faults: int
    critical_a: float
    critical_b: float
    difference: Estimate
    identical: float


@dataclass(frozen=True)
class Disagreement:
    """A fault whose critical rate differs between A and B."""

    param: str
    keras_layer: str | None
    index: tuple[int, ...]
    bits: tuple[int, ...]
    injection_a: int
    injection_b: int
    n_a: int
    critical_a: int
    n_b: int
    critical_b: int

    @property
    def gap(self) -> float:
        return self.critical_a / self.n_a - self.critical_b / self.n_b


@dataclass
class Comparison:
    """What :func:`compare_results` found (rates are proportions 0..1)."""

    a: Side
    b: Side
    model_id: str | None
    confidence: float
    paired: int
    rates: dict[str, RateComparison]
    identical: Estimate  # share of paired faults whose masked/non-critical/critical counts are all equal
    by_bit_class: list[GroupComparison]
    by_layer: list[GroupComparison]
    disagreements: list[Disagreement]  # the largest critical-rate gaps first
    critical_rates: tuple[np.ndarray, np.ndarray]  # per paired fault: A's and B's critical rate
    bit_classes: np.ndarray  # per paired fault
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def est(e: Estimate) -> dict:
            return e.to_dict()

        def group(g: GroupComparison) -> dict:
            return {"group": g.group, "faults": g.faults, "critical_a": g.critical_a, "critical_b": g.critical_b,
                    "difference": est(g.difference), "identical": g.identical}

        return {
            "a": {**self.a.__dict__, "source": str(self.a.source)},
            "b": {**self.b.__dict__, "source": str(self.b.source)},
            "model_id": self.model_id, "confidence": self.confidence, "paired_faults": self.paired,
            "rates": {k: {"a": est(r.a), "b": est(r.b), "difference": est(r.difference)}
                      for k, r in self.rates.items()},
            "identical_counts": est(self.identical),
            "by_bit_class": [group(g) for g in self.by_bit_class],
            "by_layer": [group(g) for g in self.by_layer],
            "disagreements": [{**d.__dict__, "gap": d.gap} for d in self.disagreements],
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- loading and pairing


def _find(data, key: str, depth: int = 3):
    """The first value under ``key`` in nested dicts (provenance layouts differ between versions)."""
    if not isinstance(data, dict) or depth < 0:
        return None
    if data.get(key) is not None:
        return data[key]
    for value in data.values():
        found = _find(value, key, depth - 1)
        if found is not None:
            return found
    return None


def _load(path, model: str | None, label: str) -> Results:
    if isinstance(path, Results):
        return path
    try:
        return load_results(path, model=model, check=False)
    except FaultzooError as exc:
        message = f"{label} ({path!s:.200}): {exc}"
        try:  # the same class, saying which side failed
            again = type(exc)(message)
        except TypeError:  # a class whose constructor takes more than a message
            again = AnalysisError(message)
        raise again from None


def _model_id(a: Results, b: Results, model: str | None) -> str | None:
    if a.model_id and b.model_id and a.model_id != b.model_id:
        raise AnalysisError(f"A and B are results of different models: A ({a.source}) is {a.model_id} "
                            f"({a.model_from}), B ({b.source}) is {b.model_id} ({b.model_from}). Compare results of "
                            "one model.")
    return model or a.model_id or b.model_id


def _torch_model(model_id: str | None, cache: dict):
    if model_id not in cache:
        from faultzoo.zoo import get_model  # imports torch: only when needed

        cache[model_id] = get_model(model_id, weights=None)
    return cache[model_id]


def _fault_keys(results: Results, model_id: str | None, label: str, cache: dict) -> tuple[list[tuple], str]:
    """(param, index, bits, kind) of every row in PyTorch terms, and the layout the file used."""
    from faultzoo.faults.keras import KERAS_NAME, from_keras  # imports torch: only when needed

    t = results.table
    params = [str(p) for p in t.param]
    keys = [(p, tuple(i), tuple(b), str(k)) for p, i, b, k in zip(params, t.index, t.bits, t.kind)]
    if not any(KERAS_NAME.match(p.removesuffix(".weight")) for p in params):
        return keys, "pytorch"
    if model_id is None:
        raise AnalysisError(f"{label} ({results.source}) names Keras layers ({params[0].removesuffix('.weight')}, "
                            "...) but its model is unknown: pass --model (the zoo id) to map them to the PyTorch "
                            "tensors.")
    model = _torch_model(model_id, cache)
    names = set(model.state_dict())
    if all(p in names for p in params):
        return keys, "pytorch"  # a model whose own tensor names look like Keras names
    out = []
    for row, (p, index, bits, kind) in enumerate(keys):
        if len(bits) != 1 or kind != "bitflip":
            raise AnalysisError(f"{label} ({results.source}), line {int(t.line[row])}: a Keras list row holds one bit "
                                f"flip, found bits {bits} ({kind}).")
        try:
            (fault,) = from_keras([(p.removesuffix(".weight"), index, bits[0])], model)
        except FaultzooError as exc:
            raise AnalysisError(f"{label} ({results.source}), line {int(t.line[row])}: {exc}") from None
        out.append((fault.param, fault.index, fault.bits, kind))
    return out, "keras"


def _pair(keys_a: list[tuple], keys_b: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the faults present in both (a fault listed twice pairs with its second copy)."""
    rows_b: dict[tuple, list[int]] = defaultdict(list)
    for j, key in enumerate(keys_b):
        rows_b[key].append(j)
    taken: dict[tuple, int] = defaultdict(int)
    pa, pb = [], []
    for i, key in enumerate(keys_a):
        k = taken[key]
        if k < len(rows_b.get(key, ())):
            pa.append(i)
            pb.append(rows_b[key][k])
            taken[key] = k + 1
    return np.asarray(pa, dtype=np.int64), np.asarray(pb, dtype=np.int64)


def _check_pairing(pa: np.ndarray, keys_a: list, keys_b: list, a: Results, b: Results) -> None:
    smaller = min(len(keys_a), len(keys_b))
    if len(pa) == 0:
        raise AnalysisError(f"A ({a.source}) and B ({b.source}) have no fault in common (A's first: "
                            f"{_describe(keys_a[0])}; B's first: {_describe(keys_b[0])}). Compare campaigns run from "
                            "one fault list (a PyTorch list and its Keras conversion pair).")
    if len(pa) < 2 or len(pa) < MIN_PAIRED_SHARE * smaller:
        raise AnalysisError(f"A ({a.source}, {len(keys_a):,} faults) and B ({b.source}, {len(keys_b):,} faults) "
                            f"have only {len(pa):,} faults in common: they do not come from one fault list. Compare "
                            "campaigns run from the same list (or sub-samples of it with the same seed).")


def _consistent_pairs(pa: np.ndarray, pb: np.ndarray, a: Results, b: Results) -> tuple[np.ndarray, np.ndarray,
                                                                                     str | None]:
    """The pairs whose counts can be compared on both sides, and a note naming the rows left out."""
    ok_a, ok_b = a.table.consistent()[pa], b.table.consistent()[pb]
    keep = ok_a & ok_b
    if keep.all():
        return pa, pb, None
    rows = [f"{label} {f'line {int(res.table.line[r])}' if res.table.line[r] else f'row {int(r)}'}"
            for label, res, ok, picked in (("A", a, ok_a, pa), ("B", b, ok_b, pb)) for r in picked[~ok]]
    shown = ", ".join(rows[:3]) + (", ..." if len(rows) > 3 else "")
    if keep.sum() < 2:
        raise AnalysisError(f"A ({a.source}) and B ({b.source}) have fewer than 2 paired faults whose counts can be "
                            f"compared (rows without images or with counts that do not add up: {shown}).")
    return pa[keep], pb[keep], (f"{int((~keep).sum()):,} paired faults are left out: rows without images or with "
                                f"counts that do not add up ({shown}).")


def _describe(key: tuple) -> str:
    param, index, bits, kind = key
    return f"{param}{list(index)} bit {','.join(map(str, bits))}" + ("" if kind == "bitflip" else f" {kind}")


# --------------------------------------------------------------------------- statistics


def _share(indicator: np.ndarray, confidence: float) -> Estimate:
    """A share of faults with its Wilson interval."""
    n = int(indicator.size)
    p = float(indicator.mean())
    low, high = wilson(p, n, z_value(confidence))
    se = math.sqrt(p * (1 - p) / n)
    return Estimate(p, low, high, se, confidence, n, "wilson", {"fault": se * se, "image": None}, None, float(n))


def _group(name: str, rows: np.ndarray, ca, na, cb, nb, identical, confidence: float) -> GroupComparison:
    return GroupComparison(name, int(rows.size), float(np.mean(ca[rows] / na[rows])),
                           float(np.mean(cb[rows] / nb[rows])),
                           paired_difference(ca[rows], na[rows], cb[rows], nb[rows], confidence=confidence),
                           float(identical[rows].mean()))


def compare_results(a, b, *, model: str | None = None, confidence: float = 0.99, top: int = 10,
                    allow_partial: bool = False) -> Comparison:
    """Compare two result sets of one model, fault by fault.

    Args:
        a, b: campaign folders (``results.csv`` or ``results_upstream.csv`` + ``provenance.json``),
            results CSVs (faultzoo's or upstream's, PyTorch or Keras layer names), or loaded
            :class:`~faultzoo.analysis.Results`.
        model: the zoo id, for results that do not record it (upstream CSVs); needed to map Keras
            layer names; must agree with what the provenance records.
        confidence: confidence level of every interval.
        top: how many of the most disagreeing faults to list.
        allow_partial: compare a partial result set (an interrupted campaign, a truncated file) instead
            of refusing it (``--allow-partial``, the rule of
            :func:`faultzoo.analysis.quality.require_complete`).

    Raises:
        AnalysisError: a wrong argument, unreadable input, a partial result set (without
            ``allow_partial``), results of different models, Keras names without a model, or lists that
            do not pair (no fault, or under half of the smaller list, in common).
    """
    z_value(confidence)  # a bad option fails before any loading
    check_model_arg(model)
    if isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 0:
        raise AnalysisError(f"top (--top) must be a whole number >= 0, found {top!r:.80}.")
    if not isinstance(allow_partial, (bool, np.bool_)):
        raise AnalysisError(f"allow_partial (--allow-partial) must be True or False, found {allow_partial!r:.80}.")
    res_a, res_b = _load(a, model, "A"), _load(b, model, "B")
    partial = [(label, require_complete(res, allow_partial=allow_partial, action="compare", label=label))
               for label, res in (("A", res_a), ("B", res_b))]
    model_id = _model_id(res_a, res_b, model)
    cache: dict = {}
    keys_a, layout_a = _fault_keys(res_a, model_id, "A", cache)
    keys_b, layout_b = _fault_keys(res_b, model_id, "B", cache)
    pa, pb = _pair(keys_a, keys_b)
    _check_pairing(pa, keys_a, keys_b, res_a, res_b)
    pa, pb, left_out = _consistent_pairs(pa, pb, res_a, res_b)
    ta, tb = res_a.table.take(pa), res_b.table.take(pb)
    notes = [f"{label} is partial (--allow-partial): {f.message}" for label, f in partial if f is not None]
    notes += _notes(res_a, res_b, ta, tb, len(keys_a), len(keys_b), len(pa)) + ([left_out] if left_out else [])
    rates = {}
    outcomes = OUTCOME_KEYS + ((NONFINITE,) if ta.nonfinite is not None and tb.nonfinite is not None else ())
    for outcome in outcomes:
        ea, eb = ta.count(outcome), tb.count(outcome)
        rates[outcome] = RateComparison(outcome, rate_from_counts(ea, ta.n, confidence=confidence),
                                        rate_from_counts(eb, tb.n, confidence=confidence),
                                        paired_difference(ea, ta.n, eb, tb.n, confidence=confidence))
    identical = (ta.n == tb.n) & np.all([ta.count(k) == tb.count(k) for k in OUTCOME_KEYS], axis=0)
    params = np.array([keys_a[i][0] for i in pa], dtype=object)
    bits = [keys_a[i][2] for i in pa]
    classes = np.array([bit_class(b[0] if len(b) == 1 else -1) for b in bits], dtype=object)
    ca, na, cb, nb = ta.critical, ta.n, tb.critical, tb.n
    by_class = [_group(c, np.flatnonzero(classes == c), ca, na, cb, nb, identical, confidence)
                for c in BIT_CLASSES if (classes == c).any()]
    layer_order = list(dict.fromkeys(_model_order(model_id, cache) + sorted(set(params))))
    by_layer = [_group(p.removesuffix(".weight"), np.flatnonzero(params == p), ca, na, cb, nb, identical, confidence)
                for p in layer_order if (params == p).any()]
    keras_names = _keras_names(model_id, cache) if "keras" in (layout_a, layout_b) else {}
    return Comparison(
        Side("A", res_a.source, _find(res_a.provenance, "framework"), layout_a, len(keys_a), res_a.images),
        Side("B", res_b.source, _find(res_b.provenance, "framework"), layout_b, len(keys_b), res_b.images),
        model_id, confidence, int(len(pa)), rates, _share(identical, confidence), by_class, by_layer,
        _disagreements(keys_a, pa, ta, tb, keras_names, top), (ca / na, cb / nb), classes, notes)


def _model_order(model_id: str | None, cache: dict) -> list[str]:
    """Tensors in the model's order (a zoo model's; other models' layers are listed by name)."""
    from faultzoo.zoo import list_models  # imports torch: only when needed

    if model_id not in list_models():
        return []
    return [name for name, t in _torch_model(model_id, cache).state_dict().items() if t.is_floating_point()]


def _keras_names(model_id: str | None, cache: dict) -> dict[str, str]:
    from faultzoo.faults.keras import keras_layer_names  # imports torch: only when needed

    return keras_layer_names(_torch_model(model_id, cache)) if model_id else {}


def _disagreements(keys_a, pa, ta, tb, keras_names: dict, top: int) -> list[Disagreement]:
    gap = np.abs(ta.critical / ta.n - tb.critical / tb.n)
    order = np.lexsort((-np.maximum(ta.critical, tb.critical), -gap))
    out = []
    for r in order[:top]:
        if gap[r] == 0:
            break
        param, index, bits, _ = keys_a[pa[r]]
        out.append(Disagreement(param, keras_names.get(param), index, bits, int(ta.injection[r]),
                                int(tb.injection[r]), int(ta.n[r]), int(ta.critical[r]), int(tb.n[r]),
                                int(tb.critical[r])))
    return out


def _notes(res_a, res_b, ta, tb, n_a: int, n_b: int, paired: int) -> list[str]:
    notes = []
    if paired < max(n_a, n_b):
        notes.append(f"{paired:,} faults pair; A has {n_a - paired:,} and B {n_b - paired:,} faults without a partner "
                     "(left out).")
    if not np.array_equal(ta.n, tb.n):
        notes.append("A and B ran some faults on different numbers of images: rates are per-fault rates, counts are "
                     "not comparable one to one.")
    for label, res in (("A", res_a), ("B", res_b)):
        if res.kind == "upstream-csv":
            notes.append(f"{label} is an upstream results file: its images and numerics are not recorded.")
    fa, fb = _find(res_a.provenance, "fingerprint"), _find(res_b.provenance, "fingerprint")
    if fa and fb and fa != fb:
        notes.append("A and B ran on different image selections (their data fingerprints differ).")
    return notes


# --------------------------------------------------------------------------- output


def _pct(p: float) -> str:
    return pct(p)


def _signed(p: float) -> str:
    return ("+" if p > 0 else "") + _pct(p) if p != 0 else "0"


def _interval(e: Estimate, signed: bool = False) -> str:
    f = _signed if signed else _pct
    return f"[{f(e.low)}, {f(e.high)}]"


def _name(key: str) -> str:
    return RATE_LABELS[key]


def comparison_lines(c: Comparison) -> list[str]:
    """The comparison as plain text lines for a terminal."""
    level = round(100 * c.confidence)
    lines = [f"A: {c.a.source}" + (f" ({c.a.framework})" if c.a.framework else "") + f", {c.a.layout} names",
             f"B: {c.b.source}" + (f" ({c.b.framework})" if c.b.framework else "") + f", {c.b.layout} names",
             f"model {c.model_id or 'unknown'}; {c.paired:,} paired faults; {level} % intervals; the fault is the "
             "sampling unit", ""]
    header = ("outcome", "A %", f"A {level} % interval", "B %", f"B {level} % interval", "A - B (points)",
              "interval")
    rows = [header]
    for key, r in c.rates.items():
        rows.append((_name(key), _pct(r.a.value), _interval(r.a), _pct(r.b.value), _interval(r.b),
                     _signed(r.difference.value), _interval(r.difference, True)))
    lines += _table(rows)
    lines.append("")
    lines.append(f"faults with identical masked/non-critical/critical counts: {_pct(c.identical.value)} % "
                 f"{_interval(c.identical)}")
    lines.append("")
    lines += _table([("bit class", "faults", "critical A %", "critical B %", "A - B", "interval", "identical %")]
                    + [_group_row(g) for g in c.by_bit_class])
    if c.disagreements:
        lines.append("")
        lines.append("faults that disagree most (critical images A vs B):")
        for d in c.disagreements:
            where = f"{d.param}{list(d.index)}" + (f" (Keras {d.keras_layer})" if d.keras_layer else "")
            lines.append(f"  {where} bit {','.join(map(str, d.bits))}: {d.critical_a}/{d.n_a} vs "
                         f"{d.critical_b}/{d.n_b}")
    lines += [f"note: {n}" for n in c.notes]
    return lines


def _group_row(g: GroupComparison) -> tuple:
    return (g.group, f"{g.faults:,}", _pct(g.critical_a), _pct(g.critical_b), _signed(g.difference.value),
            _interval(g.difference, True), _pct(g.identical))


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
            .rstrip() for r in rows]


def _markdown_table(rows: list[tuple]) -> list[str]:
    out = ["| " + " | ".join(map(str, rows[0])) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return out + ["| " + " | ".join(map(str, r)) + " |" for r in rows[1:]]


def _markdown(c: Comparison, plot: str) -> str:
    level = round(100 * c.confidence)
    out = [f"# {c.model_id or 'Results'}: A vs B, fault by fault", "",
           f"- **A**: `{c.a.source}`" + (f" ({c.a.framework})" if c.a.framework else "") +
           f", {c.a.faults:,} faults, {c.a.layout} names",
           f"- **B**: `{c.b.source}`" + (f" ({c.b.framework})" if c.b.framework else "") +
           f", {c.b.faults:,} faults, {c.b.layout} names",
           f"- {c.paired:,} faults pair (same tensor element and bits); every rate is the mean of per-fault rates "
           f"over them, with {level} % intervals (the fault is the sampling unit; A - B is the paired difference).",
           "", "## Rates", ""]
    rows = [("outcome", "A %", "A interval", "B %", "B interval", "A - B (points)", "interval")]
    rows += [(_name(k), _pct(r.a.value), _interval(r.a), _pct(r.b.value), _interval(r.b), _signed(r.difference.value),
              _interval(r.difference, True)) for k, r in c.rates.items()]
    out += _markdown_table(rows)
    out += ["", f"Faults whose masked, non-critical and critical counts are all identical: **{_pct(c.identical.value)} "
                f"%** {_interval(c.identical)}.", "", "## By bit class", ""]
    group_header = ("group", "faults", "critical A %", "critical B %", "A - B (points)", "interval", "identical %")
    out += _markdown_table([group_header] + [_group_row(g) for g in c.by_bit_class])
    out += ["", "## By layer", ""]
    out += _markdown_table([group_header] + [_group_row(g) for g in c.by_layer])
    out += ["", "## Faults that disagree most", ""]
    if c.disagreements:
        out += _markdown_table([("tensor", "Keras layer", "index", "bits", "injection A", "injection B",
                                 "critical A", "critical B")]
                               + [(d.param, d.keras_layer or "-", str(list(d.index)), ",".join(map(str, d.bits)),
                                   d.injection_a, d.injection_b, f"{d.critical_a}/{d.n_a}", f"{d.critical_b}/{d.n_b}")
                                  for d in c.disagreements])
    else:
        out.append("None: every paired fault has the same critical count in A and B.")
    out += ["", "## Per-fault critical rates", "", f"![per-fault critical rates, A vs B]({plot}.svg)", "",
            "Each point is one fault: its critical rate in A (x) and in B (y); points off the diagonal are faults on "
            "which A and B disagree."]
    if c.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in c.notes]
    return "\n".join(out) + "\n"


def plot_critical_scatter(c: Comparison):
    """Scatter of per-fault critical rates, A (x) vs B (y), coloured by bit class, with the diagonal."""
    fig = _figure(5.6, 5.2)
    ax = fig.add_subplot()
    x, y = 100 * c.critical_rates[0], 100 * c.critical_rates[1]
    ax.plot([0, 100], [0, 100], color="#95a5a6", linewidth=0.8, zorder=1)
    for cls in BIT_CLASSES:
        mine = c.bit_classes == cls
        if mine.any():
            ax.scatter(x[mine], y[mine], s=14, alpha=0.7, color=COLORS[cls], label=f"{cls} ({int(mine.sum()):,})",
                       zorder=2)
    ax.set_xlim(-2, 102)
    ax.set_ylim(-2, 102)
    ax.set_xlabel(f"critical rate in A, % of images ({c.a.framework or c.a.source.name})")
    ax.set_ylabel(f"critical rate in B, % of images ({c.b.framework or c.b.source.name})")
    on_diagonal = int((c.critical_rates[0] == c.critical_rates[1]).sum())
    ax.set_title(f"per-fault critical rates: {c.paired:,} paired faults, {on_diagonal:,} on the diagonal", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def write_comparison(c: Comparison, folder: str | os.PathLike) -> dict[str, Path]:
    """Write ``compare.md``, ``compare.json`` and the scatter plot (``critical_scatter.png`` / ``.svg``).

    Raises:
        OutputError: the folder cannot be written.
    """
    folder = as_path(folder, "folder (-o/--output)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {f"plot_{k}": v for k, v in save_figure(plot_critical_scatter(c), folder, "critical_scatter").items()}
    except OSError as exc:
        raise OutputError(f"Cannot write the comparison to {folder}: {exc}. Choose another folder (-o).") from None
    paths["markdown"] = atomic_write(folder / "compare.md", _markdown(c, "critical_scatter").encode())
    paths["json"] = atomic_write(folder / "compare.json", json.dumps(c.to_dict(), indent=2, default=str).encode())
    return paths
