"""Precision planner: how many faults and images a stated margin needs, at the least cost.

In a campaign every fault sees the same images, so faults and images are crossed. The variance of
an inference-level rate (two-way random effects, finite populations of N faults and M images)::

    V(n, m) = (1 - n/N) s2_F / n + (1 - m/M) s2_I / m + (1 - n/N)(1 - m/M) s2_E / (n m)

with s2_F the variance of the faults' own rates (shrinks only with more faults), s2_I that of the
images' (some images are fragile under many faults; shrinks only with more images) and s2_E their
interaction. A pilot campaign with per-image outcomes (``--keep-outcomes``) gives the components
(ANOVA estimators). A pilot's components are themselves uncertain (a pilot that happened to draw few
catastrophic faults understates s2_F), so the plan uses each component's ``assurance`` quantile
(default 0.8) over a bootstrap of the pilot's faults and images. The planner then finds the (n, m)
that reaches ``z sqrt(V) <= margin`` at the
least predicted time (:class:`CostModel`)::

    startup + (1 + tail) n (a + b m) / workers

with the parts measured in the pilot's own timing (``provenance.json``, ``engine.timing``): the
start-up (golden run, preparation of the workers, the wait for the first task), the time per fault
(a + b m0, the workers' busy time over the pilot's faults) and the tail (the share of the run the
workers' work leaves over: the last tasks, the commits). a (fixed seconds per fault) is given or 0:
every fault of one pilot sees the same m0 images, so its time cannot be split into a fixed part, a
part per fault and a part per image; the plan also shows the range of times every such split gives
(:func:`prediction`).
"""

from __future__ import annotations

import io
import math
import numbers
import os
import shlex
import sqlite3
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from faultzoo._files import atomic_write
from faultzoo.analysis.design import design_of
from faultzoo.analysis.load import as_path, campaign_files, load_results
from faultzoo.analysis.quality import require_complete
from faultzoo.analysis.stats import z_value
from faultzoo.analysis.table import Results, section
from faultzoo.exceptions import AnalysisError, FaultzooError
from faultzoo.outcome import OUTCOME_KEYS, Outcome

__all__ = ["CostModel", "DesignChoice", "Plan", "VarianceComponents", "bootstrap_components", "plan_campaign",
           "recommend", "variance_components", "write_image_sample"]

@dataclass(frozen=True)
class VarianceComponents:
    """Crossed fault x image variance components of one rate, from a pilot of faults x images."""

    rate: str
    mean: float
    fault: float  # s2_F: between faults
    image: float  # s2_I: between images
    interaction: float  # s2_E: fault x image
    faults: int  # pilot n0
    images: int  # pilot m0

    def variance(self, n, m, population: float | None = None, test_size: float | None = None):
        """V(n, m) of the module docstring (arrays broadcast)."""
        n = np.asarray(n, dtype=np.float64)
        m = np.asarray(m, dtype=np.float64)
        f_fault = 1.0 - n / population if population else 1.0
        f_image = np.clip(1.0 - m / test_size, 0.0, 1.0) if test_size else 1.0
        return f_fault * self.fault / n + f_image * self.image / m + f_fault * f_image * self.interaction / (n * m)


def variance_components(matrix: np.ndarray, *, rate: str = "critical", population: float | None = None,
                        test_size: float | None = None) -> VarianceComponents:
    """ANOVA estimates of the components from a 0/1 faults x images table (negative ones set to 0).

    With the finite-population factors of the pilot itself (n0 of N faults, m0 of M images), so a
    pilot on the whole test set gives the between-fault variance of full-test-set rates exactly.
    """
    y = np.asarray(matrix, dtype=np.float64)
    n0, m0 = y.shape
    if n0 < 2 or m0 < 2:
        raise AnalysisError(f"A pilot needs at least 2 faults and 2 images with per-image outcomes; got {n0} x {m0}.")
    grand = y.mean()
    rows, cols = y.mean(axis=1), y.mean(axis=0)
    ms_f = m0 * ((rows - grand) ** 2).sum() / (n0 - 1)
    ms_i = n0 * ((cols - grand) ** 2).sum() / (m0 - 1)
    ss_total = y.sum() - y.size * grand * grand  # a 0/1 table: y^2 = y
    ss_e = ss_total - (n0 - 1) * ms_f - (m0 - 1) * ms_i
    ms_e = max(0.0, ss_e / ((n0 - 1) * (m0 - 1)))
    keep_i = 1.0 - m0 / test_size if test_size else 1.0
    keep_f = 1.0 - n0 / population if population else 1.0
    return VarianceComponents(rate, float(grand), float(max(0.0, (ms_f - max(keep_i, 0.0) * ms_e) / m0)),
                              float(max(0.0, (ms_i - max(keep_f, 0.0) * ms_e) / n0)), float(ms_e), n0, m0)


def bootstrap_components(matrix: np.ndarray, *, assurance: float, rate: str = "critical",
                         population: float | None = None, test_size: float | None = None, repetitions: int = 200,
                         seed: int = 0) -> VarianceComponents:
    """Components at their ``assurance`` quantile over a two-way bootstrap (faults and images resampled).

    Never below the pilot's own estimates. Simulated pilots of 300 faults x 100 images planned with
    0.8 reach their margin in about 97 % of campaigns at a 95 % target (docs/analysis.md).
    """
    table = np.asarray(matrix, dtype=bool)
    base = variance_components(table, rate=rate, population=population, test_size=test_size)
    if not 0 < assurance < 1:
        return base
    rng = np.random.default_rng(seed)
    n0, m0 = table.shape
    draws = np.empty((repetitions, 3))
    for b in range(repetitions):
        sample = table[np.ix_(rng.integers(n0, size=n0), rng.integers(m0, size=m0))]
        c = variance_components(sample, rate=rate, population=population, test_size=test_size)
        draws[b] = c.fault, c.image, c.interaction
    upper = np.quantile(draws, assurance, axis=0)
    return VarianceComponents(rate, base.mean, max(base.fault, float(upper[0])), max(base.image, float(upper[1])),
                              max(base.interaction, float(upper[2])), n0, m0)


@dataclass(frozen=True)
class CostModel:
    """Predicted wall time of a campaign run, in its parts::

        seconds(n, m) = setup + work(n, m) + tail * work(n, m)
        work(n, m) = n * (per_fault + per_inference * m) / workers

    ``setup`` is the start-up before the first task (golden run, preparation of the workers, the wait
    for the first task to start), ``work`` the faults' time divided over the workers, and ``tail``
    the share of that work the run lasts beyond it (the last tasks, when fewer tasks than workers
    are left; committing the results). Loading the model and the images and writing the exports come
    on top (the pilot does not record them).
    """

    per_inference: float  # seconds of one (fault, image) in one worker
    per_fault: float = 0.0  # fixed seconds per fault in one worker
    setup: float = 0.0  # start-up: golden run, worker preparation, the wait for the first task (seconds, once)
    workers: int = 1
    tail: float = 0.0  # the run's wall time beyond start-up and work, as a share of the work

    def work(self, n, m):
        """Seconds of the faults' own time, divided over the workers."""
        n = np.asarray(n, dtype=np.float64)
        m = np.asarray(m, dtype=np.float64)
        return n * (self.per_fault + self.per_inference * m) / self.workers

    def seconds(self, n, m):
        return self.setup + (1.0 + self.tail) * self.work(n, m)

    def parts(self, n: int, m: int) -> dict[str, float]:
        """The prediction of one design in its parts (seconds): start-up, work, tail and their total."""
        work = float(self.work(n, m))
        return {"startup_s": float(self.setup), "work_s": work, "tail_s": self.tail * work,
                "seconds": float(self.seconds(n, m))}


@dataclass(frozen=True)
class DesignChoice:
    """A campaign design: n faults x m images, its margin and its predicted cost."""

    faults: int
    images: int
    margin: float
    inferences: int
    seconds: float


MIN_FAULTS = MIN_IMAGES = 30  # a design large enough to estimate its own variance components


def recommend(components: VarianceComponents, margin: float, *, confidence: float, cost: CostModel,
              population: int | None, test_size: int, min_faults: int = MIN_FAULTS,
              min_images: int = MIN_IMAGES) -> DesignChoice:
    """The cheapest (n, m) whose predicted margin ``z sqrt(V(n, m))`` is at most ``margin``.

    For every m the smallest n follows in closed form (V is linear in 1/n); the m of least cost wins.
    ``min_faults`` / ``min_images`` keep a design large enough for its own variance estimate.
    """
    if not margin > 0:
        raise AnalysisError(f"The target margin must be positive, found {margin!r} (--error).")
    z = z_value(confidence)
    target = (margin / z) ** 2
    big_n = float(population) if population else math.inf
    m = np.arange(min(min_images, test_size), test_size + 1, dtype=np.float64)
    keep_i = 1.0 - m / test_size
    k = components.fault + keep_i * components.interaction / m  # V = k (1/n - 1/N) + image term
    room = target - keep_i * components.image / m + (k / big_n if math.isfinite(big_n) else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(room > 0, np.ceil(np.where(k > 0, k / room, 1.0) - 1e-9), np.inf)
    n = np.maximum(n, min(min_faults, big_n))
    feasible = np.isfinite(n) & (n <= big_n) & (n < 2 ** 62)
    if not feasible.any():
        raise AnalysisError(f"No design reaches a margin of {margin:.3g}: even every fault on every image does not "
                            "(or it would take more faults than can be counted); ask for a wider margin (--error).")
    seconds = np.where(feasible, cost.seconds(np.where(feasible, n, 1), m), np.inf)
    best = int(np.argmin(seconds))
    return choice(components, int(n[best]), int(m[best]), confidence=confidence, cost=cost, population=population,
                  test_size=test_size)


def choice(components: VarianceComponents, n: int, m: int, *, confidence: float, cost: CostModel,
           population: int | None, test_size: int) -> DesignChoice:
    """A given design with its predicted margin and cost."""
    var = float(components.variance(n, m, population, test_size))
    return DesignChoice(int(n), int(m), z_value(confidence) * math.sqrt(max(var, 0.0)), int(n) * int(m),
                        float(cost.seconds(n, m)))


@dataclass
class Plan:
    """A recommendation, its alternatives and how to run it (see :func:`plan_campaign`)."""

    pilot: str
    model_id: str | None
    components: VarianceComponents  # the pilot's estimates
    planning: VarianceComponents  # what the plan uses: the components at their assurance quantile
    assurance: float
    confidence: float
    error: float
    relative: bool
    margin: float  # the absolute target margin
    population: int | None
    test_size: int
    cost: CostModel
    recommended: DesignChoice
    upstream: DesignChoice | None = None
    upstream_equivalent: DesignChoice | None = None
    seed: int = 0
    measured: dict = field(default_factory=dict)  # the pilot's measured times (see _cost_from_pilot)
    prediction: dict = field(default_factory=dict)  # the recommended design's predicted time in parts
    options: dict = field(default_factory=dict)  # the planner options that reproduce this plan
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        return data


TIMING_PARTS = ("golden_s", "prepare_s", "first_task_after_s", "busy_s", "wall_s")  # engine.timing of a campaign


def _cost_from_pilot(results, workers: int | None, fault_overhead: float | None) -> tuple[CostModel, list[str], dict]:
    """The cost model measured in the pilot, the notes that say how, and the pilot's measured parts."""
    t = results.table
    notes = []
    m0 = max(results.images or int(t.n.max()), 1)
    engine = section(results.provenance, "engine")
    pilot_workers = int(engine.get("workers") or results.provenance.get("workers") or 1)
    if t.seconds is None or not np.isfinite(t.seconds).all() or t.seconds.sum() <= 0:
        raise AnalysisError(f"The pilot {results.source} records no per-fault timings (results.csv "
                            "'task_seconds_per_fault'): plan from a faultzoo campaign folder.")
    per_fault_total = float(t.seconds.mean())
    a = float(fault_overhead or 0.0)
    if a >= per_fault_total:
        raise AnalysisError(f"--fault-overhead {a:g} s is not below the pilot's {per_fault_total:.3g} s per fault.")
    b = (per_fault_total - a) / m0
    if fault_overhead is None:
        notes.append(f"all of the pilot's {per_fault_total:.3g} s per fault is counted per image ({1e3 * b:.3g} ms per "
                     "inference): one pilot cannot split a fixed per-fault cost from it; give --fault-overhead to "
                     "set one")
    measured = {"faults": len(t), "images": m0, "workers": pilot_workers, "per_fault_s": per_fault_total}
    timing = section(engine, "timing")
    if all(_real(timing.get(k)) and 0 <= timing[k] < math.inf for k in TIMING_PARTS) and timing["busy_s"] > 0:
        startup = timing["golden_s"] + timing["prepare_s"] + timing["first_task_after_s"]
        work = timing["busy_s"] / pilot_workers  # the faults' time of the run the timing describes
        tail = max(0.0, timing["wall_s"] - timing["first_task_after_s"] - work) / work
        measured.update({k: float(timing[k]) for k in TIMING_PARTS}, startup_s=startup, work_s=work,
                        tail_s=tail * work, source="engine.timing")
        if not 0.9 <= timing["busy_s"] / float(t.seconds.sum()) <= 1.1:
            notes.append(f"the pilot's last run computed {timing['busy_s']:.3g} s of its faults' "
                         f"{float(t.seconds.sum()):.3g} s (a resumed campaign): start-up and tail are that run's")
    else:
        startup, tail = _pilot_setup(results, pilot_workers), 0.0
        measured.update(startup_s=startup, source="run times of the store")
        notes.append("the pilot records no engine timing (a partial campaign, or one of an older faultzoo): its "
                     "start-up is taken from its store's run times (whole seconds), with no tail")
    cost = CostModel(b, a, startup, workers or pilot_workers, tail)
    notes.append(f"times as measured in the pilot ({pilot_workers} worker(s)), scaled to {cost.workers} worker(s)"
                 + ("" if cost.workers == pilot_workers else
                    " (start-up and tail as measured with the pilot's workers)"))
    return cost, notes, measured


def prediction(cost: CostModel, design: DesignChoice, measured: dict) -> dict:
    """What the plan predicts for a design, in parts (JSON-ready: the ``prediction`` of :meth:`Plan.to_dict`).

    ``range_s``: the least and the most time over every split of the pilot's time per fault into a
    fixed part (warm-up: the same whatever the design), a part per fault and a part per inference, which
    one pilot cannot tell apart: the pilot's work scaled by the least and the largest of 1, n / n0 and
    n m / (n0 m0), plus start-up and tail.
    """
    n, m = design.faults, design.images
    out = {"faults": n, "images": m, "workers": cost.workers, **cost.parts(n, m)}
    total0 = measured["faults"] * measured["per_fault_s"]  # the pilot's worker-seconds of faults
    ratios = (1.0, n / measured["faults"], n * m / (measured["faults"] * measured["images"]))
    out["range_s"] = [cost.setup + (1.0 + cost.tail) * total0 * r / cost.workers for r in (min(ratios), max(ratios))]
    out["measured_in_pilot"] = measured.get("source")
    out["not_included"] = "starting faultzoo, loading the model and the images, writing the exports"
    return out


def _pilot_setup(results, workers: int) -> float:
    """Wall seconds of the pilot's last full run outside the faults' own time (model, golden run, engine);
    0 when the pilot's store does not tell."""
    from faultzoo.campaign.store import ResultStore  # imports torch: only when needed

    path = Path(results.source) / campaign_files()[1]
    if not path.is_file():
        return 0.0
    try:
        store = ResultStore.open_readonly(path)
        try:
            runs = store.runs()
        finally:
            store.close()
        full = [r for r in runs if r["status"] == "complete" and r["faults_done"] == len(results.table)
                and r["ended"]]
        if not full:
            return 0.0
        run = full[-1]
        wall = _seconds(run["ended"]) - _seconds(run["started"])
        w = int(section(run, "provenance").get("workers") or workers)
    except (FaultzooError, sqlite3.Error, KeyError, TypeError, ValueError, OverflowError):
        return 0.0
    return max(0.0, wall - float(results.table.seconds.sum()) / max(w, 1))


def _seconds(stamp) -> float:
    """Seconds since the epoch of an ISO 8601 time (or of a number of seconds already)."""
    return float(stamp) if isinstance(stamp, (int, float)) else datetime.fromisoformat(str(stamp)).timestamp()


def upstream_faults(shapes: dict[str, tuple[int, ...]]) -> int:
    """Faults of the dnn-benchmarks list of a model: n = sample_size(64 x weights), split by rounding per layer."""
    from faultzoo.faults import sample_size  # imports torch: only when needed

    numel = [int(np.prod(s)) for s in shapes.values() if len(s) >= 2]
    total = sum(numel)
    n = sample_size(64 * total)
    return sum(round(k * n / total) for k in numel)


def plan_campaign(pilot, *, error: float = 0.01, confidence: float = 0.99, relative: bool = False,
                  rate: str = "critical", workers: int | None = None, fault_overhead: float | None = None,
                  seed: int = 0, images_from: str | None = None, write_images: str | os.PathLike | None = None,
                  output: str = "plan-campaign", min_images: int = MIN_IMAGES, assurance: float = 0.8,
                  allow_partial: bool = False) -> Plan:
    """Plan a campaign that reaches a margin, from a pilot with per-image outcomes.

    Args:
        pilot: a campaign folder run with ``--keep-outcomes`` (or loaded :class:`Results`).
        error: the target margin: absolute (0.01 = one percentage point) or, with ``relative``, a
            fraction of the pilot's rate.
        confidence: confidence level of the margin.
        rate: ``critical`` (default), ``masked`` or ``non_critical``.
        workers: worker processes of the planned campaign (default: the pilot's).
        fault_overhead: fixed seconds per fault (default 0: all of the pilot's time is per image).
        seed: seed of the planned fault list and image selection.
        images_from: where the planned images are drawn from (dataset name or .npz; default the
            model's test set).
        write_images: write the planned random image selection to this .npz.
        output: output folder named in the printed campaign command.
        min_images: the fewest images a design may use.
        assurance: plan with each variance component at this quantile of a bootstrap of the pilot
            (0: the pilot's point estimates).
        allow_partial: plan from a partial pilot (an interrupted campaign: fewer faults stored than
            its list holds) instead of refusing it (``--allow-partial``, the rule of
            :func:`faultzoo.analysis.quality.require_complete`).

    Raises:
        AnalysisError: a wrong argument, a partial pilot (without ``allow_partial``), a pilot without
            per-image outcomes or timings, an unreachable margin, an unreadable ``images_from``.
        OutputError: ``write_images`` cannot be written.
    """
    z_value(confidence)
    if not isinstance(rate, str) or rate not in OUTCOME_KEYS:
        raise AnalysisError(f"Unknown rate {rate!r:.80}; choose one of {', '.join(OUTCOME_KEYS)} (--rate).")
    _check_options(error=error, relative=relative, workers=workers, fault_overhead=fault_overhead, seed=seed,
                   images_from=images_from, output=output, min_images=min_images, assurance=assurance,
                   allow_partial=allow_partial)
    if write_images is not None:
        write_images = as_path(write_images, "write_images (--write-images)")
    results = pilot if isinstance(pilot, Results) else load_results(pilot, check=False)
    partial = require_complete(results, allow_partial=allow_partial, action="plan from")
    if results.outcomes is None:
        raise AnalysisError(f"The pilot {results.source} has no per-image outcomes (outcomes.npy): run the pilot "
                            "campaign with --keep-outcomes.")
    design = design_of(results)
    notes = list(design.notes)
    if partial is not None:
        notes.append(f"planned from a partial pilot (--allow-partial): {partial.message}")
    if design.scheme == "stratified":
        notes.append(f"the pilot's {design.name} design is stratified; its components are computed as if its faults "
                     "were one random sample (the planned list is one: --design network)")
    dataset = section(results.provenance, "data").get("dataset") or (results.model_id or "").split("/")[0]
    images_from_arg = images_from
    test_size, images_from = _image_population(images_from, dataset, results.test_size)
    table = results.outcomes == next(o for o in Outcome if o.key == rate)
    components = variance_components(table, rate=rate, population=design.population, test_size=results.test_size)
    planning = bootstrap_components(table, assurance=assurance, rate=rate, population=design.population,
                                    test_size=results.test_size, seed=seed)
    margin = error * components.mean if relative else error
    if relative and components.mean <= 0:
        raise AnalysisError(f"The pilot's {rate} rate is 0: a relative margin of it is 0; use an absolute --error.")
    cost, cost_notes, measured = _cost_from_pilot(results, workers, fault_overhead)
    notes += cost_notes
    kwargs = dict(confidence=confidence, cost=cost, population=design.population, test_size=test_size,
                  min_images=min_images)
    best = recommend(planning, margin, **kwargs)
    options = {"--rate": rate, "--error": f"{error:g}", "--confidence": f"{confidence:g}", "--seed": seed,
               "--workers": workers, "--fault-overhead": fault_overhead, "--images-from": images_from_arg,
               "--min-images": min_images if min_images != MIN_IMAGES else None,
               "--assurance": f"{assurance:g}" if assurance != 0.8 else None,
               "--allow-partial": True if allow_partial else None}
    plan = Plan(str(results.source), results.model_id, components, planning, assurance, confidence, error, relative,
                margin,
                design.population, test_size, cost, best, seed=seed, notes=notes, measured=measured,
                prediction=prediction(cost, best, measured),
                options={k: v for k, v in options.items() if v is not None})
    if results.shapes and results.test_size:
        n_up = upstream_faults(results.shapes)
        plan.upstream = choice(planning, n_up, test_size, confidence=confidence, cost=cost,
                               population=design.population, test_size=test_size)
        if plan.upstream.margin > 0:  # a pilot without variance (no critical inference, say) has no equivalent
            plan.upstream_equivalent = recommend(planning, plan.upstream.margin, **kwargs)
        else:
            notes.append("the pilot saw no variation of this rate, so the upstream campaign's margin is 0 and no "
                         "smaller design is equivalent to it")
    written = None
    if write_images is not None and best.images < test_size:
        written = write_image_sample(images_from, dataset, best.images, seed, write_images)
    plan.commands = _commands(plan, results, images_from, written, output)
    return plan


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_options(*, error, relative, workers, fault_overhead, seed, images_from, output, min_images,
                   assurance, allow_partial) -> None:
    """Refuse a wrong planner option before any loading (the message names its flag)."""
    checks = [
        ("--error", error, _real(error) and 0 < error < 1,
         "a number strictly between 0 and 1 (0.01 = one point; with --relative a fraction of the rate)"),
        ("--relative", relative, isinstance(relative, (bool, np.bool_)), "True or False"),
        ("--allow-partial", allow_partial, isinstance(allow_partial, (bool, np.bool_)), "True or False"),
        ("--workers", workers, workers is None or (_whole(workers) and workers >= 1), "a whole number >= 1"),
        ("--fault-overhead", fault_overhead,
         fault_overhead is None or (_real(fault_overhead) and 0 <= fault_overhead < math.inf),
         "seconds >= 0 (a finite number)"),
        ("--seed", seed, _whole(seed) and seed >= 0, "a whole number >= 0"),
        ("--images-from", images_from, images_from is None or (isinstance(images_from, (str, os.PathLike))
                                                                 and str(images_from).strip() != ""),
         "a dataset name or the path of an .npz"),
        ("--campaign-output", output, isinstance(output, (str, os.PathLike)) and str(output).strip() != "",
         "the name of a folder"),
        ("--min-images", min_images, _whole(min_images) and min_images >= 2, "a whole number >= 2"),
        ("--assurance", assurance, _real(assurance) and 0 <= assurance < 1,
         "a number in [0, 1) (0.8: plan on the 80th bootstrap percentile of each variance component; 0: on the "
         "pilot's estimates)"),
    ]
    for flag, value, ok, expected in checks:
        if not ok:
            raise AnalysisError(f"{flag} must be {expected}, found {value!r:.80}.")


def _image_population(images_from, dataset: str, test_size: int | None) -> tuple[int, str]:
    if images_from is None:
        if not test_size:
            raise AnalysisError("The pilot's dataset is unknown: give --images-from (a dataset name or .npz).")
        return test_size, dataset
    path = Path(images_from)
    if path.suffix == ".npz":
        if not path.is_file():
            raise AnalysisError(f"--images-from {path} does not exist (or is not a file).")
        return int(_read_npz(path, ("y",))["y"].shape[0]), str(path)
    from faultzoo.data import dataset_info  # imports torch: only when needed

    return dataset_info(str(images_from)).test_size, str(images_from)


def _read_npz(path, names: tuple[str, ...], rows=None) -> dict[str, np.ndarray]:
    """Arrays of an image .npz (``rows`` of each when given), or AnalysisError naming the file and the problem."""
    try:
        with open(path, "rb") as handle:
            data = np.load(handle, allow_pickle=False)
            if not hasattr(data, "files"):
                raise ValueError("a single array, not an .npz archive")
            missing = [n for n in names if n not in data.files]
            if missing:
                raise KeyError(f"no array {', '.join(missing)} (it holds {', '.join(data.files) or 'none'})")
            arrays = {n: data[n] for n in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise AnalysisError(f"--images-from {path} is not a readable image .npz (x, y[, idx]): {exc}.") from None
    y = arrays.get("y")
    if y is not None and y.ndim != 1:
        raise AnalysisError(f"--images-from {path}: y has shape {y.shape}, expected one label per image.")
    uneven = [n for n, a in arrays.items() if y is not None and (a.ndim == 0 or a.shape[0] != y.shape[0])]
    if uneven:
        raise AnalysisError(f"--images-from {path}: {', '.join(uneven)} does not hold one entry per label of y.")
    return arrays if rows is None else {n: a[rows] for n, a in arrays.items()}


def write_image_sample(source: str, dataset: str, count: int, seed: int, path: str | os.PathLike,
                       root: str | os.PathLike | None = None) -> Path:
    """Write ``count`` images drawn at random (seeded, without replacement) from ``source`` to an .npz.

    ``source`` is an .npz (``x``, ``y``, optional ``idx``) or a dataset name (its test split under
    ``root``); the file holds ``x`` (uint8 N x H x W x 3 at the model's input size), ``y`` and
    ``idx`` (positions in the test set), in test-set order, for ``faultzoo campaign --data``.
    """
    path = as_path(path, "path")
    rng = np.random.default_rng(seed)
    if str(source).endswith(".npz"):
        total = int(_read_npz(source, ("y",))["y"].shape[0])
        if not 0 < count <= total:
            raise AnalysisError(f"Cannot draw {count} images from the {total} of {source}.")
        pick = np.sort(rng.choice(total, count, replace=False))
        try:
            arrays = _read_npz(source, ("x", "y", "idx"), pick)
        except AnalysisError:  # idx is optional
            arrays = _read_npz(source, ("x", "y"), pick)
        x, y, idx = arrays["x"], arrays["y"], arrays.get("idx", pick)
    else:
        from faultzoo.data.sources import dataset_labels, open_raw_dataset  # imports torch: only when needed
        from faultzoo.data.transforms import split_at_to_tensor, test_transform

        ds = open_raw_dataset(source, "test", root=root)
        labels = dataset_labels(ds)
        if not 0 < count <= labels.size:
            raise AnalysisError(f"Cannot draw {count} images from the {labels.size} of {source}'s test split.")
        pick = np.sort(rng.choice(labels.size, count, replace=False))
        stage, _ = split_at_to_tensor(test_transform(dataset))
        images = []
        for i in pick.tolist():
            image = ds[i][0]
            for step in stage:
                image = step(image)
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
        x, y, idx = np.stack(images), labels[pick], pick
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=np.asarray(y, dtype=np.int64), idx=np.asarray(idx, dtype=np.int64))
    return atomic_write(path, buffer.getvalue())


def _commands(plan: Plan, results, images_from: str, written: Path | None, output: str) -> list[str]:
    model = plan.model_id or "MODEL"
    best = plan.recommended
    meta = results.fault_meta
    flags = ""
    if meta is not None:
        bits = tuple(getattr(meta, "bits", ()) or ())
        if bits and bits != tuple(range(32)):
            flags += f" --bits {','.join(map(str, bits))}"
        if getattr(meta, "layers", ()):
            flags += f" --layers {shlex.quote(','.join(meta.layers))}"
        kind = getattr(meta, "kind", None)
        if kind is not None and str(getattr(kind, "value", kind)) != "bitflip":
            flags += f" --kind {getattr(kind, 'value', kind)}"
    lines = [f"faultzoo faultlist generate {model} --design network --n {best.faults} --seed {plan.seed}{flags} "
             f"-o plan_faults.csv"]
    if best.images >= plan.test_size:
        data = images_from
    else:
        data = str(written) if written else "plan_images.npz"
        if written is None:
            opts = " ".join(k if v is True else f"{k} {shlex.quote(str(v))}" for k, v in plan.options.items())
            lines.append(f"faultzoo plan {shlex.quote(plan.pilot)} {opts}{' --relative' if plan.relative else ''} "
                         "--write-images plan_images.npz")
    lines.append(f"faultzoo campaign {model} --faults plan_faults.csv --data {shlex.quote(data)} --workers "
                 f"{plan.cost.workers} -o {shlex.quote(str(output))}")
    return lines
