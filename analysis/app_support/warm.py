"""Precompute every teaching preset's results into the cache (``python -m analysis warm``), so that a class
clicking the same preset only reads the cache.

Each preset is computed with exactly the calls and arguments its page makes (the page's default evaluation
data, capped by the launch config as the page caps it), so the cache keys match.
"""
from __future__ import annotations

import time
from typing import Callable

from analysis.core.cache import Cache
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
    from analysis.methods.critical_regions.build import build, unit_types
    from analysis.methods.critical_regions.scoring import default_calibration, scores

    lm, s, page = pair.aligned, preset.settings, preset.page
    cache = cache or Cache()
    if page == "overview":
        from analysis.core.evaluation import DEFAULT_MAX_NEW_TOKENS

        spec = _spec(lm, _n(page, preset, cfg), SYSTEM_PROMPTS[s["system"]],
                     min(DEFAULT_MAX_NEW_TOKENS, max(8, min(64, cfg.max_new_tokens))))   # the page's token slider
        rs = {role: evaluate(m, spec, cache=cache, progress=progress) for role, m in pair.models().items()}
        return ", ".join(f"{role} ASR {100 * r.asr:.1f} %" for role, r in rs.items())
    if page == "critical_regions":
        spec = _spec(lm, _n(page, preset, cfg), None)
        cal = default_calibration(lm, cache=cache)
        rs = region_settings(preset)
        for which in ("safety", "utility"):
            scores(lm, rs.score, which, cal, cache, progress)
        region = build(lm, rs, cal, pair.base, cache, progress)
        unit_types(lm, rs, cal, cache, progress)
        out = compare(lm, spec, {"aligned": None, "pruned": region.edit, "control": region.control}, cache, progress)
        return f"{region.description}: ASR {100 * out['pruned'].asr:.1f} %, control {100 * out['control'].asr:.1f} %"
    if page == "lox":
        from analysis.methods.lox import LoX

        spec = _spec(lm, _n(page, preset, cfg), None)
        lox = LoX(s["k"], s["alpha"])
        out = compare(lm, spec, {"aligned": None, "LoX": lox.edit(lm, pair.base)}, cache, progress)
        return f"{lox.label}: ASR {100 * out['LoX'].asr:.1f} %"
    if page == "safety_landscape":   # the page's defaults: reference draw, its directions, the reference scope
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
        done = []
        for label in labels[:1] if s["dim"] == "2D" else labels:
            spec = _spec(lm, n, SYSTEM_PROMPTS[label])
            if s["dim"] == "1D" and s["kind"] == "random":
                multi = evaluate_directions(lm, D, spec, cache=cache, progress=progress,
                                            directions=[d1] + [random_direction(lm.model, D, k)
                                                               for k in range(1, D.directions)])
                done.append(f"VISAGE {multi.describe()} ({label})")
            elif s["dim"] == "1D":
                land = evaluate_grid(lm, [d1], [ax], spec, groups=groups, cache=cache, progress=progress,
                                     other_models=tuple(m for m in (pair.base,) if m is not None))
                done.append(f"VISAGE {visage_1d(100 * land.asr):.1f} ({label})")
            else:
                d2 = orthogonalise(lm.model, d1, random_direction(lm.model, D, 1), groups)
                evaluate_grid(lm, [d1, d2], [ax, ax], spec, groups=groups, cache=cache, progress=progress,
                              other_models=tuple(m for m in (pair.base,) if m is not None))
                done.append(f"{len(ax)} × {len(ax)} points")
        return "; ".join(done)
    raise ValueError(f"no warm-up for page {page!r}")


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
