"""Register expert families where they are defined; build them by name (timm-style)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from models.config import InputSpec, Size
from models.experts.base import Expert
from models.experts.shipped import ShippedSource, read_source

ExpertFactory = Callable[[Size, InputSpec], Expert]
_REGISTRY: dict[str, ExpertFactory] = {}
_SHIPPED: dict[str, Path] = {}


def register_expert(name: str, *, shipped_dir: Path | None = None) -> Callable[[ExpertFactory], ExpertFactory]:
    """`shipped_dir`: the family comes with weights trained elsewhere, kept in that folder with their provenance
    (models/experts/shipped.py); such experts are used as shipped, never pretrained here."""

    def decorate(factory: ExpertFactory) -> ExpertFactory:
        if name in _REGISTRY:
            raise ValueError(f"expert {name!r} is already registered")
        _REGISTRY[name] = factory
        if shipped_dir is not None:
            _SHIPPED[name] = shipped_dir
        return factory

    return decorate


def is_shipped(name: str) -> bool:
    """Whether `name` is built with weights trained elsewhere (see models/experts/shipped.py)."""
    return name in _SHIPPED


def shipped_source(name: str) -> ShippedSource | None:
    """Provenance of a shipped family's weights (None for families trained by our trainer)."""
    return read_source(_SHIPPED[name]) if name in _SHIPPED else None


def known_experts() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def create_expert(name: str, size: Size, input_spec: InputSpec) -> Expert:
    """A freshly initialised expert of family `name` at `size` for windows of `input_spec`."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown expert {name!r}; known experts: {', '.join(known_experts())}")
    if size not in ("tiny", "base"):
        raise ValueError(f"unknown size {size!r} for expert {name!r}; known sizes: tiny, base")
    return _REGISTRY[name](size, input_spec)
