"""Register expert families where they are defined; build them by name (timm-style)."""

from __future__ import annotations

from collections.abc import Callable

from models.config import InputSpec, Size
from models.experts.base import Expert

ExpertFactory = Callable[[Size, InputSpec], Expert]
_REGISTRY: dict[str, ExpertFactory] = {}


def register_expert(name: str) -> Callable[[ExpertFactory], ExpertFactory]:
    def decorate(factory: ExpertFactory) -> ExpertFactory:
        if name in _REGISTRY:
            raise ValueError(f"expert {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def known_experts() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def create_expert(name: str, size: Size, input_spec: InputSpec) -> Expert:
    """A freshly initialised expert of family `name` at `size` for windows of `input_spec`."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown expert {name!r}; known experts: {', '.join(known_experts())}")
    if size not in ("tiny", "base"):
        raise ValueError(f"unknown size {size!r} for expert {name!r}; known sizes: tiny, base")
    return _REGISTRY[name](size, input_spec)
