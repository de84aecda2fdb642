"""`faultzoo compare A B`: two result sets of one model on the same faults, compared fault by fault."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXAMPLES = """
Examples:

  faultzoo compare rn20-torch rn20-keras -o rn20-compare

  faultzoo compare torch_results.csv keras_results_upstream.csv --model cifar10/resnet20

A and B are campaign folders or results CSVs (faultzoo's results.csv, or upstream's layout with PyTorch or
Keras layer names). Faults pair when they hit the same tensor element and bits; Keras names are mapped to
the PyTorch tensors (--model gives the model when a file does not record it). A partial result set (an
interrupted campaign, a truncated file) is refused: finish its campaign (re-run the same command), or pass
--allow-partial to compare the faults it holds.
"""


def compare(
    a: Annotated[Path, typer.Argument(help="Result set A: a campaign folder or a results CSV.")],
    b: Annotated[Path, typer.Argument(help="Result set B: a campaign folder or a results CSV.")],
    model: Annotated[str | None, typer.Option("--model", help="Model id, for results that do not record it (needed to map Keras layer names).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Folder for compare.md, compare.json and the scatter plot (PNG, SVG).")] = None,
    confidence: Annotated[float, typer.Option("--confidence", min=0.5, max=0.9999, help="Confidence level of every interval.")] = 0.99,
    top: Annotated[int, typer.Option("--top", min=0, help="How many of the most disagreeing faults to list.")] = 10,
    allow_partial: Annotated[bool, typer.Option("--allow-partial", help="Compare a partial result set (an interrupted campaign, a truncated file) instead of refusing it.")] = False,
) -> None:
    """Compare two result sets of one model fault by fault: per-class rates of A and B with intervals, their paired
    difference, the share of faults with identical counts, differences by bit class and layer, the faults that
    disagree most, and a scatter plot of per-fault critical rates."""
    from faultzoo.analysis.compare import compare_results, comparison_lines, write_comparison

    comparison = compare_results(a, b, model=model, confidence=confidence, top=top, allow_partial=allow_partial)
    for line in comparison_lines(comparison):
        print(line)
    if output is not None:
        paths = write_comparison(comparison, output)
        print(f"comparison: {paths['markdown']}")
        print(f"plot:       {paths['plot_png']}, {paths['plot_svg']}")


def register(app: typer.Typer) -> None:
    app.command("compare", epilog=EXAMPLES)(compare)
