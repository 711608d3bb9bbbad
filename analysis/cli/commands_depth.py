"""``depth``, ``prefill`` and ``disalign``: where in a reply safety lives (Qi et al. 2025; Zhou et al. 2024)."""

from __future__ import annotations

from analysis.cli.common import (
    int_list,
    load_checked_pair,
    need_base,
    pair_and_spec,
    pct,
    print_paired,
    progress_bar,
    rates_row,
    str_list,
)
from analysis.core.stats import Rate


def _depth_pairs(args, lm, kind: str):
    """(prompt, response) pairs: ``--pairs`` / ``--benign-pairs`` files, else the provider's attack data."""
    from analysis.data.prompts import load_prompt_file

    path = args.pairs if kind == "harmful" else args.benign_pairs
    pairs = load_prompt_file(path, kind) if path else lm.data.attack_data(kind, args.n_pairs)
    if not all(it.response for it in pairs.items):
        raise ValueError(f"{path}: every row needs a response (CSV/JSONL prompt,response or AdvBench goal,target)")
    return pairs


def cmd_depth(args) -> int:
    from analysis.experiments import divergence

    pair = load_checked_pair(args)
    need_base(pair)
    a = pair.aligned
    print(
        "per-token KL(aligned || base) and log p_aligned - log p_base of the response tokens "
        f"(first {args.positions} positions; mean [25 %, 75 %] over pairs)"
    )
    divs = {}
    for kind in ("harmful", "benign"):
        pairs = _depth_pairs(args, a, kind)
        d = divs[kind] = divergence(pair, {kind: pairs}, args.system_prompt, progress=progress_bar)[kind]
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

    pair = load_checked_pair(args)
    a = pair.aligned
    pairs = _depth_pairs(args, a, "harmful")
    spec = make_spec(a, pairs, PromptSet("none", []), args.system_prompt, args.max_new_tokens)
    ks = int_list(args.ks)
    if not ks:
        raise ValueError("--ks needs at least one k")
    curves = prefill(pair, spec, ks, progress=progress_bar)
    print(
        f"prefilling attack: the first k tokens of each of {len(pairs)} target responses after the assistant tag, "
        f"greedy continuation (up to {args.max_new_tokens} tokens); ASR = keyword, ASR+ = really complies"
    )
    print(
        f"{'k':>3s} " + " ".join(f"{role + ' ASR':>12s} {role + ' ASR+':>13s}" for role in curves) + "  short targets"
    )
    for k in ks:
        cells = " ".join(f"{pct(c[k].asr):>12s} {pct(c[k].asr_positive):>13s}" for c in curves.values())
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

    pair, spec = pair_and_spec(args)
    need_base(pair)
    a, b = pair.aligned, pair.base
    try:
        alphas = [float(x) for x in str_list(args.alphas) or []]
    except ValueError:
        raise ValueError(f"--alphas must be a comma list of numbers, got {args.alphas!r}") from None
    if not alphas:
        raise ValueError("--alphas needs at least one α")
    choice = choose_alpha(a, b, spec, alphas, args.tolerance, progress=progress_bar)
    print(f"emulated disalignment: greedy over log-softmax((1+α) log p_base − α log p_aligned); {spec.describe()}")
    refs = overview(pair, spec)
    for role, r in refs.items():
        print(rates_row(role, r))
    for alpha, r in choice.curve.items():
        print(rates_row(f"ED α={alpha:g}", r, "<- chosen" if alpha == choice.alpha else ""))
    print("each α vs the aligned model on the same prompts (Newcombe interval, exact McNemar):")
    print_paired(
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
