"""The critical-regions interface the page and the CLI call: settings in, a reversible edit out.

Methods: ``set_difference`` (Wanda/SNIP scores, S_q \\ U_p), ``actsvd`` (remove the top-r safety ranks),
``orthogonal`` (W ← W − (I − Π_u) Π_s W) and ``units`` (zero the input channels of exclusive safety units).
Each returns a :class:`RegionEdit` carrying the edit, the real fraction removed, and a same-size random
control.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .attribution.actsvd import orthogonal_projection, remove_top_ranks
from .attribution.units import classify_units
from .cache import Cache
from .edits import Edit, LowRank
from .regions import random_like, set_difference
from .scoring import Calibration, activation_stats, scores, unit_importance

METHODS = ("set_difference", "actsvd", "orthogonal", "units")


@dataclass
class RegionSettings:
    method: str = "set_difference"
    score: str = "snip"          # wanda | snip (set difference)
    p: float = 0.03              # top utility fraction protected
    q: float = 0.03              # top safety fraction selected
    group: str = "row"           # row | matrix | layer
    prune_to: str = "zero"       # zero | base
    r_s: int = 1                 # safety ranks (actsvd, orthogonal)
    r_u: int = 0                 # utility ranks protected (orthogonal)
    safety_pct: float = 2.0      # units: exclusive safety percentile
    utility_pct: float = 13.0
    redundant_pct: float = 15.0
    unit_kind: str = "safety"    # which unit type to prune

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.prune_to not in ("zero", "base"):
            raise ValueError("prune_to must be 'zero' or 'base'")
        if self.r_s < 0 or self.r_u < 0:
            raise ValueError("ranks must be >= 0")


@dataclass
class RegionEdit:
    edit: Edit
    control: Edit | None
    description: str
    removed_fraction: float              # share of decoder weights (or of ranks / units) removed
    unit: str                            # "weights", "ranks" or "units"
    per_module: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _random_rank_control(edit: LowRank, model, seed: int = 0) -> LowRank:
    """Same ranks, random orthonormal directions: W ← (I − Π_rand) W."""
    from .arch import adapter_of

    adapter = adapter_of(model)
    g = torch.Generator().manual_seed(seed)
    factors = {}
    for n, (A, _) in edit.factors.items():
        r = A.shape[1]
        W = adapter[n].W.float()
        Q, _ = torch.linalg.qr(torch.randn(W.shape[0], max(r, 1), generator=g))
        Q = Q[:, :r]
        factors[n] = (-Q, Q.T @ W)
    return LowRank(factors)


def build(lm, settings: RegionSettings, cal: Calibration, base=None, cache: Cache | None = None,
          progress=None) -> RegionEdit:
    """Compute (or read cached) scores and turn them into the region's edit and its random control."""
    settings.validate()
    s = settings
    cache = cache or Cache()
    if s.method == "set_difference":
        ss = scores(lm, s.score, "safety", cal, cache, progress)
        us = scores(lm, s.score, "utility", cal, cache, progress)
        region = set_difference(ss, us, s.p, s.q, s.group)
        base_w = None
        if s.prune_to == "base":
            if base is None:
                raise ValueError("pruning to base weights needs a base model in the pair")
            base_w = {n: base.adapter[n].W.detach() for n in region.masks}
        control = random_like(region)
        return RegionEdit(region.edit(base_w), control.edit(base_w),
                          f"{s.score} {region.description}, pruned to {s.prune_to}", region.fraction, "weights",
                          region.fraction_by_module())
    if s.method in ("actsvd", "orthogonal"):
        _, sub_s = activation_stats(lm, "safety", cal, cache, progress)
        if s.method == "actsvd":
            r = remove_top_ranks(lm.model, sub_s, s.r_s)
            desc = f"ActSVD: remove top {s.r_s} safety rank(s)"
        else:
            _, sub_u = activation_stats(lm, "utility", cal, cache, progress)
            r = orthogonal_projection(lm.model, sub_s, sub_u, s.r_s, s.r_u)
            desc = f"orthogonal projection: r_s = {s.r_s}, r_u = {s.r_u}"
        notes = [f"{n}: rank {asked} asked, only {used} available from {sub_s.n_tokens} calibration tokens"
                 for n, (asked, used) in r.clipped.items()]
        per = {n: k / min(lm.adapter[n].shape) for n, k in r.ranks.items()}
        return RegionEdit(r.edit, _random_rank_control(r.edit, lm.model), desc,
                          r.fraction_of_ranks(lm.adapter), "ranks", per, notes)
    i_s, i_u = unit_importance(lm, cal, cache, progress)
    types = classify_units(i_s, i_u, s.safety_pct, s.utility_pct, s.redundant_pct)
    n = types.count(s.unit_kind)
    edit = types.mask(s.unit_kind, lm.adapter)
    control = types.mask("redundant", lm.adapter, limit=n)
    total_units = sum(len(v) for v in types.labels.values())
    return RegionEdit(edit, control, f"units: prune {n} {s.unit_kind} units (control: {min(n, types.count('redundant'))} "
                      "redundant units)", n / max(total_units, 1), "units",
                      {k: v[s.unit_kind] for k, v in types.shares().items()})
