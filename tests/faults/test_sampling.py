"""Sample-size formula, allocations, and the properties of each design."""

from __future__ import annotations

import math

import pytest

from faultzoo.exceptions import FaultError
from faultzoo.faults import (
    dnn_benchmarks_fault_list,
    exhaustive,
    make_fault_list,
    sample_layer_bits,
    sample_layers,
    sample_network,
    sample_size,
)
from faultzoo.faults.sampling import allocate, confidence_from_t, t_from_confidence
from faultzoo.faults.targets import select_targets


# Hand-computed: n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p))); with e=0.01, t=2.58, p=0.5 the
# constant t^2 p (1-p) / e^2 is 2.58^2 * 0.25 / 1e-4 = 16641.
@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"population": 1000}, 943),  # 1000 / (1 + 999/16641) = 943.37
    ({"population": 29_559_808}, 16632),  # 64 x resnet32 weights: 16631.64
    ({"population": 1_800_515_584}, 16641),  # 64 x vgg11_bn weights: 16640.85
    ({"population": 10_000, "error": 0.05, "t": 1.96}, 370),  # 10000 / (1 + 9999/384.16) = 369.98
    ({"population": 10_000, "error": 0.05, "confidence": 0.95}, 370),
    ({"population": 10_000, "error": 0.05, "t": 1.96, "p": 0.1}, 136),  # 3.8416*0.09/0.0025 = 138.2976: 136.43
    ({"population": 1}, 1),
    ({"population": 0}, 0),
])
def test_sample_size_hand_values(kwargs, expected):
    assert sample_size(**kwargs) == expected


def test_t_and_confidence():
    assert t_from_confidence(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert t_from_confidence(0.99) == pytest.approx(2.575829, abs=1e-6)
    assert confidence_from_t(2.58) == pytest.approx(0.990119, abs=1e-6)
    with pytest.raises(FaultError, match="either t or confidence"):
        sample_size(100, t=2.0, confidence=0.9)
    for bad in ({"error": 0}, {"p": 1.0}, {"confidence": 1.0}, {"t": -1}):
        with pytest.raises(FaultError):
            sample_size(100, **bad)


def test_allocate_sums_and_respects_caps_and_minimum():
    assert allocate(10, [1, 1, 1], [100, 100, 100]) == [4, 3, 3]  # largest remainder, ties by order
    assert allocate(10, [8, 1, 1], [2, 100, 100]) == [2, 4, 4]  # excess of a capped stratum is shared
    counts = allocate(7, [1000, 1, 1, 0], [1000, 5, 5, 5], minimum=1)
    assert counts == [4, 1, 1, 1] and sum(counts) == 7
    assert allocate(2, [1, 1, 1, 1], [9, 9, 9, 9], minimum=1) == [1, 1, 1, 1]  # minimum wins over n
    assert sum(allocate(10**6, [1, 2], [3, 4])) == 7  # never above the population
    weights = [3.7, 1.2, 0.1, 9.9, 4.4]
    for total in range(0, 40):
        counts = allocate(total, weights, [50] * 5)
        assert sum(counts) == total
        assert all(abs(c - total * w / sum(weights)) < 1 for c, w in zip(counts, weights))


def _keys(fl):
    return [(f.param, f.index, f.bits) for f in fl]


def test_network_design(zoo_model):
    model = zoo_model("cifar10/resnet20")
    fl = sample_network(model, error=0.02, seed=3, model_id="cifar10/resnet20")
    weights = sum(t.numel for t in select_targets(model))
    assert fl.meta.population_size == 32 * weights
    assert fl.meta.sample_size == sample_size(32 * weights, 0.02) == len(fl)
    assert sum(s.sample_size for s in fl.meta.strata) == len(fl)
    assert sum(s.population for s in fl.meta.strata) == fl.meta.population_size
    assert len(set(_keys(fl))) == len(fl)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert all(all(0 <= i < d for i, d in zip(f.index, shapes[f.param])) and 0 <= f.bit < 32 for f in fl)
    order = {n: k for k, n in enumerate(shapes)}
    assert _keys(fl) == sorted(_keys(fl), key=lambda k: (order[k[0]], k[1], k[2]))
    assert fl.fingerprint() == sample_network(model, error=0.02, seed=3).fingerprint()
    assert fl.fingerprint() != sample_network(model, error=0.02, seed=4).fingerprint()
    assert fl.meta.design == "network" and fl.meta.seed == 3 and fl.meta.design_params["error"] == 0.02


def test_network_filters_and_kind(zoo_model):
    model = zoo_model("cifar10/resnet20")
    fl = sample_network(model, n=300, layers="layer3.*", bits="23-31", kind="stuck-at-1", seed=1)
    assert len(fl) == 300 and fl.meta.layers == ("layer3.*",) and fl.meta.bits == tuple(range(23, 32))
    assert all(f.param.startswith("layer3.") and 23 <= f.bit <= 31 and f.kind.value == "stuck-at-1" for f in fl)
    with pytest.raises(FaultError, match="match no weights tensor"):
        sample_network(model, layers="layer9.*")
    with pytest.raises(FaultError, match="must lie in 0..432"):
        sample_network(model, layers="conv1", bits="31", n=10**6)


def test_layer_design_gives_each_layer_its_own_sample(zoo_model):
    model = zoo_model("cifar10/resnet20")
    fl = sample_layers(model, error=0.05, confidence=0.95, bits="30-31")
    targets = select_targets(model)
    assert [s.params[0] for s in fl.meta.strata] == [t.param for t in targets]
    for stratum, target in zip(fl.meta.strata, targets):
        assert stratum.population == 2 * target.numel
        assert stratum.sample_size == sample_size(2 * target.numel, 0.05, confidence=0.95)
        assert sum(f.param == target.param for f in fl) == stratum.sample_size
    assert len(fl) == fl.meta.sample_size == sum(s.sample_size for s in fl.meta.strata)
    assert len(set(_keys(fl))) == len(fl)


@pytest.mark.parametrize("allocation", ["proportional", "neyman"])
def test_layer_bit_design_allocations(zoo_model, allocation):
    model = zoo_model("cifar10/resnet20")
    prior = {31: 0.5, 30: 0.5} if allocation == "neyman" else None
    fl = sample_layer_bits(model, error=0.02, allocation=allocation, prior={**(prior or {}), **{b: 0.01 for b in
                           range(23, 30)}} if prior else None, bits="23-31", seed=5)
    strata = fl.meta.strata
    assert len(strata) == 20 * 9 and all(len(s.bits) == 1 for s in strata)
    n = fl.meta.sample_size
    assert n == sample_size(fl.meta.population_size, 0.02)
    assert all(s.sample_size >= 1 for s in strata)  # min_per_stratum
    assert n <= len(fl) == sum(s.sample_size for s in strata) <= n + len(strata)
    for s in strata:
        assert sum(f.param == s.params[0] and f.bit == s.bits[0] for f in fl) == s.sample_size
    if allocation == "neyman":  # sqrt(.5*.5)=0.5 vs sqrt(.01*.99)=0.0995: about 5x more faults on bits 30-31
        big = sum(s.sample_size for s in strata if s.bits[0] >= 30)
        small = sum(s.sample_size for s in strata if s.bits[0] < 30)
        assert big / 2 > 4 * small / 7
    else:
        conv = next(s for s in strata if s.params[0] == "layer3.2.conv2.weight")
        assert abs(conv.sample_size - n * conv.population / fl.meta.population_size) <= 1


def test_layer_bit_rejects_degenerate_priors(zoo_model):
    with pytest.raises(FaultError, match="Neyman allocation is undefined"):
        sample_layer_bits(zoo_model("cifar10/resnet20"), allocation="neyman", prior=0.0)
    with pytest.raises(FaultError, match="Unknown allocation"):
        sample_layer_bits(zoo_model("cifar10/resnet20"), allocation="optimal")


def test_exhaustive(tiny):
    fl = exhaustive(tiny, layers="fc", bits="30-31")
    assert len(fl) == 5 * 4 * 2 == fl.meta.population_size
    assert len(set(_keys(fl))) == len(fl) and fl.meta.seed is None
    fl = exhaustive(tiny, targets="bias,bn,bn-stats", bits="31")
    assert {f.param for f in fl} == {"conv.bias", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean",
                                     "bn.running_var"}
    with pytest.raises(FaultError, match="above max_faults=100"):
        exhaustive(tiny, max_faults=100)


def test_dnn_benchmarks_structure(zoo_model):
    model = zoo_model("cifar10/resnet20")
    fl = dnn_benchmarks_fault_list(model)
    layers = [(n, p.numel()) for n, p in model.named_parameters() if p.dim() >= 2]
    total = sum(k for _, k in layers)
    assert fl.meta.population_size == 64 * total
    assert [s.sample_size for s in fl.meta.strata] == [round(k * fl.meta.sample_size / total) for _, k in layers]
    assert len(fl) == sum(s.sample_size for s in fl.meta.strata)
    assert len(set(_keys(fl))) == len(fl)
    assert fl == dnn_benchmarks_fault_list(model)
    assert make_fault_list(model, "dnn-benchmarks").fingerprint() == fl.fingerprint()
    with pytest.raises(FaultError, match="Unknown design 'upstream'"):
        make_fault_list(model, "upstream")


def test_targets_groups(tiny):
    groups = {t.param: t.group for t in select_targets(tiny, "all")}
    assert groups == {"conv.weight": "weights", "conv.bias": "bias", "bn.weight": "bn", "bn.bias": "bn",
                      "bn.running_mean": "bn-stats", "bn.running_var": "bn-stats", "fc.weight": "weights",
                      "fc.bias": "bias"}
    with pytest.raises(FaultError, match="Unknown target group"):
        select_targets(tiny, "biases")
    assert math.prod(select_targets(tiny, layers="con*")[0].shape) == 108


def test_scalar_tensors_are_targets_too():
    import torch
    from torch import nn

    from faultzoo.faults import injected

    model = nn.Module()
    model.bias = nn.Parameter(torch.tensor(1.0))
    fl = exhaustive(model, targets="bias", bits="30-31")
    assert [(f.param, f.index, f.bit) for f in fl] == [("bias", (), 30), ("bias", (), 31)]
    with injected(model, fl[1]):
        assert model.bias.item() == -1.0
    assert model.bias.item() == 1.0
    assert len(sample_network(model, targets="bias", n=5)) == 5
