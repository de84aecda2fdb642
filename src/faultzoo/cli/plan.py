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

The pilot must be run with --keep-outcomes (per-image outcomes give the image component). A partial pilot
(an interrupted campaign) is refused: finish it (re-run the same campaign command), or pass --allow-partial.
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
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the plan as JSON (its 'prediction' holds the predicted time of the recommended design, in parts).")] = None,
    allow_partial: Annotated[bool, typer.Option("--allow-partial", help="Plan from a partial pilot (an interrupted campaign) instead of refusing it; finish it instead by re-running its campaign command.")] = False,
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
                           assurance=assurance, allow_partial=allow_partial)
    for line in plan_lines(result):
        print(line)
    if json_path is not None:
        print(f"plan: {write_plan_json(result, json_path)} (add --plan {json_path} to the campaign command to see its "
              "time next to the prediction)")


def write_plan_json(result, path: Path) -> Path:
    """The plan as JSON (Plan.to_dict), written atomically (OutputError when it cannot be)."""
    import json

    from faultzoo._files import atomic_write

    return atomic_write(path, json.dumps(result.to_dict(), indent=1, default=str))


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


def _secs(seconds: float) -> str:
    """Seconds of a part of a prediction: 0.0349 -> '0.035 s', 9.9e-05 -> '0 s', 725 -> '12 min 05 s'."""
    if seconds < 0.0005:
        return "0 s"
    return f"{seconds:.2g} s" if seconds < 0.1 else f"{seconds:.3g} s" if seconds < 120 else duration(seconds)


def time_lines(p) -> list[str]:
    """The predicted time in its parts, and what the pilot measured."""
    pred, got, cost = p.prediction, p.measured, p.cost
    if not pred:
        return []
    lines = [f"    = start-up {_secs(pred['startup_s'])} + {pred['faults']:,} faults x "
             f"({_secs(cost.per_fault)} + {pred['images']:,} x {1e3 * cost.per_inference:.3g} ms) / "
             f"{cost.workers} worker(s) = {_secs(pred['work_s'])} + tail {_secs(pred['tail_s'])}"]
    low, high = pred["range_s"]
    if high > 1.05 * low:
        lines.append(f"    between {duration(low)} and {duration(high)} for any split of the pilot's {got['per_fault_s']:.3g} s "
                     "per fault into a fixed part, a part per fault and a part per image (one pilot cannot tell)")
    if got.get("source") == "engine.timing":
        lines.append(f"    measured in the pilot: start-up {_secs(got['startup_s'])} (golden run "
                     f"{_secs(got['golden_s'])}, worker preparation {_secs(got['prepare_s'])}, first task after "
                     f"{_secs(got['first_task_after_s'])}), {got['per_fault_s']:.3g} s per fault on {got['images']:,} "
                     f"images, tail {_secs(got['tail_s'])}; run time {_secs(got['startup_s'] + got['wall_s'] - got['first_task_after_s'])}")
    lines.append(f"    not included: {pred['not_included']}")
    return lines


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
        *time_lines(p),
    ]
    if p.upstream is not None:
        up, eq = p.upstream, p.upstream_equivalent
        lines.append(f"upstream's choice: {up.faults:,} faults x {up.images:,} images = {up.inferences:,} inferences: "
                     f"margin +-{_points(up.margin)}, predicted {duration(up.seconds)}")
        if eq is not None:
            lines.append(f"  that margin as planned here: {eq.faults:,} faults x {eq.images:,} images = "
                         f"{eq.inferences:,} inferences, {duration(eq.seconds)} "
                         f"({up.inferences / max(eq.inferences, 1):,.0f}x fewer inferences)")
    lines.append("commands:")
    lines += [f"  {cmd}" for cmd in p.commands]
    lines += [f"note: {n}" for n in p.notes]
    return lines


def register(app: typer.Typer) -> None:
    app.command("plan", epilog=EXAMPLES)(plan)
