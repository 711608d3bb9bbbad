"""Spectra of the alignment update ΔW = W_aligned − W_base, for every decoder Linear.

Per weight: the singular values of ΔW (fp32), the cumulative energy Σ_{i≤k} σ_i² / Σ σ_i², and the
effective rank exp(H(p)) with p_i = σ_i / Σ σ_j (Roy & Vetterli: the entropy of the normalised spectrum;
1 for a rank-1 update, min(d_out, d_in) for a flat one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

from analysis.core.cache import Cache
from analysis.core.edits import locked, resolve

DEFAULT_ENERGY_K = 8  # the spectra table reports the energy captured by the top k

SV_METHODS = ("svd", "gram")


def delta(aligned, base, name: str) -> torch.Tensor:
    """ΔW of a decoder weight (uniform name, d_out × d_in) or of any other parameter (its path, e.g. the
    embeddings), fp32 on the aligned model's device (the base weight is brought there when it lives elsewhere,
    e.g. offloaded to the CPU)."""
    if name in aligned.adapter.linears:
        Wa, Wb = aligned.adapter[name].W.detach(), base.adapter[name].W.detach()
    else:
        Wa, Wb = resolve(aligned.model, name).detach(), resolve(base.model, name).detach()
        if Wa.shape != Wb.shape:
            raise ValueError(f"{name}: aligned and base shapes differ ({tuple(Wa.shape)} vs {tuple(Wb.shape)})")
    if Wa.device.type == "cpu":
        return Wa.float().cpu() - Wb.float().cpu()
    return Wa.float() - Wb.to(Wa.device).float()


def deltas(aligned, base, names: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, ΔW) of each named weight in turn, read under both models' locks, on the aligned model's device
    (one weight's ΔW in memory at a time)."""
    for n in names:
        with locked(aligned.model, base.model):
            d = delta(aligned, base, n)
        yield n, d


def default_method(device: torch.device) -> str:
    """``svd`` on the CPU (LAPACK is fast there; the demo numbers come from it), ``gram`` on a GPU."""
    return "svd" if torch.device(device).type == "cpu" else "gram"


def singular_values(M: torch.Tensor, method: str | None = None) -> torch.Tensor:
    """Singular values of M (fp32, descending), on M's device.

    ``svd``: torch.linalg.svdvals in fp32. ``gram``: eigenvalues of the Gram matrix of the smaller side
    (MᵀM or MMᵀ) in float64, σ = √max(λ, 0) — a symmetric eigensolver is several times faster than an SVD
    on a GPU, and float64 keeps the small σ accurate (absolute error ≈ 1e-8·σ₁ rather than 1e-4·σ₁)."""
    method = method or default_method(M.device)
    if method not in SV_METHODS:
        raise ValueError(f"singular value method must be one of {SV_METHODS}, got {method!r}")
    if method == "svd":
        return torch.linalg.svdvals(M.float())
    return torch.linalg.eigvalsh(gram(M)).flip(0).clamp_min(0).sqrt().float()


GRAM_CHUNK = 1 << 26  # elements of M converted to float64 at a time (512 MB)


def gram(M: torch.Tensor) -> torch.Tensor:
    """MᵀM or MMᵀ (the smaller side) in float64; a large M is converted and summed in row/column chunks."""
    A = M if M.shape[0] >= M.shape[1] else M.T  # tall: the Gram is AᵀA
    if A.numel() <= GRAM_CHUNK:
        D = A.double()
        return D.T @ D
    rows = max(1, GRAM_CHUNK // A.shape[1])
    G = torch.zeros((A.shape[1], A.shape[1]), dtype=torch.float64, device=A.device)
    for i in range(0, A.shape[0], rows):
        D = A[i : i + rows].double()
        G.addmm_(D.T, D)
    return G


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
    values: torch.Tensor  # singular values, descending
    norm_ratio: float  # ‖ΔW‖_F / ‖W_base‖_F

    @property
    def effective_rank(self) -> float:
        return effective_rank(self.values)

    def energy_at(self, k: int) -> float:
        """Share of ‖ΔW‖² in the top k (k = 0 means all of it)."""
        if k <= 0 or k >= len(self.values):
            return 1.0
        return float(energy(self.values)[k - 1])


def spectra(aligned, base, cache: Cache | None = None, progress=None, method: str | None = None) -> dict[str, Spectrum]:
    """Singular values of ΔW for every decoder weight of the pair, on the aligned model's device, cached by
    both fingerprints (and the method when it is not the CPU's ``svd``)."""
    if base is None:
        raise ValueError(
            "spectra of ΔW need a base model: pick one in the sidebar (the aligned model's pre-alignment checkpoint)"
        )
    names = list(aligned.adapter.linears)
    dev = next(aligned.model.parameters()).device
    method = method or default_method(dev)
    parts = {"kind": "delta-spectra", "aligned": aligned.fingerprint, "base": base.fingerprint}
    if method != "svd":  # CPU keys (svd) stay as they were
        parts["method"] = method
    from analysis.core import memory

    memory.guard(aligned.model, memory.spectra)

    def compute() -> dict[str, torch.Tensor]:
        out = {}
        for i, (n, d) in enumerate(deltas(aligned, base, names)):
            with locked(base.model):
                base_norm = base.adapter[n].W.to(d.device).float().norm().clamp_min(1e-12)
            out[f"s/{n}"] = singular_values(d, method).cpu()
            out[f"r/{n}"] = torch.tensor([float(d.norm() / base_norm)])
            if progress:
                progress((i + 1) / len(names), f"SVD of ΔW {n}")
        return out

    d = (cache or Cache()).get_or_compute(parts, compute, "safetensors")
    return {
        n: Spectrum(n, aligned.adapter[n].layer, aligned.adapter[n].module, d[f"s/{n}"], float(d[f"r/{n}"][0]))
        for n in names
    }


def table(specs: dict[str, Spectrum], k: int) -> list[dict]:
    """One row per weight: layer, module, effective rank, energy at k, ‖ΔW‖/‖W‖ (for tables and CSV)."""
    return [
        {
            "weight": s.name,
            "layer": s.layer,
            "module": s.module,
            "effective_rank": round(s.effective_rank, 2),
            f"energy@{k}": round(s.energy_at(k), 4),
            "norm_ratio": round(s.norm_ratio, 4),
            "sigma_1": round(float(s.values[0]), 5) if len(s.values) else 0.0,
        }
        for s in specs.values()
    ]
