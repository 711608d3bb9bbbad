"""Starting points for fine-tuning attacks: the aligned model, LoX, and the aligned model with a frozen region.

Each function returns a :class:`finetune.Variant` whose ``spec`` says everything that defines it (the attack
cache key uses it), so the page, the CLI and the benchmark build identical variants.
"""
from __future__ import annotations

from .cache import Cache
from .critical_regions import RegionSettings, build
from .finetune import Variant, whole_units
from .lox import LoX
from .scoring import Calibration


def aligned() -> Variant:
    return Variant("aligned", spec={"variant": "aligned"})


def lox(lm, base, k: int, alpha: float, layers=None, modules=None, cache: Cache | None = None) -> Variant:
    settings = LoX(k, alpha, layers, modules)
    return Variant(settings.label, edit=settings.edit(lm, base, cache),
                   spec={"variant": "lox", "k": k, "alpha": alpha, "layers": layers, "modules": modules,
                         "base": base.fingerprint})


def frozen_units(lm, cal: Calibration, safety_pct: float = 10.0, kind: str = "safety", whole: bool = True,
                 cache: Cache | None = None) -> Variant:
    """Freeze the exclusive safety units (or, as a control, as many redundant units) during the attack.

    ``whole`` also freezes the rows that feed each unit (see :func:`finetune.whole_units`)."""
    region = build(lm, RegionSettings(method="units", unit_kind="safety", safety_pct=safety_pct,
                                      redundant_pct=max(15.0, safety_pct)), cal, cache=cache)
    masks = (region.edit if kind == "safety" else region.control).masks
    if whole:
        masks = whole_units(masks, lm.adapter)
    label = "safety units" if kind == "safety" else "redundant units (control)"
    return Variant(f"aligned, frozen {label} ({safety_pct:g} %{' whole' if whole else ''})", freeze=masks,
                   spec={"variant": "frozen-units", "kind": kind, "pct": safety_pct, "whole": whole,
                         "calibration": [cal.key("safety"), cal.key("utility")], "system": cal.system_prompt})


def frozen_weights(lm, cal: Calibration, score: str = "snip", q: float = 0.03, p: float = 0.03,
                   cache: Cache | None = None) -> Variant:
    """Freeze the safety-critical weights (set difference S_q \\ U_p of Wanda or SNIP scores)."""
    region = build(lm, RegionSettings(method="set_difference", score=score, p=p, q=q), cal, cache=cache)
    return Variant(f"aligned, frozen safety-critical weights ({score}, {100 * region.removed_fraction:.1f} %)",
                   freeze=region.edit.masks,
                   spec={"variant": "frozen-weights", "score": score, "p": p, "q": q,
                         "calibration": [cal.key("safety"), cal.key("utility")], "system": cal.system_prompt})
