"""The model as a dataflow graph (torch.fx): what a weight fault can reach, and how to re-run only that.

A fault in the weights of one layer changes that layer's output and everything downstream of it;
every other value in the network stays golden. :class:`GraphPlan` works out, for each layer,
the nodes to recompute, the golden values those nodes read, and the points where every
still-needed faulty value is a single tensor (where a row equal to golden is provably masked).
"""

from __future__ import annotations

import copy
import math
import operator
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

# In-place operators and their out-of-place twins. The engine caches golden activations and
# feeds them back into the graph; an in-place op would silently edit a cached value.
_OUT_OF_PLACE_FUNCTIONS = {
    operator.iadd: operator.add, operator.isub: operator.sub, operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
}


_SMALL_ROW_BYTES = 4096  # a row this small is cheap to cache and compare at any depth


def _out_channels(node: fx.Node, plan: GraphPlan) -> int:
    weight = getattr(plan.executor.modules.get(node.target), "weight", None)
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.dim() >= 1 else 1


def prepare_graph(model: nn.Module) -> fx.GraphModule:
    """A traced copy of ``model`` with every in-place operation made out-of-place (same values)."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    gm = fx.symbolic_trace(model)
    for node in gm.graph.nodes:
        if node.op == "call_function":
            if node.target in _OUT_OF_PLACE_FUNCTIONS:
                node.target = _OUT_OF_PLACE_FUNCTIONS[node.target]
            if node.kwargs.get("inplace"):
                node.kwargs = {**node.kwargs, "inplace": False}
        elif node.op == "call_method" and isinstance(node.target, str) and node.target.endswith("_") \
                and not node.target.startswith("_") and hasattr(torch.Tensor, node.target[:-1]):
            node.target = node.target[:-1]  # x.relu_() -> x.relu()
    gm.graph.lint()
    gm.recompile()
    return gm


class Executor:
    """Runs single fx nodes given an environment of already computed values."""

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.modules = dict(gm.named_modules())

    def fetch(self, target: str):
        obj = self.gm
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    def run(self, node: fx.Node, env: dict[fx.Node, object]):
        args = fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
        if node.op == "call_module":
            return self.modules[node.target](*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        if node.op == "call_method":
            obj, *rest = args
            return getattr(obj, node.target)(*rest, **kwargs)
        if node.op == "get_attr":
            return self.fetch(node.target)
        if node.op == "output":
            return args[0]
        raise RuntimeError(f"cannot execute fx node {node.op} {node.name}")


@dataclass
class LayerProgram:
    """How to recompute the network after a fault in the parameters of one module call."""

    node: fx.Node  # the faulty layer's output: the call_module node, or the one used item of its tuple
    module: nn.Module
    steps: list[fx.Node]  # downstream nodes in execution order, ending with the output node
    externals: set[fx.Node]  # golden values the steps read
    checks: dict[fx.Node, fx.Node] = field(default_factory=dict)  # after step -> the single live faulty node
    frees: dict[fx.Node, list[fx.Node]] = field(default_factory=dict)  # after step -> values no longer needed
    row_bytes: int = 0  # largest per-image tensor the program computes (sets how many rows fit in cache)
    last_unmixed_check: fx.Node | None = None  # the last check before a downstream conv/linear
    call: fx.Node | None = None  # the call_module node (``node`` itself unless the module returns a tuple)
    name: str = "weight"  # the faulty parameter, relative to ``module`` (e.g. "out_proj.weight" of an attention)

    def __post_init__(self) -> None:
        if self.call is None:
            self.call = self.node

    @property
    def inputs(self) -> list[fx.Node]:
        """The values the module call reads (each a batched tensor)."""
        return self.call.all_input_nodes

    @property
    def fast_kind(self) -> str:
        """'conv' / 'linear': the faulty output can be recomputed for a few output channels only."""
        m = self.module
        if self.call is not self.node or len(self.call.args) != 1 or self.call.kwargs:
            return "module"
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and isinstance(m.padding, tuple):
            return "conv"
        if isinstance(m, nn.Linear):
            return "linear"
        return "module"

    @property
    def stackable(self) -> bool:
        """A fault in this parameter changes one output channel of a conv/linear layer."""
        return self.fast_kind in ("conv", "linear") and self.name == "weight"

    def compute(self, values: dict[fx.Node, torch.Tensor], overrides: dict[str, torch.Tensor] | None = None):
        """The layer's output for these values of its inputs, with ``overrides`` (parameter name relative
        to the module -> tensor) in place of the module's own parameters: the traced call, same arguments."""
        args = fx.node.map_arg(self.call.args, lambda n: values[n])
        kwargs = fx.node.map_arg(self.call.kwargs, lambda n: values[n])
        if overrides:
            out = torch.func.functional_call(self.module, overrides, tuple(args), dict(kwargs))
        else:
            out = self.module(*args, **kwargs)
        return out if self.node is self.call else out[self.node.args[1]]


def channels_first(value: torch.Tensor, kind: str) -> torch.Tensor:
    """A view of a conv/linear output with the output channels on axis 1 (a linear layer applied to
    tokens, e.g. (batch, tokens, features), has them last)."""
    return value.movedim(-1, 1) if kind == "linear" and value.dim() > 2 else value


class GraphPlan:
    """Static analysis of a prepared graph: which layers can be re-run from a cached input."""

    def __init__(self, gm: fx.GraphModule, probe: torch.Tensor):
        self.gm = gm
        self.nodes = list(gm.graph.nodes)
        self.order = {n: i for i, n in enumerate(self.nodes)}
        self.executor = Executor(gm)
        self.output = next(n for n in self.nodes if n.op == "output")
        placeholders = [n for n in self.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ValueError(f"expected a model with one input, found {len(placeholders)}")
        self._param_nodes = self._map_parameters()
        self._programs: dict[str, LayerProgram | None] = {}
        self.refusals: dict[str, str] = {}  # parameter -> why it has no program
        self.tensors: set[fx.Node] = set()
        self.row_bytes: dict[fx.Node, int] = {}  # bytes of one image's row, per batched node
        self.node_seconds: dict[fx.Node, float] | None = None  # per image, from a golden pass (record_seconds)
        self.batched, self.batch_dependent_scalars = self._probe(probe)

    def _probe(self, probe: torch.Tensor) -> tuple[set[fx.Node], set[fx.Node]]:
        """Run two small batches (2 and 3 rows) to learn which node values carry one row per image
        (tensors whose first dimension is the batch) and which non-tensor values change with
        the batch size (such values cannot be reused from the golden run)."""
        with torch.no_grad():
            _, a = self.run_golden(probe[:2], set(self.nodes))
            _, b = self.run_golden(probe[:3], set(self.nodes))
        batched, scalars = set(), set()
        for node in self.nodes:
            va, vb = a.get(node), b.get(node)
            if isinstance(va, torch.Tensor) and isinstance(vb, torch.Tensor):
                self.tensors.add(node)
                if va.dim() >= 1 and va.shape[0] == 2 and vb.shape[0] == 3:
                    batched.add(node)
                    self.row_bytes[node] = va[0].numel() * va.element_size()
            elif node.op != "output":
                if _holds_tensor(va):
                    self.tensors.add(node)  # e.g. an attention's (output, weights): never a "scalar" at a check
                if not _same_value(va, vb):
                    scalars.add(node)  # a size, or a tuple of batched tensors (its items are nodes of their own)
        return batched, scalars

    def _map_parameters(self) -> dict[str, list[fx.Node]]:
        """Parameter name -> nodes that read it (call_module of its owner or of a module holding the owner,
        such as an attention module that uses its out_proj's weight without calling out_proj; or get_attr)."""
        uses: dict[str, list[fx.Node]] = {}
        params = dict(self.gm.named_parameters(remove_duplicate=False))
        for node in self.nodes:
            if node.op == "call_module":
                for name in params:
                    if name.startswith(node.target + "."):
                        uses.setdefault(name, []).append(node)
            elif node.op == "get_attr":
                for name in params:
                    if name == node.target or name.startswith(node.target + "."):
                        uses.setdefault(name, []).append(node)
        return uses

    def program_for(self, param: str) -> LayerProgram | None:
        """The recomputation program of a parameter, or None if the fast path cannot handle it
        (parameter shared by several calls, read through get_attr, or not used at all)."""
        if param not in self._programs:
            program = self._build_program(param)
            if isinstance(program, str):
                self.refusals[param], program = program, None
            self._programs[param] = program
        return self._programs[param]

    def _build_program(self, param: str) -> LayerProgram | str:
        """The program, or why there is none."""
        users = self._param_nodes.get(param, [])
        if not users:
            return "parameter not read by the traced graph"
        if len(users) > 1:
            return f"parameter read by {len(users)} nodes of the traced graph"
        call = users[0]
        if call.op != "call_module":
            return f"parameter read as a value ({call.op} {call.name}), not through a module call"
        node = call if call in self.batched else self._used_item(call)
        if node is None:
            return f"the output of {call.target} is not one tensor with a row per image"
        if any(n not in self.batched for n in call.all_input_nodes):
            return f"{call.target} reads a value without a row per image"
        affected = self._descendants(node)
        steps = [n for n in self.nodes if n in affected]
        faulty = affected | {node}
        externals = {a for s in steps for a in s.all_input_nodes if a not in faulty}
        if externals & self.batch_dependent_scalars:  # e.g. x.size(0): it would not fit a repacked batch
            names = ", ".join(sorted(n.name for n in externals & self.batch_dependent_scalars))
            return f"the graph after {call.target} reads values that change with the batch size ({names})"
        last_use = {n: max(self.order[u] for u in n.users) if n.users else self.order[n] for n in faulty}
        program = LayerProgram(node, self.executor.modules[call.target], steps, externals,
                               row_bytes=max(self.row_bytes.get(n, 0) for n in [node, *steps]),
                               call=call, name=param[len(call.target) + 1:])
        # After each step, which faulty values are still needed later? When that is exactly one tensor
        # node, rows whose tensor equals the golden one can only produce golden logits: masked.
        executed: list[fx.Node] = [node]
        mixed = False  # has a downstream conv/linear spread the perturbation over all its outputs?
        for step in [node, *steps]:
            mixed = mixed or (step is not node and self._mixes(step))
            if step is not node:
                executed.append(step)
            position = self.order[step]
            live = [n for n in executed if last_use[n] > position]
            dead = [n for n in executed if last_use[n] <= position and n is not self.output]
            if dead:
                program.frees[step] = dead
                executed = [n for n in executed if n not in dead]
            # Non-tensor values (sizes) do not depend on a row's data: they cannot unmask a row.
            live_rows = [n for n in live if n in self.batched]
            others_are_scalars = all(n not in self.tensors for n in live if n not in self.batched)
            feeds_only_output = len(live_rows) == 1 and set(live_rows[0].users) == {self.output}
            if len(live_rows) == 1 and others_are_scalars and step is not self.output and not feeds_only_output \
                    and (not mixed or self.row_bytes[live_rows[0]] <= _SMALL_ROW_BYTES):
                # Measured (resnet20, dnn-benchmarks faults): after a downstream conv no row was ever
                # equal again at a full feature map, so checking there (and caching the golden map for
                # it) is pure cost; small tensors such as pooled features still mask some rows.
                program.checks[step] = live_rows[0]
                if not mixed:
                    program.last_unmixed_check = live_rows[0]
        return program

    def _used_item(self, call: fx.Node) -> fx.Node | None:
        """For a module returning a tuple (e.g. attention: output and weights) of which one item is used:
        that item's node, when it is a batched tensor; else None."""
        if not call.users or any(u.op != "call_function" or u.target is not operator.getitem
                                 or not isinstance(u.args[1], int) for u in call.users):
            return None
        used = [u for u in call.users if u.users]
        return used[0] if len(used) == 1 and used[0] in self.batched else None

    def record_seconds(self, seconds: dict[fx.Node, float], images: int) -> None:
        """Adopt per-node times of a golden pass (``images`` images) as the cost model."""
        if images > 0 and seconds:
            self.node_seconds = {node: value / images for node, value in seconds.items()}

    def program_cost(self, program: LayerProgram) -> float:
        """Estimated work per image of one fault in this program's layer: the nodes downstream of it,
        and its own node for one output channel."""
        return sum(map(self.node_cost, program.steps)) + self.node_cost(program.node) / _out_channels(program.node, self)

    def node_cost(self, node: fx.Node) -> float:
        """Seconds per image measured in a golden pass when there was one (record_seconds), else
        multiply-adds per image of a conv/linear node and element operations of any other. Measured
        times are better: on this CPU a 16x32x32 conv costs 3x more per multiply-add than an 8x8 one.
        For scheduling work only, never for results."""
        if self.node_seconds is not None:
            return self.node_seconds.get(node, 0.0)
        elements = self.row_bytes.get(node, 0) / 4
        module = self.executor.modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return elements * module.in_channels // module.groups * math.prod(module.kernel_size)
        if isinstance(module, nn.Linear):
            return elements * module.in_features
        return elements

    @property
    def forward_cost(self) -> float:
        return sum(map(self.node_cost, self.nodes))

    def _mixes(self, node: fx.Node) -> bool:
        """A conv/linear call: every output depends on many inputs."""
        if node.op == "call_module":
            return isinstance(self.executor.modules[node.target],
                              (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.MultiheadAttention))
        return node.op == "call_function" and node.target in (F.conv1d, F.conv2d, F.conv3d, F.linear, torch.matmul)

    def _descendants(self, node: fx.Node) -> set[fx.Node]:
        seen: set[fx.Node] = set()
        stack = list(node.users)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(n.users)
        return seen

    def golden_nodes(self, programs: Iterable[LayerProgram]) -> set[fx.Node]:
        """Nodes whose golden values must be cached to run these programs."""
        needed: set[fx.Node] = set()
        for p in programs:
            needed |= set(p.inputs) | p.externals
        # Check points cost a cached golden map each. A row equal to golden at one check is equal at
        # every later one, so the last check before the perturbation is mixed by the next conv/linear
        # catches all that the earlier ones would (e.g. the ReLU after a BN); small tensors are cheap.
        # The faulty layer's own output is recomputed on demand instead of cached.
        for p in programs:
            needed |= {n for n in p.checks.values() if self.row_bytes.get(n, 0) <= _SMALL_ROW_BYTES}
            if p.last_unmixed_check is not None:
                needed.add(p.last_unmixed_check)
        needed.discard(self.output)
        return needed

    def run_golden(self, x: torch.Tensor, keep: set[fx.Node], seconds: dict[fx.Node, float] | None = None
                   ) -> tuple[torch.Tensor, dict[fx.Node, object]]:
        """Full forward of one batch; returns the logits and the values of ``keep`` (and adds each
        node's wall time to ``seconds`` when given)."""
        env: dict[fx.Node, object] = {}
        kept: dict[fx.Node, object] = {}
        last_use = {n: max((self.order[u] for u in n.users), default=-1) for n in self.nodes}
        for i, node in enumerate(self.nodes):
            start = time.perf_counter()
            env[node] = x if node.op == "placeholder" else self.executor.run(node, env)
            if seconds is not None:
                seconds[node] = seconds.get(node, 0.0) + time.perf_counter() - start
            if node in keep:
                kept[node] = env[node]
            for arg in node.all_input_nodes:
                if last_use[arg] <= i and arg in env:
                    del env[arg]
        return env[self.output], kept


def _holds_tensor(value) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, (tuple, list)) and any(map(_holds_tensor, value))


def _same_value(a, b) -> bool:
    """Whether two non-output node values of the probe runs are equal (tensors: same shape and values)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape \
            and a.dtype == b.dtype and bool(torch.equal(a, b))
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_value, a, b))
    try:
        return bool(a == b)
    except Exception:  # a value without a usable ==: assume it may change with the batch
        return False


def stacked_rows_output(module: nn.Module, kind: str, inp: torch.Tensor, weight_rows: torch.Tensor,
                        bias_rows: torch.Tensor | None) -> torch.Tensor:
    """Output channels of a conv/linear layer for a stack of (possibly faulty) weight rows.

    The k-th output channel is computed with ``weight_rows[k]``; for a layer with groups the caller
    passes the input channels of the right group and one row at a time.
    """
    if kind == "conv":
        return F.conv2d(inp, weight_rows, bias_rows, module.stride, module.padding, module.dilation, 1)
    return F.linear(inp, weight_rows, bias_rows)
