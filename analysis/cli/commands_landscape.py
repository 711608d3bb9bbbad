"""``landscape``: 1D and 2D safety landscapes (Peng et al. 2024) with VISAGE, over several directions."""

from __future__ import annotations

import numpy as np

from analysis.cli.common import pair_and_spec, progress_bar
from analysis.core.stats import Rate


def cmd_landscape(args) -> int:
    from dataclasses import replace

    from analysis.app_support.formatting import format_utility
    from analysis.experiments import landscape
    from analysis.methods.landscape.grid import LandscapeSettings
    from analysis.methods.landscape.visage import visage_1d

    settings = LandscapeSettings(
        args.lo,
        args.hi,
        args.steps,
        args.seed,
        args.norm,
        tuple(args.groups.split(",")),
        args.visage,
        args.draw,
        args.directions if args.direction == "random" else 1,
    )
    settings.validate()  # before the model loads: bad settings answer at once
    if args.dim == "2D" and (args.compare_model is not None or args.compare_groups is not None):
        raise ValueError("--compare-model / --compare-groups compare 1D landscapes: leave --dim at 1D")
    other_scope = None
    if args.compare_groups is not None:
        other_scope = replace(settings, groups=tuple(args.compare_groups.split(",")))
        other_scope.validate()
    if (args.compare_model is not None or other_scope is not None) and args.direction != "random":
        raise ValueError(
            "--compare-model / --compare-groups compare along random directions: leave --direction at random"
        )
    pair, spec = pair_and_spec(args)
    if args.direction != "random" and pair.base is None:
        raise ValueError("--direction base needs a base model in the pair")
    if args.compare_model == "base" and pair.base is None:
        raise ValueError("--compare-model base needs a base model in the pair")
    if args.dim == "2D":
        return _landscape_2d(args, pair, settings, spec)
    run = landscape(
        pair,
        settings,
        spec,
        "1D",
        "random" if args.direction == "random" else "toward base",
        progress=progress_bar,
        ray_address=args.ray,
    )
    multi, ax = run.multi, run.axis
    lands = multi.landscapes if multi is not None else [run.landscape]
    what = (
        f"{multi.n} random direction(s), {settings.draw} draw, seeds {multi.seeds}"
        if multi is not None
        else str(run.directions[0].spec())
    )
    print(f"1D landscape along {what}; {spec.describe()}")
    for k, land in enumerate(lands):
        if multi is not None:
            print(f"direction {k + 1} (seed {multi.seeds[k]}):")
        nh, nb = len(spec.harmful), len(spec.benign)
        print(f"{'alpha':>7s} {'ASR':>22s} {'ASR+':>22s} {'utility':>22s} {'degenerate':>22s}")
        loss_lo, loss_hi = land.utility_interval()  # nats: bootstrap over the benign items (nan when exact)
        for i, a in enumerate(ax):
            pos = None if np.isnan(land.asr_positive[i]) else land.asr_positive[i]
            util = None if np.isnan(land.utility[i]) else land.utility[i]
            exact = land.utility_kind == "exact" and util is not None
            cells = [
                Rate.of_share(land.asr[i], nh).format(),
                "-" if pos is None else Rate.of_share(pos, nh).format(),
                Rate.of_share(util, nb).format()
                if exact and util is not None
                else format_utility(util, land.utility_kind)
                + ("" if np.isnan(loss_lo[i]) else f" [{loss_lo[i]:.3f}, {loss_hi[i]:.3f}]"),
                Rate.of_share(land.degenerate[i], nh + nb).format(),
            ]
            print(f"{a:7.3f} " + " ".join(f"{c:>22s}" for c in cells))
        print(
            f"  (95 % Wilson intervals over the {nh} harmful / {nb} benign prompts; degenerate: over all replies"
            + (
                "; a loss utility (L, nats): 95 % bootstrap over the benign items)"
                if land.utility_kind == "loss"
                else ")"
            )
        )
    ci = lands[0].visage_interval(settings.visage) if multi is None else None
    value = (
        f"{multi.describe()}; per direction {', '.join(f'{v:.1f}' for v in multi.visages)}"
        if multi is not None
        else f"{visage_1d(100 * lands[0].asr, settings.visage):.1f}"
        + ("" if ci is None else f" [{ci[0]:.1f}, {ci[1]:.1f}] (95 % bootstrap over the harmful prompts)")
    )
    print(
        f"VISAGE (1D, keyword ASR) = {value}  "
        + (
            "[llm-landscape safety_avg: mean of 100 - ASR% between the walls found from each edge to the middle]"
            if settings.visage == "reference"
            else "[mean of 100 - ASR% from the first to the last non-saturated point]"
        )
    )
    if args.compare_model is not None and multi is not None:
        from analysis.core.models import ModelPair, load_model

        label = args.compare_model
        other = pair.base if label == "base" else load_model(label, args.dtype, args.device, args.trust_remote_code)
        assert other is not None  # checked before the models loaded
        head = f"VISAGE of {label} along the same {{n}} direction(s) (seeds {{seeds}})"
        _paired_landscape(args, multi, ModelPair(other, None), settings, spec, head, f"aligned − {label}")
    if other_scope is not None and multi is not None:
        scope = ", ".join(other_scope.groups)
        head = f"VISAGE with the scope {scope} along the same {{n}} seed(s) {{seeds}}"
        _paired_landscape(args, multi, pair, other_scope, spec, head, f"this scope − {scope}")
    for what, conv in settings.conventions().items():
        print(f"convention ({what}): {conv}")
    return 0


def _utility_grid(land, ax: list[float], origin: tuple[int, int], nb: int) -> None:
    """A 2D plane's utility on every grid point (an exact utility in %, a loss in nats) with its intervals: the
    widest on the grid and the one at the model; nothing when no benign set was scored."""
    if land.utility_kind not in ("exact", "loss"):
        return
    exact = land.utility_kind == "exact"
    print(
        "utility % (share of the " + f"{nb} benign prompts answered correctly)"
        if exact
        else "utility loss, nats (mean response loss on the benign items; lower is better)"
    )
    print(f"{'α / β':>7s} " + " ".join(f"{b:7.2f}" for b in ax))
    for i, a in enumerate(ax):
        print(
            f"{a:7.2f} "
            + " ".join(f"{(100 if exact else 1) * land.utility[i, j]:7.{1 if exact else 3}f}" for j in range(len(ax)))
        )
    if exact:
        rates = [Rate.of_share(float(v), nb) for v in land.utility.ravel()]
        widest = max(rates, key=lambda r: r.hi - r.lo)
        print(
            f"  each point is a rate over the {nb} benign prompts: its 95 % Wilson interval is at most "
            f"{100 * (widest.hi - widest.lo):.1f} points wide on this grid ({widest.format()}); at the model "
            f"{Rate.of_share(float(land.utility[origin]), nb).format()}"
        )
        return
    lo, hi = land.utility_interval()
    if np.isnan(lo).all():
        return
    k = int(np.nanargmax(hi - lo))
    print(
        f"  95 % bootstrap intervals over the benign items: at most {float((hi - lo).flat[k]):.3f} nats wide on this grid; "
        f"at the model {land.utility[origin]:.3f} [{lo[origin]:.3f}, {hi[origin]:.3f}]"
    )


def _landscape_2d(args, pair, settings, spec) -> int:
    """A 2D landscape: keyword ASR on every grid point of each plane (random: ``settings.directions`` planes; toward
    the base: one), VISAGE (2D) per plane with its bootstrap interval over the prompts, and mean ± sd over planes."""
    from analysis.experiments import landscape
    from analysis.methods.landscape.visage import visage_2d

    toward = "random" if args.direction == "random" else "toward base"
    run = landscape(pair, settings, spec, "2D", toward, progress=progress_bar, ray_address=args.ray)
    ax, planes = run.axis, run.planes
    lands = planes.landscapes if planes is not None else [run.landscape]
    points = planes.points if planes is not None else [run.points]
    origin = (ax.index(0.0), ax.index(0.0)) if 0.0 in ax else (len(ax) // 2, len(ax) // 2)
    nh = len(spec.harmful)
    what = (
        f"{len(lands)} random plane(s), {settings.draw} draw, seeds {planes.seeds}"
        if planes is not None
        else "the plane of the base direction (α = 1 is the base) and a random one"
    )
    print(
        f"2D landscape on {what}, [{settings.lo:g}, {settings.hi:g}]², {len(ax)} × {len(ax)} points; {spec.describe()}"
    )
    for k, land in enumerate(lands):
        print(f"plane {k + 1}" + (f" (seeds {planes.seeds[k]})" if planes is not None else "") + ":")
        print("keyword ASR % (rows α, columns β; one point is one evaluation of the " + f"{nh} harmful prompts)")
        print(f"{'α / β':>7s} " + " ".join(f"{b:7.2f}" for b in ax))
        for i, a in enumerate(ax):
            print(f"{a:7.2f} " + " ".join(f"{100 * land.asr[i, j]:7.1f}" for j in range(len(ax))))
        widest = max((Rate.of_share(float(v), nh) for v in land.asr.ravel()), key=lambda r: r.hi - r.lo)
        print(
            f"  each point is a rate over the {nh} harmful prompts: its 95 % Wilson interval is at most "
            f"{100 * (widest.hi - widest.lo):.1f} points wide on this grid ({widest.format()})"
        )
        lo_hi = Rate.of_share(land.asr[origin], nh).format()
        print(f"  at the model (origin): ASR {lo_hi} (95 % Wilson interval)")
        _utility_grid(land, ax, origin, len(spec.benign))
        for name, (a, b) in points[k].items():
            if name != "aligned":
                print(f"  {name} sits at α = {a:.3g}, β = {b:.3g}")
        ci = land.visage_interval()
        v = visage_2d(100 * land.asr, origin)
        print(
            f"  VISAGE (2D) = {v:.1f}"
            + ("" if ci is None else f" [{ci[0]:.1f}, {ci[1]:.1f}] (95 % bootstrap over the harmful prompts)")
        )
    if planes is not None:
        print(f"VISAGE (2D) over the random planes = {planes.describe()}")
    print(
        "VISAGE (2D, this project's definition): the mean of 100 - ASR% over the grid points connected to the "
        "origin through non-saturated points (ASR < 100 %)"
    )
    for what_, conv in settings.conventions("2D").items():
        print(f"convention ({what_}): {conv}")
    return 0


def _paired_landscape(args, multi, pair, settings, spec, head: str, difference: str) -> None:
    """The landscape of ``pair``'s aligned model under ``settings`` along the same seeds as ``multi``, and VISAGE
    paired direction by direction (``multi``'s minus it); ``head`` names it ({n} and {seeds} filled in)."""
    from analysis.experiments import landscape

    mo = landscape(pair, settings, spec, "1D", "random", progress=progress_bar, ray_address=args.ray).multi
    assert mo is not None  # random directions: always a MultiLandscape
    print(
        f"{head.format(n=mo.n, seeds=mo.seeds)} = {mo.describe()}; per direction "
        + ", ".join(f"{v:.1f}" for v in mo.visages)
    )
    print(f"paired, {difference}, direction by direction: {multi.paired(mo).describe()}")
