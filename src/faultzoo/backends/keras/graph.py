"""A twin's functional graph cut at one layer: what feeds the layer, what depends on it, compiled pieces.

For the layer a fault sits in, the nodes of the twin fall in three groups: the layer's own call
(its *inputs* come from the golden run), the nodes that depend on its output (the *downstream*
cone, recomputed for every faulty row), and the rest, which a weight fault cannot change. The
downstream cone may also read tensors that do not depend on the layer (a residual shortcut): those
are its *frontier*, taken from the golden run as well.

The downstream cone is run as a chain of compiled pieces, so that layers share most of them: a
*boundary* is a point of the graph where a single tensor carries everything later nodes need (the
output of a residual block, for instance). A layer's downstream is its *partial* piece (from the
layer's output to the next boundary) followed by the *segments* between later boundaries, each
traced once for the whole campaign. Every piece is a ``tf.function`` traced with a free batch
dimension that calls the twin's own layers in the order of the twin's graph.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field

import numpy as np

from faultzoo.keras._tf import require_keras

__all__ = ["LayerCut", "TwinGraph", "twin_graph"]

_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def twin_graph(twin) -> TwinGraph:
    """The twin's graph, built once per twin: engines on one twin share its compiled pieces."""
    graph = _GRAPHS.get(twin)
    if graph is None:
        graph = _GRAPHS[twin] = TwinGraph(twin)
    return graph


def _spec(tensor):
    _, tf = require_keras()
    return tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype)


@dataclass(eq=False)
class LayerCut:
    """The twin around one layer's only call: its inputs, its output, the downstream pieces and frontier."""

    layer: str
    node: object  # the layer's keras Node
    inputs: list  # KerasTensors the layer reads (golden)
    output: object  # the KerasTensor it writes
    partial: list  # downstream nodes up to the next boundary, in execution order
    frontier: list  # KerasTensors the partial nodes read that do not depend on the layer (golden)
    boundary: int  # index of the boundary the partial ends at (its tensor is the chain's start)
    macs: int = 0  # multiply-accumulates of the layer and everything after it, per image
    _layer_fn: object = field(default=None, repr=False)
    _partial_fn: object = field(default=None, repr=False)

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
    """The nodes of a Keras functional twin in execution order, its boundaries, and per-layer cuts."""

    def __init__(self, twin):
        self.twin = twin
        # Keras numbers nodes by their distance to the outputs: deepest first is an execution order.
        by_depth = twin._nodes_by_depth
        self.nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]
                      if n.operation is not None and not n.is_input]
        self.inputs = list(twin.inputs)
        self.output = twin.outputs[0]
        self.boundaries = self._boundaries()  # [(position after which it holds, tensor)]
        self._cuts: dict[str, LayerCut | str] = {}
        self._segments: dict[int, object] = {}
        self._probes: dict[tuple, object] = {}
        self.node_macs = [_macs(n) for n in self.nodes]
        self.total_macs = sum(self.node_macs)

    # ---------------------------------------------------------------- running nodes
    def run(self, seeds, nodes, outputs) -> list:
        """Values of ``outputs`` from the values given for ``seeds`` ([(KerasTensor, value)]) through ``nodes``."""
        keras, _ = require_keras()
        values = {id(t): v for t, v in seeds}
        for node in nodes:
            args, kwargs = node.arguments.fill_in(values)
            op = node.operation
            if getattr(op, "_call_has_training_arg", False):
                kwargs["training"] = False
            # Layer.call itself: Layer.__call__ adds bookkeeping (dtype conversion, which float32 inputs of
            # a float32 twin skip, masks, name scopes) that makes tracing slow and changes no value.
            call = op.call if isinstance(op, keras.layers.Layer) else op
            for t, v in zip(node.outputs, keras.tree.flatten(call(*args, **kwargs))):
                values[id(t)] = v
        return [values[id(t)] for t in outputs]

    def compile(self, inputs, nodes, outputs):
        """A tf.function computing ``outputs`` from ``inputs`` through ``nodes`` (free batch dimension)."""
        _, tf = require_keras()

        def fn(*values):
            return self.run(list(zip(inputs, values)), nodes, outputs)

        _quiet_retracing_warning(tf)
        return tf.function(fn, input_signature=[_spec(t) for t in inputs], autograph=False)

    # ---------------------------------------------------------------- boundaries
    def _boundaries(self) -> list[tuple[int, object]]:
        """Points after which a single tensor is all later nodes read (and the logits, after the last node)."""
        last_use: dict[int, int] = {id(t): -1 for t in self.inputs}
        for p, node in enumerate(self.nodes):
            for t in node.input_tensors:
                last_use[id(t)] = p
            for t in node.outputs:
                last_use.setdefault(id(t), -1)
        last_use[id(self.output)] = len(self.nodes)
        live: dict[int, object] = {id(t): t for t in self.inputs}
        out = []
        for p, node in enumerate(self.nodes):
            for t in node.outputs:
                live[id(t)] = t
            live = {k: t for k, t in live.items() if last_use[k] > p}
            if len(live) == 1:
                out.append((p, next(iter(live.values()))))
        return out

    def segment(self, index: int):
        """Boundary ``index`` -> boundary ``index + 1`` (traced once)."""
        if index not in self._segments:
            (start, tensor), (stop, nxt) = self.boundaries[index], self.boundaries[index + 1]
            self._segments[index] = self.compile([tensor], self.nodes[start + 1:stop + 1], [nxt])
        return self._segments[index]

    # ---------------------------------------------------------------- cuts
    def cut(self, layer_name: str) -> LayerCut | str:
        """The cut at a layer, or the reason the twin cannot be cut there (a string)."""
        if layer_name not in self._cuts:
            self._cuts[layer_name] = self._make_cut(layer_name)
        return self._cuts[layer_name]

    def _make_cut(self, layer_name: str) -> LayerCut | str:
        calls = [p for p, n in enumerate(self.nodes) if getattr(n.operation, "name", None) == layer_name]
        if len(calls) != 1:
            return f"layer {layer_name!r} is called {len(calls)} times in the twin (a cut needs exactly one call)"
        q = calls[0]
        node = self.nodes[q]
        if len(node.outputs) != 1:
            return f"layer {layer_name!r} has {len(node.outputs)} outputs (a cut needs one)"
        if not self.boundaries or self.boundaries[-1][1] is not self.output:
            return "the twin's logits are not a single tensor at the end of its graph"
        b = next(i for i, (p, _) in enumerate(self.boundaries) if p >= q)
        stop = self.boundaries[b][0]
        output = node.outputs[0]
        dirty = {id(output)}
        partial = []
        for n in self.nodes[q + 1:stop + 1]:
            if any(id(t) in dirty for t in n.input_tensors):
                partial.append(n)
                dirty.update(id(t) for t in n.outputs)
        if id(self.boundaries[b][1]) not in dirty:
            return f"the twin's logits do not depend on layer {layer_name!r}"
        frontier, seen = [], set()
        for n in partial:
            for t in n.input_tensors:
                if id(t) not in dirty and id(t) not in seen:
                    seen.add(id(t))
                    frontier.append(t)
        inputs = list({id(t): t for t in node.input_tensors}.values())
        macs = sum(self.node_macs[q:])
        return LayerCut(layer_name, node, inputs, output, partial, frontier, b, macs)

    def layer_fn(self, cut: LayerCut):
        """The layer alone: golden inputs -> its output as numpy (reads the layer's variables, faulty or not)."""
        if cut._layer_fn is None:
            fn = self.compile(cut.inputs, [cut.node], [cut.output])
            cut._layer_fn = lambda *values: fn(*values)[0].numpy()
        return cut._layer_fn

    def down_fn(self, cut: LayerCut):
        """The downstream chain: (layer output, *frontier) -> logits as numpy."""
        if cut._partial_fn is None:
            if cut.partial:
                fn = self.compile([cut.output, *cut.frontier], cut.partial, [self.boundaries[cut.boundary][1]])
                cut._partial_fn = lambda *values: fn(*values)[0]
            else:  # the layer's output is the boundary itself
                cut._partial_fn = lambda out, *frontier: out
        partial = cut._partial_fn

        def down(out, *frontier):
            value = partial(out, *frontier)
            for index in range(cut.boundary, len(self.boundaries) - 1):
                value = self.segment(index)(value)[0]
            return np.array(value)  # a writable copy (torch.from_numpy warns on read-only arrays)

        return down

    def probe(self, tensors: list):
        """A tf.function: images -> (logits, *values of ``tensors``) through the whole graph (one trace per list)."""
        key = tuple(id(t) for t in tensors)
        if key not in self._probes:
            self._probes[key] = self.compile(self.inputs[:1], self.nodes, [self.output, *tensors])
        return self._probes[key]


def _macs(node) -> int:
    """Multiply-accumulates per image of a conv or dense call (0 for other nodes), for cost estimates."""
    op = node.operation
    kernel = getattr(op, "kernel", None)
    if kernel is None or not node.outputs:
        return 0
    spatial = int(np.prod([int(d) for d in node.outputs[0].shape[1:-1] if d] or [1]))
    return spatial * int(np.prod([int(d) for d in kernel.shape]))


class _RetracingFilter(logging.Filter):
    """Each function above is traced once (fixed signature); TensorFlow still warns about "retracing" when
    several new functions are traced in a row, which is what one function per faulty layer means."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _quiet_retracing_warning(tf) -> None:
    logger = tf.get_logger()
    if not any(isinstance(f, _RetracingFilter) for f in logger.filters):
        logger.addFilter(_RetracingFilter())
