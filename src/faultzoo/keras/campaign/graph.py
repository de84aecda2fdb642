"""A twin's functional graph cut at one layer: what feeds the layer, what depends on it, compiled pieces.

For the layer a fault sits in, the nodes of the twin fall in three groups: the layer's own call
(its *inputs* come from the golden run), the nodes that depend on its output (the *downstream*
cone, recomputed for every faulty row), and the rest, which a weight fault cannot change. The
downstream cone may also read tensors that do not depend on the layer (a residual shortcut): those
are its *frontier*, taken from the golden run as well.

Every piece is a ``tf.function`` traced once with a free batch dimension, which calls the twin's own
layers in the order of the twin's graph, the way ``keras.Model.__call__`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faultzoo.keras._tf import require_keras

__all__ = ["LayerCut", "TwinGraph"]


def _spec(tensor):
    _, tf = require_keras()
    return tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype)


@dataclass(eq=False)
class LayerCut:
    """The twin around one layer's only call: its inputs, its output, the downstream nodes and frontier."""

    layer: str
    node: object  # the layer's keras Node
    inputs: list  # KerasTensors the layer reads (golden)
    output: object  # the KerasTensor it writes
    downstream: list  # nodes that depend on the output, in execution order
    frontier: list  # KerasTensors the downstream nodes read that do not depend on the layer (golden)
    macs: int = 0  # multiply-accumulates of the layer and its downstream, per image
    _layer_fn: object = field(default=None, repr=False)
    _down_fn: object = field(default=None, repr=False)

    @property
    def cached(self) -> list:
        """The golden tensors this cut needs: inputs, output and frontier (deduplicated, in that order)."""
        seen, out = set(), []
        for t in (*self.inputs, self.output, *self.frontier):
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out


class TwinGraph:
    """The nodes of a Keras functional twin in execution order, and the cuts a fault engine needs."""

    def __init__(self, twin):
        self.twin = twin
        # Keras numbers nodes by their distance to the outputs: deepest first is an execution order.
        by_depth = twin._nodes_by_depth
        self.nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]
                      if n.operation is not None and not n.is_input]
        self.inputs = list(twin.inputs)
        self.outputs = list(twin.outputs)
        self._cuts: dict[str, LayerCut | str] = {}
        self._probe = None
        self.total_macs = sum(_macs(n) for n in self.nodes)

    # ---------------------------------------------------------------- running nodes
    def run(self, seeds, nodes, outputs) -> list:
        """Values of ``outputs`` from the values given for ``seeds`` ([(KerasTensor, value)]) through ``nodes``."""
        keras, _ = require_keras()
        values = {id(t): v for t, v in seeds}
        for node in nodes:
            args, kwargs = node.arguments.fill_in(values)
            op = node.operation
            if "training" in getattr(op, "_call_context_args", ()):
                kwargs["training"] = False
            for t, v in zip(node.outputs, keras.tree.flatten(op(*args, **kwargs))):
                values[id(t)] = v
        return [values[id(t)] for t in outputs]

    def compile(self, inputs, nodes, outputs):
        """A tf.function computing ``outputs`` from ``inputs`` through ``nodes`` (free batch dimension)."""
        _, tf = require_keras()

        def fn(*values):
            return self.run(list(zip(inputs, values)), nodes, outputs)

        return tf.function(fn, input_signature=[_spec(t) for t in inputs], autograph=False, reduce_retracing=True)

    # ---------------------------------------------------------------- cuts
    def cut(self, layer_name: str) -> LayerCut | str:
        """The cut at a layer, or the reason the twin cannot be cut there (a string)."""
        if layer_name not in self._cuts:
            self._cuts[layer_name] = self._make_cut(layer_name)
        return self._cuts[layer_name]

    def _make_cut(self, layer_name: str) -> LayerCut | str:
        calls = [n for n in self.nodes if getattr(n.operation, "name", None) == layer_name]
        if len(calls) != 1:
            return f"layer {layer_name!r} is called {len(calls)} times in the twin (a cut needs exactly one call)"
        node = calls[0]
        if len(node.outputs) != 1:
            return f"layer {layer_name!r} has {len(node.outputs)} outputs (a cut needs one)"
        output = node.outputs[0]
        dirty = {id(output)}
        downstream = []
        for n in self.nodes:
            if n is not node and any(id(t) in dirty for t in n.input_tensors):
                downstream.append(n)
                dirty.update(id(t) for t in n.outputs)
        if not all(id(t) in dirty for t in self.outputs):
            return f"the twin's logits do not all depend on layer {layer_name!r}"
        frontier, seen = [], set()
        for n in downstream:
            for t in n.input_tensors:
                if id(t) not in dirty and id(t) not in seen:
                    seen.add(id(t))
                    frontier.append(t)
        inputs = list({id(t): t for t in node.input_tensors}.values())
        macs = _macs(node) + sum(_macs(n) for n in downstream)
        return LayerCut(layer_name, node, inputs, output, downstream, frontier, macs)

    def layer_fn(self, cut: LayerCut):
        """The layer alone: golden inputs -> its output (reads the layer's variables, faulty or not)."""
        if cut._layer_fn is None:
            fn = self.compile(cut.inputs, [cut.node], [cut.output])
            cut._layer_fn = lambda *values: fn(*values)[0]
        return cut._layer_fn

    def down_fn(self, cut: LayerCut):
        """The downstream cone: (layer output, *frontier) -> logits."""
        if cut._down_fn is None:
            if not cut.downstream:  # the layer writes the logits itself
                cut._down_fn = lambda out, *frontier: out
            else:
                fn = self.compile([cut.output, *cut.frontier], cut.downstream, self.outputs[:1])
                cut._down_fn = lambda *values: fn(*values)[0]
        return cut._down_fn

    def probe(self, tensors: list):
        """A tf.function: images -> (logits, *values of ``tensors``) through the whole graph.

        Traced for the given tensors the first time and reused while the same list is asked for.
        """
        key = tuple(id(t) for t in tensors)
        if self._probe is None or self._probe[0] != key:
            self._probe = (key, self.compile(self.inputs[:1], self.nodes, [*self.outputs[:1], *tensors]))
        return self._probe[1]


def _macs(node) -> int:
    """Multiply-accumulates per image of a conv or dense call (0 for other nodes), for cost estimates."""
    op = node.operation
    kernel = getattr(op, "kernel", None)
    if kernel is None or not node.outputs:
        return 0
    out = [d for d in node.outputs[0].shape[1:-1] if d]
    spatial = 1
    for d in out:
        spatial *= int(d)
    size = 1
    for d in kernel.shape:
        size *= int(d)
    return spatial * size
