"""Wanda importance (Wei et al. 2024): S_ij = |W_ij| · ||X_:,j||₂ over response tokens of the set."""
from __future__ import annotations

import torch

from analysis.core.arch import adapter_of
from analysis.methods.critical_regions.activations import ActivationStats, collect


def wanda_from_stats(model, stats: ActivationStats) -> dict[str, torch.Tensor]:
    adapter = adapter_of(model)
    # one fp32 copy per weight, then in place (same values as |W| · √sq; issue #15: fewer passes on a GPU)
    return {n: adapter[n].W.detach().to(torch.float32, copy=True).abs_().mul_(stats.sq[n].sqrt()[None, :])
            for n in stats.sq}


def wanda_scores(model, batches, progress=None, positions: str = "response") -> dict[str, torch.Tensor]:
    """Scores for every decoder Linear, one forward pass per batch."""
    return wanda_from_stats(model, collect(model, batches, progress=progress, positions=positions))
