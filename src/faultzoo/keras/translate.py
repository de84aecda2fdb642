"""PyTorch model -> Keras 3 functional model, node by node over the model's torch.fx graph.

Every 4-D PyTorch tensor (N, C, H, W) is held in Keras as (N, H, W, C); each translator maps
PyTorch's axes, paddings and flatten order onto that layout so that the Keras model computes the
PyTorch function (up to floating-point summation order). A node kind without a translator stops
the build with a :class:`~faultzoo.exceptions.TranslationError` naming the node, never a guess.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from faultzoo.exceptions import CheckpointError, TranslationError
from faultzoo.faults.keras import KERAS_NAME
from faultzoo.keras._tf import require_keras
from faultzoo.keras.naming import WeightLayer, weight_layers

__all__ = ["translate"]

_NCHW_TO_NHWC_AXIS = (0, 3, 1, 2)  # Keras axis of each PyTorch axis of a 4-D tensor


@dataclass(frozen=True)
class Value:
    """A translated tensor: the Keras tensor and whether it stands for a 4-D NCHW PyTorch tensor."""

    tensor: Any
    nchw: bool

    @property
    def rank(self) -> int:
        return len(self.tensor.shape)

    def torch_shape(self) -> tuple[int | None, ...]:
        shape = tuple(self.tensor.shape)
        return (shape[0], shape[3], shape[1], shape[2]) if self.nchw else shape

    def keras_axis(self, dim: int) -> int:
        dim = dim + self.rank if dim < 0 else dim
        if not 0 <= dim < self.rank:
            raise IndexError(dim)
        return _NCHW_TO_NHWC_AXIS[dim] if self.nchw else dim


# Initializer of each weight variable when no initial array is given; also what a built twin's
# layers report (and save in their config) once their arrays are in place.
_DEFAULT_INIT = {"kernel": "zeros", "bias": "zeros", "gamma": "ones", "beta": "zeros", "moving_mean": "zeros",
                 "moving_variance": "ones"}


class _ArrayInit:
    """A variable's first value is this exact array: one variable write instead of a fill plus an assign."""

    def __init__(self, array: Any, where: str):
        self.array, self.where = array, where

    def __call__(self, shape, dtype=None):
        if tuple(shape) != tuple(self.array.shape):
            raise CheckpointError(f"{self.where}: the twin expects shape {tuple(shape)}, the array has "
                                  f"{tuple(self.array.shape)}.")
        return self.array


class _Batch:
    """The batch size read from a tensor (``x.size(0)``): unknown while building, only good for reshapes."""

    def __repr__(self) -> str:
        return "<batch>"


BATCH = _Batch()


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    a, b = value
    return int(a), int(b)


def _bind(node: fx.Node, args: tuple, kwargs: dict, names: Sequence[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """Arguments of a call by parameter name (positional first, then keywords, then defaults)."""
    if len(args) > len(names):
        raise TranslationError(f"{_describe(node)}: {len(args)} positional arguments, expected at most {len(names)}.")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key not in names or key in bound:
            raise TranslationError(f"{_describe(node)}: unexpected argument {key!r}.")
        bound[key] = value
    for key in names:
        if key not in bound:
            if key not in defaults:
                raise TranslationError(f"{_describe(node)}: missing argument {key!r}.")
            bound[key] = defaults[key]
    return bound


def _target_name(node: fx.Node) -> str:
    return node.target if isinstance(node.target, str) else getattr(node.target, "__name__", repr(node.target))


def _describe(node: fx.Node) -> str:
    return f"node {node.name!r} ({node.op} {_target_name(node)})"


# Operations whose result may share memory with their input: an in-place op on one edits both.
_VIEWS = {"getitem", "view", "reshape", "flatten", "narrow", "select", "permute", "transpose", "t", "expand",
          "squeeze", "unsqueeze", "contiguous", "view_as", "unflatten", "chunk", "split"}


def _pool_pads(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> tuple[int, int]:
    """(before, after) padding that makes a 'valid' pool give PyTorch's output size on one axis.

    PyTorch pads ``pad`` on both sides; in ceil mode it adds a last, partial window, unless that
    window would start in the right padding.
    """
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    extra = max(0, (out - 1) * stride + kernel - (size + 2 * pad))
    return pad, pad + extra


class _Translator:
    """Walks one traced graph and builds the Keras functional model."""

    def __init__(self, model: nn.Module, input_size: Sequence[int], name: str, initial: dict | None = None):
        self.keras, _ = require_keras()
        self.initial = initial or {}
        self.model = model
        self.input_size = tuple(int(v) for v in input_size)  # (C, H, W)
        self.name = name
        self.gm = fx.symbolic_trace(model)
        self.modules = dict(self.gm.named_modules())
        self.order = {node: i for i, node in enumerate(self.gm.graph.nodes)}
        self.weights: dict[str, WeightLayer] = weight_layers(model)
        self.shared: dict[str, Any] = {}  # module path -> its Keras layer (a module called twice shares weights)
        self.used_names: set[str] = {w.keras_name for w in self.weights.values()}

    def init(self, layer: str, variable: str) -> Any:
        """The initializer of one weight variable: its given array, or the fixed default."""
        array = self.initial.get(layer, {}).get(variable)
        return _DEFAULT_INIT[variable] if array is None else _ArrayInit(array, f"{layer}/{variable}")

    def restore_initializers(self, twin) -> None:
        """Put serializable initializers back on the layers (array initializers cannot be saved)."""
        for layer in twin.layers:
            for variable, default in _DEFAULT_INIT.items():
                if isinstance(getattr(layer, f"{variable}_initializer", None), _ArrayInit):
                    setattr(layer, f"{variable}_initializer", self.keras.initializers.get(default))

    # --- naming -----------------------------------------------------------------------------------
    def _name(self, node: fx.Node, suffix: str = "") -> str:
        """A unique Keras name from the fx node's name, never one of the upstream automatic names."""
        base = f"{node.name}{suffix}"
        if KERAS_NAME.match(base) or base.startswith("batch_normalization"):
            base = f"t_{base}"
        candidate, i = base, 1
        while candidate in self.used_names:
            candidate, i = f"{base}_{i}", i + 1
        self.used_names.add(candidate)
        return candidate

    # --- driver -----------------------------------------------------------------------------------
    def run(self):
        keras = self.keras
        env: dict[fx.Node, Any] = {}
        inputs = outputs = None
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if inputs is not None:
                    raise TranslationError(f"{_describe(node)}: the model has more than one input.")
                c, h, w = self.input_size
                inputs = keras.Input(shape=(h, w, c), dtype="float32", name=self._name(node))
                env[node] = Value(inputs, nchw=True)
                continue
            self._check_in_place(node)
            args = fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
            if node.op == "output":
                outputs = args[0]
                break
            try:
                env[node] = self._dispatch(node, args, kwargs)
            except TranslationError:
                raise
            except Exception as exc:  # shapes Keras refuses, bad arguments: name the node that failed
                raise TranslationError(f"{_describe(node)}: cannot translate to Keras: {exc}") from exc
        if not isinstance(outputs, Value) or outputs.nchw or outputs.rank != 2:
            raise TranslationError(f"the model must return one 2-D logits tensor, found {outputs!r}.")
        missing = sorted(set(self.weights) - set(self.shared))
        if missing:
            raise TranslationError(f"modules with weights never called in forward(): {missing}; their weights "
                                   "would have no Keras layer. Remove them or call them.")
        twin = keras.Model(inputs, outputs.tensor, name=self.name)
        self.restore_initializers(twin)
        return twin

    def _dispatch(self, node: fx.Node, args: tuple, kwargs: dict) -> Any:
        if node.op == "call_module":
            module = self.modules[node.target]
            rule = _MODULE_RULES.get(type(module))
            if rule is None:
                raise TranslationError(f"{_describe(node)}: no Keras translation for module type "
                                       f"{type(module).__name__}.")
            return rule(self, node, module, *args, **kwargs)
        if node.op == "call_function":
            rule = _FUNCTION_RULES.get(node.target)
            if rule is None:
                raise TranslationError(f"{_describe(node)}: no Keras translation for this function.")
            return rule(self, node, args, kwargs)
        if node.op == "call_method":
            rule = _METHOD_RULES.get(node.target)
            if rule is None:
                raise TranslationError(f"{_describe(node)}: no Keras translation for Tensor.{node.target}().")
            return rule(self, node, args, kwargs)
        raise TranslationError(f"{_describe(node)}: no Keras translation for {node.op!r} nodes "
                               "(get_attr: tensors stored outside parameters/buffers).")

    def _check_in_place(self, node: fx.Node) -> None:
        """Keras has value semantics: an in-place op is safe only if nothing reads its input afterwards."""
        in_place = (
            (node.op == "call_module" and getattr(self.modules[node.target], "inplace", False) is True)
            or (node.op == "call_function" and (node.kwargs.get("inplace") is True
                                                or node.target in (operator.iadd, operator.imul)))
            or (node.op == "call_method" and str(node.target).endswith("_") and not str(node.target).startswith("_"))
        )
        if not in_place or not node.args or not isinstance(node.args[0], fx.Node):
            return
        mutated = node.args[0]
        if mutated.op in ("call_function", "call_method") and _target_name(mutated) in _VIEWS:
            raise TranslationError(f"{_describe(node)} modifies {mutated.name!r} in place, a view of another "
                                   "tensor; the Keras twin cannot reproduce that aliasing.")
        late = [u.name for u in mutated.users if u is not node and self.order[u] > self.order[node]]
        if late:
            raise TranslationError(f"{_describe(node)} modifies {mutated.name!r} in place, which is read later by "
                                   f"{', '.join(late)}; the Keras twin cannot reproduce that aliasing.")

    # --- helpers used by the rules ------------------------------------------------------------------
    def layer(self, node: fx.Node, factory: Callable[[str], Any], suffix: str = "") -> Any:
        """The Keras layer of a call_module node: created once, reused when the module is called again."""
        if node.op == "call_module":
            if node.target not in self.shared:
                weight = self.weights.get(node.target)
                self.shared[node.target] = factory(weight.keras_name if weight else self._name(node, suffix))
            return self.shared[node.target]
        return factory(self._name(node, suffix))

    def flatten(self, node: fx.Node, x: Value) -> Value:
        """Flatten to (N, features) in PyTorch's order: channels-major for NCHW tensors."""
        keras = self.keras
        t = x.tensor
        if x.nchw and math.prod(t.shape[1:3]) != 1:
            t = keras.layers.Permute((3, 1, 2), name=self._name(node, "_to_nchw"))(t)
        return Value(keras.layers.Flatten(name=self._name(node))(t), nchw=False)


def _tensor(node: fx.Node, value: Any, nchw: bool | None = None) -> Value:
    if not isinstance(value, Value):
        raise TranslationError(f"{_describe(node)}: expected a tensor argument, found {value!r}.")
    if nchw is not None and value.nchw != nchw:
        want = "a 4-D (N, C, H, W) tensor" if nchw else "a flat (N, features) tensor"
        raise TranslationError(f"{_describe(node)}: expected {want}, found shape {value.torch_shape()}.")
    return value


# --- modules -------------------------------------------------------------------------------------------

def _conv2d(tr: _Translator, node: fx.Node, m: nn.Conv2d, x: Value) -> Value:
    keras = tr.keras
    x = _tensor(node, x, nchw=True)
    if m.padding_mode != "zeros" or m.dilation != (1, 1) or isinstance(m.padding, str):
        raise TranslationError(f"{_describe(node)}: only zero-padded, undilated convolutions with numeric padding "
                               f"translate, found padding_mode={m.padding_mode!r} dilation={m.dilation} "
                               f"padding={m.padding!r}.")
    (kh, kw), (ph, pw) = m.kernel_size, m.padding
    # Keras 'same' is PyTorch's symmetric padding only at stride 1 with an odd kernel; elsewhere
    # (stride 2 on even inputs) Keras pads bottom/right only, so pad explicitly and convolve 'valid'.
    same = m.stride == (1, 1) and kh % 2 == 1 and kw % 2 == 1 and (ph, pw) == (kh // 2, kw // 2)
    t = x.tensor
    if not same and (ph or pw):
        t = keras.layers.ZeroPadding2D(((ph, ph), (pw, pw)), name=tr._name(node, "_pad"))(t)
    layer = tr.layer(node, lambda name: keras.layers.Conv2D(
        m.out_channels, (kh, kw), strides=m.stride, padding="same" if same else "valid", groups=m.groups,
        use_bias=m.bias is not None, kernel_initializer=tr.init(name, "kernel"), bias_initializer=tr.init(name, "bias"),
        dtype="float32", name=name))
    return Value(layer(t), nchw=True)


def _linear(tr: _Translator, node: fx.Node, m: nn.Linear, x: Value) -> Value:
    x = _tensor(node, x, nchw=False)
    layer = tr.layer(node, lambda name: tr.keras.layers.Dense(
        m.out_features, use_bias=m.bias is not None, kernel_initializer=tr.init(name, "kernel"),
        bias_initializer=tr.init(name, "bias"), dtype="float32", name=name))
    return Value(layer(x.tensor), nchw=False)


def _batch_norm(tr: _Translator, node: fx.Node, m: nn.BatchNorm2d, x: Value) -> Value:
    x = _tensor(node, x, nchw=True)
    if not m.track_running_stats or m.running_mean is None:
        raise TranslationError(f"{_describe(node)}: batch norm without running statistics has no inference form.")
    # Each layer keeps its own epsilon (1e-3 in CIFAR-10 GoogLeNet, 32..128 in nine CIFAR-100 GoogLeNet layers).
    layer = tr.layer(node, lambda name: tr.keras.layers.BatchNormalization(
        axis=-1, epsilon=float(m.eps), momentum=1.0 - float(m.momentum or 0.1), center=m.affine, scale=m.affine,
        gamma_initializer=tr.init(name, "gamma"), beta_initializer=tr.init(name, "beta"),
        moving_mean_initializer=tr.init(name, "moving_mean"),
        moving_variance_initializer=tr.init(name, "moving_variance"), dtype="float32", name=name))
    return Value(layer(x.tensor), nchw=True)


def _relu_module(tr: _Translator, node: fx.Node, m: nn.Module, x: Value) -> Value:
    return _relu_value(tr, node, x)


def _relu_value(tr: _Translator, node: fx.Node, x: Value) -> Value:
    x = _tensor(node, x)
    layer = tr.layer(node, lambda name: tr.keras.layers.ReLU(dtype="float32", name=name))
    return Value(layer(x.tensor), x.nchw)


def _identity(tr: _Translator, node: fx.Node, m: nn.Module, x: Value) -> Value:
    # Dropout is the identity in inference, and the twin is an inference model.
    return _tensor(node, x)


def _max_pool(tr: _Translator, node: fx.Node, x: Value, kernel, stride, padding, dilation, ceil_mode,
              return_indices) -> Value:
    keras = tr.keras
    x = _tensor(node, x, nchw=True)
    if return_indices or _pair(dilation) != (1, 1):
        raise TranslationError(f"{_describe(node)}: max pools with indices or dilation do not translate.")
    (kh, kw), (ph, pw) = _pair(kernel), _pair(padding)
    sh, sw = _pair(stride if stride not in (None, ()) else kernel)
    _, h, w, _ = x.tensor.shape
    pads = (_pool_pads(h, kh, sh, ph, ceil_mode), _pool_pads(w, kw, sw, pw, ceil_mode), (0, 0))
    t = x.tensor
    if any(a or b for a, b in pads):
        # -inf, not 0: a padded cell must never win the max (PyTorch ignores padding in max pools).
        from faultzoo.keras.layers import ConstantPad

        t = ConstantPad(pads, value=float("-inf"), name=tr._name(node, "_pad"))(t)
    layer = tr.layer(node, lambda name: keras.layers.MaxPooling2D((kh, kw), strides=(sh, sw), padding="valid",
                                                                  name=name), suffix="")
    return Value(layer(t), nchw=True)


def _max_pool_module(tr: _Translator, node: fx.Node, m: nn.MaxPool2d, x: Value) -> Value:
    return _max_pool(tr, node, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices)


def _avg_pool(tr: _Translator, node: fx.Node, x: Value, kernel, stride, padding, ceil_mode,
              divisor_override) -> Value:
    x = _tensor(node, x, nchw=True)
    (kh, kw), (ph, pw) = _pair(kernel), _pair(padding)
    sh, sw = _pair(stride if stride not in (None, ()) else kernel)
    _, h, w, _ = x.tensor.shape
    partial = ceil_mode and any(_pool_pads(n, k, s, 0, True)[1] for n, k, s in ((h, kh, sh), (w, kw, sw)))
    if (ph, pw) != (0, 0) or partial or divisor_override is not None:
        raise TranslationError(f"{_describe(node)}: average pools with padding, partial ceil-mode windows or a "
                               "divisor override do not translate (their divisors differ from Keras').")
    layer = tr.layer(node, lambda name: tr.keras.layers.AveragePooling2D((kh, kw), strides=(sh, sw),
                                                                         padding="valid", name=name))
    return Value(layer(x.tensor), nchw=True)


def _avg_pool_module(tr: _Translator, node: fx.Node, m: nn.AvgPool2d, x: Value) -> Value:
    return _avg_pool(tr, node, x, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.divisor_override)


def _adaptive_avg(tr: _Translator, node: fx.Node, x: Value, output_size) -> Value:
    x = _tensor(node, x, nchw=True)
    _, h, w, _ = x.tensor.shape
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    oh, ow = oh or h, ow or w
    if (oh, ow) == (1, 1):
        layer = tr.layer(node, lambda name: tr.keras.layers.GlobalAveragePooling2D(keepdims=True, name=name))
        return Value(layer(x.tensor), nchw=True)
    if h % oh or w % ow:
        raise TranslationError(f"{_describe(node)}: adaptive pooling {h}x{w} -> {oh}x{ow} has uneven windows; "
                               "only exact divisions translate.")
    return _avg_pool(tr, node, x, (h // oh, w // ow), None, 0, False, None)


def _adaptive_avg_module(tr: _Translator, node: fx.Node, m: nn.AdaptiveAvgPool2d, x: Value) -> Value:
    return _adaptive_avg(tr, node, x, m.output_size)


def _flatten_module(tr: _Translator, node: fx.Node, m: nn.Flatten, x: Value) -> Value:
    return _flatten_dims(tr, node, x, m.start_dim, m.end_dim)


_MODULE_RULES: dict[type, Callable[..., Value]] = {
    nn.Conv2d: _conv2d,
    nn.Linear: _linear,
    nn.BatchNorm2d: _batch_norm,
    nn.ReLU: _relu_module,
    nn.MaxPool2d: _max_pool_module,
    nn.AvgPool2d: _avg_pool_module,
    nn.AdaptiveAvgPool2d: _adaptive_avg_module,
    nn.Dropout: _identity,
    nn.Dropout2d: _identity,
    nn.Identity: _identity,
    nn.Flatten: _flatten_module,
}


# --- functions and methods -----------------------------------------------------------------------------

def _fn_relu(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("input", "inplace"), {"inplace": False})
    return _relu_value(tr, node, a["input"])


def _fn_add(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("input", "other", "alpha"), {"alpha": 1})
    x, y = a["input"], a["other"]
    if not (isinstance(x, Value) and isinstance(y, Value)) or a["alpha"] != 1:
        raise TranslationError(f"{_describe(node)}: only tensor + tensor translates, found {x!r} + {a['alpha']}*{y!r}.")
    if x.nchw != y.nchw or tuple(x.tensor.shape) != tuple(y.tensor.shape):
        raise TranslationError(f"{_describe(node)}: shapes {x.torch_shape()} and {y.torch_shape()} differ "
                               "(broadcasting sums do not translate).")
    return Value(tr.keras.layers.Add(name=tr._name(node))([x.tensor, y.tensor]), x.nchw)


def _fn_cat(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("tensors", "dim"), {"dim": 0})
    parts = [_tensor(node, v) for v in a["tensors"]]
    if len({p.nchw for p in parts}) != 1:
        raise TranslationError(f"{_describe(node)}: mixes 4-D and flat tensors.")
    axis = parts[0].keras_axis(int(a["dim"]))
    if axis == 0:
        raise TranslationError(f"{_describe(node)}: concatenation along the batch axis does not translate.")
    if len(parts) == 1:
        return parts[0]
    return Value(tr.keras.layers.Concatenate(axis=axis, name=tr._name(node))([p.tensor for p in parts]),
                 parts[0].nchw)


def _flatten_dims(tr, node, x, start_dim, end_dim) -> Value:
    x = _tensor(node, x)
    start = start_dim + x.rank if start_dim < 0 else start_dim
    end = end_dim + x.rank if end_dim < 0 else end_dim
    if (start, end) != (1, x.rank - 1):
        raise TranslationError(f"{_describe(node)}: only flatten(start_dim=1, end_dim=-1) translates, "
                               f"found ({start_dim}, {end_dim}).")
    return x if x.rank == 2 and not x.nchw else tr.flatten(node, x)


def _fn_flatten(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
    return _flatten_dims(tr, node, a["input"], a["start_dim"], a["end_dim"])


def _fn_avg_pool(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                   "divisor_override"),
              {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None})
    return _avg_pool(tr, node, a["input"], a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"],
                     a["divisor_override"])


def _fn_max_pool(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                   "return_indices"),
              {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
    return _max_pool(tr, node, a["input"], a["kernel_size"], a["stride"], a["padding"], a["dilation"],
                     a["ceil_mode"], a["return_indices"])


def _fn_adaptive_avg(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("input", "output_size"), {})
    return _adaptive_avg(tr, node, a["input"], a["output_size"])


def _fn_dropout(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("input", "p", "training", "inplace"), {"p": 0.5, "training": True,
                                                                          "inplace": False})
    if a["training"] is not False:
        raise TranslationError(f"{_describe(node)}: functional dropout with training={a['training']!r}; the twin "
                               "is an inference model (pass training=self.training and trace in eval mode).")
    return _tensor(node, a["input"])


def _fn_pad(tr, node, args, kwargs):
    from faultzoo.keras.layers import ConstantPad

    a = _bind(node, args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant", "value": None})
    x, pad = _tensor(node, a["input"]), tuple(a["pad"])
    if a["mode"] != "constant" or len(pad) % 2 or len(pad) // 2 > x.rank - 1 or min(pad, default=0) < 0:
        raise TranslationError(f"{_describe(node)}: only non-negative constant padding of non-batch axes "
                               f"translates, found mode={a['mode']!r} pad={pad}.")
    pairs = [(0, 0)] * (x.rank - 1)  # Keras axes 1.. (batch excluded)
    for i in range(len(pad) // 2):  # PyTorch lists (before, after) pairs from the last axis backwards
        pairs[x.keras_axis(x.rank - 1 - i) - 1] = (pad[2 * i], pad[2 * i + 1])
    layer = ConstantPad(pairs, value=float(a["value"] or 0.0), name=tr._name(node))
    return Value(layer(x.tensor), x.nchw)


def _fn_getitem(tr, node, args, kwargs):
    from faultzoo.keras.layers import StridedSlice

    obj, index = args
    if not isinstance(obj, Value):
        return operator.getitem(obj, index)  # e.g. a size tuple
    index = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(s, slice) for s in index) or len(index) > obj.rank:
        raise TranslationError(f"{_describe(node)}: only basic slicing with ':' on every axis translates, "
                               f"found {index!r}.")
    full = list(index) + [slice(None)] * (obj.rank - len(index))
    if full[0] != slice(None) or any(s.step is not None and s.step <= 0 for s in full):
        raise TranslationError(f"{_describe(node)}: the batch axis must be kept whole and steps be positive, "
                               f"found {index!r}.")
    slices = [None] * (obj.rank - 1)
    for dim, s in enumerate(full[1:], start=1):
        slices[obj.keras_axis(dim) - 1] = (s.start, s.stop, s.step)
    return Value(StridedSlice(slices, name=tr._name(node))(obj.tensor), obj.nchw)


def _method_size(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("self", "dim"), {"dim": None})
    x = _tensor(node, a["self"])
    shape = (BATCH, *x.torch_shape()[1:])
    return shape if a["dim"] is None else shape[a["dim"]]


def _method_view(tr, node, args, kwargs):
    x, *shape = args
    if kwargs:
        raise TranslationError(f"{_describe(node)}: unexpected keyword arguments {sorted(kwargs)}.")
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
    x = _tensor(node, x)
    features = math.prod(x.torch_shape()[1:])
    if len(shape) == 2 and (shape[0] in (BATCH, -1)) and shape[1] in (-1, features) and shape != (-1, -1):
        return _flatten_dims(tr, node, x, 1, -1)
    raise TranslationError(f"{_describe(node)}: only reshapes to (N, -1) translate, found {shape!r}.")


def _method_flatten(tr, node, args, kwargs):
    a = _bind(node, args, kwargs, ("self", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
    return _flatten_dims(tr, node, a["self"], a["start_dim"], a["end_dim"])


def _method_relu(tr, node, args, kwargs):
    return _fn_relu(tr, node, args, kwargs)


def _method_add(tr, node, args, kwargs):
    return _fn_add(tr, node, args, kwargs)


def _method_identity(tr, node, args, kwargs):
    return _tensor(node, args[0])


_FUNCTION_RULES: dict[Any, Callable[..., Any]] = {
    F.relu: _fn_relu, torch.relu: _fn_relu, F.relu_: _fn_relu, torch.relu_: _fn_relu,
    operator.add: _fn_add, operator.iadd: _fn_add, torch.add: _fn_add,
    torch.cat: _fn_cat, torch.concat: _fn_cat,
    torch.flatten: _fn_flatten,
    F.avg_pool2d: _fn_avg_pool, F.max_pool2d: _fn_max_pool, F.adaptive_avg_pool2d: _fn_adaptive_avg,
    F.dropout: _fn_dropout, F.dropout2d: _fn_dropout,
    F.pad: _fn_pad,
    operator.getitem: _fn_getitem,
}

_METHOD_RULES: dict[str, Callable[..., Any]] = {
    "size": _method_size, "view": _method_view, "reshape": _method_view, "flatten": _method_flatten,
    "relu": _method_relu, "relu_": _method_relu, "add": _method_add, "add_": _method_add,
    "contiguous": _method_identity,
}


def translate(model: nn.Module, input_size: Sequence[int], *, name: str = "twin", initial: dict | None = None):
    """Build the Keras functional model that computes ``model``.

    Args:
        model: A PyTorch model in eval mode that ``torch.fx.symbolic_trace`` can trace, with one
            N×C×H×W input and (N, classes) logits.
        input_size: ``(C, H, W)`` of one input image; the Keras input is ``(None, H, W, C)``.
        name: The Keras model's name.
        initial: Optional first values, layer name -> {variable: float32 array in Keras layout}
            (:func:`faultzoo.keras.weights.torch_layer_arrays`); variables without one start at
            zero (one for batch-norm scales and variances).

    Returns:
        A ``keras.Model`` whose conv, dense and batch-norm layers carry the names of
        :func:`faultzoo.keras.naming.weight_layers`.

    Raises:
        TranslationError: a node without a Keras translation (named in the message).
        FrameworkUnavailableError: TensorFlow/Keras 3 is not installed.
    """
    if model.training:
        raise TranslationError("the model is in training mode; call model.eval() first (the twin is an inference "
                               "model: batch norm uses running statistics, dropout is the identity).")
    return _Translator(model, input_size, name, initial).run()
