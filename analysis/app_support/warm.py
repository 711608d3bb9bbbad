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
from analysis.app_support.formatting import format_utility_delta, rate_cell, spread_cell
from analysis.app_support.presets import Preset, presets, region_settings
from analysis.core.cache import Cache, make_key


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
    if preset.page not in ex.WARMABLE or (preset.page == "lox" and pair.base is None):
        return None
    try:
        return _run(pair, preset, cfg, _CacheOnly((cache or Cache()).root), None)[1]
    except NotCached:
        return None


def _change(before, after, metric: str) -> str:
    """after − before on the same prompts: a rate's paired difference ('+21.7 points [14.5, 29.9], McNemar
    p < 0.001 (significant)'), a loss utility's change in nats."""
    try:
        return before.change(after, metric, "before", "after").format()
    except ValueError:  # no per-prompt outcomes kept
        loss = metric == "utility" and before.utility_kind == "loss"
        if not loss:  # a rate: its change in points
            b, a = getattr(before, metric), getattr(after, metric)
            return "–" if a is None or b is None else f"{100 * (a - b):+.1f} points (no interval: outcomes not kept)"
        d = format_utility_delta(getattr(before, metric), getattr(after, metric), before.utility_kind)
        return "–" if d is None else f"{d} nats (no interval: per-item losses not kept)"


def _run(pair, preset: Preset, cfg: AppConfig, cache: Cache | None, progress) -> tuple[str, dict[str, str]]:
    """(one-line summary, the numbers captions quote) of one preset, computed through ``cache`` with the same
    :mod:`analysis.experiments` calls and :func:`~analysis.experiments.page_spec` its page uses."""
    lm, s, page = pair.aligned, preset.settings, preset.page
    cache = cache or Cache()
    if page == "overview":
        rs = ex.overview(pair, ex.page_spec(lm, page, cfg, preset), cache, progress)
        nums = {f"{role}_asr": rate_cell(r, "asr") for role, r in rs.items()}
        if "base" in rs:  # the same prompts: base − aligned, paired
            nums["asr_change"] = _change(rs["aligned"], rs["base"], "asr")
        return ", ".join(f"{role} ASR {rate_cell(r, 'asr')}" for role, r in rs.items()), nums
    if page == "critical_regions":
        rs = region_settings(preset)
        cal = ex.calibration(lm, cache=cache)
        ex.importance(lm, rs.score, cal, cache=cache, progress=progress)  # the page's heatmap
        ex.unit_types(lm, rs, cal, cache, progress)  # the page's unit bars
        cmp = ex.prune_and_compare(pair, rs, ex.page_spec(lm, page, cfg, preset), cal, cache, progress)
        out = cmp.results
        nums = {f"{k}_{m}": rate_cell(r, m) for k, r in out.items() for m in ("asr", "asr_positive", "utility")}
        of = f"mean ± sd of {cmp.controls.n} seeds" if cmp.controls.n > 1 else "one control: it has no seed"
        nums["control_asr"] = f"{spread_cell(cmp.controls, 'asr')} ({of})"
        nums["control_utility"] = spread_cell(cmp.controls, "utility")
        nums["asr_change"] = _change(out["aligned"], out["pruned"], "asr")
        nums["utility_change"] = _change(out["aligned"], out["pruned"], "utility")
        nums["vs_control"] = _change(out["control"], out["pruned"], "asr")  # the first control seed, paired
        return (
            f"{cmp.region.description}: ASR {rate_cell(out['pruned'], 'asr')}, controls "
            f"{spread_cell(cmp.controls, 'asr')} ({of})",
            nums,
        )
    if page == "lox":
        from analysis.methods.lox import LoX

        lox = LoX(s["k"], s["alpha"], scope=s.get("scope", LoX.scope))
        lx = ex.extrapolate(pair, lox, ex.page_spec(lm, page, cfg, preset), cache, progress)
        before, after = lx.before, lx.after
        nums = {
            "aligned_asr": rate_cell(before, "asr"),
            "lox_asr": rate_cell(after, "asr"),
            "lox_utility": rate_cell(after, "utility"),
            "aligned_utility": rate_cell(before, "utility"),
            "utility_change": _change(before, after, "utility"),
        }
        return f"{lx.lox.label}: ASR {rate_cell(after, 'asr')}", nums
    if page == "safety_landscape":
        from analysis.methods.landscape.grid import LandscapeSettings
        from analysis.methods.landscape.visage import visage_1d

        settings = LandscapeSettings(s["lo"], s["hi"], s["steps"])
        done, nums, multis = [], {}, {}
        variants = ex.landscape_variants(pair, settings, s["system"], s["dim"], s["kind"], s.get("compare", "nothing"))
        for v in variants:
            spec = ex.page_spec(lm, page, cfg, preset, system=v.system)
            run = ex.landscape(
                v.pair,
                v.settings,
                spec,
                s["dim"],
                s["kind"],
                cache=cache,
                progress=progress,
            )
            if s["dim"] == "2D":
                done.append(f"{len(run.axis)} × {len(run.axis)} points")
                if run.planes is not None:  # random planes: VISAGE over them
                    done[-1] += f" × {run.planes.n} plane(s), VISAGE {run.planes.describe()}"
                    nums["visage_planes"] = run.planes.describe()
            else:
                value = run.multi.describe() if run.multi is not None else f"{visage_1d(100 * run.landscape.asr):.1f}"
                done.append(f"VISAGE {value} ({v.short})")
                nums[f"visage_{v.short.replace(' ', '_')}"] = value
                if run.multi is not None:
                    multis[v.label] = run.multi
            if v is variants[0]:  # several directions: their mean curve, as the page's thick line
                asr = run.multi.asr.mean(0) if run.multi is not None else run.landscape.asr
                nums.update(_along(run.axis, asr, len(spec.harmful)))
        if len(multis) == 2:  # the same directions for both: the paired difference, the first minus the second
            a, b = multis.values()
            nums["visage_paired"] = a.paired(b).describe()
        return "; ".join(done), nums
    raise ValueError(f"no warm-up for page {page!r}")


def _along(ax: list[float], asr, n: int) -> dict[str, str]:
    """ASR at the model (α = 0), at α = 1 (the base, walking toward it) and the largest on the grid, each with
    its 95 % Wilson interval over the ``n`` harmful prompts (a mean over directions taken as one run's rate)."""
    import numpy as np

    from analysis.core.stats import Rate

    grid = np.asarray(asr, dtype=float)
    origin = tuple(ax.index(0.0) if 0.0 in ax else len(ax) // 2 for _ in grid.shape)
    cell = lambda x: Rate.of_share(float(x), n).format()  # noqa: E731
    out = {"origin_asr": cell(grid[origin]), "max_asr": cell(np.nanmax(grid))}
    if grid.ndim == 1 and 1.0 in ax:
        out["asr_at_1"] = cell(grid[ax.index(1.0)])
    return out


def warm(
    pair, cfg: AppConfig, names: list[str] | None = None, cache: Cache | None = None, log: Callable[[str], None] = print
) -> int:
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
