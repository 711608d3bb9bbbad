"""Rank level (Wei et al. 2024). With A = X Wᵀ the Linear's outputs over response tokens (fp32),
V_r = top-r right singular vectors of A (= top eigenvectors of the Gram AᵀA), Π_r = V_r V_rᵀ.

- remove the top-r ranks:          W ← (I − Π_r) W
- isolate safety ranks (r_u, r_s): W ← W − (I − Π_u) Π_s W      (rank of the change ≤ r_s)

Ranks are the real ranks (not the reference code's complements R − r). When the calibration set has
fewer tokens than a requested rank, the rank is clipped and the clipping reported.

Procedure: ``sequential`` (the reference's, alignment-attribution-code ``lib/model_wrapper_low.py``): layer by
layer, layer l's activations are recorded on the model whose layers < l are already edited, then layer l is
edited; ``one-pass`` (project variant): every layer's activations from one pass over the unedited model.
Decomposition: ``exact`` (default): an eigendecomposition of the output Gram matrix — a deterministic answer,
the sounder definition; ``lowrank`` (the reference's): ``torch.svd_lowrank(A, q=r, niter=20)`` on the outputs A,
whose answer depends on the random seed when σ_{r+1}/σ_r is close to 1 (no oversampling). The lowrank option
seeds the generator once (``seed``) before the first decomposition and draws in the reference's order (layer by
layer; per weight, the utility set before the safety set); sequential procedure only.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from analysis.core.arch import Adapter, adapter_of
from analysis.core.edits import LowRank, applied
from analysis.methods.critical_regions.activations import collect

PROCEDURES = ("sequential", "one-pass")  # the first is the reference's
DECOMPOSITIONS = ("exact", "lowrank")  # the first is the default; the second the reference's svd_lowrank
LOWRANK_NITER = 20  # the reference's niter (q = r, no oversampling)


@dataclass
class Subspaces:
    """Top output directions per weight (columns of V, d_out × r_max) and the tokens behind them."""

    vectors: dict[str, torch.Tensor]
    n_tokens: int

    def rank_cap(self, name: str) -> int:
        return self.vectors[name].shape[1]


def subspaces_from_gram(gram: dict[str, torch.Tensor], n_tokens: int, max_rank: int | None = None) -> Subspaces:
    out = {}
    for n, G in gram.items():
        evals, evecs = torch.linalg.eigh(G.double())
        order = evals.flip(0)
        cap = min(int((order > order[0] * 1e-10).sum()), n_tokens, G.shape[0])
        if max_rank is not None:
            cap = min(cap, max_rank)
        out[n] = evecs.flip(1)[:, :cap].float()
    return Subspaces(out, n_tokens)


def lowrank_vectors(A: torch.Tensor, q: int, niter: int = LOWRANK_NITER) -> torch.Tensor:
    """Top right singular vectors (d_out × q') of A by ``torch.svd_lowrank(A, q, niter)`` from the current global
    generator, q' = min(q, rows, columns) (svd_lowrank cannot return more)."""
    q = min(q, *A.shape)
    if q < 1:
        return A.new_zeros(A.shape[1], 0)
    return torch.svd_lowrank(A.float(), q=q, niter=niter)[2]


@dataclass
class RankEdit:
    edit: LowRank
    ranks: dict[str, int]  # real rank of the change per weight
    clipped: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (asked, used)

    def fraction_of_ranks(self, adapter: Adapter) -> float:
        total = sum(min(adapter[n].shape) for n in self.ranks)
        return sum(self.ranks.values()) / max(total, 1)


def _take(sub: Subspaces, name: str, r: int, clipped: dict) -> torch.Tensor:
    cap = sub.rank_cap(name)
    if r > cap:
        clipped[name] = (r, cap)
        r = cap
    return sub.vectors[name][:, :r]


def remove_top_ranks(model, safety: Subspaces, r: int, names: list[str] | None = None) -> RankEdit:
    """W ← (I − Π_r) W for each weight, Π_r from the safety set."""
    adapter = adapter_of(model)
    factors, ranks = {}, {}
    clipped: dict[str, tuple[int, int]] = {}
    for n in names or list(safety.vectors):
        V = _take(safety, n, r, clipped).to(adapter[n].W.device)
        factors[n] = (-V, V.T @ adapter[n].W.float())
        ranks[n] = V.shape[1]
    return RankEdit(LowRank(factors), ranks, clipped)


def orthogonal_projection(
    model, safety: Subspaces, utility: Subspaces, r_s: int, r_u: int, names: list[str] | None = None
) -> RankEdit:
    """W ← W − (I − Π_u) Π_s W: remove safety directions not shared with the top-r_u utility directions."""
    adapter = adapter_of(model)
    factors, ranks = {}, {}
    clipped: dict[str, tuple[int, int]] = {}
    for n in names or list(safety.vectors):
        W = adapter[n].W.float()
        Vs = _take(safety, n, r_s, clipped).to(W.device)
        Vu = _take(utility, n, r_u, clipped).to(W.device)
        left = Vs - Vu @ (Vu.T @ Vs)  # (I − Π_u) V_s
        factors[n] = (-left, Vs.T @ W)
        ranks[n] = int(torch.linalg.matrix_rank(left)) if left.numel() else 0
    return RankEdit(LowRank(factors), ranks, clipped)


def _layer_lowrank(
    model, names, safety_batches, utility_batches, r_s: int, r_u: int, positions: str
) -> tuple[Subspaces, Subspaces | None]:
    """One layer's subspaces by svd_lowrank (q = r), drawn per weight in the reference's order."""
    st = collect(model, safety_batches, names=names, positions=positions, outputs=True)
    su = (
        collect(model, utility_batches, names=names, positions=positions, outputs=True)
        if utility_batches is not None
        else None
    )
    vec_s, vec_u = {}, {}
    for n in names:
        if su is not None:
            vec_u[n] = lowrank_vectors(su.output_matrix(n), max(r_u, 1))
        vec_s[n] = lowrank_vectors(st.output_matrix(n), max(r_s, 1))
    return Subspaces(vec_s, st.n_tokens), (Subspaces(vec_u, su.n_tokens) if su is not None else None)


def sequential_subspaces(
    model,
    safety_batches: list,
    utility_batches: list | None,
    r_s: int,
    r_u: int = 0,
    progress=None,
    positions: str = "response",
    decomposition: str = "exact",
    seed: int = 0,
) -> tuple[Subspaces, Subspaces | None]:
    """The reference's layer-by-layer procedure: for each decoder layer l in order, record layer l's output Gram
    matrices on the model with layers < l already edited (ActSVD when ``utility_batches`` is None, else the
    orthogonal projection with r_s, r_u), keep its top directions, then edit layer l. Returns the subspaces per
    weight (at most r_s / r_u directions each) from which :func:`remove_top_ranks` / :func:`orthogonal_projection`
    rebuild exactly the same edit on the unedited model; the model is left unchanged. ``decomposition="lowrank"``:
    the reference's ``svd_lowrank`` (q = r, niter = 20), the generator seeded with ``seed`` once, restored after."""
    if decomposition not in DECOMPOSITIONS:
        raise ValueError(f"decomposition must be one of {DECOMPOSITIONS}, got {decomposition!r}")
    if decomposition == "lowrank":
        dev = next(model.parameters()).device
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            return _sequential(model, safety_batches, utility_batches, r_s, r_u, progress, positions, True)
    return _sequential(model, safety_batches, utility_batches, r_s, r_u, progress, positions, False)


def _sequential(
    model, safety_batches, utility_batches, r_s: int, r_u: int, progress, positions: str, lowrank: bool
) -> tuple[Subspaces, Subspaces | None]:
    adapter = adapter_of(model)
    by_layer: dict[int, list[str]] = {}
    for n, ref in adapter.linears.items():
        by_layer.setdefault(ref.layer, []).append(n)
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    vec_s, vec_u, tok_s, tok_u = {}, {}, 0, 0
    for i, layer in enumerate(sorted(by_layer)):
        names = by_layer[layer]
        with applied(model, LowRank(dict(factors))) if factors else nullcontext():
            if lowrank:
                sub_s, sub_u = _layer_lowrank(model, names, safety_batches, utility_batches, r_s, r_u, positions)
            else:
                st = collect(model, safety_batches, names=names, gram=True, positions=positions)
                sub_s = subspaces_from_gram(st.gram, st.n_tokens, max(r_s, 1))
                sub_u = None
                if utility_batches is not None:
                    su = collect(model, utility_batches, names=names, gram=True, positions=positions)
                    sub_u = subspaces_from_gram(su.gram, su.n_tokens, max(r_u, 1))
        if sub_u is None:
            r = remove_top_ranks(model, sub_s, r_s, names)
        else:
            r = orthogonal_projection(model, sub_s, sub_u, r_s, r_u, names)
            vec_u.update(sub_u.vectors)
            tok_u = sub_u.n_tokens
        vec_s.update(sub_s.vectors)
        tok_s = sub_s.n_tokens
        factors.update(r.edit.factors)
        if progress:
            progress((i + 1) / len(by_layer), f"layer {layer}: recorded on the model edited up to layer {layer - 1}")
    return Subspaces(vec_s, tok_s), (Subspaces(vec_u, tok_u) if utility_batches is not None else None)
