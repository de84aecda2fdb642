"""`faultzoo plan`: how many faults and images a stated margin needs, from a pilot campaign."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faultzoo.outcome import OUTCOME_KEYS

EXAMPLES = """
Examples:

  faultzoo campaign cifar10/resnet20 --faults rn20_FL.csv --fault-sample 300 --limit 200 --keep-outcomes -o pilot

  faultzoo plan pilot --error 0.005 --confidence 0.99

  faultzoo plan pilot --error 0.1 --relative --workers 2 --write-images plan_images.npz

The pilot must be run with --keep-outcomes (per-image outcomes give the image component).
"""


def plan(
    pilot: Annotated[Path, typer.Argument(help="Pilot campaign folder, run with --keep-outcomes.")],
    error: Annotated[float, typer.Option("--error", help="Target margin: 0.01 = +-1 point (absolute), or a fraction of the rate with --relative.")] = 0.01,
    confidence: Annotated[float, typer.Option("--confidence", min=0.5, max=0.9999, help="Confidence level of the margin.")] = 0.99,
    relative: Annotated[bool, typer.Option("--relative", help="--error is relative to the pilot's rate.")] = False,
    rate: Annotated[str, typer.Option("--rate", help="Outcome class whose rate is planned (an unknown name lists the classes).")] = "critical",
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Workers of the planned campaign (default: the pilot's).")] = None,
    fault_overhead: Annotated[float | None, typer.Option("--fault-overhead", min=0.0, help="Fixed seconds per fault (default 0: the pilot's time is all per image).")] = None,
    min_images: Annotated[int, typer.Option("--min-images", min=2, help="Fewest images a design may use.")] = 30,
    assurance: Annotated[float, typer.Option("--assurance", min=0.0, max=0.99, help="Plan on this bootstrap quantile of each variance component (0: the pilot's estimates).")] = 0.8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the planned fault list and image selection.")] = 0,
    images_from: Annotated[str | None, typer.Option("--images-from", help="Where planned images come from: dataset name or PATH.npz (default: the model's test set).")] = None,
    write_images: Annotated[Path | None, typer.Option("--write-images", help="Write the planned random image selection to this .npz.")] = None,
    campaign_output: Annotated[str, typer.Option("--campaign-output", help="Output folder named in the printed campaign command.")] = "plan-campaign",
) -> None:
    """Recommend n faults x m images reaching a target margin at the least predicted time."""
    from faultzoo.analysis import plan_campaign
    if rate not in OUTCOME_KEYS:
        raise typer.BadParameter(f"{rate!r} is not one of {', '.join(OUTCOME_KEYS)}", param_hint="--rate")
    if not 0 < error < 1:
        raise typer.BadParameter(f"{error!r} must lie strictly between 0 and 1", param_hint="--error")
    result = plan_campaign(pilot, error=error, confidence=confidence, relative=relative, rate=rate, workers=workers,
                           fault_overhead=fault_overhead, seed=seed, images_from=images_from,
                           write_images=write_images, output=campaign_output, min_images=min_images,
                           assurance=assurance)
    for line in plan_lines(result):
        print(line)


def duration(seconds: float) -> str:
    """3725 -> '1 h 02 min'; 42 -> '42 s'."""
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"


def _points(x: float) -> str:
    return f"{100 * x:.3g} points"


def plan_lines(p) -> list[str]:
    c = p.components
    conf = f"{100 * p.confidence:g} %"
    target = (f"+-{_points(p.margin)} ({100 * p.error:g} % of the pilot's rate)" if p.relative
              else f"+-{_points(p.margin)}")
    best = p.recommended
    lines = [
        f"pilot: {p.pilot} ({p.model_id or 'unknown model'}): {c.faults:,} faults x {c.images:,} images, "
        f"{c.rate} rate {100 * c.mean:.3g} %",
        f"variance components of the {c.rate} rate: faults {c.fault:.3g} (sd {_points(c.fault ** 0.5)}), images "
        f"{c.image:.3g} (sd {_points(c.image ** 0.5)}), interaction {c.interaction:.3g}",
        f"planned with their {100 * p.assurance:g} % bootstrap quantiles: faults {p.planning.fault:.3g}, images "
        f"{p.planning.image:.3g}, interaction {p.planning.interaction:.3g}" if p.assurance else
        "planned with the pilot's estimates (--assurance 0)",
        f"target: {target} at {conf} confidence",
        f"recommended: {best.faults:,} faults x {best.images:,} images"
        + (" (random, seed " + str(p.seed) + ")" if best.images < p.test_size else " (the whole test set)")
        + f" = {best.inferences:,} inferences",
        f"  predicted margin +-{_points(best.margin)}; predicted time {duration(best.seconds)} on this machine "
        f"({p.cost.workers} worker(s))",
    ]
    if p.upstream is not None:
        up, eq = p.upstream, p.upstream_equivalent
        lines += [f"upstream's choice: {up.faults:,} faults x {up.images:,} images = {up.inferences:,} inferences: "
                  f"margin +-{_points(up.margin)}, predicted {duration(up.seconds)}",
                  f"  that margin as planned here: {eq.faults:,} faults x {eq.images:,} images = {eq.inferences:,} "
                  f"inferences, {duration(eq.seconds)} ({up.inferences / max(eq.inferences, 1):,.0f}x fewer "
                  "inferences)"]
    lines.append("commands:")
    lines += [f"  {cmd}" for cmd in p.commands]
    lines += [f"note: {n}" for n in p.notes]
    return lines


def register(app: typer.Typer) -> None:
    app.command("plan", epilog=EXAMPLES)(plan)
