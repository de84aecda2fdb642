"""`faultzoo models`: the zoo as a table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from faultzoo.cli._common import console


def models(
    dataset: Annotated[str | None, typer.Option(
        "--dataset", help="Only models of this dataset: cifar10, cifar100 or gtsrb (any case).")] = None,
) -> None:
    """List the zoo: id, parameters, weights source and whether they are in the cache or mirror, claimed top-1,
    and the frameworks each model is available in (torch; keras with faultzoo[tf]).

    Example: faultzoo models --dataset cifar10
    """
    from faultzoo.zoo import list_models, model_info

    rows = []
    for model_id in list_models(dataset):  # an unknown dataset: UnknownDatasetError, listing the known ones
        info = model_info(model_id)
        w = info.weights
        rows.append({
            "id": model_id, "params": f"{info.num_params:,}", "params (M)": f"{info.num_params / 1e6:.2f}",
            "weights (≥2-D)": f"{info.num_weights:,}", "input": "x".join(map(str, info.input_size)),
            "weights source": f"{w.repo} ({w.storage})" if w else "-", "available": w.availability() if w else "-",
            "top-1 %": f"{w.claimed_top1:.1f}" if w else "-", "frameworks": ",".join(info.frameworks),
        })
    if not rows:  # no dataset without models today; never a table without rows (its widths need one)
        print("No models." if dataset is None else f"No models of {dataset}.")
        return
    wide = ["id", "params", "weights (≥2-D)", "input", "weights source", "available", "top-1 %", "frameworks"]
    if console.is_terminal and console.width >= _width(rows, wide) + 3 * len(wide):
        table = Table(title="faultzoo model zoo (top-1: claimed by upstream)")
        for col in wide:
            table.add_column(col, justify="right" if col in ("params", "weights (≥2-D)", "top-1 %") else "left",
                             no_wrap=True)
        for row in rows:
            table.add_row(*(row[c] for c in wide))
        console.print(table)
        return
    # Piped or narrow: plain aligned text, nothing truncated; the long columns only when they fit.
    compact = ["id", "params (M)", "input", "top-1 %", "available", "frameworks"]
    columns = wide if not console.is_terminal else compact
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    right = {"params", "params (M)", "weights (≥2-D)", "top-1 %"}
    for line in [dict(zip(columns, columns)), *rows]:
        print("  ".join(line[c].rjust(widths[c]) if c in right else line[c].ljust(widths[c]) for c in columns).rstrip())


def _width(rows: list[dict], columns: list[str]) -> int:
    return sum(max(len(c), *(len(r[c]) for r in rows)) for c in columns)


EXAMPLES = """\b
Examples:
  faultzoo models
  faultzoo models --dataset gtsrb
"""


def register(app: typer.Typer) -> None:
    app.command("models", epilog=EXAMPLES)(models)
