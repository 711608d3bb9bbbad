"""Grid evaluation: at each point θ + α d₁ (+ β d₂), ASR on harmful prompts, utility on benign prompts and
the degenerate rate, raw generations kept. The point is applied in place as a reversible edit (the
touched tensors are backed up once per point and restored exactly); directions are regenerated per tensor,
so the peak memory is the model, one backup of the perturbed tensors and one tensor's direction.
Each point is cached on its own: a partial grid resumes, and points can be computed by separate workers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..cache import Cache
from ..edits import Edit, applied, locked
from ..evaluate import EvalResult, evaluate, evaluation_key
from ..judge import Judge
from ..prompts import PromptSet
from .directions import perturbed_params


@dataclass
class Perturbation(Edit):
    """W ← W + Σ_k c_k d_k(W) for every perturbed tensor (W is the unperturbed tensor when applied)."""

    directions: list
    coords: tuple[float, ...]
    names: list[str]

    def targets(self) -> list[str]:
        return self.names

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        if W.device.type != "cpu":   # on a GPU: one fp32 accumulator, in-place adds, one cast back
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


def _device_type(model) -> str:
    return next(model.parameters()).device.type


def axis(lo: float = -0.5, hi: float = 0.5, steps: int = 21) -> list[float]:
    """Evenly spaced coordinates (the reference default: [-0.5, 0.5] in 21 steps), rounded for stable keys."""
    if steps < 1:
        raise ValueError(f"a grid axis needs at least 1 step, got {steps}")
    if not hi >= lo:
        raise ValueError(f"axis range must have lo <= hi, got [{lo}, {hi}]")
    return [round(float(v), 10) for v in np.linspace(lo, hi, steps)]


@dataclass
class Landscape:
    axes: list[list[float]]                  # one axis (1D) or two (2D)
    asr: np.ndarray                          # shape len(ax0) (× len(ax1))
    asr_positive: np.ndarray
    utility: np.ndarray
    degenerate: np.ndarray
    generations: dict[tuple, dict] = field(repr=False, default_factory=dict)  # coords -> {"harmful": [...], ...}


def _point(lm, directions, coords, names, harmful, benign, system_prompt, max_new_tokens, judge,
           batch_size) -> dict:
    """One grid point, under the model's lock and the locks of the models the directions read (this
    model first, always, so two sessions never wait on each other in opposite orders)."""
    with locked(lm.model, *(m for d in directions for m in d.sources())), \
            applied(lm.model, Perturbation(directions, coords, names)):
        r: EvalResult = evaluate(lm.model, lm.tokenizer, harmful, benign, system_prompt, max_new_tokens, judge,
                                 batch_size)
    return {"asr": r.asr, "asr_positive": r.asr_positive, "utility": r.utility, "degenerate": r.degenerate_rate,
            "harmful": [g.text for g in r.harmful], "benign": [g.text for g in r.benign],
            "tokens": [g.n_tokens for g in r.harmful + r.benign]}


def evaluate_grid(lm, directions: list, axes: list[list[float]], harmful: PromptSet, benign: PromptSet,
                  system_prompt: str | None = None, max_new_tokens: int = 24, groups: tuple[str, ...] = ("linear",),
                  judge: Judge | None = None, cache: Cache | None = None, progress=None,
                  batch_size: int | None = None, ray_address: str | None = None, other_models=()) -> Landscape:
    """Evaluate every grid point (cached per point); ``directions`` has one entry per axis.
    ``batch_size`` trades memory for speed (None: 128 on the CPU; on a GPU as many as the free memory holds).
    With ``ray_address``, the points missing from the cache run as Ray tasks (``other_models``: the loaded
    models that model-difference directions read, so workers can load them too) and land in this cache."""
    if len(directions) != len(axes) or len(axes) not in (1, 2):
        raise ValueError("give one direction per axis, for a 1D or 2D grid")
    judge = judge or Judge()
    cache = cache or Cache()
    names = [n for n, _ in perturbed_params(lm.model, groups)]
    # --- issue #15: memory check before the run; CPU batch as before ---
    if batch_size is None and _device_type(lm.model) == "cpu":
        batch_size = 128
    from .. import memory

    n_models = 1 + len({id(m) for d in directions for m in d.sources()})
    memory.guard(lm.model, lambda shape: memory.landscape(
        shape, len(harmful) + len(benign), memory.longest_prompt(lm.tokenizer, harmful.prompts() + benign.prompts(),
                                                                  system_prompt) + max_new_tokens,
        len(directions), n_models))
    # --- end issue #15 ---
    shape = tuple(len(a) for a in axes)
    grids = {k: np.full(shape, np.nan) for k in ("asr", "asr_positive", "utility", "degenerate")}
    gens = {}
    points = list(np.ndindex(*shape))
    eval_key = evaluation_key(harmful, benign, system_prompt, max_new_tokens, judge)

    draw = {} if _device_type(lm.model) == "cpu" else {"draw_device": _device_type(lm.model)}  # see directions.py

    def key_parts(coords) -> dict:
        return {"kind": "landscape-point", "model": lm.fingerprint, "directions": [d.spec() for d in directions],
                "coords": list(coords), "groups": list(groups), **draw, **eval_key}

    if ray_address:
        from ..cache import make_key
        from ..distributed import landscape_points

        coords_of = [tuple(axes[i][j] for i, j in enumerate(idx)) for idx in points]
        missing = [c for c in coords_of if cache.get(make_key(**key_parts(c)), "json") is None]
        done = []

        def store(c, result) -> None:
            cache.put(make_key(**key_parts(c)), result, "json", key_parts(c))
            done.append(c)
            if progress:
                progress(len(done) / max(len(missing), 1), f"point {len(done)}/{len(missing)} on Ray at {c}")

        landscape_points(ray_address, lm, directions, missing, groups, harmful, benign, system_prompt,
                         max_new_tokens, judge, batch_size, other_models, store)
    for k, idx in enumerate(points):
        coords = tuple(axes[i][j] for i, j in enumerate(idx))
        parts = key_parts(coords)
        d = cache.get_or_compute(parts, lambda: _point(lm, directions, coords, names, harmful, benign,
                                                       system_prompt, max_new_tokens, judge, batch_size), "json")
        for key in grids:
            grids[key][idx] = np.nan if d[key] is None else d[key]
        gens[coords] = {"harmful": d["harmful"], "benign": d["benign"]}
        if progress:
            progress((k + 1) / len(points), f"point {k + 1}/{len(points)} at {coords}")
    return Landscape(axes, grids["asr"], grids["asr_positive"], grids["utility"], grids["degenerate"], gens)
