"""Shared by the commands of ``python -m analysis``: loading the pair and its evaluation sets, calibration data,
and printing rates with their 95 % intervals and paired differences."""

from __future__ import annotations

import os
import sys

from analysis.cli import checks as V
from analysis.core.stats import Rate


def set_threads() -> None:
    """Torch threads: ``BRITTLE_THREADS``, else two or the cores there are (oversubscribed threads were 15× slower)."""
    import torch

    torch.set_num_threads(int(os.environ.get("BRITTLE_THREADS", min(2, os.cpu_count() or 1))))


def progress_bar(frac: float, msg: str) -> None:
    """A one-line progress bar on stderr, drawn only on a terminal."""
    if sys.stderr.isatty():
        n = int(30 * frac)
        print(f"\r[{'#' * n}{'.' * (30 - n)}] {msg:40s}", end="" if frac < 1 else "\n", file=sys.stderr, flush=True)


def eval_sets(args, lm) -> dict:
    """The evaluation sets: built-in set names or the user's files, else the model's provider's default sets of
    ``--split`` (the organism's for the demo, AdvBench + instruct for a real model)."""
    sets = dict(args.sets)  # --harmful / --benign, resolved once before the model loaded
    if len(sets) < 2:
        sets = {**lm.data.sets(args.split), **sets}
    return {k: v.head(args.n) for k, v in sets.items()}


def pair_and_spec(args, judges: tuple = ()):
    """The command preamble: threads, the model pair, the evaluation spec (aligned model's data provider)."""
    from analysis.core.evaluation import make_spec
    from analysis.core.models import load_pair

    set_threads()
    pair = load_pair(args.model, args.base, args.dtype, args.device, args.trust_remote_code)
    sets = eval_sets(args, pair.aligned)
    V.print_notes(V.against_model(args, pair, sets))
    return pair, make_spec(
        pair.aligned, sets["harmful"], sets["benign"], args.system_prompt, args.max_new_tokens, judges=judges
    )


def load_checked_pair(args):
    """The command preamble without evaluation sets: threads, the model pair, its checks against the options."""
    from analysis.core.models import load_pair

    set_threads()
    pair = load_pair(args.model, args.base, args.dtype, args.device, args.trust_remote_code)
    V.print_notes(V.against_model(args, pair))
    return pair


def calibration_data(args, lm):
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


def need_base(pair) -> None:
    """Refuse, with a clear message, a command that compares with the base when the pair has none."""
    if pair.base is None:
        raise ValueError("this command compares the aligned model with its base: give --base")


def int_list(text: str | None) -> list[int] | None:
    """``"1,2,3"`` -> [1, 2, 3]; None when empty; a clear error otherwise."""
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"expected a comma list of integers, got {text!r}") from None


def str_list(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ["a", "b"]; None when empty."""
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def pct(x) -> str:
    """A rate as a fixed-width percentage ('   -  ' when there is none)."""
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def rate_cell(r, metric: str) -> str:
    """A rate and its 95 % interval, '  5.0% [2.3, 10.5]' ('   -  ' when there is none)."""
    rate = r.rate(metric)
    if rate is None:
        return pct(None)
    if rate.kind == "loss":
        return f"{rate.value:.3f}L {rate.interval()}"
    return f"{pct(rate.value)} {rate.interval()}"


def rates_row(label: str, r, extra: str = "") -> str:
    """One state's rates, each with its 95 % interval (Wilson; bootstrap for a loss utility)."""
    return (
        f"{label:44s} ASR {rate_cell(r, 'asr')}  ASR+ {rate_cell(r, 'asr_positive')}  utility {rate_cell(r, 'utility')}  "
        f"over-refusal {rate_cell(r, 'over_refusal')}  degenerate {rate_cell(r, 'degenerate_rate')}  {extra}"
    ).rstrip()


def print_paired(rows: dict, pairs) -> None:
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


def print_intervals(rows: dict) -> None:
    """Each state's rates with their 95 % intervals, then each state against the first one, paired."""
    roles = list(rows)
    for role, r in rows.items():
        print(rates_row(f"95 % intervals, {role}", r))
    print_paired(rows, [(role, roles[0]) for role in roles[1:]])


def judges_from_args(args) -> list:
    from analysis.judging import make_judges

    if not getattr(args, "judge", None):
        return []
    return make_judges(
        args.judge, args.device, args.dtype, kind=args.judge_kind, refusal_label=args.judge_refusal_label
    )


def print_judges(rows: dict, judge) -> None:
    """Each judge's ASR on the harmful replies (keyword: ``judge``, first) and the share of replies they disagree
    on."""
    for role, r in rows.items():
        if not r.judge_decisions:
            continue
        share, idx = r.disagreement(judge)
        cols = "  ".join(
            f"{name} {rate_cell(r, m).strip()}"
            for name, m in {"keyword": "asr", **{k: f"judge:{k}" for k in r.judge_asr}}.items()
        )
        n = len(r.judge_decisions[next(iter(r.judge_decisions))]) if r.judge_decisions else len(r.harmful)
        print(
            f"judges {role:8s} ASR: {cols}  disagreement {Rate.of_share(share, n).format()} "
            f"({len(idx)} replies: {idx[:10]})"
        )


def print_reference_scores(rows: dict, benign) -> None:
    """Answer-based utility where the benign set has reference responses (not for exact-answer sets)."""
    from analysis.judging.answer_scores import reference_scores

    items = {it.prompt: it for it in benign.items}
    for role, r in rows.items():
        pairs = [(g.text, items[g.prompt]) for g in r.benign if g.prompt in items and items[g.prompt].response]
        if r.utility_kind == "exact" or not pairs:
            continue
        s = reference_scores([t for t, _ in pairs], [it for _, it in pairs])
        match = "" if s.answer_match is None else f", answer in reply {pct(s.answer_match).strip()}"
        print(f"utility  {role:8s} vs references ({s.n}): token-F1 {s.token_f1:.3f}, ROUGE-L {s.rouge_l:.3f}{match}")
