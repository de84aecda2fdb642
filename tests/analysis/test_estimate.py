"""Estimates of real results: equal to the campaign's own summary, intervals of the right size and kind."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from faultzoo.analysis import estimate, load_results
from faultzoo.analysis.table import FaultTable, Results
from faultzoo.analysis.stats import z_value
from faultzoo.faults import FaultListMeta, Stratum
from tests.analysis.conftest import FAULTS, IMAGES


@pytest.fixture(scope="module")
def campaign(campaign_dir):
    res = load_results(campaign_dir)
    return res, estimate(res), json.loads((campaign_dir / "provenance.json").read_text())["summary"]


def test_rates_equal_the_campaigns_own_summary(campaign):
    """Every fault sees the same images, so the mean of per-fault rates is the pooled rate of the summary."""
    _, est, summary = campaign
    for rate in ("masked", "non_critical", "critical"):
        assert 100 * est.overall[rate].value == pytest.approx(summary["total"][f"{rate}_pct"], abs=1e-9)
    assert est.overall["nonfinite"].value == pytest.approx(summary["total"]["nonfinite"] / (FAULTS * IMAGES))
    for group in est.by_bit_class:
        tally = summary["by_bit_class"][group.label]
        assert group.faults == tally["faults"]
        assert 100 * group.rates["critical"].value == pytest.approx(tally["critical_pct"], abs=1e-9)
    for group in est.by_layer:
        tally = summary["by_layer"][group.label]
        assert 100 * group.rates["masked"].value == pytest.approx(tally["masked_pct"], abs=1e-9)


def test_campaign_intervals_include_the_image_component(campaign):
    res, est, _ = campaign
    assert est.image_component == "included" and est.images == IMAGES and est.test_size == 10_000
    critical = est.overall["critical"]
    assert critical.components["image"] is not None and critical.components["image"] >= 0
    assert critical.low <= critical.value <= critical.high
    assert critical.population == 32 * 268_336  # single bit flips of resnet20's weights, not upstream's 64
    assert est.design.upstream_population == 64 * 268_336
    fault_only = z_value(0.99) * math.sqrt(critical.components["fault"])
    assert critical.margin >= 0.8 * fault_only  # a Wilson interval, asymmetric near 0


def test_without_outcomes_the_intervals_say_so(campaign_copy):
    (campaign_copy / "outcomes.npy").unlink()
    est = estimate(load_results(campaign_copy))
    assert est.image_component == "not estimated"
    assert est.overall["critical"].components["image"] is None
    assert any("first 50 images" in note and "--keep-outcomes" in note for note in est.notes)


def test_fault_level_shares(campaign):
    res, est, _ = campaign
    t = res.table
    assert est.fault_level["critical_any"].value == pytest.approx((t.critical > 0).mean())
    assert est.fault_level["masked_all"].value == pytest.approx((t.masked == t.n).mean())
    share = est.fault_level["critical_any"]
    assert share.method == "wilson" and share.low < share.value < share.high
    bit_class = np.array([31 if b == 31 else 23 if b >= 23 else 0 for b in t.bit])
    for group, code in zip(est.by_bit_class, (31, 23, 0)):
        assert group.shares["critical_any"].value == pytest.approx((t.critical[bit_class == code] > 0).mean())


def test_published_resnet32_fault_component(resnet32):
    """Upstream's resnet32: per-fault critical rates sd ~0.11 around 1.44 %, so +-0.22 points at 99 %."""
    est = estimate(resnet32)
    rates = resnet32.table.rate("critical")
    critical = est.overall["critical"]
    assert critical.value == pytest.approx(rates.mean()) and critical.value == pytest.approx(0.0144, abs=5e-4)
    assert est.image_component == "none"  # all 10,000 test images
    n, big_n = rates.size, 32 * 461_872
    by_hand = (1 - n / big_n) * rates.var(ddof=1) / n
    assert critical.components["fault"] == pytest.approx(by_hand)
    assert z_value(0.99) * math.sqrt(by_hand) == pytest.approx(0.0022, abs=2e-4)
    assert critical.high - critical.low == pytest.approx(2 * 0.0022, rel=0.15)
    bits = {g.key: g for g in est.by_bit}
    assert bits[30].rates["critical"].value > 0.3 > 1e-3 > bits[3].rates["critical"].value
    assert {g.label for g in est.by_bit_class} == {"sign", "exponent", "mantissa"}
    assert len(est.by_layer) == 32 and sum(g.faults for g in est.by_layer) == n  # 31 convs + linear


def _results(y_events, params, bits, design, strata, numel) -> Results:
    k = len(y_events)
    table = FaultTable(np.arange(k), np.array(params, dtype=object), tuple((i,) for i in range(k)),
                       tuple((b,) for b in bits), np.array(["bitflip"] * k, dtype=object), np.full(k, 10),
                       np.zeros(k, dtype=np.int64), 10 - np.asarray(y_events), np.asarray(y_events),
                       np.arange(k) + 2)
    meta = FaultListMeta(design=design, strata=strata, bits=tuple(range(32)),
                         design_params={"population_factor": 32})
    return Results(table, __import__("pathlib").Path("synthetic.csv"), "faultzoo-csv", fault_meta=meta,
                   shapes={p: (n,) * 2 for p, n in numel.items()}, images=10, test_size=10)


def test_layer_design_weights_layers_by_their_size():
    """layer design: one sample per tensor; the network rate weights each layer by N_h = 32 x weights."""
    numel = {"a.weight": 10, "b.weight": 30}  # shapes (10,10) and (30,30): 100 and 900 weights
    strata = (Stratum("a", ("a.weight",), tuple(range(32)), 3200, 3), Stratum("b", ("b.weight",), tuple(range(32)),
                                                                                  28800, 3))
    res = _results([0, 2, 4, 8, 8, 5], ["a.weight"] * 3 + ["b.weight"] * 3, [1, 2, 3, 30, 29, 28], "layer", strata,
                   numel)
    est = estimate(res, confidence=0.95)
    assert est.design.scheme == "stratified" and est.design.population == 32 * 1000
    ybar_a, ybar_b = 0.2, 0.7
    assert est.overall["critical"].value == pytest.approx(0.1 * ybar_a + 0.9 * ybar_b)
    by_layer = {g.key: g.rates["critical"].value for g in est.by_layer}
    assert by_layer == {"a.weight": pytest.approx(ybar_a), "b.weight": pytest.approx(ybar_b)}


def test_layer_bit_design_is_stratified_by_tensor_and_bit():
    numel = {"a.weight": 10}
    strata = tuple(Stratum(f"a:bit{b}", ("a.weight",), (b,), 100, 1) for b in range(32))
    events = [0, 10] + [0] * 30  # bit 1 critical on every image
    res = _results(events, ["a.weight"] * 32, list(range(32)), "layer-bit", strata, numel)
    est = estimate(res)
    assert est.design.scheme == "stratified" and est.overall["critical"].value == pytest.approx(1 / 32)
    assert {g.key: g.rates["critical"].value for g in est.by_bit}[1] == 1.0


def test_bad_confidence_refused(resnet32):
    from faultzoo.exceptions import AnalysisError

    with pytest.raises(AnalysisError, match="Confidence"):
        estimate(resnet32, confidence=99)
