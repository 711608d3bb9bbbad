"""One attack over several data-order seeds: each run is one draw, so a variant's curve is a band.

Run k uses ``settings.seed + k`` (the order in which the examples are batched, and torch's seed — LoRA's
initialisation). With a batch holding every example (batch_size ≥ n_examples) the order cannot change what a
full fine-tune sees, and the runs agree up to float summation order: the band is then (nearly) zero width.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from analysis.core.cache import Cache
from analysis.core.evaluation import EvalSpec
from analysis.core.stats import wilson
from analysis.data.prompts import PromptSet
from analysis.methods.attacks.finetune import AttackCurve, AttackSettings, Variant, run_attack_cached

if TYPE_CHECKING:
    from analysis.core.models import LoadedModel


@dataclass
class AttackBand:
    """A variant's curves, one per seed, on the same evaluation steps."""

    variant: str
    curves: list[AttackCurve]
    seeds: list[int]

    @property
    def steps(self) -> list[int]:
        return self.curves[0].steps

    def values(self, field: str) -> np.ndarray:
        """seeds × steps array of ``field`` (asr, utility, r_ft, …); None becomes nan."""
        return np.array([[np.nan if v is None else v for v in getattr(c, field)] for c in self.curves], dtype=float)

    def mean(self, field: str = "asr") -> np.ndarray:
        return np.nanmean(self.values(field), axis=0)

    def sd(self, field: str = "asr") -> np.ndarray:
        """Sample sd per step (ddof 1; nan with one seed)."""
        v = self.values(field)
        return v.std(axis=0, ddof=1) if len(v) > 1 else np.full(v.shape[1], np.nan)

    def lo(self, field: str = "asr") -> np.ndarray:
        return np.nanmin(self.values(field), axis=0)

    def hi(self, field: str = "asr") -> np.ndarray:
        return np.nanmax(self.values(field), axis=0)

    def wilson(self, field: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per step, the 95 % Wilson interval (lo, hi) of the seeds' mean rate of ``field`` taken as k = round(mean ·
        n) of the ``n`` evaluated prompts (the sampling interval of one run; nan where the rate is missing)."""
        bounds = [wilson(round(m * n), n) if np.isfinite(m) else (np.nan, np.nan) for m in self.mean(field)]
        return np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])

    def at(self, step: int, field: str = "asr") -> tuple[float, float]:
        """(mean, sd) of ``field`` at the last evaluated step ≤ ``step``."""
        i = max(j for j, s in enumerate(self.steps) if s <= step)
        return float(self.mean(field)[i]), float(self.sd(field)[i])


def run_attack_seeds(
    lm: "LoadedModel",
    variant: Variant,
    settings: AttackSettings,
    data: PromptSet,
    spec: EvalSpec,
    base: "LoadedModel | None" = None,
    cache: Cache | None = None,
    progress=None,
) -> AttackBand:
    """``settings.seeds`` runs of the attack (seeds seed, seed + 1, …), each cached on its own."""
    settings.validate()
    seeds = [settings.seed + k for k in range(settings.seeds)]
    curves = []
    for k, s in enumerate(seeds):

        def sub(f: float, msg: str, k: int = k) -> None:
            if progress:
                progress((k + f) / len(seeds), f"seed {seeds[k]} ({k + 1}/{len(seeds)}): {msg}")

        curves.append(run_attack_cached(lm, variant, replace(settings, seed=s, seeds=1), data, spec, base, cache, sub))
    return AttackBand(variant.name, curves, seeds)
