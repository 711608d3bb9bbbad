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
    return {name: _score(adapter[name].W.detach(), (stats.sq[name] / n).sqrt()) for name in stats.sq}


def _score(W: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """|W| · col in fp32, written once into the output (same values as W.float().abs() · col; |W| in the
    weight's dtype is exact): two passes over the weight instead of a copy and two in-place passes."""
    return torch.mul(W.abs(), col[None, :], out=torch.empty_like(W, dtype=torch.float32))


def wanda_scores(model, batches, progress=None, positions: str = "response") -> dict[str, torch.Tensor]:
    """Scores for every decoder Linear, one forward pass per batch."""
    return wanda_from_stats(model, collect(model, batches, progress=progress, positions=positions, sums=False))
