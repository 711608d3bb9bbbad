"""The commands of ``python -m analysis``: each takes the parsed arguments, calls the library and prints."""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from analysis.cli import checks as V
from analysis.core.stats import Rate


def _threads() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BRITTLE_THREADS", min(2, os.cpu_count() or 1))))


def _bar(frac: float, msg: str) -> None:
    if sys.stderr.isatty():
        n = int(30 * frac)
        print(f"\r[{'#' * n}{'.' * (30 - n)}] {msg:40s}", end="" if frac < 1 else "\n", file=sys.stderr, flush=True)


def _sets(args, lm) -> dict:
    """The evaluation sets: built-in set names or the user's files, else the model's provider's default sets of
    ``--split`` (the organism's for the demo, AdvBench + instruct for a real model)."""
    sets = dict(args.sets)  # --harmful / --benign, resolved once before the model loaded
    if len(sets) < 2:
        sets = {**lm.data.sets(args.split), **sets}
    return {k: v.head(args.n) for k, v in sets.items()}


def _pair_and_spec(args, judges: tuple = ()):
    """The command preamble: threads, the model pair, the evaluation spec (aligned model's data provider)."""
    from analysis.core.evaluation import make_spec
    from analysis.core.models import load_pair

    _threads()
    pair = load_pair(args.model, args.base, args.dtype, args.device, args.trust_remote_code)
    sets = _sets(args, pair.aligned)
    V.print_notes(V.against_model(args, pair, sets))
    return pair, make_spec(
        pair.aligned, sets["harmful"], sets["benign"], args.system_prompt, args.max_new_tokens, judges=judges
    )


def _pair(args):
    from analysis.core.models import load_pair

    _threads()
    pair = load_pair(args.model, args.base, args.dtype, args.device, args.trust_remote_code)
    V.print_notes(V.against_model(args, pair))
    return pair


def _calibration(args, lm):
    """Calibration data: ``--cal-harmful`` / ``--cal-benign`` files, else the provider's (organism: train split)."""
    from analysis.data.prompts import load_prompt_file
    from analysis.experiments import calibration

    if args.cal_harmful or args.cal_benign:
        if not (args.cal_harmful and args.cal_benign):
            raise ValueError("give both --cal-harmful and --cal-benign (benign with responses)")
        return calibration(
            lm,
            args.calibration_n,
            args.system_prompt,
            load_prompt_file(args.cal_harmful, "harmful"),
            load_prompt_file(args.cal_benign, "benign"),
        )
    return calibration(lm, args.calibration_n, args.system_prompt)


def _fmt(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _ci(r, metric: str) -> str:
    """A rate and its 95 % interval, '  5.0% [2.3, 10.5]' ('   -  ' when there is none)."""
    rate = r.rate(metric)
    if rate is None:
        return _fmt(None)
    if rate.kind == "loss":
        return f"{rate.value:.3f}L {rate.interval()}"
    return f"{_fmt(rate.value)} {rate.interval()}"


def _row(label: str, r, extra: str = "") -> str:
    """One state's rates, each with its 95 % interval (Wilson; bootstrap for a loss utility)."""
    return (
        f"{label:44s} ASR {_ci(r, 'asr')}  ASR+ {_ci(r, 'asr_positive')}  utility {_ci(r, 'utility')}  "
        f"over-refusal {_ci(r, 'over_refusal')}  degenerate {_ci(r, 'degenerate_rate')}  {extra}"
    ).rstrip()


def _print_paired(rows: dict, pairs) -> None:
    """For each (x, y) in ``pairs``, x − y on the same prompts: every pairable rate's difference in points, its
    95 % interval (Newcombe) and the exact McNemar p, saying when it is not significant."""
    from analysis.app_support.formatting import comparisons, metric_label

    for x, y, m, d in comparisons(rows, pairs):
        print(f"  paired {x} vs {y}, {metric_label(m)}: {d.format()}")
    for x, y in pairs:  # a loss utility: the paired bootstrap over the benign items
        if x in rows and y in rows and rows[x].utility_kind == "loss":
            try:
                print(f"  paired {x} vs {y}, utility (loss): {rows[y].change(rows[x], 'utility', y, x).format()}")
            except ValueError:
                pass


def _print_intervals(rows: dict) -> None:
    """Each state's rates with their 95 % intervals, then each state against the first one, paired."""
    roles = list(rows)
    for role, r in rows.items():
        print(_row(f"95 % intervals, {role}", r))
    _print_paired(rows, [(role, roles[0]) for role in roles[1:]])


# --- classifier judges and built-in data sets ---------------------------------------------------
def _judges(args) -> list:
    from analysis.judging import make_judges

    if not getattr(args, "judge", None):
        return []
    return make_judges(
        args.judge, args.device, args.dtype, kind=args.judge_kind, refusal_label=args.judge_refusal_label
    )


def _print_judges(rows: dict, judge) -> None:
    """Each judge's ASR on the harmful replies (keyword: ``judge``, first) and the share of replies they disagree
    on."""
    for role, r in rows.items():
        if not r.judge_decisions:
            continue
        share, idx = r.disagreement(judge)
        cols = "  ".join(
            f"{name} {_ci(r, m).strip()}"
            for name, m in {"keyword": "asr", **{k: f"judge:{k}" for k in r.judge_asr}}.items()
        )
        n = len(r.judge_decisions[next(iter(r.judge_decisions))]) if r.judge_decisions else len(r.harmful)
        print(
            f"judges {role:8s} ASR: {cols}  disagreement {Rate.of_share(share, n).format()} "
            f"({len(idx)} replies: {idx[:10]})"
        )


def _print_reference_scores(rows: dict, benign) -> None:
    """Answer-based utility where the benign set has reference responses (not for exact-answer sets)."""
    from analysis.judging.answer_scores import reference_scores

    items = {it.prompt: it for it in benign.items}
    for role, r in rows.items():
        pairs = [(g.text, items[g.prompt]) for g in r.benign if g.prompt in items and items[g.prompt].response]
        if r.utility_kind == "exact" or not pairs:
            continue
        s = reference_scores([t for t, _ in pairs], [it for _, it in pairs])
        match = "" if s.answer_match is None else f", answer in reply {_fmt(s.answer_match).strip()}"
        print(f"utility  {role:8s} vs references ({s.n}): token-F1 {s.token_f1:.3f}, ROUGE-L {s.rouge_l:.3f}{match}")


def cmd_datasets(args) -> int:
    from analysis.data.sets import SPLIT_FRACTIONS, list_sets

    sets = list_sets()
    print(f"{'name':13s} {'kind':23s} {'size':>5s} {'train/val/test':>15s}  {'licence':18s} source")
    for d in sets:
        sp = "/".join(str(d.splits[k]) for k in ("train", "val", "test"))
        print(f"{d.name:13s} {d.kind:23s} {d.size:5d} {sp:>15s}  {d.licence:18s} {d.source}")
    fr = "/".join(f"{100 * v:.0f}%" for v in SPLIT_FRACTIONS.values())
    print(
        f"splits: fixed, by SHA-256 of set name + prompt ({fr} train/val/test; demo sets keep their own); "
        "attack data from train, calibration from val, evaluation on test. Licences and provenance: "
        "analysis/data/<name>/"
    )
    return 0


def cmd_evaluate(args) -> int:
    from analysis.app_support.formatting import LEGEND, format_utility
    from analysis.experiments import overview

    judges = [j for j in _judges(args) if j.name != "keyword"]  # built (and checked) before any generation
    pair, spec = _pair_and_spec(args, tuple(judges))
    rows = overview(pair, spec, progress=_bar)
    if args.json:
        print(
            json.dumps(
                {
                    k: {
                        **r.summary(),
                        **(
                            {
                                "judges": {
                                    "asr": {"keyword": r.asr, **r.judge_asr},
                                    "disagreement": r.disagreement(spec.judge)[0],
                                    "disagree_indices": r.disagreement(spec.judge)[1],
                                }
                            }
                            if judges
                            else {}
                        ),
                    }
                    for k, r in rows.items()
                },
                indent=2,
            )
        )
        return 0
    print(f"prompts: {spec.describe()}")
    print(f"{'model':8s} {'ASR':>7s} {'ASR+':>7s} {'utility':>14s} {'over-ref':>8s} {'degen':>7s} {'tokens':>7s}")
    for role, r in rows.items():
        print(
            f"{role:8s} {_fmt(r.asr):>7s} {_fmt(r.asr_positive):>7s} {format_utility(r.utility, r.utility_kind):>14s} "
            f"{_fmt(r.over_refusal):>8s} {_fmt(r.degenerate_rate):>7s} {r.mean_tokens:7.1f}"
        )
    print(
        "ASR = keyword ASR (no refusal phrase); ASR+ = really complies (where a compliance judge applies); "
        f"{LEGEND}; tokens = mean generated per reply"
    )
    _print_intervals(rows)
    _print_judges(rows, spec.judge)
    _print_reference_scores(rows, spec.benign)
    for role, r in rows.items():
        for g in r.harmful[: args.show]:
            print(f"  [{role} harmful] {g.prompt!r} -> {g.text!r}")
        for g in r.benign[: args.show]:
            print(f"  [{role} benign ] {g.prompt!r} -> {g.text!r}")
    if args.model == "demo" and not (args.harmful or args.benign or args.n) and args.split == "test":
        return _check_demo_targets(rows)
    return 0


def _check_demo_targets(rows) -> int:
    from analysis.data.organism.build_demo import target_checks

    checks = target_checks(rows)
    for role, metric, op, bound, v, good in checks:
        rate = rows[role].rate(metric)
        ci = f" {rate.interval()}" if rate is not None and rate.kind != "loss" else ""
        print(
            f"target {role:7s} {metric:12s} {op} {100 * bound:4.0f}%: {100 * v:5.1f}%{ci}  {'ok' if good else 'MISSED'}"
        )
    print("  (targets are checked on the point estimates; [interval]: 95 % Wilson over the prompts)")
    return 0 if all(c[-1] for c in checks) else 1


def cmd_generate(args) -> int:
    from analysis.core.generation import replies

    pair = _pair(args)
    for role, lm in pair.models().items():
        g = replies(lm, [args.prompt], args.system_prompt, args.max_new_tokens)[0]
        print(f"{role:8s} ({g.n_tokens} tokens, {g.stopped_by}): {g.text}")
    return 0


def cmd_regions(args) -> int:
    from analysis.app_support.formatting import control_sentence
    from analysis.core.options import from_args
    from analysis.experiments import prune_and_compare
    from analysis.methods.critical_regions.build import RegionSettings

    pair, spec = _pair_and_spec(args)
    lm = pair.aligned
    cal = _calibration(args, lm)
    methods = ["set_difference", "orthogonal", "units"] if args.method == "all" else [args.method]
    print(
        f"calibration: {len(cal.safety)} safety pairs (aligned refusals), {len(cal.utility)} utility pairs; "
        f"evaluation: {spec.describe()}"
    )
    for i, method in enumerate(methods):
        st = RegionSettings(**from_args(RegionSettings, args, method=method))  # every option the parser gave
        out = prune_and_compare(pair, st, spec, cal, progress=_bar)
        region, res = out.region, out.results
        for note in region.notes:
            print(f"  note: {note}")
        if i == 0:
            print(_row("aligned (no edit)", res["aligned"]))
        print(_row(region.description, res["pruned"], f"removed {100 * region.removed_fraction:.2f}% of {region.unit}"))
        print(f"  convention: {out.convention}")
        one = "  control, seed 0 (one draw; its spread below)" if region.n_controls > 1 else "  control (deterministic)"
        print(_row(one, res["control"]))
        if region.n_controls > 1:  # one random control is one draw: its spread over seeds, and each seed paired
            _print_paired(res, (("pruned", "aligned"),))
            print(f"  controls over seeds: {out.controls.describe()}")
            rates = ("asr", "utility") if res["pruned"].utility_kind == "exact" else ("asr",)
            for metric in rates:
                print(f"  {control_sentence(res['pruned'], out.control_results(), metric)}")
        else:
            _print_paired(res, (("pruned", "aligned"), ("pruned", "control")))
    return 0


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
    pair, spec = _pair_and_spec(args)
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
        progress=_bar,
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
    run = landscape(pair, settings, spec, "2D", toward, progress=_bar, ray_address=args.ray)
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

    mo = landscape(pair, settings, spec, "1D", "random", progress=_bar, ray_address=args.ray).multi
    assert mo is not None  # random directions: always a MultiLandscape
    print(
        f"{head.format(n=mo.n, seeds=mo.seeds)} = {mo.describe()}; per direction "
        + ", ".join(f"{v:.1f}" for v in mo.visages)
    )
    print(f"paired, {difference}, direction by direction: {multi.paired(mo).describe()}")


def cmd_spectra(args) -> int:
    from analysis.methods.spectra import spectra, table

    pair = _pair(args)
    specs = spectra(pair.aligned, pair.base, progress=_bar)
    rows = table(specs, args.k)
    print(
        f"ΔW = W_aligned − W_base per decoder weight; effective rank = exp(entropy of σ/Σσ); energy@{args.k} = "
        f"share of ‖ΔW‖² in the top {args.k}"
    )
    print(f"{'weight':28s} {'eff. rank':>9s} {'energy@' + str(args.k):>10s} {'‖ΔW‖/‖W‖':>9s} {'σ1':>8s}")
    for r in rows:
        print(
            f"{r['weight']:28s} {r['effective_rank']:9.1f} {100 * r[f'energy@{args.k}']:9.1f}% "
            f"{r['norm_ratio']:9.4f} {r['sigma_1']:8.4f}"
        )
    return 0


def cmd_lox(args) -> int:
    from analysis.experiments import extrapolate
    from analysis.methods.lox import LoX, save_edited

    pair, spec = _pair_and_spec(args)
    lm = pair.aligned
    lox = LoX(args.k, args.alpha, _ints(args.layers), _strs(args.modules), scope=args.scope)
    out = extrapolate(pair, lox, spec, progress=_bar)
    edit = out.edit
    for label, r in out.results.items():
        print(_row(lox.label if label == "LoX" else label, r))
    _print_paired(out.results, (("LoX", "aligned"),))
    print(f"convention: {lox.convention}; ΔW in fp32")
    for note in lox.notes:
        print(f"note: {note}")
    if args.save:
        print(f"saved {lox.label} to {save_edited(lm, edit, args.save)}")
    return 0


def cmd_attack(args) -> int:
    from analysis.app_support.formatting import format_utility
    from analysis.data.sets import resolve_attack_set
    from analysis.experiments import attack
    from analysis.methods.attacks import variants
    from analysis.methods.attacks.finetune import AttackSettings
    from analysis.methods.attacks.seeds import describe_over_seeds, paired_over_seeds
    from analysis.methods.lox import LoX

    pair, spec = _pair_and_spec(args)
    lm, base = pair.aligned, pair.base
    settings = AttackSettings(
        args.data,
        args.n_examples,
        args.method,
        args.lr,
        args.steps,
        args.batch_size,
        args.eval_every,
        args.lora_rank,
        seeds=args.seeds,
        examples=args.examples,
        subspace_k=args.k,
        r_metric=args.r_metric,
    )
    settings.validate()
    data = (
        resolve_attack_set(args.attack_data, args.data)
        if args.attack_data
        else lm.data.attack_data(args.data, settings.pool)
    )  # a built-in set name or a file; else the provider's (a pool to draw from with --examples drawn)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not chosen:
        raise ValueError(f"--variants is empty; name at least one of {', '.join(variants.KINDS)}")
    cal = _calibration(args, lm) if any(v.startswith("frozen") for v in chosen) else None
    print(
        f"attack: {settings.data} data, {min(len(data), settings.n_examples)} examples"
        + (f" drawn per seed from {len(data)}" if settings.examples == "drawn" else "")
        + f", {settings.method} fine-tune, "
        f"lr {settings.lr:g}, {settings.steps} steps ({settings.epochs:.1f} epochs); evaluated on {spec.describe()}"
    )
    bands = attack(
        pair, settings, chosen, LoX(args.k, args.alpha, scope=args.scope), data, spec, args.unit_pct, cal, progress=_bar
    )
    for band in bands:
        c = band.curves[0]  # the first seed's run; the spread over seeds below
        print(
            f"{c.variant}"
            + (f" (data-order seeds {band.seeds}; curves of seed {band.seeds[0]})" if len(band.seeds) > 1 else "")
        )
        print("  step    " + " ".join(f"{s:5d}" for s in c.steps))
        print("  ASR     " + " ".join(f"{100 * a:4.0f}%" for a in c.asr))
        if len(band.seeds) > 1:
            mean, sd = band.mean("asr"), band.sd("asr")
            print("  ASR mean ± sd over seeds " + " ".join(f"{100 * m:.0f}±{100 * s:.0f}" for m, s in zip(mean, sd)))
        lo, hi = band.wilson("asr", len(spec.harmful))  # the sampling interval of the (mean) rate per step
        print("  ASR 95 % interval " + " ".join(f"[{100 * a:.0f}, {100 * b:.0f}]" for a, b in zip(lo, hi)))
        print("  utility " + " ".join(format_utility(u, c.utility_kind, 5) for u in c.utility))
        if c.utility_kind == "exact":
            lo, hi = band.wilson("utility", len(spec.benign))
            print("  utility 95 % interval " + " ".join(f"[{100 * a:.0f}, {100 * b:.0f}]" for a, b in zip(lo, hi)))
        elif c.utility_kind == "loss":  # nats, bootstrap over the benign items
            lo, hi = band.loss_interval()
            print("  utility 95 % interval (nats) " + " ".join(f"[{a:.3f}, {b:.3f}]" for a, b in zip(lo, hi)))
        if base is not None and any(r is not None for r in c.r_ft):
            print("  R_ft    " + " ".join("    -" if r is None else f"{r:5.2f}" for r in c.r_ft))
    ref = next((b.curves[0] for b in bands if b.variant == "aligned"), None)
    if ref is not None and len(bands) > 1:
        last = ref.steps[-1]
        print(f"at step {last}, each variant vs aligned on the same prompts (keyword ASR, seed {bands[0].seeds[0]}):")
        ref_band = next(b for b in bands if b.variant == "aligned")
        for b in bands:
            if b.curves[0] is not ref:
                print(f"  {b.variant}: {ref.paired_asr(b.curves[0], last).format()}")
                if len(b.seeds) > 1:
                    print(f"    seed by seed: {describe_over_seeds(paired_over_seeds(ref_band, b, last))}")
                for m, name in (
                    ("asr_positive", "really complies"),
                    ("utility", "utility"),
                    ("over_refusal", "over-refusal"),
                ):
                    try:
                        loss = m == "utility" and ref.utility_kind == "loss"  # nats: a paired bootstrap
                        print(f"    {name}{' (loss)' if loss else ''}: {ref.paired(b.curves[0], last, m).format()}")
                    except ValueError:  # not measured (no compliance judge) or not kept
                        pass
    return 0


def cmd_recovery(args) -> int:
    from analysis.experiments import recovery

    pair, spec = _pair_and_spec(args)
    if pair.base is None:
        raise ValueError("the recovery rank needs a base model (--base)")
    rec = recovery(pair, spec, _ints(args.ranks) or [], args.tolerance, progress=_bar)
    print(
        "W_base + rank-r(ΔW) on the decoder Linears; target: ASR <= aligned ASR + tolerance "
        f"= {100 * rec.target_asr:.1f}%"
    )
    for r, a, d in zip(rec.ranks, rec.asr_rates(), rec.vs_aligned):
        print(f"  r = {r:4d}: ASR {a.format()}; − aligned on the same prompts {d.format()}")
    print(f"recovery rank: {rec.rank if rec.rank is not None else 'not reached within the ranks tried'}")
    return 0


def _ints(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"expected a comma list of integers, got {text!r}") from None


def _strs(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def cmd_build_demo(args) -> int:
    from pathlib import Path

    from analysis.data.organism.build_demo import WEIGHTS_DIR, build_demo

    _threads()
    if args.seed != 0 and not args.out:
        raise ValueError("--seed other than 0 builds a different pair: give --out FOLDER (the shipped pair is seed 0)")
    base_from = Path(args.base_from) / "base" if args.base_from else None
    build_demo(Path(args.out) if args.out else WEIGHTS_DIR, seed=args.seed, base_from=base_from)
    return 0


def cmd_cache(args) -> int:
    from analysis.core.cache import Cache

    c = Cache(args.root)
    if args.action == "clear":
        print(f"removed {c.clear()} entries from {c.root}")
    else:
        i = c.info()
        print(f"cache at {i.root}: {i.entries} entries, {i.bytes / 1e6:.2f} MB")
        for kind, n in sorted(i.by_kind.items()):
            print(f"  {kind}: {n}")
    return 0


# ----- alignment depth: depth, prefill, disalign -----------------------------------------------


def _depth_pairs(args, lm, kind: str):
    """(prompt, response) pairs: ``--pairs`` / ``--benign-pairs`` files, else the provider's attack data."""
    from analysis.data.prompts import load_prompt_file

    path = args.pairs if kind == "harmful" else args.benign_pairs
    pairs = load_prompt_file(path, kind) if path else lm.data.attack_data(kind, args.n_pairs)
    if not all(it.response for it in pairs.items):
        raise ValueError(f"{path}: every row needs a response (CSV/JSONL prompt,response or AdvBench goal,target)")
    return pairs


def _need_base(pair) -> None:
    if pair.base is None:
        raise ValueError("this command compares the aligned model with its base: give --base")


def cmd_depth(args) -> int:
    from analysis.experiments import divergence

    pair = _pair(args)
    _need_base(pair)
    a = pair.aligned
    print(
        "per-token KL(aligned || base) and log p_aligned - log p_base of the response tokens "
        f"(first {args.positions} positions; mean [25 %, 75 %] over pairs)"
    )
    divs = {}
    for kind in ("harmful", "benign"):
        pairs = _depth_pairs(args, a, kind)
        d = divs[kind] = divergence(pair, {kind: pairs}, args.system_prompt, progress=_bar)[kind]
        kl, dl = d.profile("kl", args.positions), d.profile("dlogp", args.positions)
        print(
            f"{kind} pairs ({len(pairs)}): share of the total KL in the first 3 positions "
            f"{d.share_first_cell(3)} (95 % bootstrap over pairs), mean summed KL {d.total_kl():.3f} nats"
        )
        print(f"  {'t':>3s} {'KL':>9s} {'[25 %':>9s} {'75 %]':>9s} {'dlogp':>9s} {'pairs':>6s}")
        for t in kl.position:
            print(f"  {t:3d} {kl.mean[t]:9.4f} {kl.q25[t]:9.4f} {kl.q75[t]:9.4f} {dl.mean[t]:9.4f} {kl.count[t]:6d}")
    print(
        f"share in the first 3 positions, {divs['harmful'].share_first_difference(divs['benign']).sentence('harmful', 'benign')}"
    )
    return 0


def cmd_prefill(args) -> int:
    from analysis.core.evaluation import make_spec
    from analysis.data.prompts import PromptSet
    from analysis.experiments import prefill

    pair = _pair(args)
    a = pair.aligned
    pairs = _depth_pairs(args, a, "harmful")
    spec = make_spec(a, pairs, PromptSet("none", []), args.system_prompt, args.max_new_tokens)
    ks = _ints(args.ks)
    if not ks:
        raise ValueError("--ks needs at least one k")
    curves = prefill(pair, spec, ks, progress=_bar)
    print(
        f"prefilling attack: the first k tokens of each of {len(pairs)} target responses after the assistant tag, "
        f"greedy continuation (up to {args.max_new_tokens} tokens); ASR = keyword, ASR+ = really complies"
    )
    print(
        f"{'k':>3s} " + " ".join(f"{role + ' ASR':>12s} {role + ' ASR+':>13s}" for role in curves) + "  short targets"
    )
    for k in ks:
        cells = " ".join(f"{_fmt(c[k].asr):>12s} {_fmt(c[k].asr_positive):>13s}" for c in curves.values())
        print(f"{k:3d} {cells}  {curves['aligned'][k].n_short}")
    n = len(pairs)
    print(f"95 % Wilson intervals over the {n} prompts, keyword ASR (really complies):")
    for k in ks:
        print(
            f"  k = {k:3d}: "
            + "; ".join(
                f"{role} {c[k].asr_rate().format()}" + _really_complies(c[k].asr_positive, n)
                for role, c in curves.items()
            )
        )
    if "base" in curves:
        print("base vs aligned on the same prompts, keyword ASR (Newcombe interval, exact McNemar):")
        for k in ks:
            d = curves["aligned"][k].paired_asr(curves["base"][k], spec.judge, "aligned", "base")
            print(f"  k = {k:3d}: {d.format()}")
    for role, c in curves.items():
        for k in ks[: args.show]:
            print(f"  [{role} k={k}] {c[k].replies[0]!r}")
    return 0


def _really_complies(share: float | None, n: int) -> str:
    return "" if share is None else f" ({Rate.of_share(share, n).format()})"


def cmd_disalign(args) -> int:
    from analysis.app_support.formatting import format_utility
    from analysis.experiments import overview
    from analysis.methods.depth import choose_alpha

    pair, spec = _pair_and_spec(args)
    _need_base(pair)
    a, b = pair.aligned, pair.base
    try:
        alphas = [float(x) for x in _strs(args.alphas) or []]
    except ValueError:
        raise ValueError(f"--alphas must be a comma list of numbers, got {args.alphas!r}") from None
    if not alphas:
        raise ValueError("--alphas needs at least one α")
    choice = choose_alpha(a, b, spec, alphas, args.tolerance, progress=_bar)
    print(f"emulated disalignment: greedy over log-softmax((1+α) log p_base − α log p_aligned); {spec.describe()}")
    refs = overview(pair, spec)
    for role, r in refs.items():
        print(_row(role, r))
    for alpha, r in choice.curve.items():
        print(_row(f"ED α={alpha:g}", r, "<- chosen" if alpha == choice.alpha else ""))
    print("each α vs the aligned model on the same prompts (Newcombe interval, exact McNemar):")
    _print_paired(
        {"aligned": refs["aligned"], **{f"ED α={a:g}": r for a, r in choice.curve.items()}},
        [(f"ED α={a:g}", "aligned") for a in choice.curve],
    )
    print(
        f"chosen α (highest ASR with utility within {args.tolerance:g} of the aligned model's "
        f"{format_utility(choice.reference_utility, choice.curve[alphas[0]].utility_kind)}): {choice.alpha}"
    )
    for g in choice.curve[choice.alpha if choice.alpha is not None else alphas[-1]].harmful[: args.show]:
        print(f"  [ED harmful] {g.prompt!r} -> {g.text!r}")
    return 0


# ----- end alignment depth -----------------------------------------------------------------------------------
# --- warm the cache with every teaching preset ------------------------------------------------------
def cmd_warm(args) -> int:
    from analysis.app_support.config import load_config
    from analysis.app_support.warm import warm

    cfg = load_config(args.config)
    pair = _pair(args)
    names = None if args.presets == ["all"] else [n.strip() for n in args.presets if n.strip()]
    n = warm(pair, cfg, names)
    if n == 0:
        raise ValueError(f"no preset matches {' / '.join(args.presets)!r}; see analysis/app_support/presets.py")
    print(f"warmed {n} presets into the cache")
    return 0


# --- end warm -----------------------------------------------------------------------------------------------
