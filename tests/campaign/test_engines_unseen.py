"""The fast engine on graphs it was not built around: torchvision CNNs with depthwise convs and
squeeze-excitation, a vision transformer (attention, LayerNorm, GELU, softmax, linear layers on
tokens), grouped convs, a torch.nn leaf module holding other layers, and models that torch.fx cannot
trace or traces into another function. Every (fault, image) outcome equals the reference engine's,
and the engine says how it computed each layer, or why it ran the reference way."""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from faultzoo.backends.engines import make_engine
from faultzoo.backends.golden import golden_run
from faultzoo.faults import Fault, FaultKind, is_noop

# High exponent bits (30: the usual NaN/inf maker, 29, 23), the sign, and mantissa bits.
BITS = (30, 29, 23, 31, 22, 12, 26, 3)
FAST_PATH = ("stacked", "module", "aligned")  # layer modes that do not run the whole network per fault


def kind_of(model: nn.Module, param: str) -> str:
    """The parameter's role: conv / grouped (groups > 1, depthwise included) / linear / norm / attention / other,
    with "bias" for biases of conv and linear layers."""
    owner = model.get_submodule(param.rsplit(".", 1)[0]) if "." in param else model
    leaf = param.rsplit(".", 1)[-1]
    if isinstance(owner, nn.MultiheadAttention) or ".self_attn." in param or ".self_attention." in param:
        return "attention"
    if isinstance(owner, (nn.BatchNorm2d, nn.LayerNorm)):
        return "norm"
    if isinstance(owner, (nn.Conv2d, nn.Linear)) and leaf == "bias":
        return "bias"
    if isinstance(owner, nn.Conv2d):
        return "grouped" if owner.groups > 1 else "conv"
    if isinstance(owner, nn.Linear):
        return "linear"
    return "other"


def spread_faults(model: nn.Module, count: int, seed: int, *, extra: tuple[str, ...] = ()) -> list[tuple[int, Fault]]:
    """``count`` bit-flips (a few stuck-ats) spread over every kind of parameter and over the depth of the
    network, plus one in each ``extra`` parameter."""
    rng = random.Random(seed)
    params = dict(model.named_parameters())
    by_kind: dict[str, list[str]] = {}
    for name in params:
        by_kind.setdefault(kind_of(model, name), []).append(name)
    chosen = list(extra)
    kinds = sorted(by_kind)
    while len(chosen) < count + len(extra):
        names = by_kind[kinds[len(chosen) % len(kinds)]]
        chosen.append(names[rng.randrange(len(names))])
    faults = []
    for i, name in enumerate(chosen):
        index = tuple(rng.randrange(s) for s in params[name].shape)
        kind = FaultKind.STUCK_AT_1 if i % 7 == 6 else FaultKind.BITFLIP
        faults.append((i, Fault(name, index, (BITS[i % len(BITS)],), kind)))
    return faults


def compare(model: nn.Module, x: torch.Tensor, faults, *, batch_size: int):
    """Fast and reference outcomes of every (fault, image): codes, faulty top-1 and NaN flags identical."""
    golden = golden_run(model, x, torch.zeros(len(x), dtype=torch.long), batch_size=batch_size)
    fast = make_engine("torch", "fast", model, x, golden, batch_size=batch_size, params=[f.param for _, f in faults])
    got = fast.run(faults)
    want = make_engine("torch", "reference", model, x, golden, batch_size=batch_size).run(faults)
    assert got.keys() == want.keys()
    for fid, fault in faults:
        for field in ("codes", "top1", "nonfinite"):
            a, b = getattr(got[fid], field), getattr(want[fid], field)
            assert np.array_equal(a, b), f"{fault}: {field} differs on {int((a != b).sum())} of {len(a)} images"
    codes = np.concatenate([c.codes for c in want.values()])
    assert len(np.unique(codes)) >= 2  # the faults do something: not every outcome is masked
    return fast


def vit() -> nn.Module:
    return VisionTransformer(image_size=32, patch_size=4, num_layers=4, num_heads=4, hidden_dim=64, mlp_dim=128,
                             num_classes=10)


TORCHVISION = {
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), 64, 24),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), 64, 24),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(num_classes=10), 64, 24),
    "vit": (vit, 32, 40),
}
VIT_ATTENTION = ("encoder.layers.encoder_layer_1.self_attention.in_proj_weight",
                 "encoder.layers.encoder_layer_2.self_attention.out_proj.weight",
                 "encoder.layers.encoder_layer_3.self_attention.in_proj_bias",
                 "encoder.layers.encoder_layer_0.mlp.0.weight", "encoder.ln.weight")
VIT_REFERENCE = ("conv_proj.weight", "class_token", "encoder.pos_embedding")


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_models_untrained(name):
    build, size, count = TORCHVISION[name]
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(20, 3, size, size)  # golden batches of 8, 8 and 4 images
    extra = VIT_ATTENTION + VIT_REFERENCE if name == "vit" else ()
    faults = spread_faults(model, count, seed=1, extra=extra)
    assert {kind_of(model, f.param) for _, f in faults} == {kind_of(model, n) for n, _ in model.named_parameters()}
    fast = compare(model, x, faults, batch_size=8)

    described = fast.describe()
    assert described["fallback"] is None and described["checks"]["graph_equals_eager"] is True
    layers = described["checks"]["layers"]
    assert layers.keys() == {f.param for _, f in faults if not is_noop(model, f)}
    if name != "vit":
        # Every layer of the CNNs runs from its cached input: convs (grouped and depthwise included),
        # BN and SE layers, the classifier.
        assert all(mode.startswith(FAST_PATH) for mode in layers.values()), layers
    else:
        # Attention (a module called whole, its out_proj read inside it), LayerNorm and the MLP's linear
        # layers on tokens are recomputed from their cached inputs ...
        assert all(layers[p].startswith(FAST_PATH) for p in VIT_ATTENTION), layers
        # ... the patch embedding, whose output is reshaped to the batch size, and the class token and
        # position embedding, read as values rather than through a module call, run the reference way.
        assert layers["conv_proj.weight"].startswith("reference: the graph after conv_proj reads values that "
                                                     "change with the batch size")
        assert layers["class_token"].startswith("reference: parameter read as a value (get_attr")
        assert layers["encoder.pos_embedding"].startswith("reference: parameter read as a value (get_attr")
    if described["checks"]["rows_independent"] and name != "vit":
        # Rows are packed, into batch sizes checked for each layer; some convs are spliced channel by channel.
        assert described["checks"]["batch_sizes"].keys() >= layers.keys()
        conv = [f.param for _, f in faults if kind_of(model, f.param) in ("conv", "grouped")]
        assert any(layers[p] == "stacked" for p in conv), layers


class Unseen(nn.Module):
    """Layer types the channel splicing was not written for: grouped convs with several channels per group,
    a depthwise conv with a channel multiplier, LayerNorm, GELU, attention from nn.Linear layers on tokens
    with a softmax, and nn.TransformerEncoderLayer (a torch.nn leaf whose parameters belong to modules it
    calls inside its own forward)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, padding=1)
        self.grouped = nn.Conv2d(12, 18, 3, padding=1, groups=3)
        self.depthwise = nn.Conv2d(18, 36, 3, padding=1, groups=18)
        self.bn = nn.BatchNorm2d(36)
        self.norm = nn.LayerNorm(36)
        self.q, self.k, self.v, self.proj = (nn.Linear(36, 36) for _ in range(4))
        self.block = nn.TransformerEncoderLayer(36, 4, 72, dropout=0.0, activation="gelu", batch_first=True)
        self.head = nn.Linear(36, 10)

    def forward(self, x):
        h = F.gelu(self.bn(self.depthwise(self.grouped(self.stem(x)))))
        t = self.norm(h.flatten(2).transpose(1, 2))  # (batch, tokens, channels)
        attention = torch.softmax(self.q(t) @ self.k(t).transpose(1, 2) / 6.0, dim=-1)
        t = t + self.proj(attention @ self.v(t))
        return self.head(self.block(t).mean(dim=1))


def test_grouped_convs_token_linears_and_a_leaf_module_holding_layers():
    torch.manual_seed(0)
    model = Unseen().eval()
    x = torch.randn(12, 3, 8, 8)
    extra = ("grouped.weight", "depthwise.weight", "q.weight", "proj.weight", "block.self_attn.in_proj_weight",
             "block.self_attn.out_proj.weight", "block.linear1.weight", "block.norm2.bias", "norm.weight")
    fast = compare(model, x, spread_faults(model, 20, seed=2, extra=extra), batch_size=4)
    layers = fast.describe()["checks"]["layers"]
    assert all(mode.startswith(FAST_PATH) for mode in layers.values()), layers
    # The parameters inside the leaf module are faulted through it (no module call of their own exists).
    assert fast.programs["block.linear1.weight"].call.target == "block"
    assert fast.programs["block.linear1.weight"].name == "linear1.weight"
    # Linear layers on tokens have their output channels on the last axis: spliced there, when stacked.
    assert fast.programs["q.weight"].fast_kind == "linear"


def test_linear_layers_on_tokens_splice_their_output_channels_on_the_last_axis(monkeypatch):
    """On this CPU a few output features of a linear layer computed alone rarely have the bits the full layer
    gives them, so such layers are recomputed whole. Here the stacked rows are computed through the full
    layer (the bits it gives that feature), so that the splicing into (batch, tokens, features) runs."""
    from faultzoo.backends.torch import fast_layer

    original = fast_layer.stacked_rows_output

    def through_full_layer(module, kind, inp, weight_rows, bias_rows):
        if kind != "linear":
            return original(module, kind, inp, weight_rows, bias_rows)
        weight, features = module.weight.detach(), []
        for row in weight_rows:
            c = int((weight != row).sum(dim=1).argmin())  # the feature whose weights these are, one perhaps faulty
            full = weight.clone()
            full[c] = row
            features.append(F.linear(inp, full, module.bias)[..., c])
        return torch.stack(features, dim=-1)

    monkeypatch.setattr(fast_layer, "stacked_rows_output", through_full_layer)
    torch.manual_seed(0)
    model = Unseen().eval()
    params = ("q.weight", "proj.weight", "head.weight")
    faults = spread_faults(model, 0, seed=6, extra=params * 4)
    fast = compare(model, torch.randn(12, 3, 8, 8), faults, batch_size=4)
    layers = fast.describe()["checks"]["layers"]
    assert {layers[p] for p in params} == {"stacked"}, layers


def test_batch_sizes_that_compute_otherwise_are_never_used(monkeypatch):
    """Where a batch size changes a row's bits, rows are only run in batches of sizes that do not (padded with
    copies); with no such size the layer keeps the golden batches. The sizes that differ are simulated here
    (which ones really do depends on the CPU's kernels) to check the policy on any machine."""
    from faultzoo.backends.torch.fast_downstream import Downstream

    torch.manual_seed(0)
    model = Unseen().eval()
    x = torch.randn(24, 3, 8, 8)
    faults = spread_faults(model, 12, seed=5, extra=("stem.weight", "grouped.weight", "q.weight", "head.weight"))
    original, fitted = Downstream._same_at_size, Downstream._fitted
    sizes_run: list[int] = []
    monkeypatch.setattr(Downstream, "_same_at_size", lambda self, node, envs, joined, at_size, pick:
                        len(pick) not in (3, 8, 16) and original(self, node, envs, joined, at_size, pick))
    monkeypatch.setattr(Downstream, "_fitted", lambda self, value, rows:
                        sizes_run.append(len(fitted(self, value, rows)[1])) or fitted(self, value, rows))
    fast = compare(model, x, faults, batch_size=4)
    same = {size for entry in fast.describe()["checks"]["batch_sizes"].values() for size in entry["same"]}
    assert sizes_run and set(sizes_run) <= same and same.isdisjoint({3, 8, 16})
    assert all(entry["differ"] for entry in fast.describe()["checks"]["batch_sizes"].values())

    monkeypatch.setattr(Downstream, "_same_at_size", lambda *args: False)
    fast = compare(model, x, faults, batch_size=4)
    modes = set(fast.describe()["checks"]["layers"].values())
    assert modes == {"aligned: no batch size up to the pack size computes the graph after this layer as the golden "
                     "batches do"}


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = self.conv(x).relu()
        if h.mean() > 0.1:
            h = h * 2
        return self.fc(h.mean(dim=(2, 3)))


def test_untraceable_model_runs_the_reference_way_and_says_why(caplog):
    torch.manual_seed(0)
    model = DataDependent().eval()
    with caplog.at_level(logging.WARNING, logger="faultzoo.backends.torch.fast"):
        fast = compare(model, torch.randn(10, 3, 8, 8), spread_faults(model, 12, seed=3), batch_size=4)
    described = fast.describe()
    why = "torch.fx cannot trace the model: TraceError: symbolically traced variables cannot be used as inputs " \
          "to control flow"
    assert described["fallback"] == why
    assert described["checks"] == {"graph_equals_eager": None, "rows_independent": None, "layers": {}}
    assert any(why in record.getMessage() for record in caplog.records)
    assert fast.export_state() is None and fast.cost(Fault("conv.weight", (0, 0, 0, 0), (30,))) == 1.0


class GradModeDependent(nn.Module):
    """Traces fine, but the trace bakes in the branch taken with gradients on; inference takes the other."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = self.conv(x)
        if torch.is_grad_enabled():
            h = h * 0.5
        return self.fc(h.relu().mean(dim=(2, 3)))


def test_graph_that_computes_another_function_than_eager_runs_the_reference_way(caplog):
    torch.manual_seed(0)
    model = GradModeDependent().eval()
    with caplog.at_level(logging.WARNING, logger="faultzoo.backends.torch.fast_checks"):
        fast = compare(model, torch.randn(10, 3, 8, 8), spread_faults(model, 8, seed=4), batch_size=4)
    described = fast.describe()
    assert described["fallback"] == "the traced graph's logits differ from the eager model's"
    assert described["checks"]["graph_equals_eager"] is False
    assert any(described["fallback"] in record.getMessage() for record in caplog.records)
