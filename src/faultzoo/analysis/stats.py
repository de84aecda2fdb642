"""Design-based estimators: means of per-fault rates, stratified means, Wilson intervals, crossed variance.

The sampling unit is the fault: the images of one fault are not independent observations (a
critical fault is critical on many of them), so every variance is computed from per-fault rates.
Notation (docs/analysis.md has the formulas): a cell is one stratum of the design, or the part of
a stratum inside a domain (a layer, a bit); ``N_c`` its population size, ``n_c`` the faults drawn
from it, ``W_c = N_c / sum N``. The estimate is ``sum W_c ybar_c`` and its fault-sampling variance
``sum W_c^2 (1 - n_c/N_c) s_c^2 / n_c``. When the images are a sample of the test set and per-image
outcomes are known, an image component is added (crossed faults x images, see
:func:`image_variance`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from faultzoo.exceptions import AnalysisError

__all__ = ["METHODS", "Estimate", "cell_variance", "check_method", "image_variance", "paired_difference",
           "rate_from_counts", "rate_from_outcomes", "wilson", "z_value"]

METHODS = ("wilson", "wald")  # interval methods of the estimators


def z_value(confidence: float) -> float:
    """Two-sided normal quantile of a confidence level: 0.95 -> 1.960, 0.99 -> 2.576."""
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise AnalysisError(f"Confidence must be a number strictly between 0 and 1, found {confidence!r:.80} (e.g. "
                            "0.99; CLI: --confidence).")
    z = NormalDist().inv_cdf(0.5 + float(confidence) / 2.0)
    if not 0 < z < math.inf:  # a level within rounding of 0 or 1
        raise AnalysisError(f"Confidence {confidence!r} is too close to {0 if z <= 0 else 1} to give an interval; use "
                            "a level such as 0.95 or 0.99 (CLI: --confidence).")
    return z


def check_method(method: str) -> str:
    """``method`` when it is an interval method of :data:`METHODS`."""
    if not isinstance(method, str) or method not in METHODS:
        raise AnalysisError(f"Unknown interval method {method!r:.80}; choose one of {', '.join(METHODS)}.")
    return method


def wilson(p: float, n_eff: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n_eff`` (effective) trials."""
    if not n_eff > 0 or math.isnan(p):
        return (0.0, 1.0) if not math.isnan(p) else (math.nan, math.nan)
    if math.isinf(n_eff):
        return p, p
    z2 = z * z
    centre = (p + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = z / (1 + z2 / n_eff) * math.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff * n_eff))
    # Exact ends at p = 0 and p = 1 (centre - half is 0 there up to rounding).
    return (0.0 if p <= 0 else max(0.0, centre - half)), (1.0 if p >= 1 else min(1.0, centre + half))


@dataclass(frozen=True)
class Estimate:
    """A proportion (0..1) with its interval.

    Attributes:
        value: the point estimate.
        low, high: the interval at ``confidence``.
        se: standard error (square root of ``variance``).
        confidence: the confidence level of the interval.
        faults: sampling units (faults) behind the estimate.
        method: how the interval was made (``wilson`` on the effective sample size, ``wald``, ``census``).
        components: the variance split by source: ``fault`` (between faults, with the finite-population
            correction) and ``image`` (the images as a sample of the test set; None when not estimated).
        population: the population size the correction used (None: unknown, no correction).
        n_eff: the effective sample size the Wilson interval used.
    """

    value: float
    low: float
    high: float
    se: float
    confidence: float
    faults: int
    method: str
    components: dict[str, float | None] = field(default_factory=dict)
    population: float | None = None
    n_eff: float | None = None

    @property
    def variance(self) -> float:
        return self.se * self.se

    @property
    def margin(self) -> float:
        """Half-width of the interval (the larger side for asymmetric intervals)."""
        return max(self.value - self.low, self.high - self.value)

    def contains(self, truth: float) -> bool:
        return self.low <= truth <= self.high

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "se": self.se,
                "confidence": self.confidence, "faults": self.faults, "method": self.method,
                "components": dict(self.components), "population": self.population, "n_eff": self.n_eff}


# --------------------------------------------------------------------------- cells (strata x domains)


def _cell_index(cells: np.ndarray | Sequence | None, n: int) -> tuple[np.ndarray, int]:
    if cells is None:
        return np.zeros(n, dtype=np.int64), 1
    _, codes = np.unique(np.asarray(cells), return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    return codes, int(codes.max()) + 1 if codes.size else 0


def _sizes(sizes, k: int, counts: np.ndarray) -> np.ndarray:
    """Population size of each cell; None (unknown) -> the sample counts with no correction."""
    if sizes is None:
        return np.full(k, np.inf)
    out = np.asarray(sizes, dtype=np.float64).reshape(-1)
    if out.shape != (k,):
        raise AnalysisError(f"Got {out.size} cell population sizes for {k} cells; give one per cell.")
    short = np.flatnonzero(counts > out)
    if short.size:
        c = int(short[0])
        raise AnalysisError(f"Cell {c} holds {int(counts[c])} sampled faults but its population size is "
                            f"{out[c]:g}: the population sizes do not fit the data.")
    return out


@dataclass(frozen=True)
class CellStats:
    """Per-cell summaries of one per-fault variable (one entry per cell, cells numbered 0..k-1)."""

    counts: np.ndarray  # n_c
    means: np.ndarray  # ybar_c
    variances: np.ndarray  # s_c^2 (ddof 1), pooled where n_c < 2
    sizes: np.ndarray  # N_c (inf: unknown)
    weights: np.ndarray  # W_c
    pooled: int  # cells whose variance was pooled


def cell_stats(y: np.ndarray, codes: np.ndarray, k: int, sizes=None) -> CellStats:
    """Means and variances of ``y`` per cell, with the cell weights ``W_c = N_c / sum N``.

    Cells with one fault have no variance of their own: they get the pooled within-cell variance of
    the others (or 0 when no cell has two faults), which is counted in ``pooled``.
    """
    y = np.asarray(y, dtype=np.float64)
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.bincount(codes, weights=y, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
        dev = y - means[codes]
        ss = np.bincount(codes, weights=dev * dev, minlength=k)
        variances = np.where(counts > 1, ss / (counts - 1), np.nan)
    pool_df = (counts[counts > 1] - 1).sum()
    pooled_var = ss[counts > 1].sum() / pool_df if pool_df > 0 else 0.0
    single = (counts == 1)
    variances = np.where(single, pooled_var, variances)
    n_sizes = _sizes(sizes, k, counts)
    finite = np.isfinite(n_sizes)
    # Unknown cell sizes: weight by the sample counts (a self-weighting design).
    base = np.where(counts > 0, n_sizes if finite.all() else counts, 0.0)
    weights = base / base.sum() if base.sum() > 0 else base  # over the cells that hold faults
    return CellStats(counts, means, variances, n_sizes, weights, int(single.sum()))


def cell_variance(stats: CellStats) -> float:
    """Fault-sampling variance of ``sum W_c ybar_c``: ``sum W_c^2 (1 - n_c/N_c) s_c^2 / n_c``."""
    present = stats.counts > 0
    fpc = np.where(np.isfinite(stats.sizes), 1.0 - stats.counts / np.where(stats.sizes > 0, stats.sizes, 1), 1.0)
    fpc = np.clip(fpc, 0.0, 1.0)
    terms = stats.weights ** 2 * fpc * stats.variances / np.where(present, stats.counts, 1)
    return float(np.nansum(np.where(present, terms, 0.0)))


def image_variance(matrix: np.ndarray, codes: np.ndarray, stats: CellStats, test_size: int | None) -> float:
    """Variance that the choice of images adds, for faults x images crossed (every fault sees every image).

    ``matrix`` holds 0/1 outcomes (faults x m images). With ``z_j = sum_c W_c ybar_c,j`` the weighted
    rate of image j and ``MSE_c`` the fault x image interaction mean square within cell c::

        V_image = (1 - m/M) * max(0, s_z^2 - sum_c W_c^2 (1 - n_c/N_c) MSE_c / n_c) / m

    (for one cell this is ``(MS_images - MS_interaction) / (n m)``, the classical two-way random
    effects term). It is 0 when the images are the whole test set (m = M).
    """
    m = matrix.shape[1]
    if m < 2 or (test_size is not None and m >= test_size):
        return 0.0
    k = stats.counts.size
    present = stats.counts > 0
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(k))
    col = np.zeros((k, m))
    filled = starts < codes.size
    col[filled] = np.add.reduceat(matrix[order], starts[filled], axis=0)  # per-cell column sums
    col[present & ~filled] = 0.0
    row = matrix.sum(axis=1, dtype=np.float64)
    cnt = np.where(present, stats.counts, 1)
    col_means = col / cnt[:, None]
    z = (stats.weights[:, None] * np.where(present[:, None], col_means, 0.0)).sum(axis=0)
    s2_z = float(z.var(ddof=1))
    # Interaction mean square per cell, from sums of squares of a 0/1 table (y^2 = y).
    total = col.sum(axis=1)
    grand = total * total / (cnt * m)
    ss_rows = np.bincount(codes, weights=row * row, minlength=k) / m - grand
    ss_cols = (col * col).sum(axis=1) / cnt - grand
    ss_err = total - grand - ss_rows - ss_cols
    df = (stats.counts - 1) * (m - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = np.where(df > 0, ss_err / np.where(df > 0, df, 1), np.nan)
    pooled = np.nansum(np.where(df > 0, ss_err, 0.0)) / df[df > 0].sum() if (df > 0).any() else 0.0
    mse = np.where(np.isnan(mse), pooled, np.maximum(mse, 0.0))
    fpc = np.where(np.isfinite(stats.sizes), 1.0 - stats.counts / np.where(stats.sizes > 0, stats.sizes, 1), 1.0)
    noise = float(np.sum(np.where(present, stats.weights ** 2 * np.clip(fpc, 0, 1) * mse / cnt, 0.0)))
    image_fpc = 1.0 - m / test_size if test_size else 1.0
    return image_fpc * max(0.0, s2_z - noise) / m


# --------------------------------------------------------------------------- intervals


MIN_RARE_FAULTS = 5  # fewer faults on the rare side of a rate: the between-fault variance is not to be trusted


def rare_faults(y: np.ndarray) -> int:
    """Faults on the rarer side of per-fault rates: min(#rate > 0, #rate < 1)."""
    y = y[np.isfinite(y)]
    return int(min((y > 0).sum(), (y < 1).sum()))


def interval(value: float, fault_var: float, image_var: float | None, *, faults: int, confidence: float,
             census: bool = False, max_n_eff: float | None = None, method: str = "wilson",
             population: float | None = None, rare: int | None = None, fpc: float = 1.0) -> Estimate:
    """An Estimate from a point estimate and its variance components.

    ``wilson`` (default) is the Wilson score interval on the effective sample size
    ``n_eff = p (1 - p) / V`` (Kish), which stays inside [0, 1] and behaves at rates near 0 where
    the normal interval does not; ``wald`` is ``p +- z sqrt(V)``. When the variance says nothing
    (no variance, or fewer than MIN_RARE_FAULTS faults with a rate above 0, or below 1: ``rare``),
    the interval is Wilson's on the number of faults (``faults / fpc``): the bound for faults that are
    all-or-nothing, which holds whatever the unseen faults do. A census has no fault sampling error.
    """
    z = z_value(confidence)
    check_method(method)
    var = fault_var + (image_var or 0.0)
    se = math.sqrt(max(var, 0.0))
    components = {"fault": fault_var, "image": image_var}
    if math.isnan(value):
        return Estimate(value, math.nan, math.nan, math.nan, confidence, faults, method, components, population)
    if method == "wald":
        low, high = max(0.0, value - z * se), min(1.0, value + z * se)
        return Estimate(value, low, high, se, confidence, faults, "wald", components, population)
    if census and var <= 0:
        return Estimate(value, value, value, 0.0, confidence, faults, "census", components, population, math.inf)
    bound = faults / fpc if fpc > 0 else math.inf
    if var > 0 and 0 < value < 1 and (rare is None or rare >= MIN_RARE_FAULTS):
        n_eff, how = value * (1 - value) / var, "wilson"
    else:
        n_eff, how = bound, "wilson-bound"
    if max_n_eff is not None:
        n_eff = min(n_eff, max_n_eff)
    low, high = wilson(value, n_eff, z)
    return Estimate(value, low, high, se, confidence, faults, how, components, population, n_eff)


def _check_counts(events, n) -> tuple[np.ndarray, np.ndarray]:
    events = np.asarray(events, dtype=np.float64).reshape(-1)
    n = np.asarray(n, dtype=np.float64).reshape(-1)
    if n.size == 1 and events.size > 1:
        n = np.full(events.shape, n[0])
    if events.shape != n.shape:
        raise AnalysisError(f"Got {events.size} event counts for {n.size} image counts; give one of each per fault.")
    if events.size == 0:
        raise AnalysisError("No faults: an estimate needs at least one fault.")
    if (n <= 0).any() or (events < 0).any() or (events > n).any():
        bad = int(np.flatnonzero((n <= 0) | (events < 0) | (events > n))[0])
        raise AnalysisError(f"Fault {bad}: {events[bad]:g} events out of {n[bad]:g} images; counts must satisfy "
                            "0 <= events <= n and n > 0.")
    return events, n


def rate_from_counts(events, n, *, confidence: float = 0.99, population: int | None = None, strata=None,
                     stratum_sizes=None, method: str = "wilson") -> Estimate:
    """Inference-level rate (e.g. critical) with its interval, from per-fault counts.

    The rate is the mean of the per-fault rates ``events_i / n_i`` (the fault is the sampling unit);
    with ``strata`` (one label per fault) and ``stratum_sizes`` (N_h per sorted unique label) it is
    the stratified mean ``sum W_h ybar_h``. ``population`` is N for a simple random sample (None:
    unknown, no finite-population correction).

    Example:
        >>> est = rate_from_counts([0, 0, 120, 3], [200, 200, 200, 200], confidence=0.95)
        >>> round(est.value, 4)
        0.1537
    """
    events, n = _check_counts(events, n)
    y = events / n
    codes, k = _cell_index(strata, y.size)
    if strata is None and population is not None:
        stratum_sizes = [population]
    stats = cell_stats(y, codes, k, stratum_sizes)
    value = float(np.nansum(stats.weights * np.nan_to_num(stats.means)))
    census = bool(np.isfinite(stats.sizes).all() and (stats.counts >= stats.sizes).all())
    return interval(value, cell_variance(stats), None, faults=int(y.size), confidence=confidence, census=census,
                    max_n_eff=float(n.sum()), method=method,
                    population=float(stats.sizes.sum()) if np.isfinite(stats.sizes).all() else None,
                    rare=rare_faults(y), fpc=overall_fpc(stats))


def overall_fpc(stats: CellStats) -> float:
    """1 - n/N over the cells with faults (1 when a population size is unknown)."""
    present = stats.counts > 0
    sizes = stats.sizes[present]
    if not np.isfinite(sizes).all() or sizes.sum() <= 0:
        return 1.0
    return float(max(0.0, 1.0 - stats.counts[present].sum() / sizes.sum()))


def rate_from_outcomes(outcomes, *, confidence: float = 0.99, population: int | None = None,
                       test_size: int | None = None, strata=None, stratum_sizes=None,
                       method: str = "wilson") -> Estimate:
    """Inference-level rate from a 0/1 faults x images table (every fault on the same images).

    As :func:`rate_from_counts`, plus the image component when the m images are a sample of a test
    set of ``test_size`` images (None: a large one; ``test_size == m``: the whole set, no component).
    """
    table = np.asarray(outcomes, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise AnalysisError(f"outcomes must be a non-empty faults x images table, found shape {table.shape}.")
    y = table.mean(axis=1)
    codes, k = _cell_index(strata, y.size)
    if strata is None and population is not None:
        stratum_sizes = [population]
    stats = cell_stats(y, codes, k, stratum_sizes)
    value = float(np.nansum(stats.weights * np.nan_to_num(stats.means)))
    census = bool(np.isfinite(stats.sizes).all() and (stats.counts >= stats.sizes).all())
    return interval(value, cell_variance(stats), image_variance(table, codes, stats, test_size), faults=int(y.size),
                    confidence=confidence, census=census, max_n_eff=float(table.size), method=method,
                    population=float(stats.sizes.sum()) if np.isfinite(stats.sizes).all() else None,
                    rare=rare_faults(y), fpc=overall_fpc(stats))


def paired_difference(events_a, n_a, events_b, n_b, *, confidence: float = 0.99, population: int | None = None,
                      strata=None, stratum_sizes=None) -> Estimate:
    """Difference of two rates measured on the same faults (A - B), the fault being the sampling unit.

    Each fault contributes ``d_i = a_i/n_a_i - b_i/n_b_i``; the estimate is the (stratified) mean of
    ``d`` and its interval ``+- z sqrt(V)`` (normal: a difference may be negative). Pairing removes
    the between-fault variance the two sets share, so the interval is much narrower than the one
    of two independent samples when both sets agree on most faults.
    """
    a, na = _check_counts(events_a, n_a)
    b, nb = _check_counts(events_b, n_b)
    if a.size != b.size:
        raise AnalysisError(f"Paired results must hold the same faults: got {a.size} and {b.size} faults.")
    d = a / na - b / nb
    codes, k = _cell_index(strata, d.size)
    if strata is None and population is not None:
        stratum_sizes = [population]
    stats = cell_stats(d, codes, k, stratum_sizes)
    value = float(np.nansum(stats.weights * np.nan_to_num(stats.means)))
    var = cell_variance(stats)
    z = z_value(confidence)
    se = math.sqrt(var)
    return Estimate(value, value - z * se, value + z * se, se, confidence, int(d.size), "wald-paired",
                    {"fault": var, "image": None},
                    float(stats.sizes.sum()) if np.isfinite(stats.sizes).all() else None)


def proportion(indicator: np.ndarray, codes: np.ndarray, k: int, sizes, *, confidence: float) -> Estimate:
    """Share of faults with a property (0/1 per fault), Wilson interval with the correction.

    One cell: Wilson on ``n / (1 - n/N)`` trials (the finite-population correction); stratified:
    Wilson on the effective sample size of the stratified variance.
    """
    x = np.asarray(indicator, dtype=np.float64)
    stats = cell_stats(x, codes, k, sizes)
    value = float(np.nansum(stats.weights * np.nan_to_num(stats.means)))
    pop = float(stats.sizes.sum()) if np.isfinite(stats.sizes).all() else None
    present = int((stats.counts > 0).sum())
    if present == 1:
        c = int(np.flatnonzero(stats.counts > 0)[0])
        n, size = stats.counts[c], stats.sizes[c]
        fpc = 1.0 - n / size if np.isfinite(size) else 1.0
        z = z_value(confidence)
        if fpc <= 0:
            return Estimate(value, value, value, 0.0, confidence, int(n), "census", {"fault": 0.0, "image": None},
                            pop, math.inf)
        n_eff = n / fpc
        low, high = wilson(value, n_eff, z)
        se = math.sqrt(value * (1 - value) / n_eff)
        return Estimate(value, low, high, se, confidence, int(n), "wilson", {"fault": se * se, "image": None},
                        pop, n_eff)
    census = bool(np.isfinite(stats.sizes).all() and (stats.counts >= stats.sizes).all())
    return interval(value, cell_variance(stats), None, faults=int(x.size), confidence=confidence, census=census,
                    population=pop, fpc=overall_fpc(stats))
