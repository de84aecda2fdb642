"""Shared CLI pieces: option aliases, the progress bar, the console."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console()

ModelArg = Annotated[str, typer.Argument(help="Model id, e.g. cifar10/resnet20 (see `faultzoo models`).")]
WeightsOpt = Annotated[str, typer.Option("--weights", help="'default' (upstream checkpoint), 'none' (untrained) or a checkpoint PATH.")]
DataOpt = Annotated[
    str | None,
    typer.Option("--data", help="Dataset name (cifar10, cifar100, gtsrb: test split under --data-root) or a PATH.npz. Default: the model's dataset."),
]
DataRootOpt = Annotated[Path | None, typer.Option("--data-root", help="Folder of torchvision datasets (default $FAULTZOO_DATA).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="Use only the first N images.")]
PerClassOpt = Annotated[int | None, typer.Option("--per-class", min=1, help="Use the first N images of each class.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=2, help="Images per forward pass (>= 2).")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="Download the dataset if it is missing.")]


def weights_arg(value: str) -> str | None:
    return None if value.lower() in ("none", "untrained") else value


def progress_bar(unit: str = "images") -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False, refresh_per_second=2,  # a busy refresh thread slows torch
    )
