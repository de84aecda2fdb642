"""`faultzoo report` and write_report(): readable Markdown, self-contained HTML, plots, on our campaigns and
on both published upstream results files."""

from __future__ import annotations

import base64
import csv
import json
import re

import pytest

from faultzoo.analysis import write_report
from tests.cli_runner import flat
from tests.cli_runner import run_faultzoo as run_cli
from tests.analysis.conftest import MODEL

PLOTS = ("critical_by_bit", "critical_by_layer", "critical_layer_bit", "per_fault_critical")


@pytest.fixture(scope="module")
def campaign_report(campaign_dir, tmp_path_factory):
    steps = []
    report = write_report(campaign_dir, tmp_path_factory.mktemp("report") / "out", progress=steps.append)
    return report, steps


def test_files_of_a_report(campaign_report):
    report, steps = campaign_report
    assert steps[0].startswith("reading") and "estimates" in steps and steps[-1] == "writing the report"
    for name in PLOTS:
        png, svg = report.folder / "plots" / f"{name}.png", report.folder / "plots" / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:2000]
    data = json.loads((report.folder / "estimates.json").read_text())
    assert data["model_id"] == MODEL and data["quality"]["verdict"] == "pass"
    assert data["estimates"]["overall"]["critical"]["value"] == pytest.approx(report.estimates.overall["critical"].value)
    rows = list(csv.DictReader((report.folder / "by_layer_bit.csv").open()))
    assert len(rows) == len(report.estimates.by_layer_bit) and {"layer", "bit", "critical_low"} <= set(rows[0])


def test_html_is_self_contained(campaign_report):
    report, _ = campaign_report
    html = report.html.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']https?:""", html), "the report must not load anything remote"
    assert "<script" not in html and "<link" not in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(PLOTS)
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    for text in (MODEL, "Data quality", "PASS", "dnn-benchmarks", "Inference-level rates", "By bit class",
                 "By layer", "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8"):
        assert text in html, text


def test_markdown_reports_quality_before_numbers(campaign_report):
    report, _ = campaign_report
    md = report.markdown.read_text()
    assert md.index("## Data quality: PASS") < md.index("## Inference-level rates") < md.index("## By bit class")
    for name in PLOTS:
        assert f"(plots/{name}.png)" in md
    critical = report.estimates.overall["critical"]
    assert f"| critical (SDC-1) | {100 * critical.value:.2f} |" in md
    for field in ("population N", "upstream's N", "images per fault m", "image component", "engine", "numerics",
                  "fault list"):
        assert f"| {field} |" in md, field


@pytest.mark.parametrize("name, model", [("resnet32", "cifar10/resnet32"), ("vgg11_bn", "cifar10/vgg11_bn")])
def test_cli_report_of_published_files(capsys, published, tmp_path, name, model):
    out = tmp_path / name
    code, stdout, stderr = run_cli(capsys, "report", published[name], "--model", model, "-o", out)
    assert code == 0, stdout + stderr
    assert stdout.startswith("data quality: PASS") and "critical (SDC-1)" in stdout
    assert flat(str(out / "report.html")) in flat(stdout)
    md = (out / "report.md").read_text()
    assert "the rows are those of the dnn-benchmarks list" in md and "| upstream's N |" in md
    assert "the images are the whole test set (10,000)" in md
    assert "16,6" in md  # faults analysed: 16,630 / 16,642


def test_cli_report_of_a_campaign_without_outcomes(capsys, campaign_copy):
    """What `make demo` runs at its end: the default report folder inside the campaign folder."""
    (campaign_copy / "outcomes.npy").unlink()
    code, stdout, stderr = run_cli(capsys, "report", campaign_copy, "--confidence", "0.95")
    assert code == 0, stdout + stderr
    lines = stdout.splitlines()
    assert lines[0] == "data quality: PASS" and "95 % intervals; 200 faults x 50 images" in stdout
    assert flat(f"report: {campaign_copy / 'report' / 'report.html'}") in flat(stdout)
    md = (campaign_copy / "report" / "report.md").read_text()
    assert "| image component | not estimated |" in md and "--keep-outcomes" in md
    assert len(lines) < 20  # a short summary


def test_cli_report_flags_a_shifted_file(capsys, published, tmp_path):
    rows = list(csv.reader(published["resnet32"].open()))
    body = [f[:4] + r[4:] for f, r in zip(rows[2:3001], rows[1:3000])]  # 3,000 rows: enough to see it
    path = tmp_path / published["resnet32"].name
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *body])
    code, stdout, stderr = run_cli(capsys, "report", path, "-o", tmp_path / "r")
    assert code == 1  # a FAIL verdict: exit status 1, so that a script stops; the report is written all the same
    assert "exit status 1: the data-quality verdict is FAIL" in stderr
    assert stdout.startswith("data quality: FAIL") and "results appear shifted by +1 row" in stdout
    assert "results appear shifted by +1 row" in (tmp_path / "r" / "report.md").read_text()


def test_cli_report_errors(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", tmp_path / "missing")
    assert code == 1 and "does not exist" in err
    code, out, err = run_cli(capsys, "report", tmp_path, "--confidence", "1.5")
    assert code == 2 and "--confidence" in out + err
    (tmp_path / "fl.csv").write_text('Injection,Layer,TensorIndex,Bit\n0,conv1,"(1, 0, 0, 0)",3\n')
    code, _, err = run_cli(capsys, "report", tmp_path / "fl.csv")
    assert code == 1 and "not a results file" in err and "faultzoo campaign" in err


def test_cli_report_help_ends_with_examples(capsys):
    code, out, _ = run_cli(capsys, "report", "--help")
    assert code == 0
    assert flat("faultzoo report demo-out/campaign") in flat(out)
    for option in ("--model", "--confidence", "--output"):
        assert option in out
    assert flat("Exit status: 0 when the data-quality verdict is PASS or WARN, 1 when it is FAIL") in flat(out)
