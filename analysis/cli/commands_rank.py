"""``spectra``, ``lox``, ``attack`` and ``recovery``: the alignment update's spectra, LoX extrapolation (Perin et
al. 2025), fine-tuning attacks and the recovery rank."""

from __future__ import annotations

from analysis.cli.common import (
    calibration_data,
    int_list,
    load_checked_pair,
    pair_and_spec,
    print_paired,
    progress_bar,
    rates_row,
    str_list,
)


def cmd_spectra(args) -> int:
    from analysis.methods.spectra import spectra, table

    pair = load_checked_pair(args)
    specs = spectra(pair.aligned, pair.base, progress=progress_bar)
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

    pair, spec = pair_and_spec(args)
    lm = pair.aligned
    lox = LoX(args.k, args.alpha, int_list(args.layers), str_list(args.modules), scope=args.scope)
    out = extrapolate(pair, lox, spec, progress=progress_bar)
    edit = out.edit
    for label, r in out.results.items():
        print(rates_row(lox.label if label == "LoX" else label, r))
    print_paired(out.results, (("LoX", "aligned"),))
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

    pair, spec = pair_and_spec(args)
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
    cal = calibration_data(args, lm) if any(v.startswith("frozen") for v in chosen) else None
    print(
        f"attack: {settings.data} data, {min(len(data), settings.n_examples)} examples"
        + (f" drawn per seed from {len(data)}" if settings.examples == "drawn" else "")
        + f", {settings.method} fine-tune, "
        f"lr {settings.lr:g}, {settings.steps} steps ({settings.epochs:.1f} epochs); evaluated on {spec.describe()}"
    )
    if (
        settings.seeds > 1
        and settings.examples == "first"
        and settings.batch_size >= min(len(data), settings.n_examples)
    ):
        print(
            f"  note: the batch ({settings.batch_size}) holds every example, so the {settings.seeds} data-order seeds are "
            "one run (sd 0); --examples drawn gives each seed its own draw, a spread that means something"
        )
    bands = attack(
        pair,
        settings,
        chosen,
        LoX(args.k, args.alpha, scope=args.scope),
        data,
        spec,
        args.unit_pct,
        cal,
        progress=progress_bar,
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

    pair, spec = pair_and_spec(args)
    if pair.base is None:
        raise ValueError("the recovery rank needs a base model (--base)")
    rec = recovery(pair, spec, int_list(args.ranks) or [], args.tolerance, progress=progress_bar)
    print(
        "W_base + rank-r(ΔW) on the decoder Linears; target: ASR <= aligned ASR + tolerance "
        f"= {100 * rec.target_asr:.1f}%"
    )
    for r, a, d in zip(rec.ranks, rec.asr_rates(), rec.vs_aligned):
        print(f"  r = {r:4d}: ASR {a.format()}; − aligned on the same prompts {d.format()}")
    print(f"recovery rank: {rec.rank if rec.rank is not None else 'not reached within the ranks tried'}")
    return 0
