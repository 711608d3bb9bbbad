"""The critical-regions interface the page and the CLI call: settings in, a reversible edit out.

Methods: ``set_difference`` (Wanda/SNIP scores, S_q \\ U_p), ``actsvd`` (remove the top-r safety ranks),
``orthogonal`` (W ← W − (I − Π_u) Π_s W) and ``units`` (zero the input channels of exclusive safety units).
Each returns a :class:`RegionEdit` carrying the edit, the real fraction removed, and same-size random
controls: one control is one draw, so :data:`N_CONTROLS` seeded draws are made on demand
(:meth:`RegionEdit.controls`; ``control`` is the first, seed 0) and reported as mean ± sd
(:func:`analysis.methods.critical_regions.controls.control_spread`). Units' control is as many redundant units,
drawn at random (seeded) when there are more redundant units than that; when there are not, it is all of them —
deterministic, so one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Callable, Iterator, cast

import torch

from analysis.core.cache import Cache
from analysis.core.edits import Deferred, Edit, LowRank, locked
from analysis.core.options import check, option
from analysis.methods.critical_regions.actsvd import DECOMPOSITIONS, PROCEDURES, orthogonal_projection, remove_top_ranks
from analysis.methods.critical_regions.calibration import POSITIONS
from analysis.methods.critical_regions.masks import GROUPS, random_like, set_difference
from analysis.methods.critical_regions.scoring import METHODS as SCORE_METHODS
from analysis.methods.critical_regions.scoring import (
    Calibration,
    activation_stats,
    layerwise_subspaces,
    scores,
    unit_importance,
)
from analysis.methods.critical_regions.unit_types import TYPES as UNIT_TYPES
from analysis.methods.critical_regions.unit_types import classify_units

if TYPE_CHECKING:
    from analysis.core.models import LoadedModel
    from analysis.methods.critical_regions.actsvd import Subspaces

METHODS = ("set_difference", "actsvd", "orthogonal", "units")
N_CONTROLS = 5  # random controls per region (seeds 0 … 4)


@dataclass
class RegionSettings:
    method: str = option("set_difference", choices=METHODS, help="region method")
    score: str = option("snip", choices=SCORE_METHODS, help="importance score (set difference)")
    p: float = option(0.03, range=(0, 1), widget_range=(0, 0.2), step=0.005, help="top utility fraction protected")
    q: float = option(0.03, range=(0, 1), widget_range=(0, 0.2), step=0.005, help="top safety fraction selected")
    group: str = option(
        "matrix",
        choices=GROUPS,
        help="set-difference group: matrix (reference, sizes rounded down) | row (project variant, "
        "rounded up; Wanda's pruning unit) | layer",
    )
    prune_to: str = option("zero", choices=("zero", "base"), help="pruned weights become zero or the base's")
    r_s: int = option(1, range=(0, None), widget_range=(0, 16), help="safety ranks removed (actsvd, orthogonal)")
    r_u: int = option(2, range=(0, None), widget_range=(0, 32), help="utility ranks protected (orthogonal)")
    procedure: str = option(
        "sequential",
        choices=PROCEDURES,
        help="ActSVD / orthogonal: sequential (reference: layer by layer on the progressively "
        "edited model) | one-pass (project variant: every layer from the unedited model)",
    )
    positions: str = option(
        "response",
        choices=POSITIONS,
        help="activation token mask (Wanda, ActSVD, units): response (reference: the response "
        "tokens) | predicting (project variant: the positions whose next token is a "
        "response token)",
    )
    decomposition: str = option(
        "exact",
        choices=DECOMPOSITIONS,
        help="ActSVD / orthogonal: exact eigendecomposition (default) | lowrank (the reference's "
        "seeded svd_lowrank, q = r, niter = 20)",
    )
    lowrank_seed: int = option(0, range=(0, 2**32 - 1), help="the seed of the lowrank decomposition")
    safety_pct: float = option(
        2.0, range=(0, 100), widget_range=(0, 20), step=0.5, help="units: exclusive-safety percentile"
    )
    utility_pct: float = option(
        13.0, range=(0, 100), widget_range=(0, 40), step=0.5, help="units: exclusive-utility percentile"
    )
    redundant_pct: float = option(
        15.0, range=(0, 100), widget_range=(0, 40), step=0.5, help="units: redundant percentile"
    )
    unit_kind: str = option("safety", choices=UNIT_TYPES, help="which unit type to prune")

    def validate(self) -> None:
        check(self)
        if self.decomposition == "lowrank" and self.procedure != "sequential":
            raise ValueError(
                "the lowrank decomposition is the reference's, which is sequential: use procedure sequential"
            )

    def convention(self) -> str:
        """Which convention this method's numbers follow (shown next to them and recorded in reports)."""
        mask = (
            "; project variant: activations at the positions predicting the response"
            if self.positions == "predicting" and "positions" in self.relevant()
            else ""
        )
        if self.method == "set_difference":
            return {
                "matrix": "reference (per matrix, sizes rounded down)",
                "row": "project variant: per output row, sizes rounded up",
                "layer": "project variant: per layer",
            }[self.group] + mask
        if self.method in ("actsvd", "orthogonal"):
            dec = (
                "reference's svd_lowrank, q = r, niter = 20, seed " + str(self.lowrank_seed)
                if self.decomposition == "lowrank"
                else "exact eigendecomposition"
            )
            return (
                f"reference (layer by layer on the progressively edited model; {dec})"
                if self.procedure == "sequential"
                else "project variant: one pass on the unedited model"
            ) + mask
        return "Li & Kim units (no reference code convention)" + mask

    def relevant(self) -> dict:
        """The settings this method uses (what names the region in cache keys)."""
        used = {
            "set_difference": ("score", "p", "q", "group", "prune_to", "positions"),
            "actsvd": ("r_s", "procedure", "positions"),
            "orthogonal": ("r_s", "r_u", "procedure", "positions"),
            "units": ("safety_pct", "utility_pct", "redundant_pct", "unit_kind", "positions"),
        }[self.method]
        if self.method == "set_difference" and self.score == "snip":
            used = used[:-1]  # SNIP's loss covers the response tokens whatever the activation mask
        if self.method in ("actsvd", "orthogonal") and self.decomposition != "exact":
            used = used + ("decomposition", "lowrank_seed")  # exact: the keys stay as they were
        return {"method": self.method, **{k: v for k, v in asdict(self).items() if k in used}}


@dataclass
class RegionEdit:
    edit: Edit
    control: Edit | None
    description: str
    removed_fraction: float  # share of decoder weights (or of ranks / units) removed
    unit: str  # "weights", "ranks" or "units"
    per_module: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    make_control: Callable[[int], Edit] | None = field(default=None, repr=False)  # seed -> same-size control
    n_controls: int = 1  # how many distinct controls exist (1: deterministic, e.g. every redundant unit)

    def controls(self, n: int | None = None) -> Iterator[Edit]:
        """The same-size controls for seeds 0 … n − 1 (default :data:`N_CONTROLS`, capped at the distinct ones),
        built one at a time, when applied, so that only one is in memory; seed 0 is ``control``."""
        n = min(N_CONTROLS if n is None else n, self.n_controls)
        control = cast(Edit, self.control)  # callers check that a control exists before asking for its seeds
        for seed in range(n):
            if seed == 0 or self.make_control is None:
                yield control
            elif control.recipe is None:
                yield self.make_control(seed)
            else:  # named by its seeded recipe, built only if applied (a cached control is never built)
                make = cast(Callable[[int], Edit], self.make_control)
                yield Deferred(type(control).__name__, partial(make, seed), _seeded(control.recipe, seed))


def _random_rank_control(edit: LowRank, model, seed: int = 0, recipe: dict | None = None) -> LowRank:
    """Same ranks, random orthonormal directions: W ← (I − Π_rand) W."""
    from analysis.core.arch import adapter_of

    adapter = adapter_of(model)
    g = torch.Generator().manual_seed(seed)
    factors = {}
    for n, (A, _) in edit.factors.items():
        r = A.shape[1]
        W = adapter[n].W.float()
        Q, _ = torch.linalg.qr(torch.randn(W.shape[0], max(r, 1), generator=g))
        Q = Q[:, :r]
        factors[n] = (-Q, Q.T @ W)
    return LowRank(factors, recipe=recipe)


def _recipe(lm: "LoadedModel", settings: RegionSettings, cal: Calibration, base, role: str) -> dict:
    data = json.dumps([cal.key("safety"), cal.key("utility"), cal.system_prompt]).encode()
    return {
        "region": settings.relevant(),
        "model": lm.fingerprint,
        "role": role,
        "calibration": hashlib.sha256(data).hexdigest(),
        "base": base.fingerprint if base is not None and settings.prune_to == "base" else None,
    }


def _seeded(recipe: dict, seed: int) -> dict:
    """A control's recipe for ``seed`` (seed 0 keeps the original recipe, so cached results stay valid)."""
    return recipe if seed == 0 else {**recipe, "control_seed": seed}


def build(
    lm: "LoadedModel",
    settings: RegionSettings,
    cal: Calibration,
    base: "LoadedModel | None" = None,
    cache: Cache | None = None,
    progress=None,
) -> RegionEdit:
    """Compute (or read cached) scores and turn them into the region's edit and its random control.
    The edits name themselves by their recipe (settings, model, calibration data)."""
    settings.validate()
    s = settings
    cache = cache or Cache()
    recipe = {role: _recipe(lm, s, cal, base, role) for role in ("edit", "control")}
    if s.method == "set_difference":
        ss = scores(lm, s.score, "safety", cal, cache, progress, positions=s.positions)
        us = scores(lm, s.score, "utility", cal, cache, progress, positions=s.positions)
        layer_of = {n: ref.layer for n, ref in lm.adapter.linears.items()}
        region = set_difference(ss, us, s.p, s.q, s.group, layer_of)
        base_w: dict[str, torch.Tensor] | None
        reads: tuple[torch.nn.Module, ...]
        base_w, reads = None, ()
        if s.prune_to == "base":
            if base is None:
                raise ValueError("pruning to base weights needs a base model in the pair")
            base_w, reads = {n: base.adapter[n].W.detach() for n in region.masks}, (base.model,)

        def make_control(seed: int) -> Edit:
            return random_like(region, seed).edit(base_w, _seeded(recipe["control"], seed), reads)

        return RegionEdit(
            region.edit(base_w, recipe["edit"], reads),
            make_control(0),
            f"{s.score} {region.description}, pruned to {s.prune_to}",
            region.fraction,
            "weights",
            region.fraction_by_module(),
            make_control=make_control,
            n_controls=N_CONTROLS,
        )
    if s.method in ("actsvd", "orthogonal"):
        if s.procedure == "sequential":
            sub_s, sub_u = layerwise_subspaces(
                lm,
                cal,
                s.r_s,
                s.r_u if s.method == "orthogonal" else None,
                cache,
                progress,
                s.positions,
                s.decomposition,
                s.lowrank_seed,
            )
        else:
            _, sub_s = activation_stats(lm, "safety", cal, cache, progress, s.positions)
            sub_u = (
                activation_stats(lm, "utility", cal, cache, progress, s.positions)[1]
                if s.method == "orthogonal"
                else None
            )
        with locked(lm.model):
            if s.method == "actsvd":
                r = remove_top_ranks(lm.model, sub_s, s.r_s)
                desc = f"ActSVD: remove top {s.r_s} safety rank(s) ({s.procedure})"
            else:
                r = orthogonal_projection(lm.model, sub_s, cast("Subspaces", sub_u), s.r_s, s.r_u)  # set: orthogonal
                desc = f"orthogonal projection: r_s = {s.r_s}, r_u = {s.r_u} ({s.procedure})"
            r.edit.recipe = recipe["edit"]
            control = _random_rank_control(r.edit, lm.model, recipe=recipe["control"])
        notes = [
            f"{n}: rank {asked} asked, only {used} available from {sub_s.n_tokens} calibration tokens"
            for n, (asked, used) in r.clipped.items()
        ]
        per = {n: k / min(lm.adapter[n].shape) for n, k in r.ranks.items()}

        def make_rank_control(seed: int) -> Edit:  # reads the unedited weights: under the model's lock
            with locked(lm.model):
                return _random_rank_control(r.edit, lm.model, seed, _seeded(recipe["control"], seed))

        return RegionEdit(
            r.edit, control, desc, r.fraction_of_ranks(lm.adapter), "ranks", per, notes, make_rank_control, N_CONTROLS
        )
    types = unit_types(lm, s, cal, cache, progress)
    n = types.count(s.unit_kind)
    edit = types.mask(s.unit_kind, lm.adapter, recipe=recipe["edit"])
    total_units = sum(len(v) for v in types.labels.values())
    n_redundant = types.count("redundant")

    def make_unit_control(seed: int) -> Edit:  # as many redundant units as pruned ones, a seeded draw
        return types.mask("redundant", lm.adapter, limit=n, seed=seed, recipe=_seeded(recipe["control"], seed))

    return RegionEdit(
        edit,
        make_unit_control(0),
        f"units: prune {n} {s.unit_kind} units (control: {min(n, n_redundant)} redundant units)",
        n / max(total_units, 1),
        "units",
        {k: v[s.unit_kind] for k, v in types.shares().items()},
        make_control=make_unit_control,
        n_controls=N_CONTROLS if n_redundant > n else 1,  # all redundant units: one, deterministic control
    )


def unit_types(
    lm: "LoadedModel", settings: RegionSettings, cal: Calibration, cache: Cache | None = None, progress=None
):
    """Every unit typed safety / utility / complex / redundant by the settings' percentiles."""
    i_s, i_u = unit_importance(lm, cal, cache, progress, settings.positions)
    return classify_units(i_s, i_u, settings.safety_pct, settings.utility_pct, settings.redundant_pct)
