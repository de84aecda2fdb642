"""Plots of an analysis, drawn with matplotlib's Agg canvas (no display, no global backend change).

Each function takes :class:`~faultzoo.analysis.estimate.Estimates` and returns a Figure;
:func:`save_figure` writes it as PNG and SVG with fixed metadata, so the files are reproducible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faultzoo.analysis.design import EXPONENT, MANTISSA, MULTI, SIGN, bit_class
from faultzoo.outcome import RATE_LABELS

__all__ = ["plot_by_bit", "plot_by_layer", "plot_fault_distribution", "plot_layer_bit", "save_figure"]

COLORS = {SIGN: "#c0392b", EXPONENT: "#2471a3", MANTISSA: "#239b56", MULTI: "#7f8c8d"}


def _label(rate: str) -> str:
    """How plots name a rate (:data:`faultzoo.outcome.RATE_LABELS`)."""
    return RATE_LABELS[rate]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _errors(rows, rate: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([100 * g.rates[rate].value for g in rows])
    low = np.array([100 * g.rates[rate].low for g in rows])
    high = np.array([100 * g.rates[rate].high for g in rows])
    return values, np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])


def _title(est, rate: str, what: str) -> str:
    return f"{_label(rate)} rate {what} ({round(100 * est.confidence)} % intervals)"


def _legend_handles():
    from matplotlib.patches import Patch

    return [Patch(color=COLORS[name], label=name) for name in (MANTISSA, EXPONENT, SIGN)]


def plot_by_bit(est, rate: str = "critical"):
    """Rate per bit position (31 = sign, 30-23 exponent, 22-0 mantissa) with interval bars, on a log
    scale: the rates of a float32 word's bits span many orders of magnitude. Rates of exactly 0 are
    marked at the bottom with an x."""
    rows = sorted((g for g in est.by_bit if int(g.key) >= 0), key=lambda g: int(g.key))
    fig = _figure(8.0, 3.6)
    ax = fig.add_subplot()
    if rows:
        bits = np.array([int(g.key) for g in rows])
        values, err = _errors(rows, rate)
        lows = values - err[0]
        positive = values[values > 0]
        floor = 10 ** np.floor(np.log10(positive.min() / 5)) if positive.size else 1e-4
        top = max(float((values + err[1]).max()), floor * 10)
        ax.set_yscale("log")
        colors = [COLORS[bit_class(b)] for b in bits]
        ax.bar(bits, np.where(values > floor, values - floor, 0), bottom=floor, color=colors, width=0.75, alpha=0.85)
        ax.vlines(bits, np.maximum(lows, floor), values + err[1], color="black", linewidth=0.9)
        zero = values == 0
        ax.plot(bits[zero], np.full(int(zero.sum()), floor * 1.3), "x", color="black", markersize=4)
        ax.set_ylim(floor, top * 1.5)
        ax.legend(handles=_legend_handles(), loc="upper left", framealpha=0.9, edgecolor="none")
        ax.set_xticks(range(0, 32, 2))
    ax.set_xlim(-0.8, 31.8)
    ax.set_xlabel("bit position (0 = mantissa LSB, 31 = sign); x: none observed")
    ax.set_ylabel(f"{_label(rate)} rate (%), log scale")
    ax.set_title(_title(est, rate, "by flipped bit"), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_by_layer(est, rate: str = "critical"):
    """Rate per layer, in network order, with interval bars."""
    rows = est.by_layer
    fig = _figure(8.0, max(3.0, 0.22 * len(rows) + 1.2))
    ax = fig.add_subplot()
    if rows:
        y = np.arange(len(rows))
        values, err = _errors(rows, rate)
        ax.errorbar(values, y, xerr=err, fmt="o", color="#2471a3", ecolor="#555555", markersize=4, capsize=2)
        ax.set_yticks(y, [g.label for g in rows], fontsize=7 if len(rows) > 25 else 8)
        ax.invert_yaxis()
    ax.set_xlabel(f"{_label(rate)} rate (%)")
    ax.set_title(_title(est, rate, "by layer"), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_layer_bit(est, rate: str = "critical"):
    """Heat map of the rate per layer x bit on a log colour scale (white: 0 observed; grey: no fault
    sampled in that cell)."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    layers = [g.key for g in est.by_layer]
    labels = [g.label for g in est.by_layer]
    grid = np.full((len(layers), 32), np.nan)
    row_of = {p: i for i, p in enumerate(layers)}
    for g in est.by_layer_bit:
        param, bit = g.key
        if bit >= 0 and param in row_of:
            grid[row_of[param], bit] = 100 * g.rates[rate].value
    fig = _figure(8.0, max(3.0, 0.2 * len(layers) + 1.4))
    ax = fig.add_subplot()
    positive = grid[np.isfinite(grid) & (grid > 0)]
    vmax = float(positive.max()) if positive.size else 1.0
    vmin = max(float(positive.min()) if positive.size else vmax / 10, vmax * 1e-7)
    vmax = vmax if vmax > vmin else vmin * 10
    shown = np.where(grid == 0, vmin / 10, grid)  # zeros below the scale: drawn in the 'under' colour
    cmap = colormaps["viridis"].with_extremes(bad="#dddddd", under="#ffffff")
    image = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", cmap=cmap, interpolation="nearest",
                      norm=LogNorm(vmin=vmin, vmax=vmax))
    ax.set_yticks(range(len(labels)), labels, fontsize=7 if len(labels) > 25 else 8)
    ax.set_xticks(range(0, 32, 2))
    ax.set_xlabel("bit position (white: none observed; grey: no fault sampled)")
    ax.set_title(f"{_label(rate)} rate by layer and bit (%, log colour scale)", fontsize=10)
    fig.colorbar(image, ax=ax, label=f"{_label(rate)} rate (%)", shrink=0.9)
    return fig


def plot_fault_distribution(est, rate: str = "critical"):
    """Histogram of the per-fault rates: most faults never matter, a few matter on most images."""
    y = est.per_fault.get(rate, np.array([]))
    y = y[np.isfinite(y)]
    fig = _figure(8.0, 3.4)
    ax = fig.add_subplot()
    zero = int((y == 0).sum())
    positive = 100 * y[y > 0]
    if positive.size:
        ax.hist(positive, bins=np.linspace(0, 100, 51), color="#2471a3", alpha=0.85)
    ax.set_yscale("log")
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"per-fault {_label(rate)} rate (% of its images)")
    ax.set_ylabel("faults")
    ax.set_title(f"distribution of per-fault {_label(rate)} rates: {zero:,} of {y.size:,} faults at exactly 0 "
                 "(not drawn)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def save_figure(fig, folder: Path, name: str) -> dict[str, Path]:
    """Write ``name.png`` and ``name.svg`` under ``folder`` (reproducible bytes: no dates, fixed SVG ids)."""
    import matplotlib

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"png": folder / f"{name}.png", "svg": folder / f"{name}.svg"}
    with matplotlib.rc_context({"svg.hashsalt": name}):
        fig.savefig(paths["png"], format="png", metadata={"Software": None})
        fig.savefig(paths["svg"], format="svg", metadata={"Date": None, "Creator": None})
    return paths
