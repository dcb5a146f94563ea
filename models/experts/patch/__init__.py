"""Patch-transformer expert family (MOMENT / ST-MEM)."""

from models.experts.patch.model import PatchExpert, create_patch

__all__ = ["PatchExpert", "create_patch"]
