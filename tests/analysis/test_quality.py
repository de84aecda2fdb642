"""Data-quality checks: real published files pass; shifted, truncated and inconsistent files are flagged."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from faultzoo.analysis import check_quality, load_results
from faultzoo.analysis.quality import alignment_profile
from tests.analysis.conftest import RESNET32


def _codes(report, level=None) -> set[str]:
    return {f.code for f in report.findings if level is None or f.level == level}


def _write(path, header, body) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *body])


def _rows(published, name="resnet32"):
    rows = list(csv.reader(published[name].open()))
    return rows[0], rows[1:]


@pytest.mark.parametrize("name", ["resnet32", "vgg11_bn"])
def test_published_files_pass(published, name, resnet32):
    res = resnet32 if name == "resnet32" else load_results(published[name])
    assert res.quality.verdict == "pass", [f.message for f in res.quality.findings]
    assert "alignment" in _codes(res.quality, "ok") and "bit-profile" in _codes(res.quality, "ok")
    assert res.quality.alignment["best"] == 0 and res.quality.alignment["at_zero"] > 0.4


@pytest.mark.parametrize("shift", [1, 3, -2, 17])
def test_shifted_results_are_flagged_with_their_shift(published, tmp_path, shift):
    """Result columns moved down (shift > 0) or up against the fault columns by a few rows."""
    header, body = _rows(published)
    results = [r[4:] for r in body]
    if shift > 0:
        body = [f[:4] + r for f, r in zip(body[shift:], results)]
    else:
        body = [f[:4] + r for f, r in zip(body, results[-shift:])]
    path = tmp_path / RESNET32
    _write(path, header, body)
    report = load_results(path).quality
    assert report.verdict == "fail"
    shifted = [f for f in report.findings if f.code == "shifted"]
    assert shifted and f"shifted by {shift:+d} row" in shifted[0].message, [f.message for f in report.findings]
    assert report.alignment["best"] == shift


def test_truncated_run_is_flagged(published, tmp_path):
    """A run stopped part-way: 10,000 of 16,630 rows, the last one with 4,000 images, a cut line."""
    header, body = _rows(published)
    body = body[:10_000]
    body[-1] = body[-1][:4] + ["4000", "1000", "2999", "1"]
    path = tmp_path / RESNET32
    _write(path, header, body)
    with path.open("a") as handle:
        handle.write('10000,linear,"(8, 4')
    report = load_results(path).quality
    assert report.verdict == "fail"
    assert {"partial-rows", "missing-faults", "unreadable-rows"} <= _codes(report, "error")
    messages = " ".join(f.message for f in report.findings)
    assert "10,000 of the 16,630 faults" in messages and "n_injections 4000" in messages


def test_truncated_without_model_still_flags_partial_rows(published, tmp_path):
    header, body = _rows(published)
    body = body[:3000]
    body[-1] = body[-1][:4] + ["2500", "2500", "0", "0"]
    path = tmp_path / "results.csv"  # a name that says nothing about the model
    _write(path, header, body)
    res = load_results(path)
    assert res.model_id is None and "partial-rows" in _codes(res.quality, "error")


def test_counts_duplicates_and_faults_outside_the_model(published, tmp_path):
    header, body = _rows(published)
    body = [list(r) for r in body[:2000]]
    body[5][7] = str(int(body[5][7]) + 1)  # critical one too many: counts no longer add up
    body.append(list(body[10]))  # the same fault (and Injection id) twice
    body[20][2] = "(999, 0, 0, 0)"  # index outside its layer (layer1.0.conv1: 16 x 16 x 3 x 3)
    body[30][1] = "layer9.conv"  # a layer resnet32 does not have
    path = tmp_path / RESNET32
    _write(path, header, body)
    report = load_results(path).quality
    assert {"counts-sum", "duplicate-ids", "duplicate-faults", "outside-model"} <= _codes(report, "error")
    outside = next(f for f in report.findings if f.code == "outside-model")
    assert "layer9.conv" in outside.message and "index outside layer1.0.conv1.weight" in outside.message


def test_wrong_model_is_caught(published):
    report = load_results(published["resnet32"], model="cifar10/resnet20").quality
    assert "outside-model" in _codes(report, "error")


def test_scrambled_bits_are_flagged(published, tmp_path):
    """Bits shuffled against their rows: the outcomes follow no bit any more."""
    header, body = _rows(published)
    rng = np.random.default_rng(0)
    bits = [r[3] for r in body]
    rng.shuffle(bits)
    body = [r[:3] + [b] + r[4:] for r, b in zip(body, bits)]
    path = tmp_path / "scrambled.csv"
    _write(path, header, body)
    report = load_results(path).quality
    assert "no-bit-association" in _codes(report, "warning")


def test_real_campaign_passes(campaign_dir):
    report = load_results(campaign_dir).quality
    assert report.verdict == "pass", [f.message for f in report.findings]
    assert report.alignment["best"] == 0


def test_alignment_profile_peaks_at_the_shift():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 32, 3000)
    rates = np.column_stack([(bits == 30) * 0.6 + rng.random(3000) * 0.05, (bits < 8) * 0.9])
    assert alignment_profile(bits, rates)["best"] == 0
    moved = np.roll(rates, 5, axis=0)  # row i + 5 holds the outcomes of fault i
    profile = alignment_profile(bits, moved)
    assert profile["best"] == 5 and max(profile["z"]) > 20


def test_check_quality_is_callable_again(campaign_dir):
    res = load_results(campaign_dir, check=False)
    assert res.quality is None
    assert check_quality(res).verdict == "pass"


def test_shift_is_found_in_a_small_real_campaign(campaign_copy):
    """200 CPU-campaign rows (where low mantissa flips are not masked): a one-row shift still shows."""
    path = campaign_copy / "results_upstream.csv"
    rows = list(csv.reader(path.open()))
    body = [f[:4] + r[4:] for f, r in zip(rows[2:], rows[1:])]
    _write(tmp := campaign_copy / "shifted.csv", rows[0], body)
    report = load_results(tmp, model="cifar10/resnet20").quality
    assert report.alignment["best"] == 1 and "shifted" in _codes(report, "error")


def test_the_nan_inf_finding_says_one_fault_not_one_faults(campaign_dir):
    import dataclasses

    res = load_results(campaign_dir, check=False)
    nonfinite = np.zeros(len(res.table.nonfinite), dtype=res.table.nonfinite.dtype)
    nonfinite[0] = 1
    res = dataclasses.replace(res, table=dataclasses.replace(res.table, nonfinite=nonfinite))
    texts = [f.message for f in check_quality(res).findings if f.code == "nonfinite"]
    assert texts == ["1 fault produced NaN/Inf logits on 1 inference"]
