"""Data-quality checks, run on every load and reported before any number.

Each check gives findings with a level: ``error`` (the numbers cannot be trusted as they are),
``warning`` (they can, with a caveat) or ``ok``. The alignment check catches results files whose
outcome columns have slid against the fault rows (a row lost or added while merging files): in a
correct file the outcome of a fault follows its bit (flips of the top exponent bit are critical
far more often than flips of low mantissa bits), so the association between the outcomes of row
``i + k`` and the bit of row ``i`` peaks at ``k = 0``. A peak elsewhere means "shifted by k rows".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from faultzoo.analysis.table import expect_results
from faultzoo.exceptions import AnalysisError
from faultzoo.outcome import OUTCOME_KEYS, RATE_KEYS

__all__ = ["ALLOW_PARTIAL", "Finding", "QualityReport", "alignment_profile", "check_quality", "completeness",
           "require_complete"]

ERROR, WARNING, OK = "error", "warning", "ok"
MAX_SHIFT = 50  # rows each way the alignment check looks
_PERMUTATIONS = 40  # null draws of the association (seeded: the report is reproducible)
_SHOW = 5  # rows named in a message


@dataclass(frozen=True)
class Finding:
    """One result of a check: its level, a short code and a message that names rows and values."""

    level: str
    code: str
    message: str

    def to_dict(self) -> dict:
        return {"level": self.level, "code": self.code, "message": self.message}


@dataclass
class QualityReport:
    """All findings of a load; ``verdict`` is ``fail`` (any error), ``warn`` (any warning) or ``pass``."""

    findings: list[Finding] = field(default_factory=list)
    alignment: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        levels = {f.level for f in self.findings}
        return "fail" if ERROR in levels else "warn" if WARNING in levels else "pass"

    def of(self, level: str) -> list[Finding]:
        return [f for f in self.findings if f.level == level]

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "findings": [f.to_dict() for f in self.findings],
                "alignment": self.alignment}


def _rows(table, positions: np.ndarray) -> str:
    """Human row references: the file line when known, else the Injection id."""
    shown = [f"line {int(table.line[i])}" if table.line[i] else f"Injection {int(table.injection[i])}"
             for i in positions[:_SHOW]]
    more = f" and {positions.size - _SHOW} more" if positions.size > _SHOW else ""
    return ", ".join(shown) + more


# --------------------------------------------------------------------------- checks


def _parse(results) -> list[Finding]:
    if not results.parse_issues:
        return []
    lines = [msg for _, msg in results.parse_issues[:_SHOW]]
    more = f" (and {len(results.parse_issues) - _SHOW} more)" if len(results.parse_issues) > _SHOW else ""
    return [Finding(ERROR, "unreadable-rows", f"{len(results.parse_issues)} row(s) or file(s) could not be read "
                                              f"and are left out: {'; '.join(lines)}{more}.")]


def _counts(table) -> list[Finding]:
    counts = [table.count(key) for key in OUTCOME_KEYS]
    total = np.sum(counts, axis=0)
    recorded = [table.count(key) for key in RATE_KEYS if getattr(table, key) is not None]
    negative = np.flatnonzero(np.any(np.less(recorded, 0), axis=0) | (table.n < 0))
    bad = np.flatnonzero(total != table.n)
    out = []
    if negative.size:
        out.append(Finding(ERROR, "negative-counts", f"{negative.size} row(s) hold negative counts: "
                                                     f"{_rows(table, negative)}."))
    if bad.size:
        i = int(bad[0])
        out.append(Finding(ERROR, "counts-sum", f"{bad.size} row(s) have {' + '.join(OUTCOME_KEYS)} != "
                                                f"n_injections (first: {_rows(table, bad[:1])}: "
                                                f"{' + '.join(str(int(c[i])) for c in counts)} = "
                                                f"{int(total[i])}, n_injections {int(table.n[i])}): "
                                                f"{_rows(table, bad)}."))
    return out


def _images(results) -> list[Finding]:
    table, m, big_m = results.table, results.images, results.test_size
    out = []
    values = Counter(table.n.tolist())
    usual = max(values, key=values.get)
    expected = m if results.provenance and m else max(values)  # a campaign knows its selection
    fewer = np.flatnonzero(table.n < expected)
    more = np.flatnonzero(table.n > expected)
    if fewer.size:
        out.append(Finding(ERROR, "partial-rows", f"{fewer.size} row(s) ran on fewer images than the "
                                                  f"{expected:,} of the others (a partial run?): {_rows(table, fewer)} "
                                                  f"(n_injections {', '.join(str(int(table.n[i])) for i in fewer[:_SHOW])})."))
    if more.size:
        out.append(Finding(ERROR, "extra-images", f"{more.size} row(s) report more images than the {expected:,} "
                                                  f"selected: {_rows(table, more)}."))
    if not results.provenance and big_m and usual < big_m:
        out.append(Finding(WARNING, "fewer-than-dataset", f"the rows ran on {usual:,} images, fewer than the "
                                                          f"{big_m:,} of the test set: a partial run, or a subset "
                                                          "(the estimates then hold for those images)."))
    return out


def completeness(results) -> Finding | None:
    """The one rule for a result set that holds fewer faults than its fault list: ``error`` (an interrupted
    campaign, a truncated file), ``ok`` (an upstream file's deliberate sub-sample), None (complete, or the
    list's size unknown). ``faultzoo report`` shows it in its verdict; plan and compare refuse on it
    (:func:`require_complete`)."""
    expected, found = results.expected_faults, len(results.table)
    if not expected or found >= expected:
        return None
    if results.kind == "upstream-csv":
        ids = set(results.table.injection.tolist())
        last = int(results.table.injection.max())
        missing = [i for i in range(expected) if i not in ids]
        if missing and missing[0] > last:
            where = f"the last Injection id is {last}"
        elif len(missing) <= max(_SHOW, expected // 100):
            where = f"Injection ids {missing[:_SHOW]}{' ...' if len(missing) > _SHOW else ''} are missing"
        else:  # faults spread over the whole list: a deliberate sub-sample
            return Finding(OK, "sub-sample", f"the file holds {found:,} of the {expected:,} faults of its list, "
                                             "spread over the list: a sub-sample")
        return Finding(ERROR, "missing-faults", f"the file holds {found:,} of the {expected:,} faults of its "
                                                f"fault list ({where}): the run looks truncated; estimates cover "
                                                "only the faults present.")
    return Finding(ERROR, "missing-faults", f"the campaign holds {found:,} of its {expected:,} faults: a partial "
                                            "run (re-run the same `faultzoo campaign` command to finish it).")


def _completeness(results) -> list[Finding]:
    finding = completeness(results)
    return [] if finding is None else [finding]


ALLOW_PARTIAL = "--allow-partial"  # the flag of every analysis command that refuses a partial result set


def require_complete(results, *, allow_partial: bool, action: str, label: str = "") -> Finding | None:
    """Refuse a partial result set (the ``error`` of :func:`completeness`) unless ``allow_partial``.

    Args:
        results: a loaded result set.
        allow_partial: go on with the faults present (``--allow-partial``).
        action: what the refusal says the flag would do ("plan from", "compare").
        label: a prefix naming the result set in a message ("A", "B").

    Returns:
        The finding when the set is partial and ``allow_partial`` (to be shown as a note), else None.

    Raises:
        AnalysisError: a partial result set without ``allow_partial``: how many faults of how many are
            stored, how to finish the campaign, and the flag.
    """
    finding = completeness(results)
    if finding is None or finding.level != ERROR:
        return None
    if not allow_partial:
        name = f"{label} ({results.source})" if label else str(results.source)
        raise AnalysisError(f"{name}: {finding.message} Or pass {ALLOW_PARTIAL} to {action} the {len(results.table):,} "
                            "faults stored anyway.")
    return finding


def _duplicates(table) -> list[Finding]:
    out = []
    ids = Counter(table.injection.tolist())
    dup_ids = sorted(i for i, c in ids.items() if c > 1)
    if dup_ids:
        out.append(Finding(ERROR, "duplicate-ids", f"{len(dup_ids)} Injection id(s) appear more than once: "
                                                   f"{dup_ids[:_SHOW]}."))
    keys = Counter(zip(table.param, table.index, table.bits, table.kind))
    dup = [k for k, c in keys.items() if c > 1]
    if dup:
        shown = "; ".join(f"{p} {list(ix)} bit {','.join(map(str, b))}" for p, ix, b, _ in dup[:_SHOW])
        out.append(Finding(ERROR, "duplicate-faults", f"{len(dup)} fault location(s) appear more than once (the same "
                                                      f"fault counted twice): {shown}."))
    return out


def _outside_model(results) -> list[Finding]:
    shapes, table = results.shapes, results.table
    if not shapes:
        return []
    bad, reasons = [], Counter()
    for i, (param, index, bits) in enumerate(zip(table.param, table.index, table.bits)):
        shape = shapes.get(param)
        if shape is None:
            bad.append(i)
            reasons[f"layer {param.removesuffix('.weight')!r} is not in {results.model_id}"] += 1
        elif len(index) != len(shape) or any(not 0 <= v < s for v, s in zip(index, shape)):
            bad.append(i)
            reasons[f"index outside {param} {tuple(shape)}"] += 1
        elif max(bits) >= 32 or min(bits) < 0:
            bad.append(i)
            reasons["bit outside the 32-bit word"] += 1
    if not bad:
        return []
    why = "; ".join(f"{r} ({c} rows)" for r, c in reasons.most_common(_SHOW))
    return [Finding(ERROR, "outside-model", f"{len(bad)} row(s) name faults outside {results.model_id}: {why}; "
                                            f"{_rows(table, np.asarray(bad))}. Is --model right?")]


# --------------------------------------------------------------------------- alignment


def _eta2(groups: np.ndarray, k_groups: int, y: np.ndarray) -> np.ndarray:
    """Share of the variance of each column of y explained by the groups (the correlation ratio)."""
    counts = np.bincount(groups, minlength=k_groups).astype(np.float64)
    out = []
    for col in y.T:
        sums = np.bincount(groups, weights=col, minlength=k_groups)
        total = ((col - col.mean()) ** 2).sum()
        between = (sums[counts > 0] ** 2 / counts[counts > 0]).sum() - col.sum() ** 2 / col.size
        out.append(between / total if total > 0 else np.nan)
    return np.asarray(out)


def _association(groups: np.ndarray, k_groups: int, y: np.ndarray, shift: int) -> float:
    """Mean correlation ratio between the bit of row i and the outcomes of row i + shift."""
    n = groups.size
    if shift >= 0:
        g, v = groups[: n - shift], y[shift:]
    else:
        g, v = groups[-shift:], y[: n + shift]
    values = _eta2(g, k_groups, v)
    return float(np.nanmean(values)) if np.isfinite(values).any() else np.nan


# Bands of bits whose flips behave alike; few groups keep the association's noise low on small files
# (32 single bits on 200 rows would explain 15 % of any variance by chance).
_BANDS = np.array([0] * 12 + [1] * 11 + [2] * 7 + [3] + [4])  # mantissa 0-11, 12-22, exponent 23-29, 30, sign


def _bit_band(bits: np.ndarray) -> np.ndarray:
    return np.where((bits >= 0) & (bits < 32), _BANDS[np.clip(bits, 0, 31)], 5)  # 5: multi-bit


def alignment_profile(bits: np.ndarray, rates: np.ndarray, *, max_shift: int = MAX_SHIFT, seed: int = 0) -> dict:
    """How strongly the outcomes of row ``i + k`` follow the bit of row ``i``, for k in -max_shift..max_shift.

    Args:
        bits: the bit of each row (-1 for multi-bit rows); grouped in bands (mantissa 0-11 and 12-22,
            exponent 23-29, bit 30, sign, multi-bit).
        rates: rows x outcomes per-row rates (e.g. masked, non-critical and critical).

    Returns:
        ``shifts``, ``association`` (mean correlation ratio per shift), ``best`` (the shift of the
        largest association), ``null_mean`` / ``null_sd`` (the association of randomly permuted rows)
        and ``z`` (the association at each shift in null standard deviations).
    """
    _, groups = np.unique(_bit_band(np.asarray(bits)), return_inverse=True)
    groups = groups.reshape(-1)
    k_groups = int(groups.max()) + 1 if groups.size else 0
    y = np.asarray(rates, dtype=np.float64)
    limit = max(0, min(max_shift, groups.size // 4))
    shifts = np.arange(-limit, limit + 1)
    assoc = np.array([_association(groups, k_groups, y, int(s)) for s in shifts])
    rng = np.random.default_rng(seed)
    null = np.array([_association(groups, k_groups, y[rng.permutation(groups.size)], 0)
                     for _ in range(_PERMUTATIONS)])
    null_mean, null_sd = float(np.nanmean(null)), float(np.nanstd(null, ddof=1)) or 1e-12
    best = int(shifts[np.nanargmax(assoc)]) if np.isfinite(assoc).any() else 0
    return {"shifts": shifts.tolist(), "association": assoc.tolist(), "best": best, "null_mean": null_mean,
            "null_sd": null_sd, "z": ((assoc - null_mean) / null_sd).tolist()}


def _alignment(results) -> tuple[list[Finding], dict]:
    table = results.table
    usable = np.flatnonzero(table.n > 0)
    if usable.size < 40:
        return [Finding(OK, "alignment", f"only {usable.size} rows: too few to check that the outcomes follow "
                                         "the fault rows")], {}
    t = table.take(usable)
    rates = np.column_stack([t.rate(key) for key in OUTCOME_KEYS])
    profile = alignment_profile(t.bit, rates)
    shifts, assoc, z = profile["shifts"], profile["association"], profile["z"]
    at0 = assoc[shifts.index(0)]
    z0 = z[shifts.index(0)]
    best = profile["best"]
    zb = z[shifts.index(best)]
    others = max((a for s, a in zip(shifts, assoc) if s != 0), default=float("nan"))
    if best != 0 and zb > 8 and assoc[shifts.index(best)] > 2 * at0:
        where = "below" if best > 0 else "above"
        rows = f"{abs(best)} row{'s' if abs(best) > 1 else ''}"
        other = f"i {'+' if best > 0 else '-'} {abs(best)}"
        return [Finding(ERROR, "shifted", f"results appear shifted by {best:+d} {rows.split(' ')[1]}: the outcomes of "
                                          f"row {other} follow the bit of row i (association "
                                          f"{assoc[shifts.index(best)]:.3f}, {zb:.0f} null SDs) far more than those "
                                          f"of row i ({at0:.3f}); each result sits {rows} {where} its fault. "
                                          "Realign the file before using any number.")], profile
    if z0 < 6:
        level = WARNING if usable.size >= 200 else OK
        return [Finding(level, "no-bit-association", f"the outcomes do not follow the faults' bits (association "
                                                      f"{at0:.3f} at shift 0, {z0:.1f} null SDs): the file may be "
                                                      "misaligned or scrambled, or hold too few faults to tell.")], profile
    return [Finding(OK, "alignment", f"outcomes follow the faults' bits at shift 0 (association {at0:.3f}, "
                                     f"{z0:.0f} null SDs; at most {others:.3f} at the other shifts within "
                                     f"+-{max(shifts)} rows)")], profile


def _bit_sanity(table) -> list[Finding]:
    """Flips of the top exponent bit should be critical far more often than flips of low mantissa bits."""
    bit = table.bit
    ok = table.n > 0
    top, low = ok & (bit == 30), ok & (bit >= 0) & (bit <= 7)
    if top.sum() < 10 or low.sum() < 10:
        return []
    rate_top = table.critical[top].sum() / table.n[top].sum()
    rate_low = table.critical[low].sum() / table.n[low].sum()
    text = (f"bit 30 (top exponent bit): {100 * rate_top:.2f} % critical over {int(top.sum())} faults; bits 0-7: "
            f"{100 * rate_low:.4f} % over {int(low.sum())} faults")
    if rate_top <= rate_low:
        return [Finding(ERROR, "bit-profile", f"{text}: low mantissa flips look at least as harmful as top "
                                              "exponent flips, which no correct float32 campaign shows: check "
                                              "that the bit column and the results belong together.")]
    return [Finding(OK, "bit-profile", text)]


def _selection(results) -> list[Finding]:
    out = []
    limit = results.fault_selection.get("fault_limit")
    if limit:
        out.append(Finding(WARNING, "first-faults", f"the campaign used the first {limit} faults of its list "
                                                    "(--fault-limit), which is not a random sample: for upstream "
                                                    "lists these are the first layers only."))
    if results.design == "unknown":
        out.append(Finding(OK, "design", "the fault list's design is unknown: analysed as a simple random sample "
                                         "of faults" + (f" ({results.design_note})" if results.design_note else "")))
    return out


def check_quality(results) -> QualityReport:
    """Run every data-quality check on a loaded result set (see the module docstring).

    Raises:
        AnalysisError: ``results`` is not a loaded result set.
    """
    table = expect_results(results, "check_quality").table
    report = QualityReport()
    report.findings += _parse(results)
    report.findings += _counts(table)
    report.findings += _images(results)
    report.findings += _completeness(results)
    report.findings += _duplicates(table)
    report.findings += _outside_model(results)
    findings, profile = _alignment(results)
    report.findings += findings
    report.alignment = {k: v for k, v in profile.items() if k in ("best", "null_mean", "null_sd")}
    if profile:
        report.alignment["at_zero"] = profile["association"][profile["shifts"].index(0)]
    report.findings += _bit_sanity(table)
    report.findings += _selection(results)
    nonfinite = table.nonfinite
    if nonfinite is not None and nonfinite.sum():
        faults, inferences = int((nonfinite > 0).sum()), int(nonfinite.sum())
        report.findings.append(Finding(OK, "nonfinite", f"{faults} fault{'s' if faults != 1 else ''} produced NaN/Inf "
                                                        f"logits on {inferences:,} inference"
                                                        f"{'s' if inferences != 1 else ''}"))
    order = {ERROR: 0, WARNING: 1, OK: 2}
    report.findings.sort(key=lambda f: order[f.level])
    return report
