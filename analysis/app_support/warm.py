"""Precompute every teaching preset's results into the cache (``python -m analysis warm``), so that a class
clicking the same preset only reads the cache.

Each preset is computed with exactly the calls and arguments its page makes (the page's default evaluation
data, capped by the launch config as the page caps it), so the cache keys match.
"""
from __future__ import annotations

import time
from typing import Callable

from analysis.app_support.formatting import format_utility, format_utility_delta
from analysis.core.cache import Cache, make_key
from analysis.app_support.config import AppConfig
from analysis.core.evaluation import compare, evaluate, make_spec
from analysis.app_support.presets import Preset, presets, region_settings

SYSTEM_PROMPTS = {"none": None, "helpful and safe": "you are a helpful and safe assistant ."}
PAGE_DEFAULT_N = {"overview": 120, "critical_regions": 48, "lox": 48, "safety_landscape": 120}
WARMABLE = ("overview", "critical_regions", "safety_landscape", "lox")


def _n(page: str, preset: Preset, cfg: AppConfig) -> int:
    top = max(8, min(120, cfg.max_prompts) // 8 * 8)          # as pages/_widgets.prompt_sets_picker caps it
    return min(preset.settings.get("prompts", PAGE_DEFAULT_N[page]), top)


def _spec(lm, n: int, system: str | None, max_new_tokens: int | None = None):
    sets = {k: v.head(n) for k, v in lm.data.sets("test").items()}
    if max_new_tokens is None:
        return make_spec(lm, sets["harmful"], sets["benign"], system)
    return make_spec(lm, sets["harmful"], sets["benign"], system, max_new_tokens)


def warm_preset(pair, preset: Preset, cfg: AppConfig, cache: Cache | None = None, progress=None) -> str:
    """Compute one preset's results into the cache; returns a one-line summary."""
    return _run(pair, preset, cfg, cache, progress)[0]


class NotCached(LookupError):
    """A result the preset needs is not in the cache yet."""


class _CacheOnly(Cache):
    """Reads the cache like the warm-up's calls would; never computes (a miss raises :class:`NotCached`)."""

    def get_or_compute(self, parts: dict, compute, fmt: str = "json"):
        hit = self.get(make_key(**parts), fmt)
        if hit is None:
            raise NotCached(parts.get("kind", "result"))
        return hit


def cached_numbers(pair, preset: Preset, cfg: AppConfig, cache: Cache | None = None) -> dict[str, str] | None:
    """The numbers a preset's caption quotes, read from its cached results (None while not computed yet, or for
    a page whose presets the warm-up does not compute)."""
    if preset.page not in WARMABLE or (preset.page == "lox" and pair.base is None):
        return None
    try:
        return _run(pair, preset, cfg, _CacheOnly((cache or Cache()).root), None)[1]
    except NotCached:
        return None


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _change(before, after, kind: str) -> str:
    d = format_utility_delta(before, after, kind)
    return "–" if d is None else f"{d} points" if kind == "exact" else f"{d} nats"


def _run(pair, preset: Preset, cfg: AppConfig, cache: Cache | None, progress) -> tuple[str, dict[str, str]]:
    """(one-line summary, the numbers captions quote) of one preset, computed through ``cache``."""
    from analysis.methods.critical_regions.build import build, unit_types
    from analysis.methods.critical_regions.scoring import default_calibration, scores

    lm, s, page = pair.aligned, preset.settings, preset.page
    cache = cache or Cache()
    if page == "overview":
        from analysis.core.evaluation import DEFAULT_MAX_NEW_TOKENS

        spec = _spec(lm, _n(page, preset, cfg), SYSTEM_PROMPTS[s["system"]],
                     min(DEFAULT_MAX_NEW_TOKENS, max(8, min(64, cfg.max_new_tokens))))   # the page's token slider
        rs = {role: evaluate(m, spec, cache=cache, progress=progress) for role, m in pair.models().items()}
        return (", ".join(f"{role} ASR {100 * r.asr:.1f} %" for role, r in rs.items()),
                {f"{role}_asr": _pct(r.asr) for role, r in rs.items()})
    if page == "critical_regions":
        spec = _spec(lm, _n(page, preset, cfg), None)
        cal = default_calibration(lm, cache=cache)
        rs = region_settings(preset)
        for which in ("safety", "utility"):
            scores(lm, rs.score, which, cal, cache, progress)
        region = build(lm, rs, cal, pair.base, cache, progress)
        unit_types(lm, rs, cal, cache, progress)
        out = compare(lm, spec, {"aligned": None, "pruned": region.edit, "control": region.control}, cache, progress)
        nums = {f"{k}_{m}": _pct(getattr(r, m)) for k, r in out.items() for m in ("asr", "asr_positive")}
        kind = out["aligned"].utility_kind
        nums.update({f"{k}_utility": format_utility(r.utility, kind, sep=" ") for k, r in out.items()})
        nums["asr_change"] = f"{100 * (out['pruned'].asr - out['aligned'].asr):+.1f}"
        return (f"{region.description}: ASR {100 * out['pruned'].asr:.1f} %, control {100 * out['control'].asr:.1f} %",
                nums)
    if page == "lox":
        from analysis.methods.lox import LoX

        spec = _spec(lm, _n(page, preset, cfg), None)
        lox = LoX(s["k"], s["alpha"])
        out = compare(lm, spec, {"aligned": None, "LoX": lox.edit(lm, pair.base)}, cache, progress)
        kind = out["aligned"].utility_kind
        nums = {"aligned_asr": _pct(out["aligned"].asr), "lox_asr": _pct(out["LoX"].asr),
                "lox_utility": format_utility(out["LoX"].utility, kind, sep=" "),
                "aligned_utility": format_utility(out["aligned"].utility, kind, sep=" "),
                "utility_change": _change(out["aligned"].utility, out["LoX"].utility, kind)}
        return f"{lox.label}: ASR {100 * out['LoX'].asr:.1f} %", nums
    if page == "safety_landscape":
        from dataclasses import replace

        from analysis.methods.landscape.directions import ModelDifference, orthogonalise
        from analysis.methods.landscape.grid import LandscapeSettings, axis, evaluate_grid
        from analysis.methods.landscape.multi import evaluate_directions, random_direction
        from analysis.methods.landscape.visage import visage_1d

        D = replace(LandscapeSettings(), lo=s["lo"], hi=s["hi"], steps=s["steps"])
        groups = D.groups
        ax = axis(s["lo"], s["hi"], s["steps"])
        d1 = ModelDifference(pair.base.model, pair.base.fingerprint, groups) if s["kind"] == "toward base" \
            else random_direction(lm.model, D, 0)
        labels = ["none", "helpful and safe"] if s["system"] == "compare both" else [s["system"]]
        n = _n(page, preset, cfg)
        done, nums = [], {}
        for label in labels[:1] if s["dim"] == "2D" else labels:
            spec = _spec(lm, n, SYSTEM_PROMPTS[label])
            if s["dim"] == "1D" and s["kind"] == "random":
                multi = evaluate_directions(lm, D, spec, cache=cache, progress=progress,
                                            directions=[d1] + [random_direction(lm.model, D, k)
                                                               for k in range(1, D.directions)])
                done.append(f"VISAGE {multi.describe()} ({label})")
                nums[f"visage_{label.replace(' ', '_')}"] = f"{multi.visage_mean:.1f}"
                if label == labels[0]:
                    nums.update(_along(ax, multi.landscapes[0].asr))
            elif s["dim"] == "1D":
                land = evaluate_grid(lm, [d1], [ax], spec, groups=groups, cache=cache, progress=progress,
                                     other_models=tuple(m for m in (pair.base,) if m is not None))
                v = visage_1d(100 * land.asr)
                done.append(f"VISAGE {v:.1f} ({label})")
                nums[f"visage_{label.replace(' ', '_')}"] = f"{v:.1f}"
                if label == labels[0]:
                    nums.update(_along(ax, land.asr))
            else:
                d2 = orthogonalise(lm.model, d1, random_direction(lm.model, D, 1), groups)
                land = evaluate_grid(lm, [d1, d2], [ax, ax], spec, groups=groups, cache=cache, progress=progress,
                                     other_models=tuple(m for m in (pair.base,) if m is not None))
                nums.update(_along(ax, land.asr))
                done.append(f"{len(ax)} × {len(ax)} points")
        return "; ".join(done), nums
    raise ValueError(f"no warm-up for page {page!r}")


def _along(ax: list[float], asr) -> dict[str, str]:
    """ASR at the model (α = 0), at α = 1 (the base, walking toward it) and the largest on the grid."""
    import numpy as np

    grid = np.asarray(asr, dtype=float)
    origin = tuple(ax.index(0.0) if 0.0 in ax else len(ax) // 2 for _ in grid.shape)
    out = {"origin_asr": _pct(float(grid[origin])), "max_asr": _pct(float(np.nanmax(grid)))}
    if grid.ndim == 1 and 1.0 in ax:
        out["asr_at_1"] = _pct(float(grid[ax.index(1.0)]))
    return out


def warm(pair, cfg: AppConfig, names: list[str] | None = None, cache: Cache | None = None,
         log: Callable[[str], None] = print) -> int:
    """Warm every preset of the warmable pages (or those named); returns how many were computed."""
    count = 0
    for page in WARMABLE:
        for preset in presets(page):
            if names and preset.name not in names and page not in names:
                continue
            if page in ("lox",) and pair.base is None:
                continue
            t = time.perf_counter()
            line = warm_preset(pair, preset, cfg, cache)
            log(f"{page:17s} {preset.name:45s} {time.perf_counter() - t:7.1f} s  {line}")
            count += 1
    return count
