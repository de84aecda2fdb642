"""`faultzoo faultlist`: generate a fault list for a zoo model, or convert one between formats."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from faultzoo.cli._common import console

if TYPE_CHECKING:
    from torch import nn

    from faultzoo.faults import FaultList

EXAMPLES = """\b
Examples:
  faultzoo faultlist cifar10/resnet32 --format torch -o cifar10_resnet32_torch_FL.csv
  faultzoo faultlist cifar10/vgg11_bn --design layer --error 0.05 --confidence 0.95 -o vgg_layers.csv
  faultzoo faultlist cifar10/resnet20 --design exhaustive --layers conv1 --bits 23-31 -o conv1_exp.csv
"""

CONVERT_EXAMPLES = """\b
Examples:
  faultzoo faultlist convert cifar10_resnet32_torch_FL.csv --model cifar10/resnet32 --to keras -o keras_FL.csv
  faultzoo faultlist convert my_list.csv --dedupe -o my_list_unique.csv
"""


class DesignName(str, Enum):
    dnn_benchmarks = "dnn-benchmarks"
    network = "network"
    layer = "layer"
    layer_bit = "layer-bit"
    exhaustive = "exhaustive"


class Kind(str, Enum):
    bitflip = "bitflip"
    stuck_at_0 = "stuck-at-0"
    stuck_at_1 = "stuck-at-1"


class Format(str, Enum):
    faultzoo = "faultzoo"
    torch = "torch"
    keras = "keras"


class Allocation(str, Enum):
    proportional = "proportional"
    neyman = "neyman"


class _DefaultToGenerate(TyperGroup):
    """A group whose first argument, when it is not a sub-command, is the MODEL of `generate`.

    So `faultzoo faultlist MODEL ...` and `faultzoo faultlist convert IN ...` both work.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["generate", *args]
        return super().parse_args(ctx, args)


faultlist_app = typer.Typer(
    cls=_DefaultToGenerate,
    name="faultlist",
    help="Fault lists: `faultzoo faultlist MODEL --design ... -o FILE` generates one; "
         "`faultzoo faultlist convert IN --to keras -o OUT` converts one. See `faultzoo faultlist generate --help`.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _load_model(model_id: str, num_classes: int | None = None) -> nn.Module:
    """The model, untrained (a fault list needs shapes only): a zoo id, torchvision:NAME, module:function or
    file.py:function. Imported lazily to keep `--help` fast."""
    from faultzoo.zoo.recipes import build_model, parse_model_spec

    return build_model(parse_model_spec(model_id, weights=None, num_classes=num_classes))


def _weights_sha256(model_id: str) -> str | None:
    """sha256 of a zoo model's published checkpoint, recorded in the list's metadata (None if unknown)."""
    from faultzoo.zoo import list_models, model_info

    if model_id not in list_models():
        return None
    weights = model_info(model_id).weights
    return getattr(weights, "sha256", None) if weights is not None else None


# Option name of the design functions (faultzoo.faults.DESIGNS) -> the CLI flag that sets it.
_FLAGS = {"error": "--error", "t": "--t", "confidence": "--confidence", "p": "--p", "seed": "--seed",
          "kind": "--kind", "targets": "--targets", "layers": "--layers", "bits": "--bits", "n": "--n",
          "allocation": "--allocation", "prior": "--prior", "max_faults": "--max-faults"}


def _design_options(design: DesignName, given: dict[str, Any]) -> dict[str, Any]:
    """The options of ``given`` that the design takes; a flag set away from its default that the design
    would ignore is refused, naming the flag and the design's own flags."""
    from faultzoo.faults import DESIGNS

    spec = DESIGNS[design.value]
    defaults = _generate_defaults()
    for name, value in given.items():
        if name not in spec.options and value != defaults[name]:
            takes = " ".join(_FLAGS[o] for o in spec.options if o in _FLAGS)
            raise typer.BadParameter(f"{_FLAGS[name]} does not apply to --design {design.value} "
                                     f"({spec.summary}); its flags: {takes or 'none'}.", param_hint=_FLAGS[name])
    return {name: value for name, value in given.items() if name in spec.options}


def _generate_defaults() -> dict[str, Any]:
    """Defaults of the `generate` command's design flags, read from its signature."""
    import inspect

    params = inspect.signature(generate).parameters
    return {name: _plain(params[name].default) for name in _FLAGS}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def summary_table(fault_list: FaultList, *, title: str, output: Path | None = None, fmt: str | None = None) -> Table:
    """The design summary: N, n, e, t, p, and what was written."""
    meta = fault_list.meta
    params = meta.design_params
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")

    def fmt_num(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    rows = [
        ("model", meta.model_id or "-"),
        ("design", meta.design),
        ("population N", fmt_num(meta.population_size, ",")),
        ("sample size n", fmt_num(meta.sample_size, ",")),
        ("faults listed", f"{len(fault_list):,}"),
        ("error margin e", fmt_num(params.get("error"), "g")),
        ("t (confidence)", "-" if params.get("t") is None
         else f"{params['t']:.4g} ({100 * params['confidence']:.2f} %)"),
        ("p", fmt_num(params.get("p"), "g")),
        ("strata", f"{len(meta.strata)}" + (f" ({params['allocation']})" if params.get("allocation") else "")),
        ("seed", "-" if meta.seed is None else str(meta.seed)),
        ("kind", meta.kind.value if meta.kind is not None else "mixed"),
        ("targets", ",".join(meta.targets) + (f" [layers {','.join(meta.layers)}]" if meta.layers else "")),
        ("bits", _bits_text(meta.bits)),
        ("fingerprint", fault_list.fingerprint()[:16]),
    ]
    if output is not None:
        rows.append(("written", f"{output} ({fmt})"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _bits_text(bits: tuple[int, ...]) -> str:
    if not bits:
        return "-"
    if list(bits) == list(range(bits[0], bits[-1] + 1)):
        return f"{bits[0]}-{bits[-1]}" if len(bits) > 1 else str(bits[0])
    return ",".join(map(str, bits))


ModelIdArg = Annotated[str, typer.Argument(metavar="MODEL", help="Model id, e.g. cifar10/resnet32 (see `faultzoo models`).")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="File to write (atomically).")]
DesignOpt = Annotated[DesignName, typer.Option("--design", help="Sampling design.")]
ErrorOpt = Annotated[float, typer.Option("--error", help="Error margin e.")]
ConfidenceOpt = Annotated[float | None, typer.Option("--confidence", help="Confidence level, e.g. 0.99 (sets t).")]
TOpt = Annotated[float | None, typer.Option("--t", help="Normal quantile t instead of --confidence (default 2.58).")]
POpt = Annotated[float, typer.Option("--p", help="Expected failure rate p (0.5: conservative).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
KindOpt = Annotated[Kind, typer.Option("--kind", help="Fault kind.")]
TargetsOpt = Annotated[str, typer.Option("--targets", help="Tensor groups: weights,bias,bn,bn-stats or all.")]
LayersOpt = Annotated[str | None, typer.Option("--layers", help="Layer name glob(s), comma-separated: 'layer1.*,linear'.")]
BitsOpt = Annotated[str | None, typer.Option("--bits", help="Bit range(s): '31', '23-30', '0-7,31'.")]
NOpt = Annotated[int | None, typer.Option("--n", min=0, help="Sample size instead of the formula (network, layer-bit).")]
AllocationOpt = Annotated[Allocation, typer.Option("--allocation", help="layer-bit: allocation of n to the strata.")]
PriorOpt = Annotated[str | None, typer.Option("--prior", help="layer-bit neyman: prior rate(s), '0.1' or '31=0.6,23-30=0.2'.")]
MaxFaultsOpt = Annotated[int, typer.Option("--max-faults", min=1, help="exhaustive: refuse lists larger than this.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="Output format (torch/keras: upstream layouts).")]
ToOpt = Annotated[Format | None, typer.Option("--to", help="Output format (default: the input's own).")]
ConvertModelOpt = Annotated[str | None, typer.Option("--model", help="Model id: needed for Keras lists; validates every fault.")]


@faultlist_app.command("generate", epilog=EXAMPLES)
def generate(
    model_id: ModelIdArg,
    output: OutputOpt,
    design: DesignOpt = DesignName.dnn_benchmarks,
    error: ErrorOpt = 0.01,
    confidence: ConfidenceOpt = None,
    t: TOpt = None,
    p: POpt = 0.5,
    seed: SeedOpt = 42,
    kind: KindOpt = Kind.bitflip,
    targets: TargetsOpt = "weights",
    layers: LayersOpt = None,
    bits: BitsOpt = None,
    n: NOpt = None,
    allocation: AllocationOpt = Allocation.proportional,
    prior: PriorOpt = None,
    max_faults: MaxFaultsOpt = 1_000_000,
    fmt: FormatOpt = Format.faultzoo,
    num_classes: Annotated[int | None, typer.Option(
        "--num-classes", min=1, help="torchvision:NAME models: the classifier's size (default: the builder's).")] = None,
) -> None:
    """Generate a fault list for MODEL and print the design summary (N, n, e, t, p).

    MODEL is a zoo id, torchvision:NAME, package.module:function or path/to/file.py:function."""
    from faultzoo.faults import make_fault_list, write_fault_list

    if t is not None and confidence is not None:
        raise typer.BadParameter("give --t or --confidence, not both.", param_hint="--t/--confidence")
    given = {"error": error, "t": t, "confidence": confidence, "p": p, "seed": seed, "kind": kind.value,
             "targets": targets, "layers": layers, "bits": bits, "n": n, "allocation": allocation.value,
             "prior": prior, "max_faults": max_faults}
    options = _design_options(design, given)
    if "prior" in options:
        from faultzoo.exceptions import FaultError
        from faultzoo.faults.sampling import parse_prior

        try:
            options["prior"] = parse_prior(prior)
        except FaultError as exc:
            raise typer.BadParameter(str(exc), param_hint="--prior") from None
    model = _load_model(model_id, num_classes)
    options.update(model_id=model_id, weights_sha256=_weights_sha256(model_id))
    fault_list = make_fault_list(model, design.value, **options)
    write_fault_list(fault_list, output, format=fmt.value, model=model)
    console.print(summary_table(fault_list, title=f"fault list for {model_id}", output=output, fmt=fmt.value))


@faultlist_app.command("convert", epilog=CONVERT_EXAMPLES)
def convert(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Fault list to read (format detected).")],
    output: OutputOpt,
    to: ToOpt = None,
    model_id: ConvertModelOpt = None,
    dedupe: Annotated[bool, typer.Option("--dedupe", help="Drop rows that repeat an earlier row's fault.")] = False,
) -> None:
    """Convert a fault list between the upstream torch/Keras layouts and the faultzoo format."""
    from faultzoo.faults import read_fault_list, write_fault_list

    model = _load_model(model_id) if model_id is not None else None
    if model is None and to is Format.keras:
        raise typer.BadParameter("converting to Keras needs the model for the layer names: add --model MODEL.",
                                 param_hint="--model")
    fault_list = read_fault_list(source, model, model_id=model_id, allow_duplicate_faults=dedupe)
    fmt = to.value if to is not None else fault_list.meta.source_format  # a Keras input was read with --model
    if dedupe:
        fault_list = fault_list.without_repeats()
    if model_id is not None and fault_list.meta.weights_sha256 is None:
        fault_list = fault_list.with_meta(weights_sha256=_weights_sha256(model_id))
    write_fault_list(fault_list, output, format=fmt, model=model)
    console.print(summary_table(fault_list, title=f"{source} ({fault_list.meta.source_format}) -> {fmt}",
                                output=output, fmt=fmt))


def register(app: typer.Typer) -> None:
    """Add `faultzoo faultlist` (generate by default) and `faultzoo faultlist convert`."""
    app.add_typer(faultlist_app, name="faultlist")
