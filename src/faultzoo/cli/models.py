"""`faultzoo models`: the zoo as a table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from faultzoo.cli._common import console


def models(
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only models of this dataset.")] = None,
) -> None:
    """List the zoo: id, parameters, weights source and whether they are in the cache or mirror, claimed top-1,
    and the frameworks each model is available in (torch; keras with faultzoo[tf]).

    Example: faultzoo models --dataset cifar10
    """
    from faultzoo.zoo import list_models, model_info

    table = Table(title="faultzoo model zoo")
    table.add_column("id", no_wrap=True, min_width=20)
    for col, justify in ( ("params", "right"), ("weights (≥2-D)", "right"), ("input", "left"),
                         ("weights source", "left"), ("available", "left"), ("claimed top-1 %", "right"),
                         ("frameworks", "left")):
        table.add_column(col, justify=justify)
    for model_id in list_models(dataset):
        info = model_info(model_id)
        w = info.weights
        table.add_row(
            model_id, f"{info.num_params:,}", f"{info.num_weights:,}", "x".join(map(str, info.input_size)),
            f"{w.repo} ({w.storage})" if w else "-", w.availability() if w else "-",
            f"{w.claimed_top1:.1f}" if w else "-", ", ".join(info.frameworks),
        )
    console.print(table)


EXAMPLES = """\b
Examples:
  faultzoo models
  faultzoo models --dataset gtsrb
"""


def register(app: typer.Typer) -> None:
    app.command("models", epilog=EXAMPLES)(models)
