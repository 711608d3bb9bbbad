"""Starting points for fine-tuning attacks: the aligned model, LoX, and the aligned model with a frozen region.

Each function returns a :class:`finetune.Variant` whose ``spec`` says everything that defines it (the attack
cache key uses it), so the page, the CLI and the benchmark build identical variants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from analysis.core.cache import Cache
from analysis.methods.attacks.finetune import Variant, whole_units
from analysis.methods.critical_regions.build import RegionSettings, build
from analysis.methods.critical_regions.scoring import Calibration
from analysis.methods.lox import LoX

if TYPE_CHECKING:
    from analysis.core.edits import Mask
    from analysis.core.models import LoadedModel

DEFAULT_UNIT_PCT = 10.0  # frozen units: the exclusive-safety percentile
KINDS = ("aligned", "lox", "frozen-units", "frozen-redundant", "frozen-weights")


def aligned() -> Variant:
    return Variant("aligned", spec={"variant": "aligned"})


def lox(lm: "LoadedModel", base: "LoadedModel", settings: LoX | None = None, cache: Cache | None = None) -> Variant:
    settings = settings or LoX()
    return Variant(
        settings.label,
        edit=settings.edit(lm, base, cache),
        spec={"variant": "lox", **settings.spec(), "base": base.fingerprint},
    )


def frozen_units(
    lm: "LoadedModel",
    cal: Calibration,
    safety_pct: float = DEFAULT_UNIT_PCT,
    kind: str = "safety",
    whole: bool = True,
    cache: Cache | None = None,
) -> Variant:
    """Freeze the exclusive safety units (or, as a control, as many redundant units) during the attack.

    ``whole`` also freezes the rows that feed each unit (see :func:`finetune.whole_units`)."""
    region = build(
        lm,
        RegionSettings(method="units", unit_kind="safety", safety_pct=safety_pct, redundant_pct=max(15.0, safety_pct)),
        cal,
        cache=cache,
    )
    # a "units" region is a Mask with a Mask control
    masks = cast("Mask", region.edit if kind == "safety" else region.control).masks
    if whole:
        masks = whole_units(masks, lm.adapter)
    label = "safety units" if kind == "safety" else "redundant units (control)"
    return Variant(
        f"aligned, frozen {label} ({safety_pct:g} %{' whole' if whole else ''})",
        freeze=masks,
        spec={
            "variant": "frozen-units",
            "kind": kind,
            "pct": safety_pct,
            "whole": whole,
            "calibration": [cal.key("safety"), cal.key("utility")],
            "system": cal.system_prompt,
        },
    )


def frozen_weights(
    lm: "LoadedModel",
    cal: Calibration,
    score: str = "snip",
    q: float = RegionSettings.q,
    p: float = RegionSettings.p,
    cache: Cache | None = None,
) -> Variant:
    """Freeze the safety-critical weights (set difference S_q \\ U_p of Wanda or SNIP scores)."""
    region = build(lm, RegionSettings(method="set_difference", score=score, p=p, q=q), cal, cache=cache)
    return Variant(
        f"aligned, frozen safety-critical weights ({score}, {100 * region.removed_fraction:.1f} %)",
        freeze=cast("Mask", region.edit).masks,  # a set-difference region is a Mask
        spec={
            "variant": "frozen-weights",
            "score": score,
            "p": p,
            "q": q,
            "calibration": [cal.key("safety"), cal.key("utility")],
            "system": cal.system_prompt,
        },
    )


def build_variants(
    names: list[str],
    lm: "LoadedModel",
    base: "LoadedModel | None",
    lox_settings: LoX | None = None,
    cal: Calibration | None = None,
    unit_pct: float = DEFAULT_UNIT_PCT,
    cache: Cache | None = None,
) -> list[Variant]:
    """The variants named in ``names`` (see :data:`KINDS`); ``cal`` is needed for the frozen ones."""
    out = []
    for v in names:
        if v not in KINDS:
            raise ValueError(f"unknown variant {v!r}; use {', '.join(KINDS)}")
        if v.startswith("frozen") and cal is None:
            raise ValueError(f"variant {v!r} needs calibration data")
        if v == "lox" and base is None:
            raise ValueError("the LoX variant needs the base model of the pair")
        # checked above: base is set for "lox", cal for the frozen variants (the only lambdas that read them)
        lm_b, c = cast("LoadedModel", base), cast(Calibration, cal)
        out.append(
            {
                "aligned": lambda: aligned(),
                "lox": lambda: lox(lm, lm_b, lox_settings, cache),
                "frozen-units": lambda: frozen_units(lm, c, unit_pct, "safety", cache=cache),
                "frozen-redundant": lambda: frozen_units(lm, c, unit_pct, "redundant", cache=cache),
                "frozen-weights": lambda: frozen_weights(lm, c, cache=cache),
            }[v]()
        )
    return out
