"""`faultzoo models`, `faultzoo eval` and the CLI's error handling, run in-process."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from faultzoo.cli import app, main
from faultzoo.data import load_selection
from faultzoo.inference import evaluate
from faultzoo.zoo import WEIGHTS, get_model, list_models
from tests.conftest import require_shared

# rich sizes tables to the terminal, and under pytest that depends on whether stdin is a tty:
# fix the width so the output does not depend on where the tests run.
WIDE = {"COLUMNS": "200"}

runner = CliRunner()


def _row(output: str, model_id: str) -> str:
    """The table line of ``model_id`` (ids are padded, so 'resnet20 ' never matches 'resnet200')."""
    lines = [line for line in output.splitlines() if f" {model_id} " in f" {line} "]
    assert len(lines) == 1, f"{model_id}: {lines}"
    return lines[0]


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    names = [c.name for c in app.registered_commands]
    assert {"models", "eval"} <= set(names)
    for name in names:
        assert f" {name} " in result.output, name


def test_models_piped_is_plain_text_without_truncation():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "80"})  # not a terminal: plain text
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "┃" not in result.output
    row = _row(result.output, "cifar10/densenet161")
    assert "26,482,570" in row and "torch" in row


def test_models_lists_every_id_with_claimed_top1_and_availability():
    require_shared("mirror")
    result = runner.invoke(app, ["models"], env=WIDE)
    assert result.exit_code == 0, result.output
    ids = list_models()
    assert len(ids) == 19
    for model_id in ids:
        assert f"{WEIGHTS[model_id].claimed_top1:.1f}" in _row(result.output, model_id)
    row = _row(result.output, "cifar10/resnet20")
    assert "mirror" in row and "269,722" in row
    assert "download" in _row(result.output, "cifar10/vgg11_bn")  # LFS file, not in the mirror


def test_models_availability_follows_cache_and_mirror(monkeypatch):
    require_shared("mirror")
    get_model("cifar10/resnet20")  # copies the checkpoint into this test's empty cache
    result = runner.invoke(app, ["models", "--dataset", "cifar10"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "cache" in _row(result.output, "cifar10/resnet20")
    assert "mirror" in _row(result.output, "cifar10/resnet32")
    assert "gtsrb/" not in result.output
    monkeypatch.delenv("FAULTZOO_MIRROR")
    result = runner.invoke(app, ["models", "--dataset", "cifar10"], env=WIDE)
    assert "download" in _row(result.output, "cifar10/resnet32")


def test_models_ids_survive_narrow_output():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    for model_id in list_models():
        assert model_id in result.output, model_id


def test_eval_prints_the_library_top1():
    require_shared("mirror")
    data = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    result = runner.invoke(app, ["eval", "cifar10/resnet20", "--data", str(data), "--limit", "200"], env=WIDE)
    assert result.exit_code == 0, result.output
    selection = load_selection(data, dataset="cifar10", limit=200)
    expected = evaluate(get_model("cifar10/resnet20"), selection.x, selection.y, batch_size=128)
    text = " ".join(result.output.split())  # rich may wrap the summary line
    assert "(200 images)" in text
    assert f"top-1 {expected.top1:.2f}%" in text
    assert f"top-5 {expected.top5:.2f}%" in text
    assert expected.top1 == 91.0  # 182 of the first 200 exact test images


def test_unknown_model_exits_1_with_a_suggestion(monkeypatch, capsys):
    monkeypatch.delenv("FAULTZOO_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "cifar10/resnet21"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("error: Unknown model 'cifar10/resnet21'.")
    assert "Did you mean" in first and "'cifar10/resnet20'" in first
    assert "Traceback" not in err


def test_batch_size_one_is_a_usage_error(capsys):
    result = runner.invoke(app, ["eval", "cifar10/resnet20", "--batch-size", "1"], env=WIDE)
    assert result.exit_code == 2
    assert "--batch-size" in result.output
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "cifar10/resnet20", "--batch-size", "1"])
    assert exit_info.value.code == 2
    assert "--batch-size" in capsys.readouterr().err
