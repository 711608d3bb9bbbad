"""Units (Li & Kim 2024): structured channels — the input channels of down_proj (MLP) and o_proj
(attention). Importance on a set is the FLAP fluctuation metric I_j = Var_n(X_n,j) · ||W_:,j||².

With I_S (safety set) and I_U (utility set), each matrix's channels are typed by percentiles:
exclusive safety units (ESU / SCU) = highest I_S − I_U, exclusive utility units (EUU / UCU) = lowest
I_S − I_U, redundant units (RU) = lowest I_S + I_U among the rest, complex units (CU) = the rest.
The paper gives no thresholds; they are parameters here. Importances are normalised per set (each set's
total is 1 per matrix) so that the two sets are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from analysis.core.arch import Adapter, adapter_of
from analysis.core.edits import Mask
from analysis.methods.critical_regions.activations import ActivationStats

UNIT_MODULES = ("o_proj", "down_proj")
TYPES = ("safety", "utility", "complex", "redundant")
ALIASES = {"ESU": "safety", "SCU": "safety", "EUU": "utility", "UCU": "utility", "CU": "complex", "RU": "redundant"}


def unit_names(adapter: Adapter) -> list[str]:
    return adapter.names(modules=list(UNIT_MODULES))


def flap_importance(model, stats: ActivationStats) -> dict[str, torch.Tensor]:
    adapter = adapter_of(model)
    out = {}
    for n in unit_names(adapter):
        col_norm2 = adapter[n].W.float().pow(2).sum(0)
        imp = stats.variance(n) * col_norm2
        out[n] = imp / imp.sum().clamp(min=1e-30)
    return out


@dataclass
class UnitTypes:
    labels: dict[str, list[str]]  # weight name -> type of each input channel

    def shares(self) -> dict[str, dict[str, float]]:
        """Share of each unit type per weight matrix."""
        return {n: {t: lab.count(t) / len(lab) for t in TYPES} for n, lab in self.labels.items()}

    def shares_by_layer(self, adapter: Adapter) -> dict[int, dict[str, float]]:
        """Share of each unit type per layer (all unit matrices of the layer pooled)."""
        counts: dict[int, dict[str, int]] = {}
        for n, lab in self.labels.items():
            acc = counts.setdefault(adapter[n].layer, {"n": 0, **{t: 0 for t in TYPES}})
            acc["n"] += len(lab)
            for t in TYPES:
                acc[t] += lab.count(t)
        return {layer: {t: c[t] / max(c["n"], 1) for t in TYPES} for layer, c in sorted(counts.items())}

    def count(self, kind: str) -> int:
        kind = ALIASES.get(kind, kind)
        return sum(lab.count(kind) for lab in self.labels.values())

    def mask(
        self, kind: str, adapter: Adapter, limit: int | None = None, seed: int = 0, recipe: dict | None = None
    ) -> Mask:
        """Zero the input columns of units of ``kind`` (at most ``limit`` of them, chosen at random)."""
        kind = ALIASES.get(kind, kind)
        chosen = [(n, j) for n, lab in self.labels.items() for j, t in enumerate(lab) if t == kind]
        if limit is not None and limit < len(chosen):
            g = torch.Generator().manual_seed(seed)
            chosen = [chosen[i] for i in torch.randperm(len(chosen), generator=g)[:limit].tolist()]
        masks = {n: torch.zeros(adapter[n].shape, dtype=torch.bool) for n in self.labels}
        for n, j in chosen:
            masks[n][:, j] = True
        return Mask(masks, recipe=recipe)


def classify_units(
    i_s: dict[str, torch.Tensor],
    i_u: dict[str, torch.Tensor],
    safety_pct: float = 2.0,
    utility_pct: float = 13.0,
    redundant_pct: float = 15.0,
) -> UnitTypes:
    """Type every unit by percentiles of I_S − I_U and I_S + I_U within its matrix."""
    for name, v in (("safety_pct", safety_pct), ("utility_pct", utility_pct), ("redundant_pct", redundant_pct)):
        if not 0 <= v <= 100:
            raise ValueError(f"{name} must be a percentage in [0, 100], got {v}")
    if safety_pct + utility_pct + redundant_pct > 100:
        raise ValueError("safety_pct + utility_pct + redundant_pct must not exceed 100")
    labels = {}
    for n in i_s:
        d, s = i_s[n] - i_u[n], i_s[n] + i_u[n]
        m = d.numel()
        lab = ["complex"] * m
        n_s, n_u, n_r = (round(m * pct / 100) for pct in (safety_pct, utility_pct, redundant_pct))
        order = d.argsort(descending=True).tolist()
        for j in order[:n_s]:
            lab[j] = "safety"
        for j in order[m - n_u :] if n_u else []:
            lab[j] = "utility"
        rest = [j for j in s.argsort().tolist() if lab[j] == "complex"]
        for j in rest[:n_r]:
            lab[j] = "redundant"
        labels[n] = lab
    return UnitTypes(labels)
