"""No traceback and no wrong advice reaches a user: unknown datasets, damaged images, file models named from
another folder, the commands that error messages suggest (each one is run), wording, and `faultzoo eval` on
every model form."""

from __future__ import annotations

import re
import shlex
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from faultzoo.faults import Fault, FaultList, read_fault_list, validate, write_fault_list
from faultzoo.inference import evaluate
from faultzoo.zoo.recipes import build_model, parse_model_spec
from tests.cli_runner import run_faultzoo

LAB_NETS = textwrap.dedent("""
    import torch
    from torch import nn


    class LabNet(nn.Module):
        def __init__(self, width=3):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, width, padding=width // 2)
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)).mean((2, 3)))


    def build():
        return LabNet()


    def build_wide():
        return LabNet(5)
""")
STEPS = "mean=0.5:0.5:0.5,std=0.25:0.25:0.25"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A folder holding lab_nets.py (two factories), the working directory of the test."""
    (tmp_path / "lab_nets.py").write_text(LAB_NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAULTZOO_DEBUG", raising=False)
    return tmp_path


def _images(folder, size=16, classes=("a", "b", "c"), per_class=2):
    rng = np.random.default_rng(0)
    for cls in classes:
        (folder / cls).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / cls / f"{k}.png")
    return folder


def _one_error(code: int, out: str, err: str, *, lines: int = 1) -> str:
    """The error of a failed command: one line (a list of problems: a head line and one line per problem), no
    traceback."""
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    shown = [line for line in err.splitlines() if line.strip() and not line.startswith("(set FAULTZOO_DEBUG")]
    assert len(shown) == lines and shown[0].startswith("error: "), err
    return "\n".join(shown)[len("error: "):]


def _suggested(message: str) -> list[list[str]]:
    """The `faultzoo ...` commands a message suggests, as argument lists (without `faultzoo`)."""
    commands = re.findall(r"`(faultzoo [^`]+)`", message)
    assert commands, message
    return [shlex.split(command)[1:] for command in commands]


def _text(out: str) -> str:
    return " ".join(out.split())  # rich wraps long lines at the terminal width


# ------------------------------------------------------------------------------------- 1. models --dataset

def test_models_of_an_unknown_dataset_is_one_clear_error(capsys):
    message = _one_error(*run_faultzoo(capsys, "models", "--dataset", "imagenet"))
    assert message == "Unknown dataset 'imagenet'. Valid datasets: cifar10, cifar100, gtsrb."


def test_models_takes_a_dataset_name_in_any_case(capsys):
    code, out, err = run_faultzoo(capsys, "models", "--dataset", "CIFAR10")
    assert code == 0 and "Traceback" not in err, err
    assert "cifar10/resnet20" in out and "cifar100/" not in out and "gtsrb/" not in out


# ------------------------------------------------------------------------------------- 2. image folders

def test_a_corrupt_image_is_named(lab, capsys):
    folder = _images(lab / "images")
    bad = folder / "b" / "bad.png"
    bad.write_bytes(b"this is no png")
    message = _one_error(*run_faultzoo(capsys, "eval", "lab_nets.py:build", "--data", f"imagefolder:{folder}",
                                       "--transform", STEPS))
    assert message.startswith(f"Cannot read image file {bad}: not an image PIL can read")


def test_image_folder_images_must_have_the_zoo_models_size(lab, capsys):
    folder = _images(lab / "images", size=64)
    message = _one_error(*run_faultzoo(capsys, "eval", "cifar10/resnet20", "--weights", "none",
                                       "--data", f"imagefolder:{folder}", "--transform", STEPS))
    assert message == (f"imagefolder:{folder} (after the transform) does not fit cifar10: images are 64×64, "
                       "cifar10 models expect 32×32.")
    code, out, err = run_faultzoo(capsys, "eval", "cifar10/resnet20", "--weights", "none",
                                  "--data", f"imagefolder:{folder}", "--transform", f"resize=32,{STEPS}")
    assert code == 0 and "(6 images)" in _text(out), err


# ------------------------------------------------------------------------------------- 3. file models

def test_a_list_for_a_file_model_fits_it_wherever_the_file_is_named_from(lab, capsys):
    code, out, err = run_faultzoo(capsys, "faultlist", "lab_nets.py:build", "--design", "network", "--n", "5",
                                  "-o", "lab_FL.csv")
    assert code == 0, err
    for spec in ("./lab_nets.py:build", f"{lab}/lab_nets.py:build"):
        model = build_model(parse_model_spec(spec, weights=None))
        fault_list = read_fault_list("lab_FL.csv", model, model_id=spec)
        validate(fault_list, model, model_id=spec)
        assert fault_list.meta.model_id == "lab_nets.py:build"
        code, out, err = run_faultzoo(capsys, "faultlist", "convert", "lab_FL.csv", "--model", spec, "-o", "copy.csv")
        assert code == 0, err


# ------------------------------------------------------------------------------------- 4. suggested commands

@pytest.mark.parametrize("fmt", ["faultzoo", "torch"])
def test_the_advice_for_repeated_faults_runs(lab, capsys, fmt):
    fault, other = Fault("conv.weight", (0, 1, 2, 0), (30,)), Fault("head.weight", (1, 2), (7,))
    write_fault_list(FaultList([fault, other, fault]), lab / "dup list.csv", format=fmt)
    message = _one_error(*run_faultzoo(capsys, "faultlist", "convert", "dup list.csv", "--model", "lab_nets.py:build",
                                       "-o", "x.csv"), lines=2)
    assert message.startswith("1 problem in dup list.csv:") and "repeats the fault of" in message
    [command] = _suggested(message)
    code, out, err = run_faultzoo(capsys, *command)
    assert code == 0, err
    unique = read_fault_list(lab / "dup list_unique.csv", build_model(parse_model_spec("lab_nets.py:build")))
    assert list(unique) == [fault, other] and unique.meta.source_format == fmt


def test_the_advice_for_a_list_of_another_model_runs(lab, capsys):
    assert run_faultzoo(capsys, "faultlist", "lab_nets.py:build", "--design", "network", "--n", "5",
                        "-o", "lab_FL.csv")[0] == 0
    message = _one_error(*run_faultzoo(capsys, "faultlist", "convert", "lab_FL.csv", "--model", "./lab_nets.py:build_wide",
                                       "-o", "x.csv"))
    assert "made for model 'lab_nets.py:build', not './lab_nets.py:build_wide'" in message
    [command] = _suggested(message)
    code, out, err = run_faultzoo(capsys, *command)
    assert code == 0, err
    code, out, err = run_faultzoo(capsys, "faultlist", "convert", command[-1], "--model", "./lab_nets.py:build_wide",
                                  "-o", "y.csv")
    assert code == 0, err


@pytest.mark.parametrize("args", [["eval", "cifar10/resnet21"], ["eval", "just-a-name"],
                                  ["faultlist", "cifar10/resnet21", "-o", "x.csv"]])
def test_the_advice_for_an_unknown_model_runs(lab, capsys, args):
    message = _one_error(*run_faultzoo(capsys, *args))
    for command in _suggested(message):
        code, out, err = run_faultzoo(capsys, *command)
        assert code == 0 and "cifar10/resnet20" in out, err


# ------------------------------------------------------------------------------------- 5. wording

def test_faultlist_of_one_fault_speaks_of_one_fault(lab, capsys):
    code, out, err = run_faultzoo(capsys, "faultlist", "lab_nets.py:build", "--design", "network", "--n", "1",
                                  "-o", "one.csv")
    assert code == 0, err
    assert not re.search(r"\b1 faults\b", _text(out + err))


def test_fewer_images_than_the_limit_are_explained(lab, capsys, caplog):
    rng = np.random.default_rng(0)
    np.savez(lab / "s.npz", x=rng.integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8), y=np.arange(1000) % 10)
    with caplog.at_level("WARNING"):
        code, out, err = run_faultzoo(capsys, "eval", "cifar10/resnet20", "--weights", "none", "--data", "s.npz",
                                      "--per-class", "3", "--limit", "50")
    assert code == 0 and "(30 images)" in _text(out), err
    assert "offers" not in caplog.text
    assert "30 images selected from npz file" in caplog.text and "3 per class of 10 classes (limit 50)" in caplog.text


# ------------------------------------------------------------------------------------- 6. eval takes every model form

def test_eval_a_torchvision_model_on_an_image_folder(lab, capsys):
    folder = _images(lab / "images", size=40)
    code, out, err = run_faultzoo(capsys, "eval", "torchvision:resnet18", "--num-classes", "10",
                                  "--data", f"imagefolder:{folder}", "--transform", f"resize=32,{STEPS}",
                                  "--batch-size", "4")
    assert code == 0 and "Traceback" not in err, err
    text = _text(out)
    assert "torchvision:resnet18 (torch, untrained) on imagefolder" in text and "(6 images)" in text


def test_eval_a_factory_file_with_weights_gives_the_library_accuracy(lab, capsys):
    folder = _images(lab / "images", per_class=4)
    torch.manual_seed(3)
    model = build_model(parse_model_spec("lab_nets.py:build", weights=None))
    torch.save(model.state_dict(), lab / "lab_net.pt")
    from faultzoo.data.custom import selection_from_imagefolder

    selection = selection_from_imagefolder(folder, STEPS)
    expected = evaluate(model, selection.x, selection.y, batch_size=128)
    code, out, err = run_faultzoo(capsys, "eval", f"{lab}/lab_nets.py:build", "--weights", "lab_net.pt",
                                  "--data", f"imagefolder:{folder}", "--transform", STEPS)
    assert code == 0, err
    text = _text(out)
    assert "(torch) on imagefolder" in text and "(12 images)" in text
    assert f"top-1 {expected.top1:.2f}%" in text and f"top-5 {expected.top5:.2f}%" in text


@pytest.mark.parametrize(("args", "expected"), [
    (["lab_nets.py:build"], "A model outside the zoo has no dataset of its own"),
    (["lab_nets.py:build", "--data", "imagefolder:images"], "--transform: data imagefolder:images needs a transform"),
    (["lab_nets.py:build", "--data", "cifar10", "--transform", STEPS], "applies to imagefolder:PATH data only"),
    (["cifar10/resnet20", "--num-classes", "10"], "--num-classes applies to torchvision models only"),
    (["lab_nets.py:nothing", "--data", "imagefolder:images", "--transform", STEPS], "has no attribute 'nothing'"),
])
def test_eval_refuses_what_does_not_fit_in_one_line(lab, capsys, args, expected):
    _images(lab / "images")
    assert expected in _one_error(*run_faultzoo(capsys, "eval", *args))
