"""The fast engine gives the reference engine's outcome for every (fault, image), on every graph shape."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from faultzoo.backends.engines import engine_entry, engine_names, make_engine
from faultzoo.backends.torch.fast import FastEngine
from faultzoo.backends.golden import golden_run
from faultzoo.outcome import Outcome
from faultzoo.data import load_selection
from faultzoo.exceptions import FaultzooError
from faultzoo.faults import Fault, FaultKind
from faultzoo.inference import batch_slices
from faultzoo.zoo import get_model
from tests.conftest import require_shared


def random_faults(model: nn.Module, count: int, seed: int, *, params=None, kinds=(FaultKind.BITFLIP,),
                  multi_bit: bool = False) -> list[tuple[int, Fault]]:
    """Faults spread over the given tensors (default: every conv/linear weight) and over all 32 bits."""
    rng = random.Random(seed)
    tensors = [(n, p) for n, p in model.named_parameters() if (params is None and p.dim() >= 2)
               or (params is not None and n in params)]
    faults = []
    for i in range(count):
        name, tensor = tensors[i % len(tensors)] if i < len(tensors) else rng.choice(tensors)
        index = tuple(rng.randrange(s) for s in tensor.shape)
        bits = (i % 32,) if not multi_bit else tuple(sorted(rng.sample(range(32), 2)))
        faults.append((i, Fault(name, index, bits, kinds[i % len(kinds)])))
    return faults


def assert_same_outcomes(fast: dict, ref: dict) -> None:
    assert fast.keys() == ref.keys()
    for fid in ref:
        for field in ("codes", "top1", "nonfinite"):
            got, want = getattr(fast[fid], field), getattr(ref[fid], field)
            assert np.array_equal(got, want), (
                f"fault {fid}: {field} differs on {int((got != want).sum())} images "
                f"(fast {np.bincount(fast[fid].codes, minlength=3)}, reference {np.bincount(ref[fid].codes, minlength=3)})")


def compare_engines(model, x, faults, *, batch_size=16, **options):
    golden = golden_run(model, x, torch.zeros(len(x), dtype=torch.long), batch_size=batch_size)
    fast = make_engine("torch", "fast", model, x, golden, batch_size=batch_size, params=[f.param for _, f in faults], **options)
    reference = make_engine("torch", "reference", model, x, golden, batch_size=batch_size)
    fast_out = fast.run(faults)
    assert_same_outcomes(fast_out, reference.run(faults))
    return fast, fast_out


@pytest.mark.slow  # about 2 minutes on one core
def test_resnet20_real_weights_500_images_all_layers_all_bits():
    """The issue's exactness test: real weights, random faults over every layer and all 32 bits, >= 500 images."""
    require_shared("mirror")
    data = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    model = get_model("cifar10/resnet20")
    selection = load_selection(str(data), dataset="cifar10", limit=512)
    faults = random_faults(model, 40, seed=1)
    assert {f.param for _, f in faults} == {n for n, p in model.named_parameters() if p.dim() >= 2}
    assert {f.bit for _, f in faults} >= set(range(32)) - {f.bit for _, f in faults[32:]} | set(range(32))
    golden = golden_run(model, selection.x, selection.y, batch_size=128)
    fast = make_engine("torch", "fast", model, selection.x, golden, batch_size=128, params=[f.param for _, f in faults])
    got = fast.run(faults)
    want = make_engine("torch", "reference", model, selection.x, golden, batch_size=128).run(faults)
    assert_same_outcomes(got, want)
    described = fast.describe()
    assert described["fallback"] is None
    assert described["checks"]["graph_equals_eager"] and described["checks"]["rows_independent"]
    codes = np.concatenate([c.codes for c in got.values()])
    assert set(np.unique(codes)) == {Outcome.MASKED, Outcome.NON_CRITICAL, Outcome.CRITICAL}  # all classes occur


@pytest.mark.parametrize("model_id", ["cifar10/vgg11_bn", "cifar10/mobilenetv2", "cifar100/densenet121",
                                      "cifar10/googlenet", "cifar100/googlenet", "cifar100/resnet18",
                                      "gtsrb/vgg11_bn"])
def test_other_graph_shapes_untrained(model_id):
    torch.manual_seed(0)
    model = get_model(model_id, weights=None)
    size = 50 if model_id.startswith("gtsrb") else 32
    x = torch.randn(6, 3, size, size)
    compare_engines(model, x, random_faults(model, 12, seed=2), batch_size=4)


def test_bias_batchnorm_stuck_at_and_multi_bit_faults():
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    x = torch.randn(10, 3, 32, 32)
    params = ["conv1.weight", "bn1.weight", "bn1.bias", "layer2.0.bn2.weight", "linear.bias", "linear.weight",
              "layer3.2.conv2.weight"]
    faults = random_faults(model, 28, seed=3, params=params,
                           kinds=(FaultKind.BITFLIP, FaultKind.STUCK_AT_0, FaultKind.STUCK_AT_1))
    faults += [(100 + i, f) for i, (_, f) in enumerate(random_faults(model, 6, seed=4, multi_bit=True))]
    fast, _ = compare_engines(model, x, faults, batch_size=4)
    layers = fast.describe()["checks"]["layers"]
    assert layers["bn1.weight"] == "module" and layers["conv1.weight"] == "stacked"


def test_noop_stuck_at_fault_is_masked_everywhere():
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    w = model.conv1.weight.detach()
    sign_set = tuple(int(i) for i in (w < 0).nonzero()[0])
    faults = [(0, Fault("conv1.weight", sign_set, (31,), FaultKind.STUCK_AT_1))]  # sign bit already 1
    _, out = compare_engines(model, torch.randn(6, 3, 32, 32), faults, batch_size=4)
    assert (out[0].codes == Outcome.MASKED).all()


class BatchDependent(nn.Module):
    """A model whose rows depend on each other (batch statistics): the fast engine must notice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = self.conv(x)
        h = h - h.mean(dim=0, keepdim=True)
        return self.fc(h.mean(dim=(2, 3)))


def test_batch_dependent_model_keeps_the_golden_batches():
    torch.manual_seed(0)
    model = BatchDependent().eval()
    x = torch.randn(13, 3, 8, 8)
    fast, _ = compare_engines(model, x, random_faults(model, 10, seed=5), batch_size=4)
    described = fast.describe()
    assert described["checks"]["rows_independent"] is False
    assert described["batch_aligned"] and described["fallback"] is None
    assert set(described["checks"]["layers"].values()) == {"aligned"}


def test_traced_graph_that_differs_from_eager_falls_back(monkeypatch):
    from faultzoo.backends.torch import graph

    original = graph.prepare_graph

    def perturbed(model):
        gm = original(model)
        with torch.no_grad():
            gm.linear.bias.add_(1e-3)  # the graph now computes another function than the eager model
        return gm

    monkeypatch.setattr("faultzoo.backends.torch.fast.prepare_graph", perturbed)
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    fast, _ = compare_engines(model, torch.randn(6, 3, 32, 32), random_faults(model, 5, seed=7), batch_size=4)
    assert fast.describe()["fallback"] == "the traced graph's logits differ from the eager model's"


def test_fast_engine_uses_several_chunks_when_memory_is_short():
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    x = torch.randn(20, 3, 32, 32)
    fast, _ = compare_engines(model, x, random_faults(model, 10, seed=6), batch_size=4, chunk_images=8)
    assert isinstance(fast, FastEngine) and fast.maps.geometry == [(0, 8), (8, 16), (16, 20)]


@pytest.mark.parametrize("n,batch", [(1, 4), (5, 4), (9, 4), (8, 4), (130, 128), (3, 2)])
def test_batch_slices_never_leave_a_single_row(n, batch):
    slices = batch_slices(n, batch)
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))
    assert n == 1 or all(s.stop - s.start >= 2 for s in slices)
    with pytest.raises(ValueError):
        batch_slices(n, 1)


def test_stacked_conv_witness_mismatch_switches_the_layer_to_module_mode(monkeypatch):
    """A stacked convolution whose golden witness channel differs is not trusted: the layer is recomputed
    whole, and outcomes still equal the reference's."""
    from faultzoo.backends.torch import fast_layer

    original = fast_layer.stacked_rows_output
    calls = {"n": 0}

    def drifting(module, kind, inp, weight_rows, bias_rows):
        out = original(module, kind, inp, weight_rows, bias_rows)
        calls["n"] += 1
        if len(inp) > 8:  # the campaign's stacked convs (all images), not the start-up checks on 8 rows
            out[:, 0] = torch.nextafter(out[:, 0], torch.full_like(out[:, 0], float("inf")))
        return out

    monkeypatch.setattr(fast_layer, "stacked_rows_output", drifting)
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    x = torch.randn(24, 3, 32, 32)
    faults = random_faults(model, 6, seed=11, params=["layer2.0.conv1.weight", "layer3.1.conv2.weight"])
    fast, _ = compare_engines(model, x, faults, batch_size=8)
    layers = fast.describe()["checks"]["layers"]
    assert calls["n"] > 0
    assert layers["layer2.0.conv1.weight"].startswith("module: a stacked convolution's witness channel differed")
    assert layers["layer3.1.conv2.weight"].startswith("module:")


def test_unproductive_check_points_are_dropped_and_outcomes_stay_exact():
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    x = torch.randn(600, 3, 32, 32)
    faults = random_faults(model, 8, seed=12, params=["layer3.0.conv1.weight"])
    fast, _ = compare_engines(model, x, faults, batch_size=64)
    stats = {step.name: counts for (node, step), counts in fast.downstream.check_stats.items()}
    # Of the full-size maps, only the ReLU before the next conv is checked for a conv1 fault (the last
    # point before the perturbation is mixed); after it only small tensors (pooled features), never the
    # logits themselves. A point stops being checked once it masked under 2 % of its first 256 rows.
    small = {n.name for n, size in fast.plan.row_bytes.items() if size <= 4096}
    assert "layer3_0_relu1" in stats and set(stats) - {"layer3_0_relu1"} <= small - {"linear"}
    checked, masked = stats["layer3_0_relu1"]
    assert checked >= 256
    program = fast.programs["layer3.0.conv1.weight"]
    step = next(s for s in program.steps if s.name == "layer3_0_relu1")
    assert fast.downstream.check_useful(program, step) == (masked >= 0.02 * checked)


def test_whole_selection_in_one_chunk_when_it_fits():
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    x = torch.randn(70, 3, 32, 32)  # 70 images, batches of 16: 4 full batches and a partial one
    golden = golden_run(model, x, torch.zeros(70, dtype=torch.long), batch_size=16)
    fast = make_engine("torch", "fast", model, x, golden, batch_size=16, params=["layer1.0.conv1.weight"])
    assert fast.maps.geometry == [(0, 70)]


def test_task_costs_come_from_the_golden_pass_timings():
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    x = torch.randn(64, 3, 32, 32)
    golden = golden_run(model, x, torch.zeros(64, dtype=torch.long), batch_size=16)
    first, last = "conv1.weight", "layer3.2.conv2.weight"
    # A driver that never starts the engine (its workers do) times one golden batch for the planner.
    planner = make_engine("torch", "fast", model, x, golden, batch_size=16, params=[first, last])
    assert planner.plan.node_seconds is None
    cost_first, cost_last = (planner.cost(Fault(p, (0, 0, 0, 0), (3,))) for p in (first, last))
    assert planner.plan.node_seconds is not None and planner.maps._cache is None  # timed, no maps filled
    assert cost_first > 5 * cost_last
    fast = make_engine("torch", "fast", model, x, golden, batch_size=16, params=[first, last])
    fast.start()
    seconds = fast.plan.node_seconds
    assert seconds is not None and sum(seconds.values()) > 0  # measured, not multiply-adds
    assert fast.plan.forward_cost == pytest.approx(sum(seconds.values()))
    # A fault in the first conv recomputes the whole network, one in the last conv almost nothing.
    cost_first, cost_last = (fast.cost(Fault(p, (0, 0, 0, 0), (3,))) for p in (first, last))
    assert cost_first > 5 * cost_last


def untrained_resnet20_case(images: int, faults: int, seed: int):
    """An untrained resnet20, random images, random faults, their layers and the golden run (batch 8)."""
    torch.manual_seed(0)
    model = get_model("cifar10/resnet20", weights=None)
    x = torch.randn(images, 3, 32, 32)
    chosen = random_faults(model, faults, seed=seed)
    golden = golden_run(model, x, torch.zeros(len(x), dtype=torch.long), batch_size=8)
    return model, x, chosen, [f.param for _, f in chosen], golden


def _maps_by_name(engine) -> dict:
    return {k if isinstance(k, str) else k.name: v for k, v in engine.maps._cache[1].items()}


def test_worker_engine_adopts_shared_golden_maps_only_if_it_reproduces_them():
    model, x, faults, params, golden = untrained_resnet20_case(24, 6, seed=13)
    state = make_engine("torch", "fast", model, x, golden, batch_size=8, params=params).export_state()
    adopted = make_engine("torch", "fast", model, x, golden, batch_size=8, params=params, prepared=state)
    adopted.start()
    shared = {key: value for key, value in state["golden"].items() if isinstance(value, torch.Tensor)}
    assert all(value.is_shared() for value in shared.values())
    assert any(v.data_ptr() == shared[k].data_ptr() for k, v in _maps_by_name(adopted).items() if k in shared)
    assert adopted.describe()["checks"]["graph_equals_eager"] is True  # adopted, not re-checked
    # A map that this process does not reproduce (as another thread count might) is not adopted.
    name = next(k for k, v in shared.items() if k != "__logits__" and v.dim() == 4)
    shared[name][0].add_(1.0)
    own = make_engine("torch", "fast", model, x, golden, batch_size=8, params=params, prepared=state)
    own.start()
    assert all(v.data_ptr() != shared[k].data_ptr() for k, v in _maps_by_name(own).items() if k in shared)
    reference = make_engine("torch", "reference", model, x, golden, batch_size=8)
    assert_same_outcomes(own.run(faults), reference.run(faults))
    assert_same_outcomes(adopted.run(faults[:0]), {})


def test_preparing_on_threads_into_shared_memory_gives_the_same_maps_and_outcomes():
    model, x, faults, params, golden = untrained_resnet20_case(40, 8, seed=5)
    plain = make_engine("torch", "fast", model, x, golden, batch_size=8, params=params)
    plain.start()
    threaded = make_engine("torch", "fast", model, x, golden, batch_size=8, params=params)
    state = threaded.export_state(threads=2)  # a parent preparing its workers' engines
    plain_maps, threaded_maps = _maps_by_name(plain), _maps_by_name(threaded)
    assert plain_maps.keys() == threaded_maps.keys() == state["golden"].keys()
    for key, value in plain_maps.items():
        other = threaded_maps[key]
        if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == len(x):
            assert other.is_shared() and other.data_ptr() == state["golden"][key].data_ptr()
            assert torch.equal(value.view(torch.int32), other.view(torch.int32)), key
    assert threaded.plan.node_seconds and sum(threaded.plan.node_seconds.values()) > 0
    assert_same_outcomes(threaded.run(faults), make_engine("torch", "reference", model, x, golden, batch_size=8).run(faults))


def test_golden_maps_that_do_not_fit_in_shared_memory_stay_private_and_outcomes_stay_exact(monkeypatch):
    from faultzoo import _sharedmem as sharedmem

    monkeypatch.setattr(sharedmem, "shared_memory_free", lambda: 1 << 20)  # 1 MB, as a tiny container /dev/shm
    model, x, faults, params, golden = untrained_resnet20_case(40, 6, seed=7)
    engine = make_engine("torch", "fast", model, x, golden, batch_size=8, params=params)
    state = engine.export_state(threads=2)
    assert state["golden"] is None  # the workers compute their own
    assert not any(v.is_shared() for v in _maps_by_name(engine).values() if isinstance(v, torch.Tensor))
    assert_same_outcomes(engine.run(faults), make_engine("torch", "reference", model, x, golden, batch_size=8).run(faults))


def test_engines_come_from_a_registry():
    assert {"fast", "reference"} <= set(engine_names("torch")) and engine_names("torch") == sorted(engine_names("torch"))
    assert engine_entry("torch", "fast").factory is FastEngine
    one, four = (engine_entry("torch", "fast").default_options(n)["memory_budget"] for n in (1, 4))
    assert one >= four >= 1 << 30 and (four == 1 << 30 or one >= 3 * four)  # split between workers, >= 1 GiB
    assert engine_entry("torch", "reference").default_options(4) == {}
    with pytest.raises(FaultzooError, match=r"engine='fastt': unknown engine of the torch framework.*fast, reference.*Did you mean 'fast'"):
        engine_entry("torch", "fastt")


# ------------------------------------------------------------------ the campaign wing's import graph
CAMPAIGN = Path(__file__).resolve().parents[2] / "src" / "faultzoo" / "campaign"


def _module_name(path: Path) -> str:
    parts = path.relative_to(CAMPAIGN.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# The package's import graph (no circles, layers only downward) is checked by tests/test_architecture.py.
def test_each_campaign_module_imports_first_in_a_fresh_interpreter():
    """Each module of the campaign core and of the framework backends imported on its own (faultzoo not
    imported yet), as a worker process would."""
    names = sorted(_module_name(p) for folder in (CAMPAIGN, CAMPAIGN.parent / "backends") for p in folder.rglob("*.py"))
    script = ("import importlib, sys, torch\n"
              f"for name in {names!r}:\n"
              "    for loaded in [m for m in sys.modules if m == 'faultzoo' or m.startswith('faultzoo.')]:\n"
              "        del sys.modules[loaded]\n"
              "    importlib.import_module(name)\n"
              "print('ok', len(" f"{names!r}" "))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(CAMPAIGN.parents[1])})
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-3000:]
