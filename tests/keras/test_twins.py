"""Every zoo model's Keras twin computes the upstream function and holds the PyTorch tensors bit for bit.

Per model (one twin built per session): the twin's logits on the reference input are within
1e-4 x max|logit| of the upstream reference outputs, its conv/dense layers carry the upstream
Keras names, and every row of a generated dnn-benchmarks fault list, mapped to Keras, addresses a
kernel element holding the same float32 as the PyTorch parameter element.
"""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from faultzoo.faults import dnn_benchmarks_fault_list, keras_layer_names, to_keras
from faultzoo.faults.keras import torch_to_keras_index
from faultzoo.zoo import list_models
from tests.keras.conftest import needs_tensorflow

needs_tensorflow()

import keras  # noqa: E402

from faultzoo.keras import predict_logits, weight_layers  # noqa: E402

MODEL_IDS = list_models()
RELATIVE_BOUND = 1e-4


def test_the_zoo_has_19_models():
    assert len(MODEL_IDS) == 19


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_reference_logits(model_id, reference_twin):
    # The Keras model's own (eager) call: tracing 19 compiled graphs would triple this file's cost;
    # test_compiled_path_agrees and the real-checkpoint tests cover predict_logits.
    ref = reference_twin(model_id)
    got = ref.twin(ref.x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    assert got.shape == ref.expected.shape and got.dtype == np.float32
    scale = float(np.abs(ref.expected).max())
    diff = float(np.abs(got - ref.expected).max())
    assert diff <= RELATIVE_BOUND * scale, f"{model_id}: max |diff| {diff:.3g} > {RELATIVE_BOUND} x {scale:.3g}"


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_upstream_layer_names_and_tensors(model_id, reference_twin):
    ref = reference_twin(model_id)
    names = keras_layer_names(ref.model)
    twin_kernels = {layer.name: layer for layer in ref.twin.layers if isinstance(layer, (keras.layers.Conv2D,
                                                                                          keras.layers.Dense))}
    assert sorted(twin_kernels) == sorted(names.values())  # conv2d, conv2d_1, ..., dense, ...: nothing else
    modules = dict(ref.model.named_modules())
    for w in weight_layers(ref.model).values():
        module, layer = modules[w.module], ref.twin.get_layer(w.keras_name)
        if isinstance(module, nn.BatchNorm2d):
            assert isinstance(layer, keras.layers.BatchNormalization)
            assert layer.epsilon == module.eps, f"{w.module}: epsilon {layer.epsilon} != {module.eps}"
            for variable, tensor in (("gamma", module.weight), ("beta", module.bias),
                                     ("moving_mean", module.running_mean), ("moving_variance", module.running_var)):
                got = getattr(layer, variable).numpy()
                assert np.array_equal(_bits(got), _bits(tensor.detach().numpy())), f"{w.keras_name}/{variable}"
            continue
        # The whole kernel, element for element, under the fault lists' index mapping (no rounding).
        order = torch_to_keras_index(tuple(range(module.weight.dim())))
        expected = module.weight.detach().numpy().transpose(order)
        assert np.array_equal(_bits(layer.kernel.numpy()), _bits(expected)), w.keras_name
        if module.bias is not None:
            assert np.array_equal(_bits(layer.bias.numpy()), _bits(module.bias.detach().numpy())), w.keras_name
        else:
            assert not layer.use_bias, w.keras_name


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_generated_fault_list_addresses_the_same_values(model_id, reference_twin):
    ref = reference_twin(model_id)
    faults = dnn_benchmarks_fault_list(ref.model, model_id=model_id)
    rows = to_keras(faults, ref.model)  # what `faultzoo faultlist convert --to keras` writes
    assert len(rows) == len(faults) > 0
    params = dict(ref.model.named_parameters())
    kernels: dict[str, np.ndarray] = {}
    for fault, row in zip(faults, rows):
        if row.layer not in kernels:
            kernels[row.layer] = ref.twin.get_layer(row.layer).kernel.numpy()
        keras_value = kernels[row.layer][row.index]
        torch_value = params[fault.param].detach()[fault.index].item()
        assert _bits(np.float32(keras_value)) == _bits(np.float32(torch_value)), (fault, row)


# Every kind of translation once: option-A shortcut (resnet20), grouped convs (mobilenetv2), odd
# epsilons, -inf padded max pools and channel concatenation (googlenet), 50x50 input with floor
# pools 25 -> 12 and 3 -> 1 (gtsrb vgg11_bn).
COMPILED_CHECKS = ["cifar10/resnet20", "cifar10/mobilenetv2", "cifar100/googlenet", "gtsrb/vgg11_bn"]


@pytest.mark.parametrize("model_id", COMPILED_CHECKS)
def test_compiled_path_agrees(model_id, reference_twin):
    """predict_logits (one compiled graph, the documented path) meets the same bound, and the eager
    call with training=True equals training=False (the twin is frozen: batch norm keeps its
    running statistics)."""
    ref = reference_twin(model_id)
    graph = predict_logits(ref.twin, ref.x, batch_size=4)
    scale = float(np.abs(ref.expected).max())
    assert float(np.abs(graph - ref.expected).max()) <= RELATIVE_BOUND * scale
    x = ref.x.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(ref.twin(x, training=True).numpy(), ref.twin(x, training=False).numpy())


def test_twin_input_output_and_inference_form(reference_twin):
    ref = reference_twin("gtsrb/vgg11_bn")
    assert ref.twin.input_shape == (None, 50, 50, 3)
    assert ref.twin.output_shape == (None, 43)
    assert not ref.twin.trainable
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in ref.twin.layers)
