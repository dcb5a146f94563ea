"""Expert backbones, one sub-package per family; importing this package registers them all."""

from models.experts import hubert, openecg, patch, pyvital, resnet  # noqa: F401  (registration side effect)
from models.experts.base import Expert
from models.experts.registry import create_expert, known_experts, register_expert

__all__ = ["Expert", "create_expert", "known_experts", "register_expert"]
