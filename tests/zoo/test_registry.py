"""Registry, weights descriptors, download/cache path and strict checkpoint loading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import faultzoo
from faultzoo import _hub
from faultzoo.exceptions import (
    CheckpointError, IntegrityError, UnknownDatasetError, UnknownModelError, WeightsUnavailableError,
)
from faultzoo.zoo import WEIGHTS, Weights, get_model, list_models, model_info
from tests.conftest import require_shared
from tests.zoo.test_architectures import EXPECTED_IDS

# The seed README's "Available Models" tables (PyTorch top-1, percent).
SEED_TOP1 = {
    "cifar10/resnet20": 91.5, "cifar10/resnet32": 92.3, "cifar10/resnet44": 92.8, "cifar10/resnet56": 93.3,
    "cifar10/resnet110": 93.5, "cifar10/mobilenetv2": 91.7, "cifar10/vgg19_bn": 93.2, "cifar10/vgg16_bn": 93.5,
    "cifar10/vgg13_bn": 93.8, "cifar10/vgg11_bn": 91.3, "cifar10/densenet121": 93.2, "cifar10/densenet161": 93.1,
    "cifar10/googlenet": 92.2, "cifar100/resnet18": 76.2, "cifar100/densenet121": 78.7, "cifar100/googlenet": 76.3,
    "gtsrb/resnet20": 94.3, "gtsrb/densenet121": 96.5, "gtsrb/vgg11_bn": 95.5,
}


def test_list_models_is_the_seed_zoo():
    assert list_models() == sorted(EXPECTED_IDS)
    assert faultzoo.list_models("gtsrb") == ["gtsrb/densenet121", "gtsrb/resnet20", "gtsrb/vgg11_bn"]
    assert list_models(pattern="*/resnet2*") == ["cifar10/resnet20", "gtsrb/resnet20"]


def test_unknown_model_suggests_close_ids():
    with pytest.raises(UnknownModelError, match=r"Did you mean .*'cifar10/resnet20'"):
        get_model("cifar10/resnet21", weights=None)
    with pytest.raises(ValueError):  # also a ValueError for callers that catch builtins
        model_info("imagenet/resnet50")


@pytest.mark.parametrize("model_id", EXPECTED_IDS)
def test_weights_descriptor_schema(model_id):
    w = WEIGHTS[model_id]
    assert w.model_id == model_id
    assert w.claimed_top1 == SEED_TOP1[model_id]
    assert re.fullmatch(r"[0-9a-f]{8}([0-9a-f]{56})?", w.sha256), w.sha256
    assert w.sha256[:8] in w.filename and w.filename.startswith(model_id.replace("/", "_"))
    assert all(u.startswith("https://") for u in w.urls)
    assert w.urls[0].endswith(w.path)
    assert w.checkpoint_format in ("akamaster_th", "kuangliu_net", "state_dict")


def test_model_info_counts():
    info = model_info("cifar10/resnet20")
    assert (info.dataset, info.num_classes, info.input_size) == ("cifar10", 10, (3, 32, 32))
    assert info.num_weights == 268_336  # upstream listing header: elements of tensors with dim >= 2
    assert info.num_params == 269_722  # akamaster's published count for ResNet20 (0.27M)
    assert info.claimed_top1 == 91.5
    assert model_info("gtsrb/vgg11_bn").num_weights == 28_268_224
    assert model_info("gtsrb/vgg11_bn").input_size == (3, 50, 50)


def test_untrained_model_is_eval_and_has_provenance():
    model = get_model("cifar10/resnet20", weights=None)
    assert not model.training
    assert model.faultzoo.weights_source == "untrained"
    assert len(model.faultzoo.state_sha256) == 64


def test_default_weights_come_from_mirror_verified_and_cached(monkeypatch):
    require_shared("mirror")
    model = get_model("cifar10/resnet20")
    cached = _hub.weights_dir() / WEIGHTS["cifar10/resnet20"].filename
    assert cached.is_file()
    assert model.faultzoo.weights_file_sha256 == WEIGHTS["cifar10/resnet20"].sha256
    assert WEIGHTS["cifar10/resnet20"].availability() == "cache"
    # Served from the cache once the mirror is gone.
    monkeypatch.delenv("FAULTZOO_MIRROR")
    again = get_model("cifar10/resnet20")
    assert again.faultzoo.state_sha256 == model.faultzoo.state_sha256
    assert torch.equal(again.linear.weight, model.linear.weight)


def test_resnet56_found_through_its_alternate_url():
    require_shared("mirror")
    model = get_model("cifar10/resnet56")  # dnn-benchmarks deleted it; akamaster has the same bytes
    assert model.faultzoo.weights_file_sha256 == WEIGHTS["cifar10/resnet56"].sha256


def test_hash_mismatch_caches_nothing():
    require_shared("mirror")
    good = WEIGHTS["cifar10/resnet20"]
    bad = Weights(**{**good.__dict__, "sha256": "0" * 64})
    with pytest.raises(IntegrityError, match=r"expected sha256 0{64}, found 12fca82f"):
        get_model("cifar10/resnet20", weights=bad)
    leftovers = list(_hub.weights_dir().iterdir()) if _hub.weights_dir().exists() else []
    assert leftovers == []


def test_corrupt_cached_file_is_replaced():
    require_shared("mirror")
    w = WEIGHTS["cifar10/resnet20"]
    _hub.weights_dir().mkdir(parents=True, exist_ok=True)
    (_hub.weights_dir() / w.filename).write_bytes(b"truncated")
    model = get_model("cifar10/resnet20")
    assert model.faultzoo.weights_file_sha256 == w.sha256


def test_no_source_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("FAULTZOO_MIRROR", raising=False)
    with pytest.raises(WeightsUnavailableError, match=r"cifar10_vgg11_bn-b92b952e.pt.*FAULTZOO_OFFLINE"):
        get_model("cifar10/vgg11_bn")


def test_user_checkpoint_paths_load_strictly(tmp_path):
    source = get_model("cifar10/resnet20", weights=None)
    state = source.state_dict()
    raw = tmp_path / "raw.pt"
    torch.save(state, raw)
    wrapped = tmp_path / "wrapped.th"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "best_prec1": 1.0}, wrapped)
    for path in (raw, wrapped):
        loaded = get_model("cifar10/resnet20", weights=path)
        assert loaded.faultzoo.state_sha256 == source.faultzoo.state_sha256
        assert loaded.faultzoo.weights_source == str(path.resolve())


def test_checkpoint_with_missing_extra_and_misshapen_keys(tmp_path):
    state = get_model("cifar10/resnet20", weights=None).state_dict()
    del state["layer1.0.conv1.weight"]
    state["layer9.conv.weight"] = torch.zeros(1)
    state["linear.weight"] = torch.zeros(7, 64)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        get_model("cifar10/resnet20", weights=path)
    message = str(err.value)
    assert "missing keys [layer1.0.conv1.weight]" in message
    assert "unexpected keys [layer9.conv.weight]" in message
    assert "linear.weight: expected (10, 64), found (7, 64)" in message


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": Path("/")}}, path)  # an arbitrary object: not allowed by weights_only
    with pytest.raises(CheckpointError, match="Cannot read checkpoint"):
        get_model("cifar10/resnet20", weights=path)


def test_missing_checkpoint_path_is_explained(tmp_path):
    with pytest.raises(UnknownModelError, match="neither 'default', None nor an existing checkpoint"):
        get_model("cifar10/resnet20", weights=tmp_path / "nope.pt")


def test_list_models_takes_a_dataset_in_any_case_and_refuses_unknown_ones():
    assert list_models("CIFAR10") == list_models("cifar10") == [i for i in list_models() if i.startswith("cifar10/")]
    with pytest.raises(UnknownDatasetError, match=r"Unknown dataset 'imagenet'\. Valid datasets: cifar10, cifar100, "
                                                  r"gtsrb\."):
        list_models("imagenet")
    with pytest.raises(UnknownDatasetError, match="Did you mean 'cifar10'"):
        list_models("cifar")
