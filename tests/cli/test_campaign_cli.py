"""`faultzoo campaign` through the real entry point ``faultzoo.cli.main`` (exit codes as a shell sees them)."""

from __future__ import annotations

import json

import pytest

from tests.cli_runner import flat, run_faultzoo
from faultzoo.faults import Fault, FaultList, write_fault_list
from tests.conftest import require_shared

MODEL = "cifar10/resnet20"


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``faultzoo campaign ARGS`` in this process: (exit status, stdout, stderr)."""
    return run_faultzoo(capsys, "campaign", *args)



@pytest.fixture
def faults_csv(tmp_path):
    """One fault per bit class (sign, exponent, mantissa) plus a few more, in the upstream torch layout."""
    faults = FaultList((Fault("conv1.weight", (0, 0, 1, 1), (31,)), Fault("layer1.0.conv1.weight", (3, 2, 1, 0), (30,)),
                        Fault("layer2.1.conv2.weight", (5, 4, 0, 2), (3,)), Fault("linear.weight", (2, 17), (26,)),
                        Fault("layer3.2.conv2.weight", (63, 1, 2, 2), (22,))), ids=(100, 101, 102, 103, 104))
    return write_fault_list(faults, tmp_path / "faults.csv", format="torch")


def test_help_shows_the_example(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    text = flat(out)
    for option in ("--faults", "--engine", "--workers", "--fault-sample", "--limit", "--output"):
        assert option in text
    assert flat("faultzoo campaign cifar10/resnet20 --faults rn20_FL.csv") in text
    assert flat("Re-running the same command resumes") in text


@pytest.mark.parametrize("args, words", [
    (["--engine", "bogus"], ["bogus", "--engine"]),
    (["--workers", "2", "--dask", "local:2"], ["--dask", "workers"]),
    (["--workers", "0"], ["--workers"]),
], ids=["engine", "workers-and-dask", "workers"])
def test_usage_errors_exit_2(capsys, tmp_path, faults_csv, args, words):
    code, out, err = run_cli(capsys, MODEL, "--faults", faults_csv, "-o", tmp_path / "out", *args)
    assert code == 2, out + err
    for word in words:
        assert word in out + err
    assert "Traceback" not in out + err
    assert not (tmp_path / "out").exists()


def test_missing_required_option_exits_2(capsys, tmp_path):
    code, out, err = run_cli(capsys, MODEL, "-o", tmp_path / "out")
    assert code == 2 and "--faults" in out + err and "Traceback" not in out + err


def test_missing_faults_file_exits_1_naming_it(capsys, tmp_path):
    require_shared("mirror")
    missing = tmp_path / "no_such_faults.csv"
    code, out, err = run_cli(capsys, MODEL, "--faults", missing, "-o", tmp_path / "out")
    assert code == 1
    assert str(missing) in flat(err) and "error" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unknown_model_exits_1(capsys, tmp_path, faults_csv):
    code, _, err = run_cli(capsys, "cifar10/resnet21", "--faults", faults_csv, "-o", tmp_path / "out")
    assert code == 1 and "cifar10/resnet21" in err and "Traceback" not in err


def test_run_prints_summary_by_bit_class_and_export_paths(capsys, tmp_path, faults_csv):
    npz = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    require_shared("mirror")
    out_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, MODEL, "--faults", faults_csv, "--data", npz, "--limit", 32, "-o", out_dir)
    assert code == 0, out + err
    lines = out.splitlines()
    assert "5 faults x 32 images" in out
    for name in ("sign", "exponent", "mantissa", "all"):
        assert any(line.strip("│┃ ").startswith(name) for line in lines), f"no {name!r} row in:\n{out}"
    assert "masked" in out and "critical" in out
    summary = json.loads((out_dir / "provenance.json").read_text())["summary"]
    all_row = next(line for line in lines if line.strip("│┃ ").startswith("all"))
    for key in ("masked_pct", "non_critical_pct", "critical_pct"):
        assert f"{summary['total'][key]:.2f}" in all_row
    assert summary["by_bit_class"]["exponent"]["faults"] == 2 and summary["by_bit_class"]["mantissa"]["faults"] == 2
    printed = flat(out)
    for name in ("campaign.sqlite", "results_upstream.csv", "results.csv", "provenance.json"):
        assert (out_dir / name).exists()
        assert str(out_dir / name) in printed, f"{name} path not printed"
    assert "40/?" not in err  # the progress bar knew its total
    assert "5/5" in err


def test_ctrl_c_exits_130_and_says_to_rerun(capsys, tmp_path, faults_csv, monkeypatch):
    import faultzoo.campaign

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(faultzoo.campaign, "run_campaign", interrupted)
    code, out, err = run_cli(capsys, MODEL, "--faults", faults_csv, "-o", tmp_path / "out")
    assert code == 130, f"exit status {code} after Ctrl-C"
    assert flat("re-run the same command") in flat(err)
