"""`faultzoo compare`: synthetic result sets with a known difference, a set against itself, a Keras list
against its PyTorch original, and the inputs that must be refused.

The result sets are written directly (results.csv + provenance.json, or upstream CSVs) for 200 faults
on resnet20's conv and linear weights, 100 images each.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from faultzoo.analysis.compare import compare_results, write_comparison
from faultzoo.exceptions import AnalysisError
from faultzoo.faults import Fault, FaultList, to_keras
from tests.cli.test_errors import run_cli

MODEL = "cifar10/resnet20"
N_FAULTS, IMAGES, CHANGED = 200, 100, 40


@pytest.fixture(scope="module")
def model():
    import faultzoo

    return faultzoo.get_model(MODEL, weights=None)


@pytest.fixture(scope="module")
def faults(model) -> list[Fault]:
    rng = random.Random(3)
    state = model.state_dict()
    names = [n for n, t in state.items() if n.endswith(".weight") and t.dim() >= 2]
    out = []
    while len(out) < N_FAULTS:
        name = rng.choice(names)
        fault = Fault(name, tuple(rng.randrange(d) for d in state[name].shape), (rng.randrange(32),))
        if fault not in out:
            out.append(fault)
    return out


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    """(masked, non_critical, critical) per fault; the first CHANGED faults have >= 50 masked images."""
    rng = np.random.default_rng(5)
    out = np.zeros((N_FAULTS, 3), dtype=np.int64)
    for i in range(N_FAULTS):
        critical = 0 if i < CHANGED else int(rng.choice([0, 0, 0, 2, 30, 100]))
        low = 50 if i < CHANGED else 0
        masked = int(rng.integers(low, IMAGES - critical + 1))
        out[i] = (masked, IMAGES - critical - masked, critical)
    return out


def write_campaign(folder: Path, faults: list[Fault], counts: np.ndarray, *, model_id: str = MODEL,
                   framework: str = "torch") -> Path:
    """A campaign folder as the runner exports it: results.csv + provenance.json."""
    folder.mkdir(parents=True)
    with open(folder / "results.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["fault_id", "injection", "param", "index", "bits", "kind", "n", "masked", "non_critical",
                    "critical", "nonfinite", "faulty_correct", "seconds"])
        for i, (f, (m, nc, c)) in enumerate(zip(faults, counts)):
            w.writerow([i, i, f.param, " ".join(map(str, f.index)), " ".join(map(str, f.bits)), "bitflip", IMAGES, m,
                        nc, c, 0, IMAGES - c, "0.01"])
    provenance = {"identity": {"model_id": model_id, "framework": framework}, "framework": framework}
    (folder / "provenance.json").write_text(json.dumps(provenance))
    return folder


def write_keras_upstream(path: Path, faults: list[Fault], counts: np.ndarray, model) -> Path:
    """An upstream results CSV of a Keras campaign: Keras layer names and HWIO indices."""
    rows = to_keras(FaultList(tuple(faults)), model)
    with open(path, "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["Injection", "Layer", "TensorIndex", "Bit", "n_injections", "masked", "non_critical", "critical"])
        for r, (m, nc, c) in zip(rows, counts):
            w.writerow([r.injection, r.layer, str(tuple(r.index)), r.bit, IMAGES, m, nc, c])
    return path


def shifted(counts: np.ndarray) -> np.ndarray:
    """B: the first CHANGED faults turn 50 of their masked images critical."""
    out = counts.copy()
    out[:CHANGED, 0] -= 50
    out[:CHANGED, 2] += 50
    return out


def test_a_known_difference_is_reported(tmp_path, faults, counts):
    a = write_campaign(tmp_path / "a", faults, counts)
    b = write_campaign(tmp_path / "b", faults, shifted(counts), framework="keras")
    c = compare_results(a, b)
    assert c.paired == N_FAULTS and c.model_id == MODEL and (c.a.framework, c.b.framework) == ("torch", "keras")
    critical = c.rates["critical"].difference
    want = -CHANGED * 0.5 / N_FAULTS
    assert critical.value == pytest.approx(want) and critical.low <= want <= critical.high and critical.high < 0
    assert c.rates["masked"].difference.value == pytest.approx(-want)
    non_critical = c.rates["non_critical"].difference
    assert (non_critical.value, non_critical.low, non_critical.high) == (0, 0, 0)
    assert c.rates["critical"].b.value - c.rates["critical"].a.value == pytest.approx(-want)
    assert c.identical.value == pytest.approx(1 - CHANGED / N_FAULTS)
    assert len(c.disagreements) == 10 and all(d.gap == pytest.approx(-0.5) for d in c.disagreements)
    assert {(d.param, d.index) for d in c.disagreements} <= {(f.param, f.index) for f in faults[:CHANGED]}
    assert sum(g.faults for g in c.by_bit_class) == N_FAULTS
    assert sum(g.faults for g in c.by_layer) == N_FAULTS
    assert sum(g.difference.value * g.faults for g in c.by_layer) / N_FAULTS == pytest.approx(want)


def test_a_campaign_against_itself_shows_no_difference(tmp_path, faults, counts):
    a = write_campaign(tmp_path / "a", faults, counts)
    c = compare_results(a, a)
    for r in c.rates.values():
        assert (r.difference.value, r.difference.low, r.difference.high) == (0, 0, 0)
        assert r.a == r.b
    assert c.identical.value == 1 and c.disagreements == []


def test_a_keras_list_pairs_with_its_pytorch_original(tmp_path, faults, counts, model):
    a = write_campaign(tmp_path / "a", faults, counts)
    b = write_keras_upstream(tmp_path / "rn20_keras_results.csv", faults, shifted(counts), model)
    c = compare_results(a, b, model=MODEL)
    assert c.b.layout == "keras" and c.paired == N_FAULTS
    assert c.rates["critical"].difference.value == pytest.approx(-CHANGED * 0.5 / N_FAULTS)
    assert all(d.keras_layer and d.keras_layer.startswith(("conv2d", "dense")) for d in c.disagreements)
    same = compare_results(a, write_keras_upstream(tmp_path / "same.csv", faults, counts, model), model=MODEL)
    assert same.identical.value == 1


def test_written_report(tmp_path, faults, counts):
    a = write_campaign(tmp_path / "a", faults, counts)
    b = write_campaign(tmp_path / "b", faults, shifted(counts))
    paths = write_comparison(compare_results(a, b), tmp_path / "out")
    text = paths["markdown"].read_text()
    assert "## By bit class" in text and "## By layer" in text and "critical_scatter.svg" in text
    assert paths["plot_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["plot_svg"].stat().st_size > 1000
    data = json.loads(paths["json"].read_text())
    assert data["paired_faults"] == N_FAULTS


# --------------------------------------------------------------------------- refusals


def test_different_models_are_refused(tmp_path, faults, counts):
    a = write_campaign(tmp_path / "a", faults, counts)
    b = write_campaign(tmp_path / "b", faults, counts, model_id="cifar10/resnet32")
    with pytest.raises(AnalysisError, match="different models.*resnet20.*resnet32"):
        compare_results(a, b)


def test_lists_that_do_not_pair_are_refused(tmp_path, faults, counts, model):
    a = write_campaign(tmp_path / "a", faults, counts)
    other = [Fault(f.param, f.index, ((f.bits[0] + 1) % 32,)) for f in faults]
    with pytest.raises(AnalysisError, match="no fault in common"):
        compare_results(a, write_campaign(tmp_path / "b", other, counts))
    few = faults[:30] + other[30:]
    with pytest.raises(AnalysisError, match="only 30 faults in common"):
        compare_results(a, write_campaign(tmp_path / "c", few, counts))


def test_keras_names_need_a_model(tmp_path, faults, counts, model):
    a = write_campaign(tmp_path / "a", faults, counts)
    b = write_keras_upstream(tmp_path / "results.csv", faults, counts, model)
    with pytest.raises(AnalysisError, match="--model"):
        compare_results(b, b)
    assert compare_results(a, b).paired == N_FAULTS  # A's provenance names the model


def test_cli(tmp_path, faults, counts, capsys):
    a = write_campaign(tmp_path / "a", faults, counts)
    b = write_campaign(tmp_path / "b", faults, shifted(counts))
    code, text = run_cli(capsys, "compare", str(a), str(b), "-o", str(tmp_path / "out"))
    assert code == 0, text
    assert "critical (SDC-1)" in text and "-10.0" in text and "identical" in text
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"compare.md", "compare.json", "critical_scatter.png",
                                                               "critical_scatter.svg"}
    other = write_campaign(tmp_path / "c", faults, counts, model_id="cifar10/resnet32")
    code, text = run_cli(capsys, "compare", str(a), str(other))
    assert code == 1 and "different models" in text
