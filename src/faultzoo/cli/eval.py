"""`faultzoo eval`: top-1/top-5 of a zoo model on real data, with throughput."""

from __future__ import annotations

from faultzoo.cli._common import (
    BatchOpt, DataOpt, DataRootOpt, DownloadOpt, LimitOpt, ModelArg, PerClassOpt, WeightsOpt, console, progress_bar,
    weights_arg,
)


def eval_command(
    model_id: ModelArg,
    weights: WeightsOpt = "default",
    data: DataOpt = None,
    data_root: DataRootOpt = None,
    limit: LimitOpt = None,
    per_class: PerClassOpt = None,
    batch_size: BatchOpt = 128,
    download: DownloadOpt = False,
) -> None:
    """Evaluate MODEL on its dataset's test split (or an .npz) and print top-1/top-5 and images/s."""
    import torch

    from faultzoo.data import load_selection
    from faultzoo.inference import evaluate
    from faultzoo.zoo import get_model, model_info

    info = model_info(model_id)
    selection = load_selection(data or info.dataset, dataset=info.dataset, limit=limit, per_class=per_class,
                               root=data_root, download=download)
    model = get_model(model_id, weights=weights_arg(weights), progress=True)
    with progress_bar() as bar:
        task = bar.add_task(f"eval {model_id}", total=len(selection.y), rate="")

        def step(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(task, completed=done, rate=f"{done / elapsed:,.0f} img/s")

        acc = evaluate(model, selection.x, selection.y, batch_size=batch_size, callback=step)
    console.print(
        f"[bold]{model_id}[/bold] on {selection.source} ({acc.n} images): "
        f"top-1 [bold]{acc.top1:.2f}%[/bold], top-5 {acc.top5:.2f}%, "
        f"{acc.images_per_second:,.0f} images/s ({torch.get_num_threads()} threads, batch {batch_size})"
    )


def register(app) -> None:
    app.command("eval")(eval_command)
