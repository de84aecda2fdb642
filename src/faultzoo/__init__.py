"""faultzoo: fault-injection reliability studies of DNNs (model zoo, fault lists, campaigns)."""

from faultzoo.zoo import Weights, get_model, list_models, model_info

__version__ = "0.1.0"

__all__ = ["Weights", "__version__", "get_model", "list_models", "model_info"]
