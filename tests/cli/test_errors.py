"""Bad input reaches people as one clear line: no traceback, nothing eaten, nothing half-written.

Each case runs the real ``faultzoo`` entry point (``main``) in-process and checks the exit status,
that the message names the problem, and that no traceback was printed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faultzoo.cli import app
from tests.cli_runner import run_faultzoo
from tests.conftest import require_shared

EXACT = ("datasets", "cifar10", "test-first1000-exact.npz")


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """Exit status and stderr+stdout of ``faultzoo ARGS``."""
    code, out, err = run_faultzoo(capsys, *args)
    text = out + err
    assert "Traceback" not in text, text
    return code, " ".join(text.split())  # unwrap the console's line breaks


def _resnet32_checkpoint() -> Path:
    mirror = require_shared("mirror")
    return next(mirror.rglob("resnet32-*.th"))


def test_bracketed_text_in_errors_is_printed(capsys):
    npz = require_shared(*EXACT)
    code, text = run_cli(capsys, "eval", "cifar10/resnet20", "--weights", str(_resnet32_checkpoint()), "--data",
                         str(npz), "--limit", "4")
    assert code == 1
    assert "60 unexpected keys [layer1.3.conv1.weight, layer1.3.bn1.weight" in text, text


@pytest.mark.parametrize(("content", "expected"), [
    (b"101\n", "is not a PyTorch checkpoint (4 bytes"),
    (b"", "is empty (0 bytes)"),
])
def test_weights_that_are_not_a_checkpoint(capsys, tmp_path, content, expected):
    npz = require_shared(*EXACT)
    weights = tmp_path / "text.th"
    weights.write_bytes(content)
    code, text = run_cli(capsys, "eval", "cifar10/resnet20", "--weights", str(weights), "--data", str(npz))
    assert code == 1 and expected in text, text


def test_npz_that_is_text_or_empty(capsys, tmp_path):
    text_file = tmp_path / "t.npz"
    text_file.write_text("hello\n")
    code, text = run_cli(capsys, "eval", "cifar10/resnet20", "--weights", "none", "--data", str(text_file))
    assert code == 1 and "is not an .npz archive" in text and "allow_pickle" not in text, text
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 32, 32, 3), np.uint8), y=np.zeros(0, np.int64))
    code, text = run_cli(capsys, "eval", "cifar10/resnet20", "--weights", "none", "--data", str(empty))
    assert code == 1 and "holds no images" in text, text


def test_unwritable_cache_and_a_folder_in_the_cache(capsys, tmp_path, monkeypatch):
    npz = require_shared(*EXACT)
    require_shared("mirror")
    monkeypatch.setenv("FAULTZOO_HOME", "/proc/faultzoo-cache")  # not creatable, even for root
    code, text = run_cli(capsys, "eval", "cifar10/resnet20", "--data", str(npz), "--limit", "4")
    assert code == 1 and "Cannot write in the weights cache" in text and "/proc/faultzoo-cache" in text, text
    monkeypatch.setenv("FAULTZOO_HOME", str(tmp_path))
    (tmp_path / "weights" / "cifar10_resnet20-12fca82f.th").mkdir(parents=True)
    code, text = run_cli(capsys, "eval", "cifar10/resnet20", "--data", str(npz), "--limit", "4")
    assert code == 1 and "holds a folder where the file" in text, text


def test_fault_list_for_another_model_is_recognised_at_once(capsys, tmp_path):
    vgg_list = tmp_path / "vgg_FL.csv"
    assert run_cli(capsys, "faultlist", "cifar10/vgg11_bn", "--format", "torch", "-o", str(vgg_list))[0] == 0
    start = time.perf_counter()
    code, text = run_cli(capsys, "faultlist", "convert", str(vgg_list), "--model", "cifar10/resnet20", "--to",
                         "faultzoo", "-o", str(tmp_path / "out.csv"))
    seconds = time.perf_counter() - start
    assert code == 1
    assert "none of its 16,642 rows' layers exist in cifar10/resnet20" in text, text
    assert "its layers match cifar10/vgg11_bn" in text, text
    assert not (tmp_path / "out.csv").exists()
    assert seconds < 20, f"took {seconds:.1f} s (a row-by-row fuzzy search took half a minute)"


def test_empty_work_is_refused(capsys, tmp_path):
    header_only = tmp_path / "hdr.csv"
    header_only.write_text("Injection,Layer,TensorIndex,Bit\n")
    code, text = run_cli(capsys, "faultlist", "convert", str(header_only), "--model", "cifar10/resnet20", "--to",
                         "faultzoo", "-o", str(tmp_path / "out.csv"))
    assert code == 1 and "holds no faults" in text, text
    code, text = run_cli(capsys, "faultlist", "cifar10/resnet20", "--design", "network", "--n", "0", "-o",
                         str(tmp_path / "zero.csv"))
    assert code == 1 and "yields no fault" in text and not (tmp_path / "zero.csv").exists(), text


def test_duplicate_fault_error_suggests_a_cli_option_and_dedupe_works(capsys, tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text('Injection,Layer,TensorIndex,Bit\n0,conv1,"(0, 0, 0, 0)",3\n1,conv1,"(0, 0, 0, 0)",3\n'
                   '2,linear,"(1, 2)",31\n')
    out = tmp_path / "unique.csv"
    code, text = run_cli(capsys, "faultlist", "convert", str(dup), "--model", "cifar10/resnet20", "--to", "torch",
                         "-o", str(out))
    assert code == 1 and "--dedupe" in text and "allow_duplicate_faults" not in text, text
    code, text = run_cli(capsys, "faultlist", "convert", str(dup), "--model", "cifar10/resnet20", "--to", "torch",
                         "--dedupe", "-o", str(out))
    assert code == 0, text
    assert out.read_text().splitlines()[1:] == ['0,conv1,"(0, 0, 0, 0)",3', '2,linear,"(1, 2)",31']


def test_flag_of_another_design_is_refused_from_the_design_table(capsys, tmp_path):
    code, text = run_cli(capsys, "faultlist", "cifar10/resnet20", "--design", "layer", "--n", "5", "-o",
                         str(tmp_path / "x.csv"))
    assert code == 2 and "--n does not apply to --design layer" in text and "--error" in text, text


def test_version_and_python_m():
    from faultzoo import __version__

    done = subprocess.run([sys.executable, "-m", "faultzoo", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"faultzoo {__version__}"


def test_help_shows_flags_as_flags_and_ends_with_an_example():
    from typer.testing import CliRunner

    runner = CliRunner()
    commands = [["models"], ["eval"], ["faultlist", "generate"], ["faultlist", "convert"], ["campaign"]]
    commands += [[c.name] for c in app.registered_commands if c.name not in ("models", "eval", "campaign")]
    for command in commands:
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (command, result.output)
        assert "<bool>" not in result.output, command
        epilog = result.output.split("Example", 1)
        assert len(epilog) == 2, (command, "no examples at the end of the help")
        assert any(line.strip().startswith("faultzoo ") for line in epilog[1].splitlines()), command


# --------------------------------------------------------------------------- campaigns


@pytest.fixture(scope="module")
def small_list(tmp_path_factory) -> Path:
    from faultzoo import get_model
    from faultzoo.faults import sample_network, write_fault_list

    path = tmp_path_factory.mktemp("fl") / "rn20_net.csv"
    write_fault_list(sample_network(get_model("cifar10/resnet20", weights=None), n=12, seed=1,
                                    model_id="cifar10/resnet20"), path)
    return path


def _campaign(capsys, small_list, out, *extra):
    npz = require_shared(*EXACT)
    require_shared("mirror")
    return run_cli(capsys, "campaign", "cifar10/resnet20", "--faults", str(small_list), "--data", str(npz),
                   "--limit", "8", "--batch-size", "4", "-o", str(out), *extra)


def test_bad_campaign_arguments_fail_before_any_work(capsys, tmp_path, small_list):
    (tmp_path / "afile").write_text("x")
    code, text = _campaign(capsys, small_list, tmp_path / "afile")
    assert code == 1 and "is an existing file, not a folder" in text, text
    code, text = _campaign(capsys, small_list, tmp_path / "o1", "--device", "tpu")
    assert code == 1 and "--device tpu: not a device" in text and not (tmp_path / "o1").exists(), text
    code, text = _campaign(capsys, small_list, tmp_path / "o2", "--fault-sample", "50")
    assert code == 1 and "--fault-sample 50: asks for more faults than the 12" in text, text
    assert not (tmp_path / "o2").exists()
    code, text = _campaign(capsys, small_list, "/proc/faultzoo-out")
    assert code == 1 and "Cannot write in the output folder" in text, text


def test_records_say_what_ran_and_outcomes_are_never_silently_missing(capsys, tmp_path, small_list):
    import json

    out = tmp_path / "run"
    code, text = _campaign(capsys, small_list, out, "--fault-sample", "5", "--fault-seed", "3")
    assert code == 0, text
    provenance = json.loads((out / "provenance.json").read_text())
    subset = provenance["fault_list"]["selection"]
    assert subset == {"how": "simple random sample", "fault_sample": 5, "fault_seed": 3, "of": 12, "faults": 5}
    assert provenance["fault_list"]["meta"]["design_params"]["run_subset"] == subset
    assert Path(provenance["fault_list"]["source"]).is_absolute()
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "task_seconds_per_fault"
    code, text = _campaign(capsys, small_list, out, "--fault-sample", "5", "--fault-seed", "3", "--keep-outcomes")
    assert code == 1 and "stored without per-image outcomes" in text, text
    assert (out / "results.csv").is_file()  # a refused resume keeps the finished campaign's exports


def test_a_finished_campaign_in_a_read_only_folder_is_readable(capsys, tmp_path, small_list):
    out = tmp_path / "run"
    assert _campaign(capsys, small_list, out)[0] == 0
    view = tmp_path / "view"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(out), str(view)], capture_output=True).returncode == 0 and \
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True).returncode == 0
    if not mounted:
        subprocess.run(["umount", str(view)], capture_output=True)
        pytest.skip("cannot make a read-only bind mount here (needs root and mount permission)")
    try:
        code, text = _campaign(capsys, small_list, view)
        # rich wraps long paths at the terminal width: compare without the white space
        assert code == 0 and "12 faults" in text and str(view / "results.csv") in "".join(text.split()), text
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)
