"""`faultzoo eval --framework keras` and the frameworks column of `faultzoo models`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from faultzoo.cli import app, main
from faultzoo.data import load_selection
from faultzoo.zoo import get_model, list_models, model_info
from tests.conftest import require_shared
from tests.keras.conftest import needs_tensorflow

WIDE = {"COLUMNS": "200"}
runner = CliRunner()


def test_models_show_both_frameworks():
    result = runner.invoke(app, ["models"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "frameworks" in result.output
    for model_id in list_models():
        row = next(line for line in result.output.splitlines() if line.split()[:1] == [model_id])
        assert row.split()[-1] == "torch,keras", row
        assert model_info(model_id).frameworks == ("torch", "keras")
        assert model_info(model_id).to_dict()["frameworks"] == ["torch", "keras"]


def test_eval_with_keras_matches_the_library(capsys):
    needs_tensorflow()
    from faultzoo.keras import evaluate

    require_shared("mirror")
    data = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    args = ["eval", "cifar10/resnet20", "--framework", "keras", "--data", str(data), "--limit", "200"]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    selection = load_selection(data, dataset="cifar10", limit=200)
    expected = evaluate(get_model("cifar10/resnet20", framework="keras"), selection.x, selection.y)
    text = " ".join(result.output.split())
    assert "cifar10/resnet20 (keras)" in text and "(200 images)" in text
    assert f"top-1 {expected.top1:.2f}%" in text and f"top-5 {expected.top5:.2f}%" in text
    assert expected.top1 == 91.0  # 182 of 200, as the PyTorch model (tests/cli/test_models_eval_cli.py)


def test_unknown_framework_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "cifar10/resnet20", "--framework", "jax"])
    assert exit_info.value.code == 2
    assert "'jax' is not one of torch, keras" in capsys.readouterr().err
