"""The analysis report: ``report.md`` and one self-contained ``report.html`` (plots embedded), plus the
plots as PNG and SVG, the estimates as JSON and the layer x bit table as CSV.

The numbers are formatted once here; two small Jinja2 templates (``templates/``) lay them out.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import importlib.util
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faultzoo import __version__
from faultzoo.analysis import plots as plotting
from faultzoo.analysis.estimate import estimate
from faultzoo.analysis.load import as_path, check_model_arg, check_progress_arg, load_results
from faultzoo.analysis.quality import check_quality
from faultzoo.analysis.stats import z_value
from faultzoo.analysis.table import Results, section
from faultzoo.exceptions import FrameworkUnavailableError, OutputError
from faultzoo.outcome import OUTCOME_KEYS, RATE_LABELS, Outcome

__all__ = ["Report", "default_output", "write_report"]

PLOTS = (
    ("critical_by_bit", "plot_by_bit", "Critical rate by flipped bit",
     "Bars: estimated critical rate of flips of each bit (log scale); whiskers: the interval; x: no critical "
     "inference observed. Colours: sign, exponent, mantissa."),
    ("critical_by_layer", "plot_by_layer", "Critical rate by layer",
     "Each layer's critical rate with its interval, in network order."),
    ("critical_layer_bit", "plot_layer_bit", "Critical rate by layer and bit",
     "Heat map of the critical rate per layer x bit (log colour scale); white: no critical inference observed; "
     "grey: no sampled fault."),
    ("per_fault_critical", "plot_fault_distribution", "Per-fault critical rates",
     "How the critical rate of single faults is distributed: most faults are never critical, a few are critical "
     "on most images. This is why the fault, not the inference, is the sampling unit."),
)


@dataclass
class Report:
    """What :func:`write_report` wrote, and the numbers behind it."""

    folder: Path
    markdown: Path
    html: Path
    results: object
    estimates: object
    files: dict[str, Path] = field(default_factory=dict)


def pct(p: float | None) -> str:
    """A proportion as a percentage with sensible digits: 0.0144 -> '1.44', 3.9e-6 -> '0.00039'."""
    if p is None or p != p:
        return "n/a"
    v = 100.0 * p
    if v == 0:
        return "0"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 0.1:
        return f"{v:.2f}"
    if abs(v) < 1e-4:
        return f"{v:.2g}"
    digits = 1
    while abs(v) < 10 ** (-digits + 1) and digits < 12:
        digits += 1
    return f"{v:.{digits + 1}f}"


def interval_text(e) -> str:
    return f"{pct(e.low)} – {pct(e.high)}"


def _num(x) -> str:
    return f"{x:,}" if isinstance(x, int) else "n/a" if x is None else str(x)


def default_output(source: Path) -> Path:
    """``FOLDER/report`` for a campaign folder, ``./STEM-report`` for a results file."""
    return source / "report" if source.is_dir() else Path.cwd() / f"{source.stem}-report"


# --------------------------------------------------------------------------- context for the templates


def _metadata(results) -> list[tuple[str, str]]:
    prov = results.provenance
    mprov = section(section(prov, "model"), "provenance")
    data = section(prov, "data")
    numerics = section(prov, "numerics")
    engine = section(prov, "engine")
    versions = section(prov, "versions")
    fl = section(prov, "fault_list")
    rows = [("source", f"{results.source} ({results.kind})"),
            ("model", f"{results.model_id or 'unknown'} (from {results.model_from})")]
    if mprov.get("weights_file_sha256") or mprov.get("state_sha256"):
        rows.append(("weights", f"file sha256 {mprov.get('weights_file_sha256', 'n/a')}; state sha256 "
                                f"{mprov.get('state_sha256', 'n/a')}"))
    if mprov.get("weights_source"):
        rows.append(("weights source", str(mprov["weights_source"])))
    if prov.get("golden_top1") is not None:
        rows.append(("golden top-1", f"{prov['golden_top1']:.2f} % on the selected images"))
    if data:
        sel = ", ".join(f"{k} {data[k]}" for k in ("limit", "per_class") if data.get(k))
        rows.append(("data", f"{data.get('dataset', '?')}: {data.get('source', '?')}; {_num(data.get('num_samples'))} "
                             f"images{' (' + sel + ')' if sel else ''}; fingerprint {str(data.get('fingerprint'))[:16]}"))
    elif results.images:
        rows.append(("data", f"{results.images:,} images per fault (from the file)"))
    if numerics:
        rows.append(("numerics", ", ".join(f"{k} {numerics[k]}" for k in ("device", "device_name", "dtype", "tf32",
                                                                            "threads") if k in numerics)))
    if engine.get("engine"):
        extra = f" (fell back to the reference: {engine['fallback']})" if engine.get("fallback") else ""
        rows.append(("engine", f"{engine['engine']}{extra}"))
    if fl.get("sha256"):
        rows.append(("fault list", f"sha256 {fl['sha256'][:16]}…, {_num(fl.get('faults'))} faults"
                                   + (f", from {fl['source']}" if fl.get("source") else "")))
    if results.fault_selection:
        rows.append(("fault selection", ", ".join(f"{k} {v}" for k, v in sorted(results.fault_selection.items()))))
    if versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    if not prov:
        rows.append(("provenance", "none recorded in this file (upstream results list only the fault rows and "
                                   "counts; the published campaigns ran on a GPU with TF32 convolutions)"))
    return rows


def _design_rows(results, est) -> list[tuple[str, str]]:
    d = est.design
    meta = results.fault_meta
    rows = [("design", f"{d.name} ({'simple random sample of faults' if d.scheme == 'srs' else d.scheme}"
                       + (f", strata = {d.strata}" if d.scheme == "stratified" else "") + ")"),
            ("how known", results.design_note or "n/a"),
            ("population N", f"{d.population:,} single-bit faults" if d.population else "unknown (no finite-"
                                                                                        "population correction)"),
            ("faults analysed n", f"{est.faults:,}"),
            ("images per fault m", f"{_num(est.images)} of {_num(est.test_size)} test images"),
            ("image component", est.image_component),
            ("confidence", f"{100 * est.confidence:g} %")]
    if d.upstream_population:
        rows.insert(3, ("upstream's N", f"{d.upstream_population:,} (64 per weight: its formula counts stuck-at-0 and "
                                        "stuck-at-1; the faults injected are 32 bit flips per weight)"))
    params = getattr(meta, "design_params", None) or {}
    if params.get("error") is not None:
        rows.append(("list made for", f"error margin {params['error']} at t = {params.get('t', 0):.2f} "
                                      f"(p = {params.get('p')}): a margin on the share of faults, not on the "
                                      "per-inference rates"))
    return rows


def _rate_row(name: str, e) -> list[str]:
    image = e.components.get("image")
    return [name, pct(e.value), interval_text(e), pct(e.margin), f"{e.se * 100:.3g}",
            f"{(e.components.get('fault') or 0) ** 0.5 * 100:.3g}",
            "n/a" if image is None else f"{image ** 0.5 * 100:.3g}"]


def _group_table(title: str, groups) -> dict:
    rates = OUTCOME_KEYS
    columns = (["group", "faults", "population"] + [f"{RATE_LABELS[r]} %" for r in rates]
               + ["critical interval %", "faults ever critical %"])
    rows = []
    for g in groups:
        cells = [g.label, f"{g.faults:,}", _num(g.population)]
        cells += [pct(g.rates[r].value) for r in rates if r in g.rates]
        cells.append(interval_text(g.rates[Outcome.CRITICAL.key]))
        share = g.shares.get("critical_any")
        cells.append(f"{pct(share.value)} ({interval_text(share)})" if share else "n/a")
        rows.append(cells)
    return {"title": title, "columns": columns, "rows": rows}


def _tables(est) -> list[dict]:
    headline = {"title": "Inference-level rates",
                "columns": ["outcome", "estimate %", "interval %", "margin ±%", "SE %", "fault SE %", "image SE %"],
                "rows": [_rate_row(RATE_LABELS[k], v) for k, v in est.overall.items()]}
    shares = {"title": "Fault-level shares (Wilson intervals)",
              "columns": ["faults that are", "share %", "interval %", "faults"],
              "rows": [["critical on at least one image", pct(est.fault_level["critical_any"].value),
                        interval_text(est.fault_level["critical_any"]), f"{est.fault_level['critical_any'].faults:,}"],
                       ["masked on every image", pct(est.fault_level["masked_all"].value),
                        interval_text(est.fault_level["masked_all"]), f"{est.fault_level['masked_all'].faults:,}"]]}
    return [headline, shares, _group_table("By bit class", est.by_bit_class), _group_table("By bit", est.by_bit),
            _group_table("By layer", est.by_layer)]


def _headline(est) -> str:
    c = est.overall[Outcome.CRITICAL.key]
    return (f"{RATE_LABELS[Outcome.CRITICAL.key]} rate {pct(c.value)} % ({round(100 * est.confidence)} % interval "
            f"{interval_text(c)} %) "
            f"over {est.faults:,} faults x {_num(est.images)} images")


def _write_layer_bit_csv(est, path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    rates = list(est.overall)
    writer.writerow(["layer", "bit", "faults", "population"] + [f"{r}{s}" for r in rates for s in ("", "_low", "_high")])
    for g in est.by_layer_bit:
        row = [g.key[0].removesuffix(".weight"), g.key[1], g.faults, g.population if g.population else ""]
        for r in rates:
            e = g.rates[r]
            row += [f"{e.value:.8g}", f"{e.low:.8g}", f"{e.high:.8g}"]
        writer.writerow(row)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _render(name: str, context: dict) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("faultzoo.analysis", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    return env.get_template(name).render(**context)


def write_report(results, output: str | os.PathLike | None = None, *, model: str | None = None,
                 confidence: float = 0.99, progress: Callable[[str], None] | None = None) -> Report:
    """Analyse a result set and write its report.

    Args:
        results: a path (campaign folder or results CSV) or loaded :class:`~faultzoo.analysis.Results`.
        output: the report folder (default :func:`default_output`); created, files replaced.
        model: zoo id for an upstream results file (``--model``).
        confidence: confidence level of every interval.
        progress: called with a short description of each step.

    Returns:
        The :class:`Report`: paths, the loaded results (with the quality report) and the estimates.

    Raises:
        AnalysisError: a wrong argument, results that cannot be loaded or estimated.
        OutputError: the report folder cannot be written.
        FrameworkUnavailableError: matplotlib or jinja2 is not installed.
    """
    if not isinstance(results, Results):
        as_path(results, "results")
    folder = as_path(output, "output") if output is not None else None
    check_model_arg(model)
    check_progress_arg(progress)
    z_value(confidence)
    _require_plot_extra()
    step = progress or (lambda _: None)
    if not isinstance(results, Results):
        results = load_results(results, model=model, progress=step)
    elif results.quality is None:
        results.quality = check_quality(results)
    step("estimates")
    est = estimate(results, confidence=confidence)
    folder = folder if folder is not None else default_output(results.source)
    try:
        return _write(results, est, folder, step)
    except OSError as exc:
        raise OutputError(f"Cannot write the report to {folder}: {exc.strerror or exc}. Choose a folder with "
                          "-o/--output.") from None


def _write(results, est, folder: Path, step: Callable[[str], None]) -> Report:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    figures = []
    for name, function, title, caption in PLOTS:
        step(f"plot: {title.lower()}")
        fig = getattr(plotting, function)(est)
        paths = plotting.save_figure(fig, folder / "plots", name)
        files[f"{name}.png"], files[f"{name}.svg"] = paths["png"], paths["svg"]
        figures.append({"title": title, "caption": caption, "png": f"plots/{name}.png", "svg": f"plots/{name}.svg",
                        "data_uri": "data:image/png;base64," + base64.b64encode(paths["png"].read_bytes()).decode()})
    step("writing the report")
    quality = results.quality
    context = {
        "title": f"Fault-injection analysis: {results.model_id or results.source.name}",
        "generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "version": __version__,
        "headline": _headline(est), "verdict": quality.verdict,
        "findings": [f for f in quality.findings if f.level != "ok"],
        "checks_ok": [f for f in quality.findings if f.level == "ok"],
        "metadata": _metadata(results), "design": _design_rows(results, est), "tables": _tables(est),
        "figures": figures, "notes": est.notes,
    }
    files["markdown"] = folder / "report.md"
    files["html"] = folder / "report.html"
    files["markdown"].write_text(_render("report.md.j2", context), encoding="utf-8")
    files["html"].write_text(_render("report.html.j2", context), encoding="utf-8")
    files["estimates"] = folder / "estimates.json"
    files["estimates"].write_text(json.dumps({"source": str(results.source), "model_id": results.model_id,
                                              "quality": quality.to_dict(), "estimates": est.to_dict()},
                                             indent=1, default=_json_default), encoding="utf-8")
    files["layer_bit"] = folder / "by_layer_bit.csv"
    _write_layer_bit_csv(est, files["layer_bit"])
    return Report(folder, files["markdown"], files["html"], results, est, files)


def _require_plot_extra() -> None:
    """Refuse before any work when the plotting and templating libraries are missing."""
    missing = [name for name in ("matplotlib", "jinja2") if importlib.util.find_spec(name) is None]
    if missing:
        raise FrameworkUnavailableError(f"Reports need {' and '.join(missing)}, which are not installed: "
                                        "pip install 'faultzoo[plot]'.")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
