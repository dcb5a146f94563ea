"""1-D ResNet expert family (ECGFounder / Net1D)."""

from models.experts.resnet.model import ResNetExpert, create_resnet

__all__ = ["ResNetExpert", "create_resnet"]
