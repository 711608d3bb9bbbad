"""LoX (Perin et al. 2025): low-rank extrapolation of the alignment update.

W_LoX = W_aligned + α · M_k, where M_k = U_k S_k V_kᵀ is the top-k part of ΔW = W_aligned − W_base
(k = 0: the whole ΔW). Scope (the reference's, LoX ``safety/LoX.py``): every weight with more than one dimension,
embeddings and lm_head included, tied tensors once ("all-2d"); "decoder" (decoder Linears only) is the project
variant. ΔW is formed in fp32 (the reference forms it in bf16). Only the top k singular triplets are needed, so they come from a randomised
SVD (Halko et al.: Gaussian sketch, power iterations with re-orthonormalisation, Rayleigh–Ritz), whose
convergence is checked; a full SVD is the fallback when the check fails. Also here: the safety-subspace
retention R = ‖P_k ΔW‖ / ‖ΔW‖ and the recovery rank of the base model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from analysis.core.arch import non_decoder_matrices, output_weight_name
from analysis.core.cache import Cache
from analysis.core.edits import Add, Edit, LowRank, applied, locked
from analysis.core.options import check, option
from analysis.core.stats import PairedDifference, Rate
from analysis.methods.spectra import delta, deltas

if TYPE_CHECKING:
    from collections.abc import Mapping

    from analysis.core.evaluation import EvalSpec
    from analysis.core.models import LoadedModel

SVD_METHODS = ("randomized", "full")
SCOPES = ("all-2d", "decoder")  # the first is the reference's
R_MODES = ("mean", "pooled")  # R_align / R_ft: the reference's mean of per-weight ratios | pooled
DEFAULT_RECOVERY_RANKS = (1, 2, 4, 8, 16, 32, 64)
DEFAULT_RECOVERY_TOLERANCE = 0.05  # allowed ASR above the aligned model's


@dataclass
class TopK:
    A: torch.Tensor  # U_k S_k  (d_out × k)
    B: torch.Tensor  # V_kᵀ     (k × d_in)
    method: str  # "randomized" or "full" (also when the randomised result failed its check)

    @property
    def U(self) -> torch.Tensor:
        return torch.linalg.qr(self.A)[0] if self.A.shape[1] else self.A


def _lowrank_diff(a: tuple, b: tuple) -> float:
    """‖U₁S₁V₁ᵀ − U₂S₂V₂ᵀ‖_F / ‖U₂S₂V₂ᵀ‖_F from the factors, in float64 (O((m + n)·k²), no dense product):
    ‖AB‖² = Σ (AᵀA ∘ BBᵀ), so the difference's norm needs only k × k Gram matrices."""
    A1, B1 = (a[0] * a[1]).double(), a[2].double()
    A2, B2 = (b[0] * b[1]).double(), b[2].double()

    def dot(A, B, C, D):  # ⟨AB, CD⟩_F
        return float(((A.T @ C) * (B @ D.T)).sum())

    sq = dot(A1, B1, A1, B1) + dot(A2, B2, A2, B2) - 2 * dot(A1, B1, A2, B2)
    return max(sq, 0.0) ** 0.5 / max(dot(A2, B2, A2, B2), 1e-300) ** 0.5


def randomized_svd(
    M: torch.Tensor, k: int, oversample: int = 16, n_iter: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Top-k (U, S, Vh) of M, and an error estimate: the relative change of U_k S_k V_kᵀ made by one more
    power iteration (convergence is geometric, so a small change means a converged top-k)."""
    m, n = M.shape
    q = min(k + max(oversample, k), m, n)
    g = torch.Generator(device=M.device).manual_seed(seed)
    Q = torch.linalg.qr(M @ torch.randn(n, q, generator=g, device=M.device, dtype=M.dtype))[0]

    def ritz(Q):
        Ub, S, Vh = torch.linalg.svd(Q.T @ M, full_matrices=False)
        return Q @ Ub[:, :k], S[:k], Vh[:k]

    prev = None
    for i in range(n_iter + 1):
        if i == n_iter:
            prev = ritz(Q)
        Q = torch.linalg.qr(M @ torch.linalg.qr(M.T @ Q)[0])[0]
    U, S, Vh = ritz(Q)
    return U, S, Vh, _lowrank_diff(cast(tuple, prev), (U, S, Vh))  # prev: set at i == n_iter


def top_k(M: torch.Tensor, k: int, method: str = "randomized", tol: float = 1e-3, seed: int = 0) -> TopK:
    """The top-k part of M as factors A @ B. ``randomized`` falls back to a full SVD when its error
    estimate exceeds ``tol`` after a second, longer try (or when k is close to the full rank)."""
    if method not in SVD_METHODS:
        raise ValueError(f"svd method must be one of {SVD_METHODS}, got {method!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1 here (k = 0, the full ΔW, needs no SVD); got {k}")
    M = M.float()
    k = min(k, *M.shape)
    if method == "randomized" and 2 * k + 16 < min(M.shape) // 2:
        for n_iter in (3, 10):
            U, S, Vh, err = randomized_svd(M, k, n_iter=n_iter, seed=seed)
            if err <= tol:
                return TopK(U * S, Vh, "randomized")
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    return TopK(U[:, :k] * S[:k], Vh[:k], "full")


def _names(aligned, layers: list[int] | None, modules: list[str] | None, scope: str = "decoder") -> list[str]:
    """Decoder weights matching ``layers``/``modules``; with scope "all-2d" and no layer/module filter, also every
    other tensor with more than one dimension (embeddings, lm_head; tied tensors once), by parameter path.
    Scope "decoder+lm_head" (the R metrics' weights: every nn.Linear) adds only the lm_head."""
    if scope not in SCOPES + ("decoder+lm_head",):
        raise ValueError(f"LoX scope must be one of {SCOPES}, got {scope!r}")
    names = aligned.adapter.names(layers, modules)
    if not names:
        raise ValueError(
            f"no decoder weights match layers={layers} and modules={modules}; "
            f"the model has layers 0–{aligned.adapter.n_layers - 1} and modules {aligned.adapter.modules}"
        )
    if layers is None and modules is None:
        if scope == "all-2d":
            names += non_decoder_matrices(aligned.model)
        elif scope == "decoder+lm_head":
            head = output_weight_name(aligned.model)
            names += [head] if head is not None and head not in names else []
    return names


def alignment_factors(
    aligned: "LoadedModel",
    base: "LoadedModel",
    k: int,
    layers: list[int] | None = None,
    modules: list[str] | None = None,
    method: str = "randomized",
    cache: Cache | None = None,
    progress=None,
    scope: str = "all-2d",
) -> dict[str, TopK]:
    """Top-k factors of ΔW for the chosen weights (``scope``: see :func:`_names`), cached by both fingerprints,
    the weights' names, k and the SVD method."""
    if base is None:
        raise ValueError("LoX needs the base model of the pair (ΔW = W_aligned − W_base): pick one in the sidebar")
    names = _names(aligned, layers, modules, scope)
    dev = next(aligned.model.parameters()).device
    parts = {
        "kind": "lox-factors",
        "aligned": aligned.fingerprint,
        "base": base.fingerprint,
        "k": k,
        "names": names,
        "method": method,
    }
    if dev.type != "cpu":  # the randomised sketch is drawn on the device: CUDA draws differ from CPU draws
        parts["device"] = dev.type
    from analysis.core import memory

    memory.guard(aligned.model, memory.spectra)

    def compute() -> dict[str, torch.Tensor]:
        out = {}
        for i, (n, d) in enumerate(deltas(aligned, base, names)):
            t = top_k(d, k, method)  # on the model's device
            out[f"A/{n}"], out[f"B/{n}"] = t.A.contiguous(), t.B.contiguous()
            out[f"full/{n}"] = torch.tensor([t.method == "full"])
            if progress:
                progress((i + 1) / len(names), f"top-{k} of ΔW {n}")
        return out

    d = (cache or Cache()).get_or_compute(parts, compute, "safetensors")
    return {
        n: TopK(d[f"A/{n}"].to(dev), d[f"B/{n}"].to(dev), "full" if bool(d[f"full/{n}"][0]) else method) for n in names
    }


@dataclass
class LoX:
    """Settings of one extrapolation; ``edit`` builds the reversible edit for the aligned model."""

    k: int = option(6, range=(0, None), widget_range=(0, 64), help="top-k singular directions of ΔW (0 = all of ΔW)")
    alpha: float = option(1.25, range=(-10, 10), widget_range=(0, 3), step=0.05, help="extrapolation strength α")
    layers: list[int] | None = None
    modules: list[str] | None = None
    method: str = option("randomized", choices=SVD_METHODS, help="SVD of ΔW")
    scope: str = option(
        "all-2d",
        choices=SCOPES,
        help="all-2d (reference: every weight with more than one dimension, embeddings and lm_head) "
        "| decoder (project variant: decoder Linears only)",
    )
    notes: list[str] = field(default_factory=list)

    def validate(self) -> None:
        check(self)

    @property
    def convention(self) -> str:
        """Which convention the scope follows (shown next to LoX numbers)."""
        return (
            "reference (every weight with more than one dimension)"
            if self.scope == "all-2d"
            else "project variant: decoder Linears only"
        )

    @property
    def label(self) -> str:
        where = (
            ""
            if self.layers is None and self.modules is None
            else f", layers {self.layers or 'all'}, modules {self.modules or 'all'}"
        )
        scope = "" if self.scope == "all-2d" else ", decoder only"
        return f"LoX k={self.k or 'full'} α={self.alpha:g}{where}{scope}"

    def spec(self) -> dict:
        return {
            "k": self.k,
            "alpha": self.alpha,
            "layers": self.layers,
            "modules": self.modules,
            "method": self.method,
            "scope": self.scope,
        }

    def edit(self, aligned: "LoadedModel", base: "LoadedModel", cache: Cache | None = None, progress=None) -> Edit:
        """The reversible edit W_aligned + α·M_k, named by its recipe (settings and both fingerprints)."""
        self.validate()
        if base is None:
            raise ValueError("LoX needs the base model of the pair (ΔW = W_aligned − W_base): pick one in the sidebar")
        recipe = {"lox": self.spec(), "aligned": aligned.fingerprint, "base": base.fingerprint}
        if self.k == 0:
            names = _names(aligned, self.layers, self.modules, self.scope)
            from analysis.core import memory

            memory.guard(aligned.model, memory.lox_full)
            with locked(aligned.model, base.model):
                return Add({n: delta(aligned, base, n) for n in names}, self.alpha, recipe=recipe)
        f = alignment_factors(
            aligned, base, self.k, self.layers, self.modules, self.method, cache, progress, self.scope
        )
        fell_back = [n for n, t in f.items() if t.method != self.method]
        if fell_back:
            self.notes.append(
                f"{len(fell_back)} weight(s) used the full SVD (randomised SVD not converged within tolerance)"
            )
        return LowRank({n: (t.A, t.B) for n, t in f.items()}, self.alpha, recipe=recipe)


def save_edited(lm, edit: Edit, out: str | Path) -> Path:
    """Write the edited model (weights + config + tokenizer) as a new Hugging Face folder."""
    from analysis.core.paths import writable_new_folder

    out = writable_new_folder(out)  # not in the cache, not a file, not under a file, not full, writable
    out.mkdir(parents=True, exist_ok=True)
    with applied(lm.model, edit):
        lm.model.save_pretrained(out)
    lm.tokenizer.save_pretrained(out)
    return out


def retention(bases: dict[str, torch.Tensor], deltas: Mapping[str, torch.Tensor], mode: str = "mean") -> float:
    """R = ‖P_k ΔW‖_F / ‖ΔW‖_F with P_k = U_k U_kᵀ (U_k orthonormal, per weight): ``mean`` (the reference,
    LoX ``safety/R_metrics.py``) averages the per-weight ratios; ``pooled`` (project variant) sums the squared
    norms over all weights before the ratio."""
    if mode not in R_MODES:
        raise ValueError(f"retention mode must be one of {R_MODES}, got {mode!r}")
    num = den = 0.0
    ratios = []
    for n, d in deltas.items():
        U = bases[n].to(d.device, torch.float32)
        d = d.float()
        a, b = float((U.T @ d).norm() ** 2), float(d.norm() ** 2)
        num, den = num + a, den + b
        if b > 0:
            ratios.append((a / b) ** 0.5)
    if mode == "mean":
        return sum(ratios) / len(ratios) if ratios else 0.0
    return (num / den) ** 0.5 if den > 0 else 0.0


def retention_scope(mode: str) -> str:
    """The weights each R convention covers: the reference's every nn.Linear (decoder + lm_head) for ``mean``,
    the decoder weights for ``pooled``."""
    return "decoder+lm_head" if mode == "mean" else "decoder"


@dataclass(frozen=True)
class RecoverySettings:
    """The recovery-rank search: the ranks tried and the allowed ASR above the aligned model's."""

    ranks: tuple[int, ...] = option(DEFAULT_RECOVERY_RANKS, range=(1, None), help="ranks to try")
    tolerance: float = option(
        DEFAULT_RECOVERY_TOLERANCE,
        range=(0, 1),
        widget_range=(0, 0.2),
        step=0.01,
        help="allowed ASR above the aligned model's",
    )


@dataclass
class Recovery:
    ranks: list[int]
    asr: list[float]
    target_asr: float
    rank: int | None  # smallest tried rank meeting the target (None: none did)
    n_harmful: int = 0  # prompts each ASR is over (for its interval)
    vs_aligned: list[PairedDifference] = field(default_factory=list)  # each rank's ASR − aligned's, same prompts

    def asr_rates(self) -> list[Rate]:
        """Each rank's ASR with its 95 % Wilson interval."""
        return [Rate.of_share(a, self.n_harmful) for a in self.asr]

    def found_vs_aligned(self) -> str:
        """The found rank's ASR minus the aligned model's on the same prompts, with its paired test ('' without)."""
        if self.rank is None or not self.vs_aligned:
            return ""
        return f"rank {self.rank} − aligned: {self.vs_aligned[self.ranks.index(self.rank)].format()}"


def recovery_rank(
    base: "LoadedModel",
    aligned: "LoadedModel",
    spec: "EvalSpec",
    ranks: list[int],
    tolerance: float = DEFAULT_RECOVERY_TOLERANCE,
    cache: Cache | None = None,
    progress=None,
) -> Recovery:
    """Smallest r such that W_base + rank-r(ΔW) refuses like the aligned model (ASR ≤ aligned + tolerance).

    Edits the base model reversibly, one rank at a time, through the evaluation cache."""
    from analysis.core.evaluation import evaluate

    ranks = sorted({int(r) for r in ranks if r >= 1})
    if not ranks:
        raise ValueError("give at least one rank >= 1 to try")
    cache = cache or Cache()
    reference = evaluate(aligned, spec, cache=cache)
    target = reference.asr + tolerance
    top = alignment_factors(aligned, base, max(ranks), cache=cache, scope="decoder")
    asr, found, paired = [], None, []
    for i, r in enumerate(ranks):
        edit = LowRank(
            {n: (t.A[:, :r], t.B[:r]) for n, t in top.items()},
            recipe={"recovery_rank": r, "aligned": aligned.fingerprint, "base": base.fingerprint},
        )
        res = evaluate(base, spec, edit, cache=cache)
        asr.append(res.asr)
        paired.append(reference.paired(res, "asr", "aligned", f"rank {r}"))
        if progress:
            progress((i + 1) / len(ranks), f"rank {r} restored: ASR {res.asr:.0%}")
        if found is None and res.asr <= target:
            found = r
    return Recovery(ranks, asr, target, found, len(spec.harmful), paired)
