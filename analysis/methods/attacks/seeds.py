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
from analysis.core.stats import loss_over_draws_ci, wilson
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

    def loss_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Per step, the 95 % percentile-bootstrap interval (lo, hi) of a loss utility's mean over seeds, resampling
        the benign items (each item's loss averaged over the seeds; every seed scores the same reference tokens):
        the sampling interval of the evaluation set, as :meth:`wilson` is for a rate. Nan where a step has no
        per-item losses (an exact utility, or a run cached before they were kept)."""
        lo, hi = np.full(len(self.steps), np.nan), np.full(len(self.steps), np.nan)
        for i in range(len(self.steps)):
            per_seed = [c.outcomes[i] if i < len(c.outcomes) else {} for c in self.curves]
            sums = [o.get("utility") for o in per_seed]
            tokens = per_seed[0].get("utility_tokens")
            if self.curves[0].utility_kind == "loss" and tokens is not None and all(x is not None for x in sums):
                lo[i], hi[i] = loss_over_draws_ci(sums, tokens)
        return lo, hi

    def at(self, step: int, field: str = "asr") -> tuple[float, float]:
        """(mean, sd) of ``field`` at the last evaluated step ≤ ``step``."""
        i = max(j for j, s in enumerate(self.steps) if s <= step)
        return float(self.mean(field)[i]), float(self.sd(field)[i])


def paired_over_seeds(reference: AttackBand, band: AttackBand, step: int) -> list:
    """``band``'s keyword ASR minus ``reference``'s at ``step``, seed by seed (each pair of runs shares its data
    order and the harmful prompts): one :class:`~analysis.core.stats.PairedDifference` per common seed."""
    ref = dict(zip(reference.seeds, reference.curves))
    return [ref[s].paired_asr(c, step) for s, c in zip(band.seeds, band.curves) if s in ref]


def describe_over_seeds(diffs: list) -> str:
    """'+41.7 ± 5.2 points over 3 seeds (per seed +37.5, +47.9, +39.6; significant on 3 of 3, McNemar)'."""
    if not diffs:
        return "no common seed"
    d = np.array([100 * x.diff for x in diffs])
    spread = f" ± {d.std(ddof=1):.1f}" if len(d) > 1 else ""
    n_sig = sum(x.significant for x in diffs)
    signed = lambda v: f"{v:+.1f}".replace("-", "−")  # noqa: E731  (a real minus sign, as PairedDifference)
    return (
        f"{signed(d.mean())}{spread} points over {len(d)} seed(s) (per seed {', '.join(signed(v) for v in d)}; "
        f"significant on {n_sig} of {len(d)}, McNemar)"
    )


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
