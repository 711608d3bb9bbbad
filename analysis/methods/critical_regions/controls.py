"""A region's same-size random controls evaluated over several seeds: ASR and utility as mean ± sd.

One random control is one draw; a pruned region is compared with the spread of its controls, not with one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from analysis.core.cache import Cache
from analysis.core.evaluation import EvalResult, EvalSpec, evaluate

if TYPE_CHECKING:
    from analysis.core.models import LoadedModel
    from analysis.methods.critical_regions.build import RegionEdit


def _mean_sd(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


@dataclass
class ControlSpread:
    """One result per control seed (seeds 0 … n − 1)."""

    results: list[EvalResult]

    @property
    def n(self) -> int:
        return len(self.results)

    def mean_sd(self, metric: str) -> tuple[float, float] | None:
        """(mean, sd) of one rate of :meth:`EvalResult.metrics` over the controls (sd nan for one control); None
        when a control lacks it."""
        values = [
            r.judge_asr.get(metric[6:]) if metric.startswith("judge:") else getattr(r, metric) for r in self.results
        ]
        if not values or any(v is None for v in values):
            return None
        return _mean_sd([cast(float, v) for v in values])

    @property
    def asr(self) -> tuple[float, float]:
        """(mean, sd) of ASR over the controls (fractions; sd nan for one control)."""
        return _mean_sd([r.asr for r in self.results])

    @property
    def utility(self) -> tuple[float, float] | None:
        """(mean, sd) of utility over the controls, None when the evaluation has no utility."""
        if any(r.utility is None for r in self.results):
            return None
        return _mean_sd([cast(float, r.utility) for r in self.results])  # none is None (checked above)

    def describe(self) -> str:
        """``ASR 3.3 ± 1.2 %, utility 96.7 ± 0.8 % (5 controls)`` (percent points; loss utility in nats)."""

        def fmt(ms, pct: bool) -> str:
            m, s = ms
            k = 100 if pct else 1
            spread = "" if np.isnan(s) else f" ± {k * s:.1f}" if pct else f" ± {s:.3f}"
            return f"{k * m:.1f}{spread} %" if pct else f"{m:.3f}{spread} nats"

        util = self.utility
        kind = self.results[0].utility_kind if self.results else "none"
        u = "" if util is None else f", utility {fmt(util, kind == 'exact')}"
        return f"ASR {fmt(self.asr, True)}{u} ({self.n} control{'s' if self.n != 1 else ''}, mean ± sd)"


def control_spread(
    lm: "LoadedModel",
    spec: EvalSpec,
    region: "RegionEdit",
    n: int | None = None,
    cache: Cache | None = None,
    progress=None,
) -> ControlSpread:
    """Evaluate the region's controls for seeds 0 … n − 1 (default: the region's N_CONTROLS), one at a time."""
    from analysis.methods.critical_regions.build import N_CONTROLS

    if region.control is None:
        return ControlSpread([])
    total, out = min(N_CONTROLS if n is None else n, region.n_controls), []
    for k, edit in enumerate(region.controls(n)):
        sub = (lambda f, msg, k=k: progress((k + f) / total, f"control {k + 1}/{total}: {msg}")) if progress else None
        out.append(evaluate(lm, spec, edit, cache, sub))
    return ControlSpread(out)
