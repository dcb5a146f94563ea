"""wav2vec2/HuBERT-style expert family: native backbone and a local HuBERT-ECG (transformers) loader."""

from models.experts.hubert.model import HubertExpert, create_hubert
from models.experts.hubert.pretrained import PretrainedHubertExpert, load_pretrained_hubert

__all__ = ["HubertExpert", "PretrainedHubertExpert", "create_hubert", "load_pretrained_hubert"]
