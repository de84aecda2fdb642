"""The precision planner: variance components, the cheapest design, validation by simulation, the real pilot.

Simulation tests use a synthetic crossed population with known truth (bimodal faults, fragile
images; faultzoo.analysis.simulate). Tolerances are stated per test; everything is seeded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from faultzoo.analysis import plan_campaign, variance_components
from faultzoo.analysis.precision import CostModel, bootstrap_components, choice, recommend, upstream_faults
from faultzoo.analysis.simulate import crossed_population, simulate_campaigns
from faultzoo.analysis.stats import rate_from_outcomes, z_value
from tests.cli_runner import run_faultzoo as run_cli
from faultzoo.exceptions import AnalysisError
from tests.analysis.conftest import FAULTS, IMAGES, MODEL
from tests.conftest import require_shared

N, M = 10_000, 600


@pytest.fixture(scope="module")
def population():
    return crossed_population(N, M, seed=3, fragility_sigma=1.5)


@pytest.fixture(scope="module")
def truth_components(population):
    """The finite population's own components: the ANOVA estimators applied to the whole table."""
    return variance_components(population.table, population=N, test_size=M)


def test_pilot_components_estimate_the_population_ones(population, truth_components):
    """A 1,500 x 200 pilot recovers each component within 35 % (one seeded draw; the fault component
    is the noisiest: a few catastrophic faults carry it)."""
    rng = np.random.default_rng(4)
    rows, cols = rng.choice(N, 1500, replace=False), np.sort(rng.choice(M, 200, replace=False))
    pilot = variance_components(population.table[np.ix_(rows, cols)], population=N, test_size=M)
    for name in ("fault", "image", "interaction"):
        assert getattr(pilot, name) == pytest.approx(getattr(truth_components, name), rel=0.35), name
    assert truth_components.image > 0 and truth_components.fault > 10 * truth_components.image


def test_components_predict_the_variance_of_sampled_campaigns(population, truth_components):
    """V(n, m) of the formula against the variance of 400 simulated 500 x 40 campaigns (within 20 %)."""
    means = [table.mean() for _, _, table in simulate_campaigns(population, 500, 40, repetitions=400, seed=6)]
    predicted = truth_components.variance(500, 40, N, M)
    assert np.var(means, ddof=1) == pytest.approx(predicted, rel=0.2)


def test_recommendation_is_the_cheapest_design_that_reaches_the_margin(truth_components):
    cost = CostModel(per_inference=1e-3, per_fault=0.05, setup=10.0)
    best = recommend(truth_components, 0.005, confidence=0.95, cost=cost, population=N, test_size=M)
    assert best.margin <= 0.005 and best.faults >= 30 and best.images >= 30
    fewer = choice(truth_components, best.faults - 1, best.images, confidence=0.95, cost=cost, population=N,
                   test_size=M)
    assert fewer.margin > 0.005  # the least n for that m
    for m in range(30, M + 1, 7):  # no other image count is cheaper
        n = next((k for k in range(30, N + 1)
                  if choice(truth_components, k, m, confidence=0.95, cost=cost, population=N,
                            test_size=M).margin <= 0.005), None)
        if n is not None:
            assert cost.seconds(n, m) >= best.seconds - 1e-9, (n, m)


def test_costly_faults_buy_more_images(truth_components):
    cheap = recommend(truth_components, 0.005, confidence=0.95, cost=CostModel(1e-3), population=N, test_size=M)
    costly = recommend(truth_components, 0.005, confidence=0.95, cost=CostModel(1e-3, per_fault=1.0), population=N,
                       test_size=M)
    assert costly.images > cheap.images and costly.faults < cheap.faults


def test_unreachable_and_bad_margins(truth_components):
    with pytest.raises(AnalysisError, match="positive"):
        recommend(truth_components, 0, confidence=0.95, cost=CostModel(1e-3), population=N, test_size=M)


def test_planned_designs_reach_their_margin_in_simulation(population, truth_components):
    """Designs planned from the population's own components: over 400 simulated campaigns the error is
    within the planned margin at about the nominal 95 % (accepted 0.92-0.98), and so is the coverage
    of the campaigns' own intervals."""
    for margin in (0.01, 0.004):
        plan = recommend(truth_components, margin, confidence=0.95, cost=CostModel(1e-3, per_fault=0.05),
                         population=N, test_size=M)
        within = covered = 0
        for _, _, table in simulate_campaigns(population, plan.faults, plan.images, repetitions=400, seed=7):
            est = rate_from_outcomes(table, population=N, test_size=M, confidence=0.95)
            within += abs(est.value - population.truth) <= margin
            covered += est.contains(population.truth)
        assert 0.92 <= within / 400 <= 0.98, (margin, plan, within / 400)
        assert 0.92 <= covered / 400 <= 0.98, (margin, plan, covered / 400)


def test_plans_from_pilots_reach_their_margin_in_simulation(population):
    """The whole planner: 12 pilots of 300 faults x 100 images, each planned at +-0.5 points (95 %) with
    the 0.8 bootstrap assurance, each plan run 40 times: on average at least 93 % of the 480
    campaigns are within the margin (nominal 95 %; planning on the pilots' point estimates instead
    falls short whenever a pilot draws few catastrophic faults)."""
    rng = np.random.default_rng(1)
    fractions = []
    for pilot in range(12):
        rows, cols = rng.choice(N, 300, replace=False), np.sort(rng.choice(M, 100, replace=False))
        planning = bootstrap_components(population.table[np.ix_(rows, cols)], assurance=0.8, population=N,
                                        test_size=M, seed=pilot, repetitions=100)
        plan = recommend(planning, 0.005, confidence=0.95, cost=CostModel(1e-3, per_fault=0.02), population=N,
                         test_size=M)
        hits = [abs(t.mean() - population.truth) <= 0.005
                for _, _, t in simulate_campaigns(population, plan.faults, plan.images, repetitions=40, seed=50 + pilot)]
        fractions.append(np.mean(hits))
    assert np.mean(fractions) >= 0.93, fractions


# ------------------------------------------------------------------ the real pilot


@pytest.fixture(scope="module")
def real_plan(campaign_dir):
    return plan_campaign(campaign_dir, error=0.01, confidence=0.99)


def test_plan_from_the_real_pilot(real_plan, campaign_dir):
    p = real_plan
    c = p.components
    assert (c.faults, c.images, c.rate) == (FAULTS, IMAGES, "critical") and c.fault > 0
    assert p.planning.fault >= c.fault and p.planning.interaction >= c.interaction
    best = p.recommended
    assert best.margin <= 0.01 and best.faults >= 30 and 30 <= best.images <= 10_000
    assert best.inferences == best.faults * best.images and best.seconds > 0
    assert p.population == 32 * 268_336 and p.test_size == 10_000
    assert p.upstream.faults == 16_627 and p.upstream.images == 10_000  # resnet20's dnn-benchmarks list
    assert p.upstream_equivalent.margin <= p.upstream.margin * (1 + 1e-9)
    assert p.upstream_equivalent.inferences < p.upstream.inferences
    assert p.commands[0] == f"faultzoo faultlist generate {MODEL} --design network --n {best.faults} --seed 0 -o plan_faults.csv"
    assert p.commands[-1].startswith(f"faultzoo campaign {MODEL} --faults plan_faults.csv --data plan_images.npz")
    assert "--write-images plan_images.npz" in p.commands[1]


def test_upstream_faults_match_the_generated_list(offline_env):
    import faultzoo
    from faultzoo.analysis.load import model_shapes
    from faultzoo.faults import dnn_benchmarks_fault_list

    model = faultzoo.get_model("cifar10/resnet32", weights=None)
    assert upstream_faults(model_shapes("cifar10/resnet32")) == len(dnn_benchmarks_fault_list(model)) == 16_630


def test_written_images_are_a_seeded_random_selection(campaign_dir, tmp_path):
    from faultzoo.data import load_selection

    npz = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    path = tmp_path / "images.npz"
    plan = plan_campaign(campaign_dir, error=0.02, images_from=str(npz), write_images=path)
    assert plan.test_size == 1000 and plan.commands[-1].startswith(f"faultzoo campaign {MODEL}")
    assert str(path) in plan.commands[-1] and not any("--write-images" in c for c in plan.commands)
    with np.load(path) as written, np.load(npz) as source:
        assert written["x"].shape[0] == plan.recommended.images
        idx = written["idx"]
        assert np.all(np.diff(idx) > 0) and idx.max() < 1000
        assert np.array_equal(written["x"], source["x"][idx]) and np.array_equal(written["y"], source["y"][idx])
    again = tmp_path / "again.npz"
    plan_campaign(campaign_dir, error=0.02, images_from=str(npz), write_images=again)
    assert again.read_bytes() == path.read_bytes()
    assert len(load_selection(str(path), dataset="cifar10").y) == plan.recommended.images


def test_image_sample_from_a_dataset_folder(tmp_path):
    from faultzoo.analysis import write_image_sample

    root = require_shared("datasets")
    path = write_image_sample("gtsrb", "gtsrb", 5, 0, tmp_path / "g.npz", root=root)
    with np.load(path) as data:
        assert data["x"].shape == (5, 50, 50, 3) and data["x"].dtype == np.uint8 and data["idx"].max() < 12_630


def test_pilot_errors(campaign_copy):
    with pytest.raises(AnalysisError, match="rate"):
        plan_campaign(campaign_copy, rate="sdc")
    with pytest.raises(AnalysisError, match="--assurance"):
        plan_campaign(campaign_copy, assurance=1.5)
    (campaign_copy / "outcomes.npy").unlink()
    with pytest.raises(AnalysisError, match="--keep-outcomes"):
        plan_campaign(campaign_copy)


def test_cli_plan(capsys, campaign_dir):
    code, out, err = run_cli(capsys, "plan", campaign_dir, "--error", "0.3", "--relative", "--workers", "2")
    assert code == 0, out + err
    for text in ("variance components of the critical rate", "planned with their 80 % bootstrap quantiles",
                 "recommended:", "predicted time", "(2 worker(s))", "upstream's choice: 16,627 faults x 10,000 images",
                 "that margin as planned here", "commands:", "faultzoo faultlist generate cifar10/resnet20"):
        assert text in out, text
    assert "--relative --write-images plan_images.npz" in out and "--workers 2" in out


def test_cli_plan_errors_and_help(capsys, campaign_copy):
    code, out, err = run_cli(capsys, "plan", campaign_copy, "--rate", "bogus")
    assert code == 2 and "--rate" in out + err
    (campaign_copy / "outcomes.npy").unlink()
    code, _, err = run_cli(capsys, "plan", campaign_copy)
    assert code == 1 and "--keep-outcomes" in err
    code, out, _ = run_cli(capsys, "plan", "--help")
    assert code == 0 and "faultzoo plan pilot --error 0.005" in " ".join(out.split())


def test_duration_text():
    from faultzoo.cli.plan import duration

    assert [duration(s) for s in (42, 125, 3725, 200_000)] == ["42 s", "2 min 05 s", "1 h 02 min", "2 d 07 h"]
    assert math.isclose(z_value(0.99), 2.5758, abs_tol=1e-4)


# ------------------------------------------------------------------ the predicted time

def _timed_folder(folder, seconds, *, images, timing, workers):
    """A campaign folder whose results.csv holds these per-fault times and whose provenance these timings."""
    import csv
    import json

    folder.mkdir(parents=True)
    with open(folder / "results.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["fault_id", "injection", "param", "index", "bits", "kind", "n", "masked", "non_critical",
                    "critical", "nonfinite", "faulty_correct", "task_seconds_per_fault"])
        for i, s in enumerate(seconds):
            w.writerow([i, i, "conv1.weight", f"0 0 0 {i}", i % 32, "bitflip", images, images, 0, 0, 0, images, s])
    engine = {"engine": "fast", "workers": workers, **({"timing": timing} if timing else {})}
    (folder / "provenance.json").write_text(json.dumps({"identity": {"faults": len(seconds), "images": images},
                                                       "data": {"num_samples": images}, "engine": engine}))
    return folder


def test_predicted_time_from_synthetic_timings(tmp_path):
    """Start-up (golden run + preparation + wait for the first task), the faults' time over the workers and
    the tail: the pilot's own design gets back its run time exactly; other designs follow the formula."""
    from faultzoo.analysis.load import load_results
    from faultzoo.analysis.precision import DesignChoice, _cost_from_pilot, prediction

    seconds = [0.5] * 20 + [0.25] * 40  # two tasks' worth: 20 s of faults' time, 60 faults
    timing = {"golden_s": 3.0, "prepare_s": 2.0, "first_task_after_s": 4.0, "busy_s": 20.0, "wall_s": 16.0,
              "busy_share": 0.625}
    pilot = load_results(_timed_folder(tmp_path / "p", seconds, images=50, timing=timing, workers=2), check=False)
    cost, notes, measured = _cost_from_pilot(pilot, None, None)
    work0 = 20.0 / 2
    tail0 = 16.0 - 4.0 - work0  # 2 s of the run beyond start-up and the faults' time
    assert cost.setup == pytest.approx(3.0 + 2.0 + 4.0) and cost.workers == 2
    assert cost.tail == pytest.approx(tail0 / work0)
    assert cost.per_inference == pytest.approx(20.0 / 60 / 50) and cost.per_fault == 0
    run_time = 3.0 + 2.0 + 16.0  # golden run + preparation + the committer's wall time
    assert cost.seconds(60, 50) == pytest.approx(run_time)
    assert measured["startup_s"] == pytest.approx(9.0) and measured["tail_s"] == pytest.approx(tail0)
    parts = cost.parts(300, 20)
    work = 300 * 20 * cost.per_inference / 2
    assert parts == pytest.approx({"startup_s": 9.0, "work_s": work, "tail_s": tail0 / work0 * work,
                                   "seconds": 9.0 + work * (1 + tail0 / work0)})
    # a fixed part per fault, and four workers
    cost4, _, _ = _cost_from_pilot(pilot, 4, 0.1)
    per_fault = 20.0 / 60
    assert cost4.per_fault == 0.1 and cost4.per_inference == pytest.approx((per_fault - 0.1) / 50)
    assert cost4.seconds(100, 200) == pytest.approx(9.0 + (1 + cost.tail) * 100 * (0.1 + (per_fault - 0.1) * 4) / 4)
    assert any("scaled to 4 worker(s)" in n for n in _cost_from_pilot(pilot, 4, 0.1)[1])
    # the range over every split of the pilot's time: fixed, per fault, per inference
    pred = prediction(cost, DesignChoice(30, 200, 0.01, 6000, float(cost.seconds(30, 200))), measured)
    total0 = 20.0
    low, high = (9.0 + (1 + cost.tail) * total0 * r / 2 for r in (0.5, 2.0))  # n/n0 = 0.5, nm/(n0 m0) = 2
    assert pred["range_s"] == pytest.approx([low, high]) and pred["seconds"] == pytest.approx(high)
    assert pred["faults"] == 30 and pred["measured_in_pilot"] == "engine.timing" and "loading" in pred["not_included"]


def test_predicted_time_without_engine_timing(tmp_path):
    from faultzoo.analysis.load import load_results
    from faultzoo.analysis.precision import _cost_from_pilot

    pilot = load_results(_timed_folder(tmp_path / "p", [0.2] * 10, images=40, timing=None, workers=1), check=False)
    cost, notes, measured = _cost_from_pilot(pilot, None, None)
    assert (cost.setup, cost.tail) == (0.0, 0.0) and cost.seconds(10, 40) == pytest.approx(2.0)
    assert measured["source"] == "run times of the store" and any("no engine timing" in n for n in notes)


@pytest.fixture(scope="module")
def timed_pilot(offline_env, tmp_path_factory):
    """A tiny real pilot (resnet20, 60 network-sampled faults x 60 of the exact CIFAR-10 test images), with
    the wall time of its run_campaign call measured around it."""
    import time

    import faultzoo
    from faultzoo.campaign import run_campaign
    from faultzoo.faults import sample_network, write_fault_list

    npz = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    root = tmp_path_factory.mktemp("timed")
    model = faultzoo.get_model(MODEL, weights=None)
    faults = write_fault_list(sample_network(model, n=60, seed=3), root / "faults.csv")
    started = time.perf_counter()
    result = run_campaign(MODEL, faults, output=root / "pilot", data=str(npz), limit=60, keep_outcomes=True)
    wall = time.perf_counter() - started
    assert result.complete
    return root / "pilot", wall


def test_prediction_for_the_pilots_own_design(timed_pilot):
    """The plan's prediction for the pilot's own design against the pilot's measured times: within 2 % of
    its recorded run time (golden run + preparation + the run of its tasks), and between 50 % and 100 % of
    the wall time of the whole run_campaign call (what the prediction leaves out: loading the model, the
    images and the fault list, and writing the exports)."""
    import json

    folder, wall = timed_pilot
    plan = plan_campaign(folder, error=0.2, confidence=0.95, images_from=str(require_shared(
        "datasets", "cifar10", "test-first1000-exact.npz")))
    timing = json.loads((folder / "provenance.json").read_text())["engine"]["timing"]
    recorded = timing["golden_s"] + timing["prepare_s"] + timing["wall_s"]
    own = float(plan.cost.seconds(60, 60))
    assert own == pytest.approx(recorded, rel=0.02), (own, recorded, timing)
    assert 0.5 * wall <= own <= wall, (own, wall, timing)
    assert plan.measured["source"] == "engine.timing" and plan.measured["startup_s"] > 0
    assert plan.prediction["seconds"] == pytest.approx(plan.recommended.seconds)
    low, high = plan.prediction["range_s"]
    assert low <= plan.prediction["seconds"] <= high


def test_cli_plan_shows_the_parts_and_writes_json(capsys, timed_pilot, tmp_path):
    import json

    folder, _ = timed_pilot
    path = tmp_path / "plan.json"
    code, out, err = run_cli(capsys, "plan", folder, "--error", "0.2", "--images-from",
                             require_shared("datasets", "cifar10", "test-first1000-exact.npz"), "--json", path)
    assert code == 0, out + err
    for text in ("= start-up", "faults x (0 s + ", "measured in the pilot: start-up", "golden run",
                 "worker preparation", "first task after", "tail", "not included: starting faultzoo", f"plan: {path}"):
        assert text in out, text
    saved = json.loads(path.read_text())
    pred = saved["prediction"]
    assert {"faults", "images", "workers", "startup_s", "work_s", "tail_s", "seconds", "range_s"} <= set(pred)
    assert (pred["faults"], pred["images"]) == (saved["recommended"]["faults"], saved["recommended"]["images"])
    assert pred["seconds"] == pytest.approx(saved["recommended"]["seconds"])


def test_a_pilot_without_variation_is_planned_without_an_upstream_equivalent(offline_env, tmp_path):
    """Only mantissa-LSB faults: no inference is critical, every variance component is 0. The plan still comes
    (its upstream equivalent cannot: upstream's margin is 0) instead of blaming a valid --error."""
    from faultzoo.campaign import run_campaign
    from faultzoo.faults import Fault, FaultList, write_fault_list

    faults = FaultList(tuple(Fault("layer1.0.conv1.weight", (k, 0, 1, 1), (0,)) for k in range(6)))
    fl = write_fault_list(faults, tmp_path / "lsb_FL.csv", format="torch")
    npz = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    run_campaign(MODEL, fl, output=tmp_path / "pilot", data=str(npz), limit=16, batch_size=8, keep_outcomes=True)
    plan = plan_campaign(tmp_path / "pilot", error=0.01)
    assert plan.upstream is not None and plan.upstream.margin == 0 and plan.upstream_equivalent is None
    assert any("no variation of this rate" in note for note in plan.notes)
