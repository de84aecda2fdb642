"""`faultzoo faultlist`: generate and convert through typer's CliRunner."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from faultzoo.cli import app
from faultzoo.cli import faultlist as faultlist_cli
from faultzoo.exceptions import FaultError
from faultzoo.faults import read_fault_list
from tests.conftest import require_shared

runner = CliRunner()


@pytest.fixture
def meta_models(monkeypatch):
    """Shapes-only zoo models (instant) and a fixed weights hash, instead of the registry."""
    from faultzoo.zoo.architectures import all_architectures

    table = all_architectures()

    def load(model_id, num_classes=None):
        with torch.device("meta"):
            return table[model_id]()

    monkeypatch.setattr(faultlist_cli, "_load_model", load)
    monkeypatch.setattr(faultlist_cli, "_weights_sha256", lambda model_id: "f" * 64)


def _run(*args):
    result = runner.invoke(app, ["faultlist", *map(str, args)])
    return result


def test_help_lists_both_commands():
    result = _run("--help")
    assert result.exit_code == 0 and "generate" in result.output and "convert" in result.output
    result = _run("generate", "--help")
    assert result.exit_code == 0 and "--design" in result.output and "Examples" in result.output


@pytest.mark.parametrize("name", ["resnet32", "vgg11_bn"])
def test_regenerates_and_converts_published_lists(meta_models, tmp_path, name):
    published = require_shared("faultlists", "dnn-benchmarks")
    out = tmp_path / "torch.csv"
    result = _run(f"cifar10/{name}", "--format", "torch", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (published / f"cifar10_{name}_torch_FL.csv").read_bytes()
    assert "population N" in result.output and "dnn-benchmarks" in result.output and "2.58" in result.output
    keras = tmp_path / "keras.csv"
    result = _run("convert", out, "--model", f"cifar10/{name}", "--to", "keras", "-o", keras)
    assert result.exit_code == 0, result.output
    assert keras.read_bytes() == (published / f"cifar10_{name}_keras_FL.csv").read_bytes()


def test_network_design_summary_and_metadata(meta_models, tmp_path):
    out = tmp_path / "net.csv"
    result = _run("cifar10/resnet20", "--design", "network", "--error", "0.05", "--confidence", "0.95",
                  "--bits", "23-31", "--kind", "stuck-at-1", "--seed", "7", "-o", out)
    assert result.exit_code == 0, result.output
    fl = read_fault_list(out)
    n = fl.meta.sample_size
    assert len(fl) == n and f"{n:,}" in result.output and f"{fl.meta.population_size:,}" in result.output
    assert "95.00 %" in result.output and "0.05" in result.output
    assert fl.meta.model_id == "cifar10/resnet20" and fl.meta.weights_sha256 == "f" * 64
    assert fl.meta.seed == 7 and fl.meta.kind.value == "stuck-at-1" and fl.meta.bits == tuple(range(23, 32))
    # convert to the upstream torch layout refuses stuck-at faults (exit via the library error)
    result = _run("convert", out, "--to", "torch", "-o", tmp_path / "t.csv")
    assert result.exit_code == 1 and "single bit flips only" in str(result.exception)


@pytest.mark.parametrize("design", ["layer", "layer-bit", "exhaustive"])
def test_other_designs_write_valid_lists(meta_models, tmp_path, design):
    out = tmp_path / f"{design}.csv"
    extra = ["--layers", "conv1", "--bits", "31"] if design == "exhaustive" else ["--error", "0.05", "--bits", "30-31"]
    if design == "layer-bit":
        extra += ["--allocation", "neyman", "--prior", "31=0.4,30=0.05"]
    result = _run("cifar10/resnet20", "--design", design, *extra, "-o", out)
    assert result.exit_code == 0, result.output
    fl = read_fault_list(out)
    assert fl.meta.design == design and len(fl) == sum(s.sample_size for s in fl.meta.strata)
    if design == "layer-bit":
        assert fl.meta.design_params["allocation"] == "neyman"
        assert fl.meta.design_params["prior"] == {"30": 0.05, "31": 0.4}


@pytest.mark.parametrize(("args", "flag"), [
    (["--layers", "conv1"], "--layers"),
    (["--kind", "stuck-at-0"], "--kind"),
    (["--design", "layer", "--n", "5"], "--n"),
    (["--design", "network", "--allocation", "neyman"], "--allocation"),
    (["--design", "layer-bit", "--allocation", "neyman", "--prior", "x=1"], "--prior"),
    (["--t", "2", "--confidence", "0.9"], "--t/--confidence"),
    (["--design", "upstream"], "--design"),
])
def test_flag_errors_are_usage_errors(meta_models, tmp_path, args, flag):
    result = _run("cifar10/resnet20", *args, "-o", tmp_path / "x.csv")
    assert result.exit_code == 2, result.output
    assert flag in result.output
    assert not (tmp_path / "x.csv").exists()


def test_library_errors_reach_the_caller(meta_models, tmp_path):
    result = _run("cifar10/resnet20", "--design", "network", "--layers", "nothing*", "-o", tmp_path / "x.csv")
    assert result.exit_code == 1 and isinstance(result.exception, FaultError)
    assert "nothing*" in str(result.exception)
    result = _run("convert", tmp_path / "missing.csv", "--to", "faultzoo", "-o", tmp_path / "y.csv")
    assert result.exit_code == 1 and "does not exist" in str(result.exception)
    result = _run("convert", tmp_path / "missing.csv", "--to", "keras", "-o", tmp_path / "y.csv")  # no --model
    assert result.exit_code == 2 and "--model" in result.output


def test_uses_the_registry_by_default(tmp_path):
    out = tmp_path / "r20.csv"
    result = _run("cifar10/resnet20", "--design", "network", "--error", "0.1", "-o", out)
    assert result.exit_code == 0, result.output
    fl = read_fault_list(out)
    assert fl.meta.model_id == "cifar10/resnet20" and len(fl) == fl.meta.sample_size > 0
