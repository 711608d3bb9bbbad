"""``datasets``, ``evaluate`` and ``generate``: the built-in data sets, the pair's rates with their intervals (and
the demo's targets), one prompt's replies."""

from __future__ import annotations

import json

from analysis.cli.common import (
    judges_from_args,
    load_checked_pair,
    pair_and_spec,
    pct,
    print_intervals,
    print_judges,
    print_reference_scores,
    progress_bar,
)


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

    judges = [j for j in judges_from_args(args) if j.name != "keyword"]  # built (and checked) before any generation
    pair, spec = pair_and_spec(args, tuple(judges))
    rows = overview(pair, spec, progress=progress_bar)
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
            f"{role:8s} {pct(r.asr):>7s} {pct(r.asr_positive):>7s} {format_utility(r.utility, r.utility_kind):>14s} "
            f"{pct(r.over_refusal):>8s} {pct(r.degenerate_rate):>7s} {r.mean_tokens:7.1f}"
        )
    print(
        "ASR = keyword ASR (no refusal phrase); ASR+ = really complies (where a compliance judge applies); "
        f"{LEGEND}; tokens = mean generated per reply"
    )
    print_intervals(rows)
    print_judges(rows, spec.judge)
    print_reference_scores(rows, spec.benign)
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

    pair = load_checked_pair(args)
    for role, lm in pair.models().items():
        g = replies(lm, [args.prompt], args.system_prompt, args.max_new_tokens)[0]
        print(f"{role:8s} ({g.n_tokens} tokens, {g.stopped_by}): {g.text}")
    return 0
