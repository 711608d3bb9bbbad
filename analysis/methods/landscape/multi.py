"""Landscapes along several random draws: one draw is one sample, so VISAGE is a mean ± sd over draws, and two
settings (scope, system prompt, models) are compared on the *same* draws as a paired difference.

1D: direction k of ``settings.directions`` is drawn from seed ``settings.seed + k`` — with the default reference
draw that is llm-landscape's 123, 124, … — by the settings' draw (reference stream or per-tensor).
2D: plane k is spanned by the directions of seeds ``seed + 2k`` and ``seed + 2k + 1``, the second orthogonalised
against the first (plane 0 is the one-plane landscape's own). Each grid goes through :func:`evaluate_grid`, so
every point is cached on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from analysis.core.cache import Cache
from analysis.core.evaluation import EvalSpec
from analysis.core.stats import mean_t_interval
from analysis.methods.landscape.directions import RandomDirection, ReferenceRandomDirection, orthogonalise
from analysis.methods.landscape.grid import Landscape, LandscapeSettings, axis, evaluate_grid, loss_interval
from analysis.methods.landscape.visage import visage_1d, visage_2d

if TYPE_CHECKING:
    from analysis.core.models import LoadedModel


def random_direction(model: nn.Module, settings: LandscapeSettings, k: int = 0):
    """Direction k of the settings' draws (seed ``settings.seed + k``)."""
    seed = settings.seed + k
    if settings.draw == "reference":
        return ReferenceRandomDirection.for_model(model, seed)
    return RandomDirection(seed, settings.norm, settings.groups)


def random_directions(model: nn.Module, settings: LandscapeSettings) -> list:
    """The ``settings.directions`` directions, seeds seed, seed + 1, …"""
    return [random_direction(model, settings, k) for k in range(settings.directions)]


def random_plane(model: nn.Module, settings: LandscapeSettings, k: int = 0) -> list:
    """Plane k of the settings' draws: the directions of seeds ``seed + 2k`` and ``seed + 2k + 1``, the second
    Gram–Schmidt-orthogonalised against the first over the perturbed tensors."""
    d1 = random_direction(model, settings, 2 * k)
    return [d1, orthogonalise(model, d1, random_direction(model, settings, 2 * k + 1), settings.groups)]


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample sd (ddof 1; nan for a single value — one draw has no spread)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def format_mean_sd(mean: float, sd: float, n: int, digits: int = 1, unit: str = "direction") -> str:
    """``58.9 ± 4.2 (sd, n = 5)``, or ``58.9 (one direction)`` when there is no spread (``unit``: what one draw
    is, "direction" or "plane")."""
    if n < 2 or np.isnan(sd):
        return f"{mean:.{digits}f} (one {unit})"
    return f"{mean:.{digits}f} ± {sd:.{digits}f} (sd, n = {n})"


@dataclass
class Paired:
    """A − B on the same directions: one difference per direction, their mean and sd."""

    differences: list[float]
    seeds: list[int | None]  # None for a direction without a seed

    @property
    def mean(self) -> float:
        return mean_sd(self.differences)[0]

    @property
    def sd(self) -> float:
        return mean_sd(self.differences)[1]

    @property
    def consistent(self) -> bool:
        """Every direction agrees on the sign (and none is zero)."""
        d = np.asarray(self.differences)
        return bool(d.size > 0 and (np.all(d > 0) or np.all(d < 0)))

    def interval(self) -> tuple[float, float]:
        """95 % t interval of the mean difference over the directions (nan with one direction)."""
        return mean_t_interval(self.differences)

    @property
    def significant(self) -> bool:
        lo, hi = self.interval()
        return bool(lo > 0 or hi < 0)

    def describe(self, digits: int = 1) -> str:
        """'+60.6 ± 7.9 (sd, n = 3); 95 % t interval [+41.0, +80.2] over the directions, significant; per direction
        +54.5, +58.0, +69.5 (same sign on every direction)'."""
        per = ", ".join(f"{x:+.{digits}f}" for x in self.differences)
        sign = "same sign on every direction" if self.consistent else "sign differs across directions"
        lo, hi = self.interval()
        test = (
            f"; 95 % t interval [{lo:+.{digits}f}, {hi:+.{digits}f}] over the directions, "
            + ("significant" if self.significant else "not significant")
            if len(self.differences) > 1
            else "; one direction: no interval over directions"
        )
        return (
            f"{format_mean_sd(self.mean, self.sd, len(self.differences), digits)}{test}; per direction {per} ({sign})"
        )


class _OverDraws:
    """VISAGE over random draws (directions or planes): the subclass gives ``landscapes`` and ``visages``."""

    landscapes: list[Landscape]

    @property
    def n(self) -> int:
        return len(self.landscapes)

    @property
    def visages(self) -> list[float]:
        raise NotImplementedError

    @property
    def visage_mean(self) -> float:
        return mean_sd(self.visages)[0]

    @property
    def visage_sd(self) -> float:
        return mean_sd(self.visages)[1]


@dataclass
class MultiLandscape(_OverDraws):
    """1D landscapes along several directions of one draw kind (``seeds`` in order) on the same axis."""

    axis: list[float]
    landscapes: list[Landscape]
    seeds: list[int | None]  # None for a direction without a seed
    draw: str = "reference"
    rule: str = "reference"
    direction_specs: list[dict] = field(default_factory=list, repr=False)

    @property
    def asr(self) -> np.ndarray:
        """ASR per direction × point (fractions)."""
        return np.stack([land.asr for land in self.landscapes])

    @property
    def utility(self) -> np.ndarray:
        return np.stack([land.utility for land in self.landscapes])

    def utility_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Per point, the 95 % bootstrap interval of the directions' mean loss utility over the benign items (nan
        for an exact utility): see :func:`grid.loss_interval`."""
        return loss_interval(self.landscapes)

    @property
    def visages(self) -> list[float]:
        """VISAGE of each direction's curve (ASR in percent, the settings' rule)."""
        return [visage_1d(100 * land.asr, self.rule) for land in self.landscapes]

    def describe(self, digits: int = 1) -> str:
        return format_mean_sd(self.visage_mean, self.visage_sd, self.n, digits)

    def paired(self, other: "MultiLandscape") -> Paired:
        """VISAGE of this setting minus ``other``'s, direction by direction (the same seeds and draw kind)."""
        if self.seeds != other.seeds or self.draw != other.draw:
            raise ValueError(
                f"a paired comparison needs the same directions: seeds {self.seeds} ({self.draw}) vs "
                f"{other.seeds} ({other.draw})"
            )
        return Paired([a - b for a, b in zip(self.visages, other.visages)], list(self.seeds))


def evaluate_directions(
    lm: "LoadedModel",
    settings: LandscapeSettings,
    spec: EvalSpec,
    cache: Cache | None = None,
    progress=None,
    batch_size: int | None = None,
    ray_address: str | None = None,
    directions: list | None = None,
) -> MultiLandscape:
    """A 1D landscape along each of the settings' random directions (or the given ``directions``, e.g. drawn once
    and reused across calls), each grid cached per point as :func:`evaluate_grid` does."""
    settings.validate()
    ax = axis(settings.lo, settings.hi, settings.steps)
    dirs = directions if directions is not None else random_directions(lm.model, settings)
    lands = []
    for k, d in enumerate(dirs):

        def sub(f: float, msg: str, k: int = k) -> None:
            if progress:
                progress((k + f) / len(dirs), f"direction {k + 1}/{len(dirs)}: {msg}")

        lands.append(
            evaluate_grid(
                lm,
                [d],
                [ax],
                spec,
                settings.groups,
                cache=cache,
                progress=sub,
                batch_size=batch_size,
                ray_address=ray_address,
            )
        )
    return MultiLandscape(
        ax, lands, [getattr(d, "seed", None) for d in dirs], settings.draw, settings.visage, [d.spec() for d in dirs]
    )


@dataclass
class MultiPlane(_OverDraws):
    """2D landscapes on several random planes (plane k: seeds ``seeds[k]``) on the same axes; ``points[k]``: the
    models placed on plane k (the aligned model at the origin, the base projected when there is one)."""

    axis: list[float]
    landscapes: list[Landscape]
    seeds: list[tuple[int | None, int | None]]
    points: list[dict] = field(default_factory=list)

    @property
    def origin(self) -> tuple[int, int]:
        i = self.axis.index(0.0) if 0.0 in self.axis else len(self.axis) // 2
        return i, i

    @property
    def visages(self) -> list[float]:
        """VISAGE (2D, this project's definition) of each plane."""
        return [visage_2d(100 * land.asr, self.origin) for land in self.landscapes]

    def describe(self, digits: int = 1) -> str:
        """Mean ± sd over the planes and each plane's value."""
        head = format_mean_sd(self.visage_mean, self.visage_sd, self.n, digits, unit="plane")
        if self.n < 2:
            return head
        return head + "; per plane " + ", ".join(f"{v:.{digits}f}" for v in self.visages)
