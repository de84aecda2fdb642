"""The error contract of the analysis: whatever a caller hands the public functions, they either work or
raise a FaultzooError that names the problem, never a bare TypeError, KeyError, OSError, ...

Property-based (Hypothesis): wrong types and values of every argument, and files written to a temporary
folder (CSV text with garbage cells, wrong columns, negative or inconsistent counts, random bytes,
provenance.json with any JSON, outcomes.npy and campaign.sqlite with random content). The public
functions are faultzoo.load_results, estimate, check_quality, write_report, plan_campaign and
faultzoo.analysis.compare.compare_results.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import faultzoo
from faultzoo.analysis import write_image_sample
from faultzoo.analysis.compare import compare_results
from faultzoo.exceptions import AnalysisError, FaultzooError
from faultzoo.outcome import OUTCOME_KEYS, Outcome

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=8)

UPSTREAM = ("Injection", "Layer", "TensorIndex", "Bit", "n_injections", *OUTCOME_KEYS)
RICH = ("fault_id", "injection", "param", "index", "bits", "kind", "n", *OUTCOME_KEYS, "nonfinite",
        "faulty_correct", "task_seconds_per_fault")
IMAGES = 6


def contract(function, *args, **kwargs):
    """The call's result, or None when it raised a FaultzooError (any other exception fails the test)."""
    try:
        return function(*args, **kwargs)
    except FaultzooError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None


# --------------------------------------------------------------------------- strategies

wrong_types = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                  max_size=2),
    st.just(object()), st.just(np.float32(0.5)), st.just(np.arange(3)))
garbage_text = st.one_of(st.text(max_size=40), st.sampled_from([
    "", " ", ".", "..", "/", "\x00", "a\x00b", "x" * 300, "cifar10/resnet33", "critical ", "CRITICAL", "nonfinite",
    "1" * 40 + "x", "(1, 2", "99999999999999999999999", "-0", "1e400", "(" + "1 " * 30 + "x"]))
confidences = st.one_of(wrong_types, garbage_text, st.floats(-2, 3), st.sampled_from([0.0, 1.0, 0.5, 0.95, 0.999]))


@st.composite
def result_rows(draw, layout: str) -> list[list[str]]:
    """Rows of a results file: mostly well formed, some with garbage cells, negative or inconsistent counts."""
    rows = []
    keras = draw(st.integers(0, 9)) == 0  # Keras layer names (compare needs the model to map them)
    layers = ["dense", "conv2d_3"] if keras else ["conv1", "fc", "layer1.0.conv1"]
    for i in range(draw(st.integers(0, 45))):
        bit = draw(st.integers(0, 31))
        n = draw(st.sampled_from([IMAGES, IMAGES, IMAGES, 0, 3, -2]))
        critical = draw(st.integers(-1, max(n, 0)))
        masked = draw(st.integers(0, max(n, 0)))
        counts = [masked, n - masked - critical, critical]
        if draw(st.integers(0, 9)) == 0:
            counts[draw(st.integers(0, 2))] += 1  # counts that do not add up
        layer = draw(st.sampled_from(layers))
        index = draw(st.sampled_from(["(0, 0, 0, 0)", "1 2 0 0", "(3,)", "[0, 1]", "0"]))
        if layout == "upstream":
            row = [str(i), layer, index, str(bit), str(n), *map(str, counts)]
        else:
            row = [str(i), str(i), f"{layer}.weight", index, str(bit), draw(st.sampled_from(["bitflip", "", "x"])),
                   str(n), *map(str, counts), str(draw(st.integers(-1, 2))), str(draw(st.integers(0, IMAGES))),
                   draw(st.sampled_from(["0.01", "0.5", "nan", "-1", "inf"]))]
        for _ in range(draw(st.integers(0, 1)) * draw(st.integers(1, 3))):  # some cells made garbage
            row[draw(st.integers(0, len(row) - 1))] = draw(garbage_text)
        if draw(st.integers(0, 19)) == 0:
            row = row[: draw(st.integers(0, len(row)))]  # a line cut short
        rows.append(row)
    return rows


@st.composite
def results_text(draw) -> str:
    layout = draw(st.sampled_from(["upstream", "upstream", "rich", "rich", "other"]))
    header = {"upstream": list(UPSTREAM), "rich": list(RICH),
              "other": draw(st.lists(garbage_text, max_size=6))}[layout]
    if layout != "other" and draw(st.integers(0, 7)) == 0:
        del header[draw(st.integers(0, len(header) - 1))]  # a column missing
    rows = draw(result_rows("upstream" if layout == "other" else layout))
    text = "\n".join(",".join(_quote(c) for c in row) for row in [header, *rows])
    return text + draw(st.sampled_from(["\n", "", "\n\n", "\n\x00"]))


def _quote(cell: str) -> str:
    return f'"{cell.replace(chr(34), chr(34) * 2)}"' if any(c in cell for c in ',"\n\r') else cell


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
provenances = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        "model": st.one_of(json_values, st.fixed_dictionaries({}, optional={
            "model_id": st.one_of(json_values, st.sampled_from(["cifar10/resnet20", "nope"])),
            "shapes": json_values})),
        "data": st.one_of(json_values, st.fixed_dictionaries({}, optional={
            "dataset": st.one_of(json_values, st.sampled_from(["cifar10", "mnist"])),
            "num_samples": json_values, "per_class": json_values, "limit": json_values})),
        "fault_list": st.one_of(json_values, st.fixed_dictionaries({}, optional={
            "faults": json_values, "meta": st.one_of(json_values, st.fixed_dictionaries(
                {"design": st.sampled_from(["layer", "network", "dnn-benchmarks", "exhaustive", 3])},
                optional={"strata": json_values, "design_params": json_values, "bits": json_values,
                          "layers": json_values}))})),
        "identity": json_values, "workers": json_values, "golden_top1": json_values,
        "engine": json_values, "numerics": json_values, "versions": json_values, "fault_sample": json_values}))


def _exists(value) -> bool:
    """Whether a generated str names an existing file or folder ("." or "/" would read a real one)."""
    try:
        return isinstance(value, str) and Path(value).exists()
    except (OSError, ValueError):
        return False


def _folder(tmp_path_factory, name: str = "case") -> Path:
    return tmp_path_factory.mktemp(name)


# --------------------------------------------------------------------------- load_results, estimate, check_quality


@SETTINGS
@given(path=st.one_of(wrong_types, garbage_text), model=st.one_of(st.none(), wrong_types, garbage_text),
       progress=st.one_of(st.none(), wrong_types))
def test_load_results_refuses_wrong_arguments(path, model, progress):
    assume(not _exists(path))
    assert contract(faultzoo.load_results, path, model=model, progress=progress) is None


def test_missing_paths_and_folders_without_results(tmp_path):
    for path in (tmp_path / "nothing", tmp_path / "nothing" / "results.csv", tmp_path, str(tmp_path)):
        with pytest.raises(AnalysisError, match="does not exist|holds no results"):
            faultzoo.load_results(path)
    (tmp_path / "results.csv").mkdir()
    with pytest.raises(AnalysisError, match="Cannot read"):
        faultzoo.load_results(tmp_path)


@SETTINGS
@given(text=results_text(), confidence=st.one_of(st.sampled_from([0.9, 0.99]), confidences),
       method=st.one_of(st.sampled_from(["wilson", "wald"]), garbage_text, wrong_types))
def test_any_results_csv_loads_and_estimates_or_says_why(tmp_path_factory, text, confidence, method):
    path = _folder(tmp_path_factory) / "results.csv"
    path.write_text(text, encoding="utf-8")
    results = contract(faultzoo.load_results, path)
    event(f"load_results: {'loaded' if results else 'refused'}")
    if results is None:
        return
    assert results.quality is not None and len(results.table) > 0
    assert contract(faultzoo.check_quality, results) is not None
    est = contract(faultzoo.estimate, results)
    event(f"estimate: {'estimated' if est else 'refused'}")
    if est is not None:
        assert set(est.overall) >= set(OUTCOME_KEYS)
        assert all(0 <= e.value <= 1 for e in est.overall.values() if not math.isnan(e.value))
    valid = (isinstance(confidence, (float, np.floating)) and 0 < confidence < 1
             and isinstance(method, str) and method in ("wilson", "wald"))
    if contract(faultzoo.estimate, results, confidence=confidence, method=method) is not None:
        assert valid and est is not None


@SETTINGS
@given(data=st.binary(max_size=300))
def test_any_bytes_as_results_raise_analysis_error(tmp_path_factory, data):
    path = _folder(tmp_path_factory) / "results.csv"
    path.write_bytes(data)
    assert contract(faultzoo.load_results, path) is None


@SETTINGS
@given(text=results_text(), provenance=st.one_of(st.none(), provenances), outcomes=st.one_of(
    st.none(), st.binary(max_size=64), st.sampled_from(["matrix", "wrong-shape", "wrong-dtype"])),
    store=st.one_of(st.none(), st.none(), st.binary(max_size=64)),
    export=st.sampled_from(["results.csv", "results.csv", "results_upstream.csv", None]))
def test_any_campaign_folder_loads_or_says_why(tmp_path_factory, text, provenance, outcomes, store, export):
    folder = _folder(tmp_path_factory)
    if export:
        (folder / export).write_text(text, encoding="utf-8")
    if provenance is not None:
        (folder / "provenance.json").write_text(json.dumps(provenance), encoding="utf-8")
    if isinstance(outcomes, bytes):
        (folder / "outcomes.npy").write_bytes(outcomes)
    elif outcomes is not None:
        rows = max(text.count("\n") - 1, 1)
        shape = (rows, IMAGES) if outcomes != "wrong-shape" else (rows + 1, 2)
        np.save(folder / "outcomes.npy", np.zeros(shape, np.uint8 if outcomes != "wrong-dtype" else np.float32))
    if store is not None:
        (folder / "campaign.sqlite").write_bytes(store)
    results = contract(faultzoo.load_results, folder)
    event(f"campaign folder: {'loaded' if results else 'refused'}")
    if results is not None:
        contract(faultzoo.estimate, results)


@SETTINGS
@given(results=st.one_of(wrong_types, garbage_text), confidence=confidences)
def test_estimate_and_check_quality_refuse_what_is_not_loaded_results(results, confidence):
    assert contract(faultzoo.estimate, results, confidence=confidence) is None
    assert contract(faultzoo.check_quality, results) is None


# --------------------------------------------------------------------------- a small consistent pilot


def write_pilot(folder: Path, *, faults: int = 40, images: int = IMAGES, seed: int = 0, upstream: bool = False,
                provenance: object = None) -> Path:
    """A campaign folder with results.csv, outcomes.npy and provenance.json that agree (random outcomes)."""
    rng = np.random.default_rng(seed)
    outcomes = rng.choice(np.array([o.value for o in Outcome], np.uint8), size=(faults, images), p=[0.7, 0.2, 0.1])
    header = UPSTREAM if upstream else RICH
    lines = [",".join(header)]
    for i, row in enumerate(outcomes):
        counts = [int((row == o).sum()) for o in Outcome]
        bit, layer = 7 * i % 32, ("conv1", "fc")[i % 2]  # the same faults whatever the seed
        if upstream:
            lines.append(f"{i},{layer},\"({i}, 0, 0, 0)\",{bit},{images},{','.join(map(str, counts))}")
        else:
            lines.append(f"{i},{i},{layer}.weight,{i} 0 0 0,{bit},bitflip,{images},{','.join(map(str, counts))},0,"
                         f"{images // 2},0.05")
    (folder / "results.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(folder / "outcomes.npy", outcomes)
    prov = {"data": {"dataset": "cifar10", "num_samples": images}, "workers": 1} if provenance is None else provenance
    (folder / "provenance.json").write_text(json.dumps(prov), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def pilot(tmp_path_factory) -> Path:
    return write_pilot(tmp_path_factory.mktemp("pilot"))


def test_the_synthetic_pilot_plans_reports_and_compares(pilot, tmp_path):
    plan = faultzoo.plan_campaign(pilot, error=0.05, assurance=0)
    assert plan.recommended.faults >= 30 and plan.commands
    report = faultzoo.write_report(pilot, tmp_path / "report")
    assert report.html.exists()
    comparison = compare_results(pilot, write_pilot(tmp_path, seed=1), top=3)
    assert comparison.paired == 40


# Each planner option: values it takes, and values it must refuse (or take: a few are right by chance).
OPTIONS = {
    "error": (st.sampled_from([0.05, 0.2, 0.5]), st.one_of(wrong_types, garbage_text, st.floats(-1, 2))),
    "confidence": (st.sampled_from([0.9, 0.99]), confidences),
    "relative": (st.booleans(), wrong_types),
    "rate": (st.sampled_from(OUTCOME_KEYS), st.one_of(garbage_text, wrong_types, st.just("nonfinite"))),
    "workers": (st.one_of(st.none(), st.integers(1, 4)), st.one_of(wrong_types, st.integers(-2, 0))),
    "fault_overhead": (st.one_of(st.none(), st.floats(0, 0.01)), st.one_of(wrong_types, st.floats(-1, 1))),
    "seed": (st.integers(0, 3), st.one_of(wrong_types, st.integers(-3, -1))),
    "images_from": (st.sampled_from([None, "cifar10"]), st.one_of(wrong_types, garbage_text, st.just("nope.npz"))),
    "write_images": (st.none(), wrong_types),
    "output": (st.sampled_from(["plan-out", "a b"]), st.one_of(wrong_types, garbage_text)),
    "min_images": (st.integers(2, 8), st.one_of(wrong_types, st.integers(-1, 1))),
    "assurance": (st.sampled_from([0, 0.5]), st.one_of(wrong_types, st.floats(-1, 2))),
}


@SETTINGS
@given(chosen=st.fixed_dictionaries({}, optional={k: right for k, (right, _) in OPTIONS.items()}))
def test_plan_campaign_with_options_it_takes(pilot, chosen):
    chosen.setdefault("assurance", 0)  # the bootstrap is not what this test is about
    plan = contract(faultzoo.plan_campaign, pilot, **chosen)
    event(f"plan_campaign: {'planned' if plan else 'refused'}")
    if plan is not None:
        assert plan.recommended.faults > 0 and plan.recommended.images > 0 and plan.commands


@SETTINGS
@given(name=st.sampled_from(sorted(OPTIONS)), data=st.data())
def test_plan_campaign_with_a_wrong_option(pilot, name, data):
    value = data.draw(OPTIONS[name][1], label=name)
    plan = contract(faultzoo.plan_campaign, pilot, **{"assurance": 0, name: value})
    event(f"plan_campaign: {'planned' if plan else 'refused'}")


@SETTINGS
@given(pilot_arg=st.one_of(wrong_types, garbage_text))
def test_plan_campaign_refuses_what_is_not_a_pilot(pilot_arg):
    assume(not _exists(pilot_arg))
    assert contract(faultzoo.plan_campaign, pilot_arg) is None


@FEW
@given(images=st.one_of(st.binary(max_size=40), st.sampled_from(["no-y", "ragged", "2d-y", "no-x"])))
def test_plan_campaign_with_an_unreadable_image_file(pilot, tmp_path_factory, images):
    folder = _folder(tmp_path_factory)
    path = folder / "images.npz"
    if isinstance(images, bytes):
        path.write_bytes(images)
    else:
        arrays = {"x": np.zeros((3 if images == "ragged" else 4, 2, 2, 3), np.uint8),
                  "y": np.zeros((4, 2) if images == "2d-y" else 4, np.int64)}
        arrays.pop(images[3:], None)
        np.savez(path, **arrays)
    if images not in ("ragged", "no-x"):  # planning reads the labels; drawing the images reads them all
        assert contract(faultzoo.plan_campaign, pilot, images_from=str(path), assurance=0) is None
    assert contract(write_image_sample, str(path), "cifar10", 2, 0, folder / "sample.npz") is None
    assert not (folder / "sample.npz").exists()


@FEW
@given(provenance=provenances)
def test_plan_campaign_with_any_provenance(tmp_path_factory, provenance):
    folder = write_pilot(_folder(tmp_path_factory), faults=31, provenance=provenance)
    contract(faultzoo.plan_campaign, folder, error=0.2, assurance=0)


# --------------------------------------------------------------------------- write_report


@SETTINGS
@given(results=st.one_of(wrong_types, garbage_text), output=st.one_of(st.none(), wrong_types, garbage_text),
       model=st.one_of(st.none(), wrong_types), confidence=confidences, progress=st.one_of(st.none(), wrong_types))
def test_write_report_refuses_wrong_arguments(tmp_path_factory, results, output, model, confidence, progress):
    assume(not _exists(results))
    assert contract(faultzoo.write_report, results, output, model=model, confidence=confidence,
                    progress=progress) is None


def test_write_report_into_a_file_or_an_unwritable_folder(pilot, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for output in (blocker, blocker / "below"):
        with pytest.raises(FaultzooError, match="Cannot write"):
            faultzoo.write_report(pilot, output)
    (tmp_path / "out" / "plots").mkdir(parents=True)
    (tmp_path / "out" / "plots" / "critical_by_bit.png").mkdir()  # a folder where a plot goes
    with pytest.raises(FaultzooError, match="Cannot write"):
        faultzoo.write_report(pilot, tmp_path / "out")


@FEW
@given(text=results_text(), confidence=st.sampled_from([0.9, 0.99]))
def test_write_report_on_any_results_csv(tmp_path_factory, text, confidence):
    folder = _folder(tmp_path_factory)
    (folder / "results.csv").write_text(text, encoding="utf-8")
    assume(contract(faultzoo.load_results, folder / "results.csv", check=False) is not None)
    report = contract(faultzoo.write_report, folder / "results.csv", folder / "report", confidence=confidence)
    event(f"write_report: {'written' if report else 'refused'}")


# --------------------------------------------------------------------------- compare_results


@SETTINGS
@given(a=st.one_of(wrong_types, garbage_text), model=st.one_of(st.none(), wrong_types, garbage_text),
       confidence=confidences, top=st.one_of(wrong_types, st.integers(-3, 5)))
def test_compare_results_refuses_wrong_arguments(pilot, a, model, confidence, top):
    assume(not _exists(a))
    assert contract(compare_results, a, pilot, model=model, confidence=confidence, top=top) is None
    assert contract(compare_results, pilot, a, model=model, confidence=confidence, top=top) is None


@st.composite
def two_results_texts(draw) -> tuple[str, str]:
    """Two results files: unrelated, or the second made of rows of the first (dropped, repeated, changed)."""
    text_a = draw(results_text())
    if draw(st.integers(0, 3)) == 0:
        return text_a, draw(results_text())
    header, *rows = text_a.split("\n")
    kept = draw(st.lists(st.sampled_from(rows), max_size=len(rows))) if rows else []
    return text_a, "\n".join([header, *rows[: len(rows) // 2], *kept])


@SETTINGS
@given(texts=two_results_texts())
def test_compare_any_two_results_files(tmp_path_factory, texts):
    text_a, text_b = texts
    folder = _folder(tmp_path_factory)
    (folder / "a.csv").write_text(text_a, encoding="utf-8")
    (folder / "b.csv").write_text(text_b, encoding="utf-8")
    comparison = contract(compare_results, folder / "a.csv", folder / "b.csv")
    event(f"compare_results: {'compared' if comparison else 'refused'}")
    if comparison is not None:
        assert comparison.paired >= 2
