"""openecg codec_v6 expert family (Apache-2.0 weights shipped in this folder)."""

from models.experts.openecg.model import OpenECGExpert, create_openecg

__all__ = ["OpenECGExpert", "create_openecg"]
