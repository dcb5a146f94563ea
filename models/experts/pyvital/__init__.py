"""pyvital rhythm ResNet expert family (MIT weights shipped in this folder)."""

from models.experts.pyvital.model import CLASSES, PyVitalRhythmExpert, create_pyvital

__all__ = ["CLASSES", "PyVitalRhythmExpert", "create_pyvital"]
