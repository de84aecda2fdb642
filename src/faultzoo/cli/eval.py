"""`faultzoo eval`: top-1/top-5 of a model on real data, with throughput."""

from __future__ import annotations

from typing import Annotated

import typer

from faultzoo.cli._common import (
    BatchOpt, DataRootOpt, DownloadOpt, LimitOpt, PerClassOpt, WeightsOpt, console, progress_bar, weights_arg,
)

FrameworkOpt = Annotated[str, typer.Option(
    "--framework", help="'torch' (the PyTorch model) or 'keras' (its Keras 3 twin; needs faultzoo[tf]); "
                        "with keras, --weights may also be a .keras or .h5 file for a zoo model.")]
EvalModelArg = Annotated[str, typer.Argument(
    metavar="MODEL", help="A zoo id (cifar10/resnet20, see `faultzoo models`), torchvision:NAME, "
                          "package.module:function or path/to/file.py:function.")]
NumClassesOpt = Annotated[int | None, typer.Option(
    "--num-classes", min=1, help="torchvision:NAME models: the classifier's size (default: the builder's).")]
EvalDataOpt = Annotated[str | None, typer.Option(
    "--data", help="Dataset name (cifar10, cifar100, gtsrb: test split under --data-root), a PATH.npz, or "
                   "imagefolder:PATH (with --transform). Default: a zoo model's dataset; other models need it.")]
TransformOpt = Annotated[str | None, typer.Option(
    "--transform", help="For imagefolder data: a torchvision weights member (ResNet18_Weights.IMAGENET1K_V1) "
                        "or steps resize=N,crop=N,mean=A:B:C,std=A:B:C.")]


def eval_command(
    model_id: EvalModelArg,
    weights: WeightsOpt = "default",
    num_classes: NumClassesOpt = None,
    data: EvalDataOpt = None,
    transform: TransformOpt = None,
    data_root: DataRootOpt = None,
    limit: LimitOpt = None,
    per_class: PerClassOpt = None,
    batch_size: BatchOpt = 128,
    download: DownloadOpt = False,
    framework: FrameworkOpt = "torch",
) -> None:
    """Evaluate MODEL on its dataset's test split, an .npz or a folder of images, and print top-1/top-5 and
    images/s. MODEL takes the forms of `faultzoo campaign` and `faultzoo faultlist`.

    Example: faultzoo eval cifar10/resnet20 --framework keras --limit 1000
    """
    from faultzoo.data import load_data
    from faultzoo.zoo import FRAMEWORKS, model_info
    from faultzoo.zoo.recipes import parse_model_spec

    if framework not in FRAMEWORKS:
        raise typer.BadParameter(f"{framework!r} is not one of {', '.join(FRAMEWORKS)}.", param_hint="--framework")
    recipe = parse_model_spec(model_id, weights=weights_arg(weights), num_classes=num_classes)
    in_zoo = recipe.kind == "zoo"
    if framework == "keras":
        from faultzoo.keras import check_available

        check_available()  # a missing TensorFlow is reported before any data loads
    dataset = model_info(recipe.target).dataset if in_zoo else None
    selection = load_data(data, dataset=dataset, transform=transform, limit=limit, per_class=per_class,
                          root=data_root, download=download)
    model, untrained = _model(recipe, weights_arg(weights), framework, selection)
    if framework == "keras":
        from faultzoo.keras import evaluate  # same images (NCHW -> NHWC with to_nhwc), Keras inference
    else:
        from faultzoo.inference import evaluate
    label = recipe.label
    with progress_bar() as bar:
        task = bar.add_task(f"eval {label} ({framework})", total=len(selection.y), rate="")

        def step(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(task, completed=done, rate=f"{done / elapsed:,.0f} img/s")

        acc = evaluate(model, selection.x, selection.y, batch_size=batch_size, callback=step)
    console.print(
        f"[bold]{label}[/bold] ({framework}{', untrained' if untrained else ''}) on {selection.source} "
        f"({acc.n} images): top-1 [bold]{acc.top1:.2f}%[/bold], top-5 {acc.top5:.2f}%, "
        f"{acc.images_per_second:,.0f} images/s ({_threads(framework)} threads, batch {batch_size})"
    )


def _model(recipe, weights, framework: str, selection):
    """The model to evaluate (a zoo model's own twin for keras, else the PyTorch model, converted for keras),
    checked on two images first; and whether it is untrained."""
    import torch

    from faultzoo.campaign.loading import check_model_takes_images
    from faultzoo.zoo import get_model
    from faultzoo.zoo.recipes import build_model

    if recipe.kind == "zoo":
        untrained = weights is None
        if framework == "keras":  # the zoo's twin (its --weights may be a .keras/.h5 file)
            return get_model(recipe.target, weights=weights, progress=True, framework="keras"), untrained
        model = get_model(recipe.target, weights=weights, progress=True)
    else:
        untrained = recipe.weights is None
        with torch.random.fork_rng(devices=[]):  # an untrained model: the same initialisation on every run
            torch.manual_seed(0)
            model = build_model(recipe, progress=True)
    check_model_takes_images(model, selection, recipe.label)  # shapes and labels, before the whole pass
    if framework == "keras":
        from faultzoo.keras import convert

        return convert(model, tuple(selection.x.shape[1:]), name="twin"), untrained
    return model, untrained


def _threads(framework: str) -> int:
    if framework == "keras":
        import os

        from faultzoo.keras._tf import require_keras

        _, tf = require_keras()
        return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1  # 0: TF uses all cores
    import torch

    return torch.get_num_threads()


EXAMPLES = """\b
Examples:
  faultzoo eval cifar10/resnet20 --data cifar10 --download --limit 1000
  faultzoo eval cifar10/resnet20 --data test.npz --weights my_resnet20.pth
  faultzoo eval torchvision:resnet18 --weights resnet18-f37072fd.pth --data imagefolder:my-images \\
      --transform ResNet18_Weights.IMAGENET1K_V1
  faultzoo eval lab_nets.py:build --weights lab_net.pt --data cifar10
"""


def register(app) -> None:
    app.command("eval", epilog=EXAMPLES)(eval_command)
