"""The one interface every expert backbone has, so gates and heads take features from any of them alike.

Shape legend: b batch, l leads, s samples, t expert time steps, d expert width.
"""

from __future__ import annotations

import torch
from torch import nn

from models.config import InputSpec


class Expert(nn.Module):
    """A backbone mapping windows (b, l, s) to a pooled (b, d) embedding and a sequence (b, t, d).

    Subclasses set `dim` (d) and implement `forward_features`; `n_steps()` says t for this input spec.
    """

    dim: int
    input_spec: InputSpec
    #: True: the expert takes windows in millivolts as recorded, not the ensemble's robust normalisation (experts
    #: trained elsewhere normalise inside themselves, the way they were trained).
    raw_input: bool = False

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(b, l, s) windows (normalised, or in mV when `raw_input`) -> (b, t, d) sequence."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seq = self.forward_features(x)  # (b, t, d)
        return seq.mean(dim=1), seq  # (b, d), (b, t, d)

    @torch.no_grad()
    def n_steps(self) -> int:
        """Time steps t of the sequence for one window of this expert's input spec."""
        spec = self.input_spec
        was_training = self.training
        self.eval()
        t = self.forward_features(torch.zeros(1, spec.n_leads, spec.n_samples)).shape[1]
        self.train(was_training)
        return t
