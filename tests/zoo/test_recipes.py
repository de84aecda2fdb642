"""Models from outside the zoo: recipes parse, build strictly, and fail clearly."""

from __future__ import annotations

import textwrap

import pytest
import torch

from faultzoo.exceptions import CheckpointError, UnknownModelError
from faultzoo.zoo import state_sha256
from faultzoo.zoo.recipes import ModelRecipe, build_model, model_label, parse_model_spec

FACTORY = textwrap.dedent("""
    import torch

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    def build():
        torch.manual_seed(0)
        return Small()

    def needs_args(width):
        return Small()

    def not_a_model():
        return 42

    VALUE = 3
""")


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(FACTORY)
    return path


def test_parse_every_form(user_file):
    assert parse_model_spec("cifar10/resnet20") == ModelRecipe("zoo", "cifar10/resnet20", "default")
    assert parse_model_spec("torchvision:resnet18", num_classes=10) == ModelRecipe("torchvision", "resnet18", None, 10)
    assert parse_model_spec(f"{user_file}:build", weights="w.pth") == ModelRecipe("factory", f"{user_file}:build",
                                                                                  "w.pth")
    assert parse_model_spec("my_lab.models:build").kind == "factory"


@pytest.mark.parametrize(("spec", "message"), [
    ("cifar10/resnet21", "Did you mean .*'cifar10/resnet20'"),
    ("torchvision:resnet19", "torchvision has no classification model 'resnet19'"),
    ("just-a-name", "neither a zoo id"),
])
def test_bad_specs_are_named(spec, message):
    with pytest.raises(UnknownModelError, match=message):
        parse_model_spec(spec)


def test_factory_from_a_file_builds_the_same_state_twice(user_file):
    recipe = parse_model_spec(f"{user_file}:build")
    first, second = build_model(recipe), build_model(recipe)
    assert not first.training and state_sha256(first) == state_sha256(second)


def test_weights_load_strictly_and_mismatches_are_listed(user_file, tmp_path):
    model = build_model(parse_model_spec(f"{user_file}:build"))
    good = tmp_path / "good.pth"
    torch.save({k: v + 1 for k, v in model.state_dict().items()}, good)
    loaded = build_model(parse_model_spec(f"{user_file}:build", weights=str(good)))
    assert torch.equal(loaded.conv.weight, model.conv.weight + 1)
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": model.conv.weight, "extra.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match=r"3 missing keys \[conv.bias, fc.weight, fc.bias\]; 1 unexpected keys \[extra.weight\]"):
        build_model(parse_model_spec(f"{user_file}:build", weights=str(bad)))


@pytest.mark.parametrize(("function", "message"), [
    ("missing", "has no attribute 'missing'"),
    ("VALUE", "is a int, not a function"),
    ("needs_args", "requires width"),
    ("not_a_model", "returned a int, not a torch.nn.Module"),
])
def test_bad_factories_fail_clearly(user_file, function, message):
    with pytest.raises(UnknownModelError, match=message):
        build_model(parse_model_spec(f"{user_file}:{function}"))


def test_factory_that_does_not_import(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_package_xyz\n")
    with pytest.raises(UnknownModelError, match="importing .*broken.py failed: ModuleNotFoundError"):
        build_model(parse_model_spec(f"{broken}:build"))
    with pytest.raises(UnknownModelError, match="cannot import 'no_such_pkg_abc.models' \\(No module named"):
        build_model(parse_model_spec("no_such_pkg_abc.models:build"))


def test_torchvision_builder_untrained_with_classes():
    model = build_model(parse_model_spec("torchvision:mobilenet_v3_small", num_classes=10))
    assert model.classifier[-1].out_features == 10 and not model.training


@pytest.mark.parametrize(("spec", "label"), [
    ("lab_nets.py:build", "lab_nets.py:build"),
    ("./lab_nets.py:build", "lab_nets.py:build"),
    ("/home/me/nets/lab_nets.py:build", "lab_nets.py:build"),
    ("~/lab_nets.py:build", "lab_nets.py:build"),
    ("cifar10/resnet20", "cifar10/resnet20"),
    ("torchvision:resnet18", "torchvision:resnet18"),
    ("my_lab.nets:build", "my_lab.nets:build"),
    (None, None),
])
def test_model_label_names_a_file_model_by_file_and_function(spec, label):
    assert model_label(spec) == label
