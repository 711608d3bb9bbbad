"""Grid evaluation: at each point θ + α d₁ (+ β d₂), ASR on harmful prompts, utility on benign prompts and
the degenerate rate, raw generations kept. The point is a reversible edit (:class:`Perturbation`, named by its
directions' specs and coordinates) measured by the one evaluation call, :func:`analysis.core.evaluation.evaluate`,
so each point is cached on its own: a partial grid resumes, and points can be computed by separate workers
(Ray tasks write into the same cache under the same key). Directions are regenerated per tensor, so the peak
memory is the model, one backup of the perturbed tensors and one tensor's direction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from analysis.core.cache import Cache, make_key
from analysis.core.edits import Edit
from analysis.core.evaluation import EvalResult, EvalSpec, evaluate, evaluate_model, evaluation_parts
from analysis.core.options import check, option
from analysis.core.stats import loss_over_draws_ci
from analysis.methods.landscape.directions import DRAWS, GROUPS, NORMS, REFERENCE_GROUPS, perturbed_params
from analysis.methods.landscape.visage import RULES

AXIS_LIMIT = 10.0  # |α| beyond this many direction norms leaves nothing of the model to measure
MAX_AXIS_STEPS = 1001  # a 1D curve finer than this is finer than any plot, and each point is a full evaluation
MAX_DIRECTIONS = 20

if TYPE_CHECKING:
    from analysis.core.models import LoadedModel


@dataclass(frozen=True)
class LandscapeSettings:
    """A 1D/2D grid's defaults (the reference grid: α ∈ [−0.5, 0.5] in 21 steps; the reference's scope, every
    tensor except norm weights; the reference's VISAGE rule). ``draw``: "reference" (llm-landscape's global-seed
    CPU stream, the default, so a default run reproduces the reference's numbers) or "per-tensor" (the project's
    seeded per-tensor draws, regenerable on any device). ``directions``: how many random directions a 1D
    landscape is measured along — direction k is drawn from seed ``seed + k`` (the reference's 123, 124, …) —
    so VISAGE is reported as a mean ± sd over draws (1 allowed)."""

    lo: float = option(
        -0.5,
        range=(-AXIS_LIMIT, AXIS_LIMIT),
        widget_range=(-2, 2),
        step=0.05,
        help="first coordinate α (in units of the direction's norm)",
    )
    hi: float = option(0.5, range=(-AXIS_LIMIT, AXIS_LIMIT), widget_range=(-2, 2), step=0.05, help="last coordinate α")
    steps: int = option(21, range=(1, MAX_AXIS_STEPS), help="points per axis (each is a full evaluation)")
    seed: int = option(
        123,
        range=(0, 2**32 - 1),
        widget_range=(0, 10_000),
        help="direction seed (llm-landscape's own default, 123); direction k uses seed + k",
    )
    norm: str = option("layer", choices=NORMS, help="direction normalisation")
    groups: tuple[str, ...] = option(
        REFERENCE_GROUPS,
        choices=GROUPS,
        help="perturbed tensors (default: the reference's, every tensor except norm "
        "weights; 'linear' alone is the project's decoder-only variant)",
    )
    visage: str = option(
        "reference",
        choices=RULES,
        help="VISAGE 1D rule: reference (llm-landscape safety_avg) | span (project variant: first "
        "to last non-saturated point)",
    )
    draw: str = option(
        "reference",
        choices=DRAWS,
        help="reference: llm-landscape's global-seed CPU stream in state-dict order (reproduces a "
        "published run) | per-tensor: the project's seeded per-tensor draws",
    )
    directions: int = option(
        3,
        range=(1, MAX_DIRECTIONS),
        widget_range=(1, 10),
        help="random directions per 1D landscape (seeds seed, seed + 1, …), random planes per 2D one (plane k: "
        "seeds seed + 2k, seed + 2k + 1): VISAGE as mean ± sd",
    )

    def validate(self) -> None:
        check(self)
        if self.draw == "reference" and self.norm != "layer":
            raise ValueError("the reference draw uses layer normalisation only")
        bad = set(self.groups) - set(GROUPS)
        if bad or not self.groups:
            raise ValueError(f"groups must be a non-empty subset of {GROUPS}, got {list(self.groups)}")
        axis(self.lo, self.hi, self.steps)

    def scope_name(self) -> str:
        """The perturbed tensors in a few words: "all but norm" (the reference's) or the groups."""
        return "all but norm" if set(self.groups) == set(REFERENCE_GROUPS) else ", ".join(self.groups)

    def conventions(self, dim: str = "1D") -> dict[str, str]:
        """Which convention each choice follows (shown next to the numbers and recorded in reports); ``dim`` "2D":
        the random draws are planes (two seeds each) and VISAGE is this project's 2D definition."""
        scope = (
            "reference (every tensor except norm weights)"
            if set(self.groups) == set(REFERENCE_GROUPS)
            else f"project variant: {', '.join(self.groups)}"
        )
        visage = (
            "reference (llm-landscape safety_avg)"
            if self.visage == "reference"
            else "project variant: first to last non-saturated point"
        )
        if dim == "2D":
            visage = "project (2D: mean of 100 − ASR over the points connected to the origin below 100 %)"
            planes = f"{self.directions} plane{'s' if self.directions > 1 else ''}"
            seeds = f"{planes}, seeds {self.seed}–{self.seed + 2 * self.directions - 1}"
        elif self.directions == 1:
            seeds = f"seed {self.seed}"
        else:
            seeds = f"{self.directions} directions, seeds {self.seed}–{self.seed + self.directions - 1}"
        draw = (
            f"reference (llm-landscape global-seed stream, {seeds})"
            if self.draw == "reference"
            else f"project variant: per-tensor draws ({seeds})"
        )
        return {"scope": scope, "VISAGE": visage, "direction": draw}


@dataclass
class Perturbation(Edit):
    """W ← W + Σ_k c_k d_k(W) for every perturbed tensor (W is the unperturbed tensor when applied)."""

    directions: list
    coords: tuple[float, ...]
    names: list[str]
    recipe: dict | None = None
    draw_device: str = "cpu"  # random directions drawn on a GPU differ from CPU draws of the same seed

    def targets(self) -> list[str]:
        return self.names

    def sources(self) -> list[nn.Module]:
        return [m for d in self.directions for m in d.sources()]

    def spec(self) -> dict:
        names = hashlib.sha256(json.dumps(self.names).encode()).hexdigest()
        spec = {
            "type": "Perturbation",
            "directions": [d.spec() for d in self.directions],
            "coords": [float(c) for c in self.coords],
            "names": names,
        }
        if self.draw_device != "cpu":
            spec["draw_device"] = self.draw_device
        return spec

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        if W.device.type != "cpu":  # on a GPU: one fp32 accumulator, in-place adds, one cast back
            acc = None
            for c, d in zip(self.coords, self.directions):
                if c:
                    acc = W.to(torch.float32, copy=True) if acc is None else acc
                    acc.add_(d.tensor(name, W), alpha=c)
            if acc is not None:
                W.copy_(acc)
            return
        delta = None
        for c, d in zip(self.coords, self.directions):
            if c:
                step = c * d.tensor(name, W)
                delta = step if delta is None else delta + step
        if delta is not None:
            W.copy_((W.float() + delta).to(W.dtype))


def where(coords: tuple[float, ...]) -> str:
    """A grid point as a person reads it: 'α = 1', 'α = −0.5, β = 2'."""
    return ", ".join(f"{name} = {c:g}".replace("-", "−") for name, c in zip("αβγ", coords))


def axis(
    lo: float = LandscapeSettings.lo, hi: float = LandscapeSettings.hi, steps: int = LandscapeSettings.steps
) -> list[float]:
    """Evenly spaced coordinates (the reference default: [-0.5, 0.5] in 21 steps), rounded for stable keys."""
    if steps < 1:
        raise ValueError(f"a grid axis needs at least 1 step, got {steps}")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"axis range must be finite, got [{lo}, {hi}]")
    if not hi >= lo:
        raise ValueError(f"axis range must have lo <= hi, got [{lo}, {hi}]")
    return [round(float(v), 10) for v in np.linspace(lo, hi, steps)]


@dataclass
class Landscape:
    axes: list[list[float]]  # one axis (1D) or two (2D)
    asr: np.ndarray  # shape len(ax0) (× len(ax1))
    asr_positive: np.ndarray
    utility: np.ndarray
    degenerate: np.ndarray
    generations: dict[tuple, dict] = field(repr=False, default_factory=dict)  # coords -> {"harmful": [...], ...}
    utility_kind: str = "none"
    attacks: dict[tuple, list[bool]] = field(repr=False, default_factory=dict)  # coords -> per harmful prompt
    # a loss utility's per-item response-loss sums and token counts at each point: coords -> (sums, tokens)
    utility_items: dict[tuple, tuple[list[float], list[int]]] = field(repr=False, default_factory=dict)

    def utility_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Per point, the 95 % bootstrap interval (lo, hi) of a loss utility over the benign items (nan without
        per-item losses, e.g. an exact utility, whose rate has a Wilson interval)."""
        return loss_interval([self])

    def visage_interval(self, rule: str = "reference", n_boot: int = 1000, seed: int = 0) -> tuple[float, float] | None:
        """95 % percentile bootstrap interval of VISAGE (1D by ``rule``; 2D by this project's definition, around
        the grid's origin) over the harmful prompts, resampled with the same draw at every point, as they are the
        same prompts. It is the evaluation set's noise for this one direction or plane, not the spread over draws.
        None without per-prompt outcomes."""
        from analysis.methods.landscape.visage import visage_1d, visage_2d

        coords = [tuple(self.axes[d][i] for d, i in enumerate(idx)) for idx in np.ndindex(*self.asr.shape)]
        rows = [self.attacks.get(c) for c in coords]
        if any(not r for r in rows):
            return None
        outcomes = np.array(rows, dtype=float).reshape(*self.asr.shape, -1)  # grid × prompts
        n = outcomes.shape[-1]
        idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
        if len(self.axes) == 1:
            values = [visage_1d(100 * outcomes[..., i].mean(-1), rule) for i in idx]
        else:
            a0, a1 = (ax.index(0.0) if 0.0 in ax else len(ax) // 2 for ax in self.axes)
            values = [visage_2d(100 * outcomes[..., i].mean(-1), (a0, a1)) for i in idx]
        lo, hi = np.quantile(values, [0.025, 0.975])
        return float(lo), float(hi)


def loss_interval(landscapes: list[Landscape]) -> tuple[np.ndarray, np.ndarray]:
    """Per point of landscapes on the same grid, the 95 % percentile-bootstrap interval (lo, hi) of their mean loss
    utility, resampling the benign items (each item's loss sum averaged over the landscapes; all score the same
    reference tokens): the evaluation set's sampling noise of the mean curve. Nan where a point lacks per-item
    losses."""
    shape = landscapes[0].utility.shape
    lo, hi = np.full(shape, np.nan), np.full(shape, np.nan)
    points = [tuple(landscapes[0].axes[i][j] for i, j in enumerate(idx)) for idx in np.ndindex(*shape)]
    for idx, coords in zip(np.ndindex(*shape), points):
        if not all(coords in land.utility_items for land in landscapes):
            continue
        items = [land.utility_items[coords] for land in landscapes]
        lo[idx], hi[idx] = loss_over_draws_ci([it[0] for it in items], items[0][1])
    return lo, hi


def visage_difference_interval(
    a: Landscape, b: Landscape, rule: str = "reference", n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float] | None:
    """VISAGE (1D) of ``a`` minus ``b`` along the same direction and axis on the same harmful prompts, with its
    95 % paired percentile bootstrap interval (both resampled with the same prompts at every point): (difference,
    lo, hi). None without per-prompt outcomes or when the grids or prompt counts differ. It is the evaluation
    set's noise of this one direction's comparison, not the spread over directions."""
    from analysis.methods.landscape.visage import visage_1d

    if len(a.axes) != 1 or a.axes != b.axes:
        return None
    rows = [(a.attacks.get((x,)), b.attacks.get((x,))) for x in a.axes[0]]
    if any(not ra or not rb or len(ra) != len(rb) for ra, rb in rows):
        return None
    oa = np.array([ra for ra, _ in rows], dtype=float)  # points × prompts
    ob = np.array([rb for _, rb in rows], dtype=float)
    n = oa.shape[1]
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    diffs = [visage_1d(100 * oa[:, i].mean(1), rule) - visage_1d(100 * ob[:, i].mean(1), rule) for i in idx]
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    d = visage_1d(100 * oa.mean(1), rule) - visage_1d(100 * ob.mean(1), rule)
    return float(d), float(lo), float(hi)


def point_edit(model: nn.Module, directions: list, coords: tuple, groups: tuple[str, ...]) -> Perturbation:
    """The edit of grid point ``coords`` (what :func:`evaluate` applies and names)."""
    return Perturbation(
        directions,
        tuple(coords),
        [n for n, _ in perturbed_params(model, groups)],
        draw_device=next(model.parameters()).device.type,
    )


def point_task(ref, directions: list, coords: tuple, groups: tuple[str, ...], spec: EvalSpec, batch_size: int) -> dict:
    """One grid point on a Ray worker: the worker loads the model itself; the result is what :func:`evaluate`
    caches for this point."""
    from analysis.core.distributed import load_on_worker, resolve
    from analysis.core.edits import applied

    lm = load_on_worker(ref)
    edit = point_edit(lm.model, [resolve(d) for d in directions], coords, groups)
    with applied(lm.model, edit):
        return evaluate_model(lm.model, lm.tokenizer, spec, batch_size).to_json()


def _memory_guard(lm: "LoadedModel", directions: list, spec: EvalSpec) -> None:
    """Check the grid's memory plan on a GPU before the first point (one-line message if it cannot fit)."""
    from analysis.core import memory

    prompts = spec.harmful.prompts() + spec.benign.prompts()
    n_models = 1 + len({id(m) for d in directions for m in d.sources()})
    memory.guard(
        lm.model,
        lambda shape: memory.landscape(
            shape,
            len(prompts),
            memory.longest_prompt(lm.tokenizer, prompts, spec.system_prompt) + spec.max_new_tokens,
            len(directions),
            n_models,
        ),
    )


def evaluate_grid(
    lm: "LoadedModel",
    directions: list,
    axes: list[list[float]],
    spec: EvalSpec,
    groups: tuple[str, ...] = LandscapeSettings.groups,
    cache: Cache | None = None,
    progress=None,
    batch_size: int | None = None,
    ray_address: str | None = None,
    other_models: tuple = (),
) -> Landscape:
    """Evaluate every grid point (cached per point); ``directions`` has one entry per axis.
    ``batch_size`` trades memory for speed (None: 128 on the CPU, where one batch per set is fastest on small
    models; on a GPU as many as the free memory holds). The run's memory plan is checked before it starts.
    With ``ray_address``, the points missing from the cache run as Ray tasks (``other_models``: the loaded
    models that model-difference directions read, so workers can load them too) and land in this cache."""
    if len(directions) != len(axes) or len(axes) not in (1, 2):
        raise ValueError("give one direction per axis, for a 1D or 2D grid")
    cache = cache or Cache()
    if batch_size is None and next(lm.model.parameters()).device.type == "cpu":
        batch_size = 128
    _memory_guard(lm, directions, spec)
    shape = tuple(len(a) for a in axes)
    points = [tuple(axes[i][j] for i, j in enumerate(idx)) for idx in np.ndindex(*shape)]
    edits = {c: point_edit(lm.model, directions, c, groups) for c in points}
    if ray_address:
        from analysis.core.distributed import run_tasks

        missing = [c for c in points if cache.get(make_key(**evaluation_parts(lm, spec, edits[c])), "json") is None]
        done = []

        def store(c, result) -> None:
            parts = evaluation_parts(lm, spec, edits[c])
            cache.put(make_key(**parts), result, "json", parts)
            done.append(c)
            if progress:
                progress(len(done) / max(len(missing), 1), f"point {len(done)} of {len(missing)} on Ray ({where(c)})")

        run_tasks(
            ray_address,
            point_task,
            lm,
            directions,
            missing,
            other_models,
            lambda ref, dirs, c: (ref, dirs, c, groups, spec, batch_size),
            store,
        )
    grids = {k: np.full(shape, np.nan) for k in ("asr", "asr_positive", "utility", "degenerate")}
    gens, attacks, items, kind = {}, {}, {}, "none"
    for k, (idx, coords) in enumerate(zip(np.ndindex(*shape), points)):
        r: EvalResult = evaluate(lm, spec, edits[coords], cache, batch_size=batch_size)
        for key, v in (
            ("asr", r.asr),
            ("asr_positive", r.asr_positive),
            ("utility", r.utility),
            ("degenerate", r.degenerate_rate),
        ):
            grids[key][idx] = np.nan if v is None else v
        kind = r.utility_kind
        gens[coords] = {"harmful": [g.text for g in r.harmful], "benign": [g.text for g in r.benign]}
        attacks[coords] = r.per_prompt("asr") or []
        if r.utility_kind == "loss" and r.outcomes.get("utility") and r.outcomes.get("utility_tokens"):
            items[coords] = (list(r.outcomes["utility"]), list(r.outcomes["utility_tokens"]))
        if progress:
            progress((k + 1) / len(points), f"point {k + 1} of {len(points)} ({where(coords)})")
    return Landscape(
        list(axes),
        grids["asr"],
        grids["asr_positive"],
        grids["utility"],
        grids["degenerate"],
        gens,
        kind,
        attacks,
        items,
    )
