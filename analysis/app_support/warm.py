"""Precompute every teaching preset's results into the cache (``python -m analysis warm``), so that a class
clicking the same preset only reads the cache.

Each preset runs through the same :mod:`analysis.experiments` call its page makes, on the spec
:func:`analysis.experiments.page_spec` gives the page for it, so the cache keys match by construction.
"""
from __future__ import annotations

import time
from typing import Callable

from analysis import experiments as ex
from analysis.app_support.config import AppConfig
from analysis.app_support.presets import Preset, presets, region_settings
from analysis.core.cache import Cache


def warm_preset(pair, preset: Preset, cfg: AppConfig, cache: Cache | None = None, progress=None) -> str:
    """Compute one preset's results into the cache; returns a one-line summary."""
    lm, s, page = pair.aligned, preset.settings, preset.page
    cache = cache or Cache()
    if page == "overview":
        rs = ex.overview(pair, ex.page_spec(lm, page, cfg, preset), cache, progress)
        return ", ".join(f"{role} ASR {100 * r.asr:.1f} %" for role, r in rs.items())
    if page == "critical_regions":
        rs = region_settings(preset)
        cal = ex.calibration(lm, cache=cache)
        ex.importance(lm, rs.score, cal, cache=cache, progress=progress)      # the page's heatmap
        ex.unit_types(lm, rs, cal, cache, progress)                            # the page's unit bars
        out = ex.prune_and_compare(pair, rs, ex.page_spec(lm, page, cfg, preset), cal, cache, progress)
        return (f"{out.region.description}: ASR {100 * out.results['pruned'].asr:.1f} %, "
                f"control {100 * out.results['control'].asr:.1f} %")
    if page == "lox":
        from analysis.methods.lox import LoX

        out = ex.extrapolate(pair, LoX(s["k"], s["alpha"]), ex.page_spec(lm, page, cfg, preset), cache, progress)
        return f"{out.lox.label}: ASR {100 * out.after.asr:.1f} %"
    if page == "safety_landscape":
        from analysis.methods.landscape.grid import LandscapeSettings
        from analysis.methods.landscape.visage import visage_1d

        settings = LandscapeSettings(s["lo"], s["hi"], s["steps"])
        done = []
        for label in ex.landscape_systems(s["system"], s["dim"]):
            run = ex.landscape(pair, settings, ex.page_spec(lm, page, cfg, preset, system=label), s["dim"],
                               s["kind"], cache=cache, progress=progress)
            done.append(f"VISAGE {visage_1d(100 * run.landscape.asr):.1f} ({label})" if s["dim"] == "1D"
                        else f"{len(run.axis)} × {len(run.axis)} points")
        return "; ".join(done)
    raise ValueError(f"no warm-up for page {page!r}")


def warm(pair, cfg: AppConfig, names: list[str] | None = None, cache: Cache | None = None,
         log: Callable[[str], None] = print) -> int:
    """Warm every preset of the warmable pages (or those named); returns how many were computed."""
    count = 0
    for page in ex.WARMABLE:
        for preset in presets(page):
            if names and preset.name not in names and page not in names:
                continue
            if page == "lox" and pair.base is None:
                continue
            t = time.perf_counter()
            line = warm_preset(pair, preset, cfg, cache)
            log(f"{page:17s} {preset.name:45s} {time.perf_counter() - t:7.1f} s  {line}")
            count += 1
    return count
