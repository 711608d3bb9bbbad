"""Spectra of the alignment update ΔW = W_aligned − W_base, for every decoder Linear.

Per weight: the singular values of ΔW (fp32), the cumulative energy Σ_{i≤k} σ_i² / Σ σ_i², and the
effective rank exp(H(p)) with p_i = σ_i / Σ σ_j (Roy & Vetterli: the entropy of the normalised spectrum;
1 for a rank-1 update, min(d_out, d_in) for a flat one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .cache import Cache
from .edits import locked

DEFAULT_ENERGY_K = 8   # the spectra table reports the energy captured by the top k


def delta(aligned, base, name: str) -> torch.Tensor:
    """ΔW of one decoder weight, (d_out × d_in), fp32 on the CPU."""
    return aligned.adapter[name].W.detach().float().cpu() - base.adapter[name].W.detach().float().cpu()


def effective_rank(s: torch.Tensor) -> float:
    total = float(s.sum())
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return math.exp(float(-(p * p.log()).sum()))


def energy(s: torch.Tensor) -> torch.Tensor:
    """Cumulative share of ‖ΔW‖_F² captured by the top 1, 2, … singular values."""
    sq = s.double() ** 2
    return (sq.cumsum(0) / sq.sum().clamp_min(1e-300)).float()


@dataclass
class Spectrum:
    name: str
    layer: int
    module: str
    values: torch.Tensor           # singular values, descending
    norm_ratio: float              # ‖ΔW‖_F / ‖W_base‖_F

    @property
    def effective_rank(self) -> float:
        return effective_rank(self.values)

    def energy_at(self, k: int) -> float:
        """Share of ‖ΔW‖² in the top k (k = 0 means all of it)."""
        if k <= 0 or k >= len(self.values):
            return 1.0
        return float(energy(self.values)[k - 1])


def spectra(aligned, base, cache: Cache | None = None, progress=None) -> dict[str, Spectrum]:
    """Singular values of ΔW for every decoder weight of the pair, cached by both fingerprints."""
    if base is None:
        raise ValueError("spectra of ΔW need a base model: pick one in the sidebar (the aligned model's "
                         "pre-alignment checkpoint)")
    names = list(aligned.adapter.linears)
    parts = {"kind": "delta-spectra", "aligned": aligned.fingerprint, "base": base.fingerprint}

    def compute() -> dict[str, torch.Tensor]:
        out = {}
        for i, n in enumerate(names):
            with locked(aligned.model, base.model):
                d = delta(aligned, base, n)
                base_norm = base.adapter[n].W.float().norm().clamp_min(1e-12)
            out[f"s/{n}"] = torch.linalg.svdvals(d)
            out[f"r/{n}"] = torch.tensor([float(d.norm() / base_norm)])
            if progress:
                progress((i + 1) / len(names), f"SVD of ΔW {n}")
        return out

    d = (cache or Cache()).get_or_compute(parts, compute, "safetensors")
    return {n: Spectrum(n, aligned.adapter[n].layer, aligned.adapter[n].module, d[f"s/{n}"], float(d[f"r/{n}"][0]))
            for n in names}


def table(specs: dict[str, Spectrum], k: int) -> list[dict]:
    """One row per weight: layer, module, effective rank, energy at k, ‖ΔW‖/‖W‖ (for tables and CSV)."""
    return [{"weight": s.name, "layer": s.layer, "module": s.module, "effective_rank": round(s.effective_rank, 2),
             f"energy@{k}": round(s.energy_at(k), 4), "norm_ratio": round(s.norm_ratio, 4),
             "sigma_1": round(float(s.values[0]), 5) if len(s.values) else 0.0} for s in specs.values()]
