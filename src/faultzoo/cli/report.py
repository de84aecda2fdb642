"""`faultzoo report`: analyse a campaign folder or a results CSV into report.md + a self-contained report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faultzoo.outcome import RATE_LABELS

EXAMPLES = """
Examples:

  faultzoo report demo-out/campaign

  faultzoo report torch_gpu_image_classification_CIFAR10_fp32_resnet_ResNet32_FL.csv --model cifar10/resnet32 -o rn32-report

The report folder holds report.md, report.html (plots embedded), plots/*.png|svg, estimates.json and by_layer_bit.csv.

Exit status: 0 when the data-quality verdict is PASS or WARN, 1 when it is FAIL (the report is written all
the same: a script can stop on a bad result), 1 or 2 on an error (nothing analysed).
"""


def report(
    results: Annotated[Path, typer.Argument(help="Campaign output folder, its results.csv, or an upstream results CSV.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Report folder (default: FOLDER/report, or ./NAME-report for a file).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model id of an upstream results file (layer shapes, design); guessed from upstream file names.")] = None,
    confidence: Annotated[float, typer.Option("--confidence", min=0.5, max=0.9999, help="Confidence level of every interval.")] = 0.99,
) -> None:
    """Design-aware estimates with intervals, data-quality checks and plots of campaign results.

    Exits with status 1 when the data-quality verdict is FAIL (the report is still written)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from faultzoo.analysis import write_report

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("report: starting", total=None)
        done = write_report(results, output, model=model, confidence=confidence,
                            progress=lambda what: bar.update(task, description=f"report: {what}"))
    for line in summary_lines(done):
        print(line)
    if done.results.quality.verdict == "fail":
        Console(stderr=True, highlight=False).print("exit status 1: the data-quality verdict is FAIL (the report is "
                                                    "written; see its findings)", markup=False)
        raise typer.Exit(1)


def summary_lines(done) -> list[str]:
    """The terminal summary: quality verdict and problems, headline rates, where the report is."""
    from faultzoo.analysis.report import interval_text, pct
    quality, est = done.results.quality, done.estimates
    problems = [f for f in quality.findings if f.level != "ok"]
    lines = [f"data quality: {quality.verdict.upper()}" + (f" ({len(problems)} problem(s))" if problems else "")]
    lines += [f"  {f.level}: {f.message}" for f in problems]
    images = f"{est.images:,}" if est.images else "?"
    lines.append(f"rates ({round(100 * est.confidence)} % intervals; {est.faults:,} faults x {images} images; "
                 f"design {est.design.name}):")
    width = max(len(RATE_LABELS[k]) for k in est.overall)
    for key, e in est.overall.items():
        lines.append(f"  {RATE_LABELS[key]:<{width}}  {pct(e.value):>8} %   [{interval_text(e)}]")
    share = est.fault_level["critical_any"]
    lines.append(f"  faults critical on at least one image: {pct(share.value)} % [{interval_text(share)}]")
    lines.append(f"report: {done.html}")
    lines.append(f"        {done.markdown}")
    return lines


def register(app: typer.Typer) -> None:
    app.command("report", epilog=EXAMPLES)(report)
