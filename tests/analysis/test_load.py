"""Loading results: campaign folders (CSV or store only), faultzoo and upstream CSVs, both index spellings."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from faultzoo.analysis import load_results
from faultzoo.analysis.load import guess_model_id
from faultzoo.exceptions import AnalysisError, UnknownModelError
from tests.analysis.conftest import FAULTS, IMAGES, MODEL, RESNET32


def _same_table(a, b) -> None:
    for name in ("injection", "param", "kind", "n", "masked", "non_critical", "critical"):
        assert list(getattr(a, name)) == list(getattr(b, name)), name
    assert a.index == b.index and a.bits == b.bits


def test_campaign_folder(campaign_dir):
    res = load_results(campaign_dir, check=False)
    assert res.kind == "campaign" and res.model_id == MODEL and res.model_from == "provenance"
    assert len(res.table) == FAULTS and res.images == IMAGES and res.test_size == 10_000
    assert res.design == "dnn-benchmarks" and res.outcomes.shape == (FAULTS, IMAGES)
    assert res.shapes["conv1.weight"] == (16, 3, 3, 3)
    assert res.table.nonfinite is not None and res.table.seconds is not None


@pytest.mark.parametrize("spelling", ["plain", "tuple"])
def test_index_column_in_both_spellings(campaign_copy, spelling):
    """results.csv's index as '0 1 2 2' and as upstream's '(0, 1, 2, 2)' give the same table."""
    written = load_results(campaign_copy, check=False)
    path = campaign_copy / "results.csv"
    rows = list(csv.reader(path.open()))
    col = rows[0].index("index")
    for row in rows[1:]:
        values = [int(v) for v in row[col].replace("(", " ").replace(")", " ").replace(",", " ").split()]
        row[col] = " ".join(map(str, values)) if spelling == "plain" else str(tuple(values))
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    assert rows[1][col].startswith("(") == (spelling == "tuple")
    _same_table(load_results(campaign_copy, check=False).table, written.table)


def test_store_only_folder_rebuilds_the_fault_rows(campaign_copy):
    """Without the exports, the store and the fault list it names give the same table and outcomes."""
    full = load_results(campaign_copy, check=False)
    for name in ("results.csv", "results_upstream.csv", "provenance.json", "outcomes.npy"):
        (campaign_copy / name).unlink()
    store = load_results(campaign_copy, check=False)
    assert store.kind == "store" and store.model_id == MODEL and store.design == "dnn-benchmarks"
    _same_table(store.table, full.table)
    assert np.array_equal(store.outcomes, full.outcomes)


def test_csv_alone_and_upstream_export_agree(campaign_copy):
    """The folder's results_upstream.csv alone (no provenance) gives the same counts as the folder."""
    folder = load_results(campaign_copy, check=False)
    upstream = load_results(campaign_copy / "results_upstream.csv", check=False, model=MODEL)
    assert upstream.kind == "upstream-csv" and upstream.model_from == "--model"
    _same_table(upstream.table, folder.table)


def test_published_file_model_from_its_name(published):
    assert guess_model_id(published["resnet32"]) == "cifar10/resnet32"
    assert guess_model_id(published["vgg11_bn"]) == "cifar10/vgg11_bn"
    assert guess_model_id(published["resnet32"].with_name("results.csv")) is None


def test_published_file_design_identified(resnet32):
    assert resnet32.kind == "upstream-csv" and resnet32.model_id == "cifar10/resnet32"
    assert resnet32.design == "dnn-benchmarks" and resnet32.expected_faults == 16_630
    assert "16,630 of 16,630 rows identical" in resnet32.design_note
    assert resnet32.images == resnet32.test_size == 10_000 and resnet32.outcomes is None


def test_cut_file_keeps_good_rows_and_reports_the_bad_one(published, tmp_path):
    lines = published["resnet32"].read_text().splitlines()
    cut = tmp_path / RESNET32
    cut.write_text("\n".join(lines[:101]) + "\n" + lines[101][:20] + "\n")
    res = load_results(cut, check=False)
    assert len(res.table) == 100
    assert res.parse_issues and res.parse_issues[0][0] == 102 and "cut short" in res.parse_issues[0][1]


@pytest.mark.parametrize("text, match", [
    ("Injection,Layer,TensorIndex,Bit\n0,conv1,\"(1, 0, 0, 0)\",3\n", "not a results file"),
    ("", "is empty"),
    ("Injection,Layer,TensorIndex,Bit,n_injections,masked,non_critical,critical\n", "no readable result rows"),
])
def test_unusable_files_are_refused(tmp_path, text, match):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(AnalysisError, match=match):
        load_results(path, check=False)


def test_missing_path_and_bad_model(tmp_path, published, campaign_dir):
    with pytest.raises(AnalysisError, match="does not exist"):
        load_results(tmp_path / "nothing")
    with pytest.raises(AnalysisError, match="holds no results"):
        load_results(tmp_path)
    with pytest.raises(UnknownModelError, match="resnet32"):
        load_results(published["resnet32"], model="cifar10/resnet33", check=False)
    with pytest.raises(AnalysisError, match="contradicts"):
        load_results(campaign_dir, model="cifar10/resnet32", check=False)


def test_outcomes_that_disagree_with_counts_are_dropped(campaign_copy):
    outcomes = np.load(campaign_copy / "outcomes.npy")
    outcomes[0] = 2  # every image of the first fault critical: no longer its counts
    np.save(campaign_copy / "outcomes.npy", outcomes)
    res = load_results(campaign_copy, check=False)
    assert res.outcomes is None and "disagrees" in res.parse_issues[0][1]


def test_provenance_gains_fields_without_harm(campaign_copy):
    prov = json.loads((campaign_copy / "provenance.json").read_text())
    prov["fault_list"]["fault_sample"], prov["fault_list"]["fault_seed"] = FAULTS, 0
    prov["something_new"] = {"a": 1}
    (campaign_copy / "provenance.json").write_text(json.dumps(prov))
    res = load_results(campaign_copy, check=False)
    assert res.fault_selection == {"fault_sample": FAULTS, "fault_seed": 0}


def test_faultzoo_csv_next_to_provenance(campaign_copy, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(campaign_copy / "results.csv", alone / "results.csv")
    res = load_results(alone / "results.csv", check=False)
    assert res.kind == "faultzoo-csv" and res.model_id is None and res.provenance == {}
    with_prov = load_results(campaign_copy / "results.csv", check=False)
    assert with_prov.model_id == MODEL


def test_store_without_its_faults_table_rebuilds_them_from_the_list(campaign_copy):
    """Older stores keep only results: the fault rows come from the fault list the provenance names,
    checked against the campaign's fingerprint."""
    import sqlite3

    full = load_results(campaign_copy, check=False)
    for name in ("results.csv", "results_upstream.csv", "provenance.json", "outcomes.npy"):
        (campaign_copy / name).unlink()
    db = sqlite3.connect(campaign_copy / "campaign.sqlite")
    db.execute("DROP TABLE IF EXISTS faults")
    db.commit()
    db.close()
    _same_table(load_results(campaign_copy, check=False).table, full.table)
