"""The model zoo: architectures (definitions), weights (where trained tensors come from), registry (ids)."""

from faultzoo.zoo.registry import (
    FRAMEWORKS, ModelInfo, ModelProvenance, get_model, list_models, model_info, state_sha256,
)
from faultzoo.zoo.weights import WEIGHTS, Weights

__all__ = [
    "FRAMEWORKS", "WEIGHTS", "ModelInfo", "ModelProvenance", "Weights", "get_model", "list_models", "model_info",
    "state_sha256",
]
