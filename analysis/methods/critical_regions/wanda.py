"""Wanda importance (Wei et al. 2024): S_ij = |W_ij| · sqrt(‖X_:,j‖₂² / N) over the response tokens of the set's
N samples — the reference's scale (alignment-attribution-code ``lib/layerwrapper.py`` keeps a running mean over
samples of each sample's Σ_t x_t²). Dividing by N scales a whole set's scores by one constant: the mask of any
top-k or set difference is the same as with the plain column norm."""
from __future__ import annotations

import torch

from analysis.core.arch import adapter_of
from analysis.methods.critical_regions.activations import ActivationStats, collect


def wanda_from_stats(model, stats: ActivationStats) -> dict[str, torch.Tensor]:
    adapter = adapter_of(model)
    n = max(stats.n_samples, 1)
    # one fp32 copy per weight, then in place (same values as |W| · √(sq/N); fewer passes on a GPU)
    return {name: adapter[name].W.detach().to(torch.float32, copy=True).abs_()
            .mul_((stats.sq[name] / n).sqrt()[None, :]) for name in stats.sq}


def wanda_scores(model, batches, progress=None, positions: str = "response") -> dict[str, torch.Tensor]:
    """Scores for every decoder Linear, one forward pass per batch."""
    return wanda_from_stats(model, collect(model, batches, progress=progress, positions=positions))
