"""Scores → regions → edits: set difference S_q \\ U_p, random controls, region overlap (Wei et al. 2024).

One sign convention everywhere: higher score = more important. ``p`` is the top fraction of *utility*
scores protected, ``q`` the top fraction of *safety* scores selected; the region is S_q \\ U_p.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from analysis.core.edits import Mask

GROUPS = ("matrix", "row", "layer")  # the first is the reference's (alignment-attribution-code lib/prune.py)


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")


def top_mask(scores: torch.Tensor, frac: float, group: str = "matrix") -> torch.Tensor:
    """Boolean mask of the top ``frac`` entries over the whole matrix (the reference: int(frac · numel), rounded
    down) or per output row (project variant: ceil(frac · d_in) per row, rounded up)."""
    _check_fraction("fraction", frac)
    if frac == 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    if group == "row":
        k = math.ceil(frac * scores.shape[1]) if frac > 0 else 0
        idx = scores.topk(k, dim=1).indices
        return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, idx, True)
    flat = scores.reshape(-1)
    k = int(frac * flat.numel())
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[flat.topk(k).indices] = True
    return mask.reshape(scores.shape)


def _top_masks(
    scores: dict[str, torch.Tensor], frac: float, group: str, layer_of: Mapping[str, int] | None = None
) -> dict[str, torch.Tensor]:
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    if group != "layer":
        return {n: top_mask(s, frac, group) for n, s in scores.items()}
    if layer_of is None:
        raise ValueError("grouping per layer needs each weight's layer (layer_of, from the model's adapter)")
    out = {}
    for layer in sorted({layer_of[n] for n in scores}):
        names = [n for n in scores if layer_of[n] == layer]
        flat = torch.cat([scores[n].reshape(-1) for n in names])
        m = top_mask(flat[None, :], frac, "matrix")[0]
        offset = 0
        for n in names:
            size = scores[n].numel()
            out[n] = m[offset : offset + size].reshape(scores[n].shape)
            offset += size
    return out


@dataclass
class Region:
    """A set of weights (boolean masks per matrix) and what removing it means."""

    masks: dict[str, torch.Tensor]
    description: str

    @property
    def n_selected(self) -> int:
        return sum(int(m.sum()) for m in self.masks.values())

    @property
    def n_total(self) -> int:
        return sum(m.numel() for m in self.masks.values())

    @property
    def fraction(self) -> float:
        return self.n_selected / max(self.n_total, 1)

    def fraction_by_module(self) -> dict[str, float]:
        return {n: float(m.float().mean()) for n, m in self.masks.items()}

    def edit(
        self, base_weights: dict[str, torch.Tensor] | None = None, recipe: dict | None = None, reads: tuple = ()
    ) -> Mask:
        """Zero the region, or restore it to the base model's weights when ``base_weights`` is given
        (``reads``: the base model, locked while the edit is applied; ``recipe``: what made the region)."""
        return Mask(self.masks, base=base_weights, recipe=recipe, reads=reads)


def set_difference(
    safety: dict[str, torch.Tensor],
    utility: dict[str, torch.Tensor],
    p: float,
    q: float,
    group: str = "matrix",
    layer_of: Mapping[str, int] | None = None,
) -> Region:
    """Safety-critical weights: top-q safety scores minus top-p utility scores, per group (``layer_of`` maps
    each weight to its layer, needed for ``group="layer"``)."""
    _check_fraction("p", p)
    _check_fraction("q", q)
    if safety.keys() != utility.keys():
        raise ValueError("safety and utility scores cover different weights")
    S, U = _top_masks(safety, q, group, layer_of), _top_masks(utility, p, group, layer_of)
    return Region({n: S[n] & ~U[n] for n in S}, f"S_{q:g} \\ U_{p:g} ({group})")


def random_like(region: Region, seed: int = 0) -> Region:
    """The control: the same number of weights in every matrix, at random positions."""
    g = torch.Generator().manual_seed(seed)
    masks = {}
    for n, m in region.masks.items():
        k = int(m.sum())
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[torch.randperm(m.numel(), generator=g)[:k]] = True
        masks[n] = flat.reshape(m.shape)
    return Region(masks, f"random, same count as {region.description}")


def jaccard_overlap(
    safety: dict[str, torch.Tensor], utility: dict[str, torch.Tensor], p: float, group: str = "matrix"
) -> dict[str, float]:
    """Jaccard index of the top-p safety and top-p utility sets, per weight matrix."""
    S, U = _top_masks(safety, p, group), _top_masks(utility, p, group)
    out = {}
    for n in S:
        inter, union = int((S[n] & U[n]).sum()), int((S[n] | U[n]).sum())
        out[n] = inter / union if union else 0.0
    return out


def score_mass(scores: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of the total score held by each matrix (the heatmap's second view)."""
    totals = {n: float(s.sum()) for n, s in scores.items()}
    z = sum(totals.values()) or 1.0
    return {n: t / z for n, t in totals.items()}
