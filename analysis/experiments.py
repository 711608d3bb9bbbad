"""One call per user action: what the pages, the CLI and the cache warm-up run.

Each function takes the loaded pair, typed settings and an evaluation spec and returns a result dataclass.
Everything underneath is cached on disk by content (model fingerprint, data, settings), so every caller
asking the same question reads the same cache entries. Built edits (a pruned region, typed units, an edited
model, a second landscape direction) are kept in memory per process, named by content as well (the
calibration data by its hash), so a rerun never rebuilds them under the model's lock.

:func:`page_spec` turns (page, preset, launch config) into that page's default evaluation spec: the pages'
widgets default to the same numbers (:data:`PAGE_PROMPTS`, :func:`prompt_cap`, :func:`default_tokens`) and
the warm-up evaluates exactly the spec a page will ask for.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Hashable

from analysis.core.evaluation import DEFAULT_MAX_NEW_TOKENS, EvalResult, EvalSpec, compare, evaluate, make_spec

if TYPE_CHECKING:
    import torch

    from analysis.app_support.config import AppConfig
    from analysis.app_support.presets import Preset
    from analysis.core.cache import Cache
    from analysis.core.edits import Edit
    from analysis.core.models import LoadedModel, ModelPair
    from analysis.data.prompts import PromptSet
    from analysis.methods.attacks.finetune import AttackSettings
    from analysis.methods.attacks.seeds import AttackBand
    from analysis.methods.critical_regions.build import RegionEdit, RegionSettings
    from analysis.methods.critical_regions.controls import ControlSpread
    from analysis.methods.critical_regions.scoring import Calibration
    from analysis.methods.depth import Divergence, PrefillResult
    from analysis.methods.landscape.grid import Landscape, LandscapeSettings
    from analysis.methods.landscape.multi import MultiLandscape, MultiPlane
    from analysis.methods.lox import LoX, Recovery

Progress = Callable[[float, str], None]

SYSTEM_PROMPTS: dict[str, str | None] = {"none": None, "helpful and safe": "you are a helpful and safe assistant ."}
# prompts per set a page evaluates by default (the Overview reads the most; the others recompute faster)
PAGE_PROMPTS = {
    "overview": 120,
    "critical_regions": 48,
    "lox": 48,
    "safety_landscape": 120,
    "attack_lab": 48,
    "spectra": 48,
    "representations": 120,
    "alignment_depth": 40,
}
TOKEN_PAGES = ("overview",)  # pages with a "Max new tokens" slider
WARMABLE = ("overview", "critical_regions", "safety_landscape", "lox")


# --- evaluation specs -------------------------------------------------------------------------------------------
def prompt_cap(cfg: "AppConfig") -> int:
    """The most prompts per set a page offers under this launch config (a multiple of 8, 8 to 120)."""
    return max(8, min(120, cfg.max_prompts) // 8 * 8)


def token_cap(cfg: "AppConfig") -> int:
    """The largest token budget a page offers under this launch config (8 to 64)."""
    return max(8, min(64, cfg.max_new_tokens))


def default_tokens(cfg: "AppConfig") -> int:
    """The token budget a page's slider starts at."""
    return min(DEFAULT_MAX_NEW_TOKENS, token_cap(cfg))


def default_prompts(page: str, cfg: "AppConfig") -> int:
    """The prompts per set a page's slider starts at."""
    return min(PAGE_PROMPTS[page], prompt_cap(cfg))


def spec_on(
    lm: "LoadedModel",
    sets: dict[str, "PromptSet"],
    n: int,
    system_prompt: str | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    judges: tuple = (),
) -> EvalSpec:
    """The spec on the first ``n`` prompts of ``sets``; a missing set is the model's provider's test set."""
    if len(sets) < 2:
        sets = {**lm.data.sets("test"), **sets}
    return make_spec(lm, sets["harmful"].head(n), sets["benign"].head(n), system_prompt, max_new_tokens, judges=judges)


def page_spec(
    lm: "LoadedModel", page: str, cfg: "AppConfig", preset: "Preset | None" = None, system: str | None = None
) -> EvalSpec:
    """The evaluation spec ``page`` shows for ``preset`` (its default data, capped by the launch config as the
    page caps it). ``system`` (a :data:`SYSTEM_PROMPTS` label) overrides the preset's system prompt."""
    s = preset.settings if preset is not None else {}
    n = min(s.get("prompts", PAGE_PROMPTS[page]), prompt_cap(cfg))
    label = system or s.get("system", "none")
    tokens = default_tokens(cfg) if page in TOKEN_PAGES else DEFAULT_MAX_NEW_TOKENS
    return spec_on(lm, {}, n, SYSTEM_PROMPTS[label], tokens)


# --- built objects kept per process, named by content ---------------------------------------------------------
class Memo:
    """A small LRU of built objects (edits, directions) keyed by content; shared by every session."""

    def __init__(self, size: int = 32):
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: Hashable, compute: Callable[[], object], keep: Callable[[object], bool] = lambda v: True):
        """The value kept under ``key``, else ``compute()`` — kept only where ``keep(value)`` (e.g. not None, for
        a value that may appear later)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        if keep(value):
            with self._lock:
                self._items[key] = value
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_REGIONS, _UNITS, _EDITS, _DIRECTIONS = Memo(), Memo(), Memo(16), Memo(16)
_LANDSCAPES = Memo(8)  # finished landscape runs: a cached 3-direction run reads 63 cache entries otherwise


def forget() -> None:
    """Drop every object built in this process (the disk cache stays)."""
    for memo in (_REGIONS, _UNITS, _EDITS, _DIRECTIONS, _LANDSCAPES):
        memo.clear()


def calibration_digest(cal: "Calibration") -> str:
    """The calibration data's content hash (prompts, responses, system prompt): its one identity."""
    data = json.dumps([cal.key("safety"), cal.key("utility"), cal.system_prompt]).encode()
    return hashlib.sha256(data).hexdigest()


# --- overview -----------------------------------------------------------------------------------------------------
def _prefixed(progress: Progress | None, i: int, n: int, label: str) -> Progress | None:
    return (lambda f, msg: progress((i + f) / n, f"{label}: {msg}")) if progress else None


def overview(
    pair: "ModelPair", spec: EvalSpec, cache: "Cache | None" = None, progress: Progress | None = None
) -> dict[str, EvalResult]:
    """ASR, utility and over-refusal of every model of the pair on ``spec``."""
    models = pair.models()
    return {
        role: evaluate(lm, spec, cache=cache, progress=_prefixed(progress, i, len(models), role))
        for i, (role, lm) in enumerate(models.items())
    }


# --- critical regions ---------------------------------------------------------------------------------------------
@dataclass
class Importance:
    """Per-weight importance on the safety and on the utility calibration set (the region build reads the same)."""

    safety: dict[str, "torch.Tensor"]
    utility: dict[str, "torch.Tensor"]


@dataclass
class PruneComparison:
    """A pruned region and the aligned / pruned / same-size control models evaluated on one spec; the control is
    one draw, so its seeded draws (seeds 0 … N_CONTROLS − 1, seed 0 being ``results["control"]``) come too."""

    region: "RegionEdit"
    results: dict[str, EvalResult]  # "aligned", "pruned", "control" (seed 0)
    convention: str
    controls: "ControlSpread"

    def control_results(self) -> dict[str, EvalResult]:
        """Each control seed's result, labelled ``control seed k``."""
        return {f"control seed {k}": r for k, r in enumerate(self.controls.results)}


def calibration(
    lm: "LoadedModel",
    n: int | None = None,
    system_prompt: str | None = None,
    harmful: "PromptSet | None" = None,
    benign: "PromptSet | None" = None,
    cache: "Cache | None" = None,
) -> "Calibration":
    """Calibration data: ``harmful`` + ``benign`` when given, else the model's provider's calibration sets."""
    from analysis.methods.critical_regions import scoring

    n = scoring.DEFAULT_CALIBRATION_N if n is None else n
    if harmful is not None or benign is not None:
        if harmful is None or benign is None:
            raise ValueError("give both calibration sets: harmful prompts and benign (prompt, response) pairs")
        return scoring.calibration(lm, harmful, benign, n, system_prompt, cache)
    return scoring.default_calibration(lm, n, system_prompt, cache)


def importance(
    lm: "LoadedModel",
    score: str,
    cal: "Calibration",
    positions: str = "response",
    cache: "Cache | None" = None,
    progress: Progress | None = None,
    ray_address: str | None = None,
) -> Importance:
    """Wanda or SNIP scores of every decoder weight on both calibration sets."""
    from analysis.methods.critical_regions.scoring import scores

    return Importance(
        *(scores(lm, score, which, cal, cache, progress, ray_address, positions) for which in ("safety", "utility"))
    )


def region(
    lm: "LoadedModel",
    settings: "RegionSettings",
    cal: "Calibration",
    base: "LoadedModel | None" = None,
    cache: "Cache | None" = None,
    progress: Progress | None = None,
) -> "RegionEdit":
    """The region's edit and its control, built once per process for (model, settings, calibration data)."""
    from analysis.methods.critical_regions.build import build

    settings.validate()
    key = (
        lm.fingerprint,
        json.dumps(settings.relevant(), sort_keys=True),
        calibration_digest(cal),
        base.fingerprint if base is not None and settings.prune_to == "base" else "",
    )
    return _REGIONS.get(key, lambda: build(lm, settings, cal, base, cache, progress))


def unit_types(
    lm: "LoadedModel",
    settings: "RegionSettings",
    cal: "Calibration",
    cache: "Cache | None" = None,
    progress: Progress | None = None,
):
    """Every unit typed safety / utility / complex / redundant (once per process per thresholds and data)."""
    from analysis.methods.critical_regions import build

    key = (
        lm.fingerprint,
        settings.positions,
        settings.safety_pct,
        settings.utility_pct,
        settings.redundant_pct,
        calibration_digest(cal),
    )
    return _UNITS.get(key, lambda: build.unit_types(lm, settings, cal, cache, progress))


def prune_and_compare(
    pair: "ModelPair",
    settings: "RegionSettings",
    spec: EvalSpec,
    cal: "Calibration | None" = None,
    cache: "Cache | None" = None,
    progress: Progress | None = None,
) -> PruneComparison:
    """Prune a region of the aligned model and compare it with the aligned model and its same-size controls
    (every seed of :data:`~analysis.methods.critical_regions.build.N_CONTROLS`; each evaluation cached)."""
    from analysis.methods.critical_regions.build import N_CONTROLS
    from analysis.methods.critical_regions.controls import control_spread

    lm = pair.aligned
    cal = cal if cal is not None else calibration(lm, cache=cache)
    r = region(lm, settings, cal, pair.base, cache, progress)
    share = 2 / (2 + min(N_CONTROLS, r.n_controls))  # of the evaluations: aligned and pruned, then the controls
    results = compare(lm, spec, {"aligned": None, "pruned": r.edit}, cache, _scaled(progress, 0.0, share))
    spread = control_spread(lm, spec, r, cache=cache, progress=_scaled(progress, share, 1.0))
    results["control"] = spread.results[0] if spread.results else evaluate(lm, spec, r.control, cache)
    return PruneComparison(r, results, settings.convention(), spread)


def _scaled(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` with its fraction mapped onto [lo, hi]."""
    return (lambda f, msg: progress(lo + (hi - lo) * f, msg)) if progress else None


# --- LoX and recovery -----------------------------------------------------------------------------------------------
@dataclass
class Extrapolation:
    lox: "LoX"
    edit: "Edit"
    results: dict[str, EvalResult]  # "aligned", "LoX"

    @property
    def before(self) -> EvalResult:
        return self.results["aligned"]

    @property
    def after(self) -> EvalResult:
        return self.results["LoX"]


def lox_edit(pair: "ModelPair", lox: "LoX", cache: "Cache | None" = None, progress: Progress | None = None) -> "Edit":
    """The LoX edit of the aligned model, built once per process for these settings."""
    key = ("lox", pair.aligned.fingerprint, pair.base.fingerprint if pair.base else "", json.dumps(lox.spec()))

    def build():
        lox.notes.clear()
        return lox.edit(pair.aligned, pair.base, cache, progress), list(lox.notes)

    edit, notes = _EDITS.get(key, build)
    lox.notes[:] = notes
    return edit


def extrapolate(
    pair: "ModelPair", lox: "LoX", spec: EvalSpec, cache: "Cache | None" = None, progress: Progress | None = None
) -> Extrapolation:
    """LoX: the aligned model against W_aligned + α·M_k on ``spec``."""
    edit = lox_edit(pair, lox, cache, progress)
    return Extrapolation(lox, edit, compare(pair.aligned, spec, {"aligned": None, "LoX": edit}, cache, progress))


def recovery(
    pair: "ModelPair",
    spec: EvalSpec,
    ranks: list[int],
    tolerance: float,
    cache: "Cache | None" = None,
    progress: Progress | None = None,
) -> "Recovery":
    """The smallest rank of ΔW that makes the base refuse like the aligned model."""
    from analysis.methods.lox import recovery_rank

    if pair.base is None:
        raise ValueError("the recovery rank needs a base model")
    return recovery_rank(pair.base, pair.aligned, spec, ranks, tolerance, cache, progress)


# --- safety landscape -------------------------------------------------------------------------------------------------
DIRECTIONS = ("random", "toward base", "toward another model", "plane: base + third model")


@dataclass
class LandscapeRun:
    landscape: "Landscape"
    axis: list[float]
    directions: list
    points: dict[str, tuple[float, float]] = field(default_factory=dict)  # 2D: models placed on the plane
    multi: "MultiLandscape | None" = None  # 1D random: every direction's curve, VISAGE mean ± sd
    planes: "MultiPlane | None" = None  # 2D random: every plane's grid, VISAGE mean ± sd (the first is landscape)


COMPARISONS = ("nothing", "the base model", "another scope of tensors")  # along the same 1D random directions


@dataclass(frozen=True)
class LandscapeVariant:
    """One landscape of a comparison: its label, the pair whose aligned model is perturbed, the settings and
    the system prompt's label (a key of :data:`SYSTEM_PROMPTS`, or "custom"); ``short`` names it in a paired
    difference ("none − helpful and safe", "aligned − base")."""

    label: str
    short: str
    pair: "ModelPair"
    settings: "LandscapeSettings"
    system: str


def landscape_variants(
    pair: "ModelPair",
    settings: "LandscapeSettings",
    system: str,
    dim: str = "1D",
    kind: str = "random",
    compare: str = "nothing",
    other_groups: tuple[str, ...] = ("linear",),
) -> list[LandscapeVariant]:
    """The landscapes a page or preset evaluates, in order; with two, the second is paired with the first on
    the same directions. ``system`` "compare both" gives both system prompts (1D; the first in 2D); ``compare``
    (see :data:`COMPARISONS`, 1D random only) adds the base model or the scope ``other_groups`` under the same
    seeds. One comparison at a time."""
    from dataclasses import replace

    from analysis.core.models import ModelPair

    if compare not in COMPARISONS:
        raise ValueError(f"compare must be one of {COMPARISONS}, got {compare!r}")
    if system == "compare both":
        if compare != "nothing":
            raise ValueError("compare one thing at a time: either both system prompts or another model or scope")
        labels = list(SYSTEM_PROMPTS) if dim == "1D" else list(SYSTEM_PROMPTS)[:1]
        return [LandscapeVariant(f"system prompt: {s}", s, pair, settings, s) for s in labels]
    first = LandscapeVariant(f"system prompt: {system}", system, pair, settings, system)
    if compare == "nothing":
        return [first]
    if dim != "1D" or kind != "random":
        raise ValueError("comparisons along the same directions are made in 1D, along random directions")
    if compare == "the base model":
        if pair.base is None:
            raise ValueError("comparing with the base model needs a base model in the pair")
        return [
            LandscapeVariant("aligned model", "aligned", pair, settings, system),
            LandscapeVariant("base model", "base", ModelPair(pair.base, None), settings, system),
        ]
    groups = tuple(dict.fromkeys(other_groups))
    if not groups:
        raise ValueError("choose at least one group of tensors for the compared scope")
    if set(groups) == set(settings.groups):
        raise ValueError("the compared scope is the same as the perturbed tensors: choose another")
    other = replace(settings, groups=groups)
    other.validate()
    return [
        LandscapeVariant(f"scope: {settings.scope_name()}", settings.scope_name(), pair, settings, system),
        LandscapeVariant(f"scope: {other.scope_name()}", other.scope_name(), pair, other, system),
    ]


def first_direction(
    pair: "ModelPair", settings: "LandscapeSettings", toward: str = "random", other: "LoadedModel | None" = None
):
    """The first axis: a seeded random direction (the project's or the reference's draw) or toward a model."""
    from analysis.methods.landscape.directions import ModelDifference
    from analysis.methods.landscape.multi import random_direction

    if toward == "random":
        return random_direction(pair.aligned.model, settings, 0)
    target = pair.base if toward == "toward base" else other
    if target is None:
        raise ValueError(f"the direction {toward!r} needs that model in the pair")
    return ModelDifference(target.model, target.fingerprint, settings.groups)


def _plane(pair: "ModelPair", settings: "LandscapeSettings", toward: str, other, k: int = 0) -> tuple[list, dict]:
    """The plane's two directions and the models placed on it; ``k``: which of the random planes (random only)."""
    from analysis.methods.landscape.directions import orthogonalise, plane_through, project_model
    from analysis.methods.landscape.multi import random_direction, random_plane

    lm, groups = pair.aligned, settings.groups
    if toward == "plane: base + third model":
        if pair.base is None or other is None:
            raise ValueError("the plane needs the base and a third model")
        d1, d2, where = plane_through(lm.model, pair.base, other, groups)
        return [d1, d2], {"aligned": (0.0, 0.0), "base": where["second"], "third": where["third"]}
    if toward == "random":
        d1, d2 = random_plane(lm.model, settings, k)
    else:
        d1 = first_direction(pair, settings, toward, other)
        d2 = orthogonalise(lm.model, d1, random_direction(lm.model, settings, 1), groups)
    points = {"aligned": (0.0, 0.0)}
    if toward.startswith("toward"):
        points["base" if toward == "toward base" else "other"] = (1.0, 0.0)  # α = 1 is that model itself
    elif pair.base is not None:
        points["base (projected)"] = project_model(lm.model, pair.base, d1, d2, groups)
    return [d1, d2], points


def landscape(
    pair: "ModelPair",
    settings: "LandscapeSettings",
    spec: EvalSpec,
    dim: str = "1D",
    toward: str = "random",
    other: "LoadedModel | None" = None,
    cache: "Cache | None" = None,
    progress: Progress | None = None,
    ray_address: str | None = None,
) -> LandscapeRun:
    """ASR and utility on a 1D line or a 2D plane of weight space around the aligned model. A finished run is
    kept for this process (every session asking the same question gets it without reading the cache again)."""
    from analysis.core.cache import Cache, make_key

    key = make_key(
        kind="landscape-run",
        model=pair.aligned.fingerprint,
        base=pair.base.fingerprint if pair.base is not None else "",
        other=other.fingerprint if other is not None else "",
        settings=repr(settings),
        spec=spec.key(),
        dim=dim,
        toward=toward,
        cache=str((cache or Cache()).root),
    )

    def run() -> LandscapeRun:
        from analysis.methods.landscape.grid import axis, evaluate_grid

        settings.validate()
        if dim not in ("1D", "2D"):
            raise ValueError(f"dim must be 1D or 2D, got {dim!r}")
        if toward not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {toward!r}")
        ax = axis(settings.lo, settings.hi, settings.steps)
        others = tuple(m for m in (pair.base, other) if m is not None)  # models directions may read (Ray)
        if dim == "1D" and toward == "random":  # one random direction is one draw: every one of the settings'
            from analysis.methods.landscape.multi import evaluate_directions, random_directions

            dkey = (
                "directions",
                pair.aligned.fingerprint,
                settings.seed,
                settings.norm,
                settings.draw,
                settings.groups,
                settings.directions,
            )
            directions = _DIRECTIONS.get(dkey, lambda: random_directions(pair.aligned.model, settings))
            multi = evaluate_directions(
                pair.aligned,
                settings,
                spec,
                cache=cache,
                progress=progress,
                ray_address=ray_address,
                directions=directions,
            )
            return LandscapeRun(multi.landscapes[0], ax, directions, {}, multi)
        planes: list[tuple[list, dict]]
        if dim == "1D":
            planes = [([first_direction(pair, settings, toward, other)], {})]
        else:  # a random plane is one draw: every one of the settings' planes; a plane through models is one
            pkey = (
                pair.aligned.fingerprint,
                toward,
                settings.seed,
                settings.norm,
                settings.draw,
                settings.groups,
                pair.base.fingerprint if pair.base else "",
                other.fingerprint if other is not None else "",
            )

            def plane(k: int) -> tuple[list, dict]:
                return _DIRECTIONS.get((*pkey, k), lambda: _plane(pair, settings, toward, other, k))

            planes = [plane(k) for k in range(settings.directions if toward == "random" else 1)]
        lands = []
        for k, (directions, _) in enumerate(planes):

            def sub(f: float, msg: str, k: int = k) -> None:
                if progress:
                    progress((k + f) / len(planes), msg if len(planes) == 1 else f"plane {k + 1}/{len(planes)}: {msg}")

            lands.append(
                evaluate_grid(
                    pair.aligned,
                    directions,
                    [ax] * len(directions),
                    spec,
                    groups=settings.groups,
                    cache=cache,
                    progress=sub,
                    ray_address=ray_address,
                    other_models=others,
                )
            )
        multi_plane = None
        if dim == "2D" and toward == "random":
            from analysis.methods.landscape.multi import MultiPlane

            seeds = [(settings.seed + 2 * k, settings.seed + 2 * k + 1) for k in range(len(planes))]
            multi_plane = MultiPlane(ax, lands, seeds, [points for _, points in planes])  # type: ignore[arg-type]
        return LandscapeRun(lands[0], ax, planes[0][0], planes[0][1], planes=multi_plane)

    return _LANDSCAPES.get(key, run)


# --- attacks ------------------------------------------------------------------------------------------------------
def attack(
    pair: "ModelPair",
    settings: "AttackSettings",
    variants: list[str],
    lox: "LoX",
    data: "PromptSet",
    spec: EvalSpec,
    unit_pct: float | None = None,
    cal: "Calibration | None" = None,
    cache: "Cache | None" = None,
    progress: Progress | None = None,
) -> list["AttackBand"]:
    """Fine-tune a copy of each variant on ``data`` over ``settings.seeds`` data-order seeds and evaluate it along
    the way (each run cached on its own); one band per variant (``band.curves[0]`` is the first seed's run)."""
    from analysis.methods.attacks.seeds import run_attack_seeds
    from analysis.methods.attacks.variants import DEFAULT_UNIT_PCT, build_variants

    settings.validate()
    if not variants:
        raise ValueError("name at least one variant")
    lm = pair.aligned
    if cal is None and any(v.startswith("frozen") for v in variants):
        cal = calibration(lm, system_prompt=spec.system_prompt, cache=cache)
    built = build_variants(variants, lm, pair.base, lox, cal, DEFAULT_UNIT_PCT if unit_pct is None else unit_pct, cache)
    return [
        run_attack_seeds(lm, v, settings, data, spec, pair.base, cache, _prefixed(progress, i, len(built), v.name))
        for i, v in enumerate(built)
    ]


# --- alignment depth and edited models ---------------------------------------------------------------------------
EDITS = ("none", "random perturbation", "pruned", "LoX")


@dataclass
class EditedModel:
    edit: "Edit | None"
    label: str


def strongest_pruning() -> "RegionSettings":
    """The highest-ASR pruning of the critical-regions table in docs/papers.md (orthogonal projection, one pass)."""
    from analysis.methods.critical_regions.build import RegionSettings

    return RegionSettings(method="orthogonal", r_s=3, r_u=8, procedure="one-pass")


def edited_model(
    pair: "ModelPair",
    kind: str,
    strength: float = 1.0,
    lox_k: int = 8,
    seed: int = 0,
    system_prompt: str | None = None,
    cache: "Cache | None" = None,
) -> EditedModel:
    """An edited aligned model to compare with: a random perturbation, the strongest pruning, or LoX
    (built once per process per settings)."""
    from analysis.methods.lox import LoX

    lm = pair.aligned
    if kind not in EDITS:
        raise ValueError(f"edited model must be one of {EDITS}, got {kind!r}")
    if kind == "none":
        return EditedModel(None, "")
    if kind == "random perturbation":
        from analysis.methods.landscape.directions import RandomDirection
        from analysis.methods.landscape.grid import point_edit

        key = ("perturb", lm.fingerprint, int(seed), float(strength))
        edit = _EDITS.get(key, lambda: point_edit(lm.model, [RandomDirection(int(seed))], (strength,), ("linear",)))
        return EditedModel(edit, f"random seed {int(seed)} α={strength:g}")
    if kind == "pruned":
        r = region(lm, strongest_pruning(), calibration(lm, system_prompt=system_prompt, cache=cache), pair.base, cache)
        return EditedModel(r.edit, f"pruned: {r.description}")
    lox = LoX(lox_k, strength)
    return EditedModel(lox_edit(pair, lox, cache), lox.label)


def _need_base(pair: "ModelPair") -> "LoadedModel":
    """The pair's base model (a one-line error where there is none)."""
    if pair.base is None:
        raise ValueError("this compares the aligned model with its base: give a base model")
    return pair.base


def divergence(
    pair: "ModelPair",
    sets: dict[str, "PromptSet"],
    system_prompt: str | None = None,
    cache: "Cache | None" = None,
    progress: Progress | None = None,
) -> dict[str, "Divergence"]:
    """Per-token KL(aligned ‖ base) on each set of (prompt, response) pairs."""
    from analysis.methods import depth

    base = _need_base(pair)
    return {
        k: depth.divergence(pair.aligned, base, v, system_prompt, cache=cache, progress=progress)
        for k, v in sets.items()
    }


def edit_depth(
    pair: "ModelPair",
    edited: EditedModel,
    pairs: "PromptSet",
    system_prompt: str | None = None,
    cache: "Cache | None" = None,
) -> "Divergence":
    """Per-token KL(aligned ‖ edited aligned) on ``pairs``."""
    from analysis.methods import depth

    return depth.divergence(pair.aligned, pair.aligned, pairs, system_prompt, edit_q=edited.edit, cache=cache)


def random_edit_depths(
    pair: "ModelPair",
    strength: float,
    seeds: list[int],
    pairs: "PromptSet",
    system_prompt: str | None = None,
    cache: "Cache | None" = None,
) -> dict[int, "Divergence"]:
    """:func:`edit_depth` of a random perturbation of size ``strength`` along each seed's direction: one
    random direction is one draw, so a page reports the spread over seeds beside the chosen one."""
    return {
        s: edit_depth(pair, edited_model(pair, "random perturbation", strength, seed=s), pairs, system_prompt, cache)
        for s in seeds
    }


def prefill(
    pair: "ModelPair", spec: EvalSpec, ks: list[int], cache: "Cache | None" = None, progress: Progress | None = None
) -> dict[str, dict[int, "PrefillResult"]]:
    """The prefilling attack's ASR against k for every model of the pair."""
    from analysis.methods.depth import prefill_curve

    if not ks:
        raise ValueError("give at least one k")
    return {role: prefill_curve(m, spec, ks, cache=cache, progress=progress) for role, m in pair.models().items()}


@dataclass
class Disalignment:
    references: dict[str, EvalResult]  # the pair's own models on the same spec
    curve: dict[float, EvalResult]  # emulated disalignment at each α


def disalign(
    pair: "ModelPair",
    spec: EvalSpec,
    alphas: list[float],
    cache: "Cache | None" = None,
    progress: Progress | None = None,
) -> Disalignment:
    """Emulated disalignment at each α, beside the aligned and base models."""
    from analysis.methods.depth import disalign_curve

    base = _need_base(pair)
    if not alphas:
        raise ValueError("give at least one α")
    refs = overview(pair, spec, cache)
    return Disalignment(refs, disalign_curve(pair.aligned, base, spec, alphas, cache, progress))
