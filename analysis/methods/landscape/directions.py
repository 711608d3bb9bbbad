"""Directions in weight space, regenerated tensor by tensor from seeds — never stored as weight copies.

- Random: for every perturbed tensor W, d = randn_like(W), drawn on W's device (a CUDA draw differs from
  a CPU draw of the same seed, so landscape cache keys name the device type when it is not the CPU),
  scaled to ‖W‖_F ("layer" normalisation, the reference's default) or each row scaled to that row's norm ("filter"). Each tensor's generator is seeded
  from (seed, tensor name), so any tensor's slice of the direction can be regenerated alone.
- 2D: the second direction is Gram–Schmidt-orthogonalised against the first (global inner product over all
  perturbed tensors): d₂ ← d₂ − (⟨d₁,d₂⟩/⟨d₁,d₁⟩) d₁.
- Interpolation: d = θ_other − θ_self, read from another loaded model of the same shapes.
- Reference seed mode (:class:`ReferenceRandomDirection`): the draw of llm-landscape ``src/landscape/direction.py``
  — one global seed (default 123), one ``torch.randn(size)`` per state-dict entry in state-dict order on the CPU
  (norm entries drawn and zeroed, as the reference does), each moved to the weight's device and scaled to
  ‖W‖_F / ‖d‖_F — so a published llm-landscape run can be reproduced. The generator state before each entry is
  kept (a few KB per tensor), so any tensor's slice is regenerated alone, still without storing the direction.
Which tensors are perturbed (the reference's scope, the default): every tensor except norm weights, embeddings
and lm_head included ("linear", "embed", "lm_head", "other"); decoder Linears only ("linear") is the project
variant. Tied tensors (embeddings tied to lm_head) appear once (the reference adds the direction twice).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from analysis.core.arch import adapter_of
from analysis.core.edits import locked

GROUPS = ("linear", "norm", "embed", "lm_head", "other")
REFERENCE_GROUPS = ("linear", "embed", "lm_head", "other")  # every tensor except norm weights (the reference)
DECODER_GROUPS = ("linear",)  # project variant: decoder Linears only
NORMS = ("layer", "filter")
DRAWS = ("per-tensor", "reference")  # project's per-tensor seeded draws | llm-landscape's global-seed stream


def param_group(name: str, p: torch.Tensor, linear_ids: set[int]) -> str:
    low = name.lower()
    if id(p) in linear_ids:
        return "linear"
    if "norm" in low or "ln_" in low:
        return "norm"
    if "lm_head" in low:
        return "lm_head"
    if "embed" in low or "wte" in low or "wpe" in low:
        return "embed"
    return "other"


def perturbed_params(model: nn.Module, groups: tuple[str, ...] = REFERENCE_GROUPS) -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs a direction covers; tied parameters appear once."""
    bad = set(groups) - set(GROUPS)
    if bad:
        raise ValueError(f"unknown parameter groups {sorted(bad)}; choose from {GROUPS}")
    linear_ids = {id(r.param) for r in adapter_of(model).linears.values()}
    seen, out = set(), []
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        if param_group(name, p, linear_ids) in groups:
            out.append((name, p))
    return out


class Direction(Protocol):
    """What a direction offers (for annotations only): its cache spec, the models it reads, its tensor slices."""

    def spec(self) -> dict: ...

    def sources(self) -> list[nn.Module]: ...

    def tensor(self, name: str, W: torch.Tensor) -> torch.Tensor: ...


def _tensor_seed(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)


@dataclass(frozen=True)
class RandomDirection:
    seed: int
    norm: str = "layer"
    groups: tuple[str, ...] = REFERENCE_GROUPS

    def spec(self) -> dict:
        return {"type": "random", "seed": self.seed, "norm": self.norm, "groups": list(self.groups)}

    def sources(self) -> list[nn.Module]:
        """Other models this direction reads (to be locked while it is applied): none."""
        return []

    def tensor(self, name: str, W: torch.Tensor) -> torch.Tensor:
        """This direction's slice for tensor ``name`` (same shape as W, fp32, on W's device)."""
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if W.device.type == "cpu":  # the original CPU draw, kept bit for bit (the demo numbers depend on it)
            g = torch.Generator().manual_seed(_tensor_seed(self.seed, name))
            d = torch.randn(W.shape, generator=g, dtype=torch.float32).to(W.device)
        else:  # drawn where the weight lives: no host work, no copy (differs from CPU)
            g = torch.Generator(device=W.device).manual_seed(_tensor_seed(self.seed, name))
            d = torch.randn(W.shape, generator=g, dtype=torch.float32, device=W.device)
            Wf = W.detach().float()
            if self.norm == "filter" and W.dim() >= 2:
                dims = tuple(range(1, W.dim()))
                return d.mul_(Wf.norm(dim=dims, keepdim=True) / d.norm(dim=dims, keepdim=True).clamp(min=1e-12))
            return d.mul_(Wf.norm() / d.norm().clamp(min=1e-12))
        Wf = W.detach().float()
        if self.norm == "filter" and W.dim() >= 2:
            return d * (
                Wf.norm(dim=tuple(range(1, W.dim())), keepdim=True)
                / d.norm(dim=tuple(range(1, W.dim())), keepdim=True).clamp(min=1e-12)
            )
        return d * (Wf.norm() / d.norm().clamp(min=1e-12))


REFERENCE_BLACKLIST = ("norm",)  # llm-landscape config/landscape/*_random.yaml: blacklist [norm]


@dataclass(frozen=True)
class ReferenceRandomDirection:
    """llm-landscape's random direction, drawn exactly as the reference draws it (see the module docstring).

    Build it with :meth:`for_model`; ``order`` lists every state-dict entry drawn (name, shape) — the stream
    depends on all of them — and ``states`` the CPU generator state before each entry's draw."""

    seed: int = 123
    order: tuple[tuple[str, tuple[int, ...]], ...] = ()
    states: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def for_model(cls, model: nn.Module, seed: int = 123) -> "ReferenceRandomDirection":
        """Walk the model's state dict once as the reference does (one randn per entry from one seeded CPU
        generator, the same stream as ``torch.manual_seed(seed)``) and keep the generator state per entry."""
        g = torch.Generator().manual_seed(seed)
        order, states = [], {}
        for name, t in model.state_dict(keep_vars=True).items():
            states[name] = (g.get_state(), tuple(t.shape))
            torch.randn(t.shape, generator=g)
            order.append((name, tuple(t.shape)))
        return cls(seed, tuple(order), states)

    def spec(self) -> dict:
        order = hashlib.sha256(repr(self.order).encode()).hexdigest()
        return {
            "type": "reference-random",
            "seed": self.seed,
            "norm": "layer",
            "draw": "cpu randn, state-dict order",
            "blacklist": list(REFERENCE_BLACKLIST),
            "order": order,
        }

    def sources(self) -> list[nn.Module]:
        return []

    def tensor(self, name: str, W: torch.Tensor) -> torch.Tensor:
        """The reference's d / ‖d‖ · ‖W‖ for tensor ``name`` (zero for blacklisted or unknown entries)."""
        if name not in self.states or any(b in name.lower() for b in REFERENCE_BLACKLIST):
            return torch.zeros(W.shape, dtype=torch.float32, device=W.device)
        state, shape = self.states[name]
        if tuple(W.shape) != shape:
            raise ValueError(f"{name}: the direction was drawn for shape {shape}, the weight has {tuple(W.shape)}")
        g = torch.Generator()
        g.set_state(state)
        d = torch.randn(shape, generator=g).to(W.device)
        d = d / torch.norm(d)
        d *= W.detach().float().norm().item()
        return d


@dataclass(frozen=True)
class ModelDifference:
    """d = θ_other − θ_self (interpolation toward another model)."""

    other: nn.Module = field(compare=False, hash=False)
    other_fingerprint: str = ""
    groups: tuple[str, ...] = REFERENCE_GROUPS

    def spec(self) -> dict:
        return {"type": "difference", "other": self.other_fingerprint, "groups": list(self.groups)}

    def sources(self) -> list[nn.Module]:
        return [self.other]

    def tensor(self, name: str, W: torch.Tensor) -> torch.Tensor:
        try:
            other = self.other.get_parameter(name)
        except AttributeError:
            raise ValueError(f"the other model has no parameter {name!r}: not the same architecture") from None
        if other.shape != W.shape:
            raise ValueError(f"{name}: shapes differ ({tuple(other.shape)} vs {tuple(W.shape)})")
        return other.detach().float().to(W.device) - W.detach().float()


@dataclass(frozen=True)
class Orthogonalised:
    """d₂ − c·d₁ with c = ⟨d₁,d₂⟩/⟨d₁,d₁⟩ over all perturbed tensors (Gram–Schmidt)."""

    d1: Direction
    d2: Direction
    coef: float

    def spec(self) -> dict:
        return {"type": "orthogonalised", "d1": self.d1.spec(), "d2": self.d2.spec()}

    def sources(self) -> list[nn.Module]:
        return self.d1.sources() + self.d2.sources()

    def tensor(self, name: str, W: torch.Tensor) -> torch.Tensor:
        return self.d2.tensor(name, W) - self.coef * self.d1.tensor(name, W)


def orthogonalise(model: nn.Module, d1, d2, groups: tuple[str, ...] = REFERENCE_GROUPS) -> Orthogonalised:
    """d₂ made orthogonal to d₁ (Gram–Schmidt over all perturbed tensors); holds the models' locks."""
    dot = nrm = 0.0
    with locked(model, *d1.sources(), *d2.sources()), torch.no_grad():
        for name, p in perturbed_params(model, groups):
            a, b = d1.tensor(name, p), d2.tensor(name, p)
            dot += float((a * b).sum())
            nrm += float((a * a).sum())
    return Orthogonalised(d1, d2, dot / nrm if nrm else 0.0)


def inner(model: nn.Module, d1, d2, groups: tuple[str, ...] = REFERENCE_GROUPS) -> float:
    """⟨d₁, d₂⟩ over all perturbed tensors; holds the models' locks."""
    with locked(model, *d1.sources(), *d2.sources()), torch.no_grad():
        return sum(float((d1.tensor(n, p) * d2.tensor(n, p)).sum()) for n, p in perturbed_params(model, groups))


def plane_through(model: nn.Module, second, third, groups: tuple[str, ...] = REFERENCE_GROUPS):
    """The plane through θ (this model), θ₂ and θ₃: d₁ = θ₂ − θ, d₂ = (θ₃ − θ) orthogonalised against d₁.
    Returns (d₁, d₂, coords) with coords = {"second": (1, 0), "third": (α₃, β₃)} — where the models sit."""
    d1 = ModelDifference(second.model, second.fingerprint, groups)
    raw = ModelDifference(third.model, third.fingerprint, groups)
    d2 = orthogonalise(model, d1, raw, groups)
    n2, n_raw = inner(model, d2, d2, groups), inner(model, raw, raw, groups)
    if n_raw == 0 or inner(model, d1, d1, groups) == 0:
        raise ValueError("the second or third model is identical to this one: no plane through them")
    if n2 <= 1e-8 * n_raw:
        raise ValueError("the three models are (nearly) on one line: they span no plane; use a 1D interpolation")
    beta = inner(model, raw, d2, groups) / n2
    return d1, d2, {"second": (1.0, 0.0), "third": (d2.coef, beta)}


def project_model(model: nn.Module, other, d1, d2, groups: tuple[str, ...] = REFERENCE_GROUPS) -> tuple[float, float]:
    """Where ``other`` (a loaded model of the same shapes) projects onto the plane θ + α d₁ + β d₂ of ``model``:
    (α, β) = (⟨θ_o − θ, d₁⟩/⟨d₁,d₁⟩, ⟨θ_o − θ, d₂⟩/⟨d₂,d₂⟩) for orthogonal d₁, d₂."""
    to_other = ModelDifference(other.model, other.fingerprint, groups)
    return (
        inner(model, to_other, d1, groups) / inner(model, d1, d1, groups),
        inner(model, to_other, d2, groups) / inner(model, d2, d2, groups),
    )
