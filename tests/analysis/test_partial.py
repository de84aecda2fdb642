"""One rule for every analysis command: a partial campaign (an interrupted run: fewer faults stored than its
list holds) is flagged by `faultzoo report` (verdict FAIL, exit status 1) and refused by `plan` and `compare`
unless --allow-partial, all through faultzoo.analysis.quality.completeness.

The partial campaign is the session's real resnet20 campaign cut back to what an interrupted run leaves:
its store with the results of 18 of its 200 faults, and no exports.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from faultzoo.analysis import load_results, plan_campaign
from faultzoo.analysis.compare import compare_results
from faultzoo.analysis.quality import ALLOW_PARTIAL, completeness
from faultzoo.exceptions import AnalysisError
from faultzoo.layouts import EXPORT_FILES, STORE_NAME
from tests.analysis.conftest import FAULTS
from tests.cli_runner import flat, run_faultzoo

STORED = 18
HOW_MANY = f"holds {STORED} of its {FAULTS} faults"
FINISH = "re-run the same `faultzoo campaign` command"


@pytest.fixture(scope="module")
def partial_dir(campaign_dir, tmp_path_factory) -> Path:
    """The campaign as an interrupted run leaves it: 18 faults in the store, no export files."""
    folder = Path(shutil.copytree(campaign_dir, tmp_path_factory.mktemp("partial") / "campaign"))
    for name in EXPORT_FILES.values():
        (folder / name).unlink(missing_ok=True)
    with sqlite3.connect(folder / STORE_NAME) as db:
        db.execute("DELETE FROM results WHERE fault_id >= ?", (STORED,))
        db.execute("UPDATE runs SET status = 'interrupted', faults_done = ?", (STORED,))
    db.close()
    return folder


def test_the_rule_report_applies(partial_dir):
    results = load_results(partial_dir)
    finding = completeness(results)
    assert finding.level == "error" and finding.code == "missing-faults"
    assert HOW_MANY in finding.message and FINISH in finding.message
    assert results.quality.verdict == "fail" and finding in results.quality.findings


def test_plan_refuses_a_partial_pilot(partial_dir):
    with pytest.raises(AnalysisError) as refused:
        plan_campaign(partial_dir, error=0.05)
    message = str(refused.value)
    assert completeness(load_results(partial_dir, check=False)).message in message  # the same rule, the same words
    assert HOW_MANY in message and FINISH in message and ALLOW_PARTIAL in message


def test_plan_of_a_partial_pilot_on_request(partial_dir):
    plan = plan_campaign(partial_dir, error=0.05, allow_partial=True)
    assert plan.components.faults == STORED
    assert any("partial pilot" in n and HOW_MANY in n for n in plan.notes)
    assert plan.options["--allow-partial"] is True


def test_cli_plan_of_a_partial_pilot(capsys, partial_dir):
    code, out, err = run_faultzoo(capsys, "plan", partial_dir, "--error", "0.05")
    assert code == 1 and "recommended" not in out
    assert flat(HOW_MANY) in flat(err)
    assert flat(FINISH) in flat(err) and ALLOW_PARTIAL in err
    code, out, err = run_faultzoo(capsys, "plan", partial_dir, "--error", "0.05", ALLOW_PARTIAL)
    assert code == 0, out + err
    assert "recommended:" in out and "note: planned from a partial pilot" in out


def test_compare_refuses_a_partial_side(campaign_dir, partial_dir):
    with pytest.raises(AnalysisError) as refused:
        compare_results(campaign_dir, partial_dir)
    message = str(refused.value)
    assert message.startswith(f"B ({partial_dir})") and HOW_MANY in message and FINISH in message
    assert ALLOW_PARTIAL in message
    with pytest.raises(AnalysisError, match=r"^A \("):
        compare_results(partial_dir, campaign_dir)
    c = compare_results(campaign_dir, partial_dir, allow_partial=True)
    assert c.paired == STORED and c.notes[0].startswith("B is partial") and HOW_MANY in c.notes[0]
    with pytest.raises(AnalysisError, match="--allow-partial"):
        compare_results(campaign_dir, campaign_dir, allow_partial="yes")


def test_cli_compare_of_a_partial_side(capsys, campaign_dir, partial_dir):
    code, out, err = run_faultzoo(capsys, "compare", campaign_dir, partial_dir)
    assert code == 1 and flat(HOW_MANY) in flat(err) and ALLOW_PARTIAL in err
    code, out, err = run_faultzoo(capsys, "compare", campaign_dir, partial_dir, ALLOW_PARTIAL)
    assert code == 0, out + err
    assert "note: B is partial" in out


def test_a_complete_campaign_passes_the_rule(campaign_dir):
    assert completeness(load_results(campaign_dir, check=False)) is None


def test_cli_report_of_a_partial_campaign_exits_1(capsys, partial_dir, tmp_path):
    code, out, err = run_faultzoo(capsys, "report", partial_dir, "-o", tmp_path / "r")
    assert code == 1
    assert out.startswith("data quality: FAIL") and flat(HOW_MANY) in flat(out)
    assert "exit status 1" in err and (tmp_path / "r" / "report.html").is_file()  # written all the same


def test_a_campaign_without_list_metadata_is_held_to_its_count(tmp_path):
    """A campaign knows how many faults it runs (identity.faults) even when its fault list carries no
    faultzoo metadata (an upstream-layout list): fewer stored is partial all the same."""
    import json

    import numpy as np

    from faultzoo.faults import Fault
    from tests.analysis.test_compare import IMAGES, N_FAULTS, write_campaign

    faults = [Fault("conv1.weight", (i % 16, i // 16 % 3, i // 48 % 3, i // 144 % 3), (i % 32,))
              for i in range(N_FAULTS)]
    counts = np.tile([IMAGES, 0, 0], (N_FAULTS, 1))
    a = write_campaign(tmp_path / "a", faults, counts)
    b = write_campaign(tmp_path / "b", faults, counts)
    provenance = json.loads((b / "provenance.json").read_text())
    provenance["identity"]["faults"] = 300
    (b / "provenance.json").write_text(json.dumps(provenance))
    finding = completeness(load_results(b, check=False))
    assert finding.code == "missing-faults" and f"holds {N_FAULTS} of its 300 faults" in finding.message
    assert completeness(load_results(a, check=False)) is None
    with pytest.raises(AnalysisError, match=f"holds {N_FAULTS} of its 300 faults"):
        compare_results(a, b)
