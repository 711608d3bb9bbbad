"""Acceptance on the shipped demo pair: alignment depth, prefilling, emulated disalignment.

- Per-token KL(aligned ‖ base) on harmful (prompt, compliant answer) pairs — the held-out test prompts with
  their compliant answers, and the train split's attack data — and on benign (prompt, answer) pairs as a control:
  the share of the summed per-token KL that falls in the first three response positions, and the mean per position.
- Prefilling attack on the test pairs: keyword and "really complies" ASR against k for aligned and base.
- Emulated disalignment: α chosen on the validation split (highest keyword ASR with utility at most 10 points
  below the aligned model's, α > 0), reported on the test split with its utility, beside aligned and base.
- Depth of two edits (LoX k = 8 α = 1; a random layer-normalised perturbation α = 1): share of KL(aligned ‖ edited)
  in the first three positions.
``--quick`` uses 16 prompts per set to smoke-test the script; its numbers mean nothing.
Usage: python benchmarks/depth_acceptance.py [--threads 2] [--pair DIR] [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _reference import bench_args, bench_pair  # noqa: E402

from analysis.app_support.formatting import comparison_sentences, format_utility  # noqa: E402
from analysis.core.cache import Cache  # noqa: E402
from analysis.core.evaluation import evaluate, make_spec  # noqa: E402
from analysis.data.prompts import PromptItem, PromptSet  # noqa: E402
from analysis.methods import depth  # noqa: E402
from analysis.methods.landscape.directions import RandomDirection  # noqa: E402
from analysis.methods.landscape.grid import point_edit  # noqa: E402
from analysis.methods.lox import LoX  # noqa: E402


def held_out_pairs(lm, split: str, n: int) -> tuple[PromptSet, PromptSet]:
    """The organism's evaluation prompts of ``split`` with target responses: harmful prompts with the compliant
    answer the base gives (kept in the items' meta), benign prompts with their exact answers."""
    sets = lm.data.sets(split, n)
    harmful = PromptSet(
        f"harmful-{split}-compliant",
        [PromptItem(it.prompt, "harmful", it.meta["compliant"], meta=it.meta) for it in sets["harmful"].items],
    )
    benign = PromptSet(
        f"benign-{split}-answers",
        [PromptItem(it.prompt, "benign", it.answer, it.answer, it.meta) for it in sets["benign"].items],
    )
    return harmful, benign


def pct(x) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}%"


def main() -> None:
    args = bench_args(quick="16 prompts per set", pair=True)
    n = 16 if args.quick else 120
    if args.quick:
        print("QUICK smoke test: 16 prompts per set, the numbers mean nothing")
    t0 = time.time()
    pair = bench_pair(args)
    a, b = pair.aligned, pair.base
    cache = Cache(tempfile.mkdtemp())
    test_h, test_b = held_out_pairs(a, "test", n)
    data = {
        "test harmful (held out)": test_h,
        "train harmful (attack data)": a.data.attack_data("harmful", n),
        "test benign (control)": test_b,
        "train benign (control)": a.data.attack_data("benign", n),
    }

    print(
        "1. per-token KL(aligned || base): share of the summed KL in the first 3 response positions; "
        "mean KL at positions 0..5 (nats)"
    )
    divs = {}
    for label, pairs in data.items():
        d = divs[label] = depth.divergence(a, b, pairs, cache=cache)
        mean = d.profile("kl", 6).mean
        print(
            f"   {label:30s} share {d.share_first_cell(3):22s} summed {d.total_kl():7.3f}  "
            + " ".join(f"{m:.2g}" for m in mean)
        )
    dl = divs["test harmful (held out)"].profile("dlogp", 3).mean
    print("   log p_aligned - log p_base of the harmful answer's tokens 0..2: " + " ".join(f"{x:+.3g}" for x in dl))

    print(
        f"2. prefilling attack on the {len(test_h)} held-out harmful prompts (k = prefilled answer tokens; "
        "ASR = keyword, ASR+ = really complies)"
    )
    spec = make_spec(a, test_h, PromptSet("none", []))
    curves = {role: depth.prefill_curve(m, spec, depth.PREFILL_KS, cache=cache) for role, m in pair.models().items()}
    print("     k  aligned ASR / ASR+    base ASR / ASR+   short targets")
    for k in depth.PREFILL_KS:
        ca, cb = curves["aligned"][k], curves["base"][k]
        print(
            f"   {k:3d}   {pct(ca.asr)} / {pct(ca.asr_positive)}   {pct(cb.asr)} / {pct(cb.asr_positive)}   "
            f"{ca.n_short}"
        )
    print(f"   aligned k=1: {curves['aligned'][1].replies[0]!r}")
    for k in depth.PREFILL_KS[:3]:
        ca, cb = curves["aligned"][k], curves["base"][k]
        print(
            f"   k={k}: aligned {ca.asr_rate().format()}, base {cb.asr_rate().format()}; base − aligned on the same "
            f"prompts {ca.paired_asr(cb, spec.judge, 'aligned', 'base').format()}"
        )

    print("3. emulated disalignment: α chosen on val (highest keyword ASR, utility >= aligned - 10 points, α > 0)")
    val = a.data.sets("val", n)
    test = a.data.sets("test", n)
    val_spec, test_spec = make_spec(a, val["harmful"], val["benign"]), make_spec(a, test["harmful"], test["benign"])
    choice = depth.choose_alpha(a, b, val_spec, depth.DISALIGN_ALPHAS, depth.DEFAULT_UTILITY_TOLERANCE, cache)
    for alpha, r in choice.curve.items():
        print(
            f"   val α={alpha:<5g} ASR {pct(r.asr)}  ASR+ {pct(r.asr_positive)}  utility "
            f"{format_utility(r.utility, r.utility_kind)}  degenerate {pct(r.degenerate_rate)}"
        )
    print(f"   chosen α = {choice.alpha} (aligned val utility {format_utility(choice.reference_utility, 'exact')})")
    rows = {role: evaluate(m, test_spec, cache=cache) for role, m in pair.models().items()}
    if choice.alpha is not None:
        rows[f"ED α={choice.alpha:g}"] = depth.disalign(a, b, test_spec, choice.alpha, cache)
    for label, r in rows.items():
        print(
            f"   test {label:10s} ASR {pct(r.asr)}  ASR+ {pct(r.asr_positive)}  utility "
            f"{format_utility(r.utility, r.utility_kind)}  over-refusal {pct(r.over_refusal)}  "
            f"degenerate {pct(r.degenerate_rate)}"
        )
    for sentence in comparison_sentences(
        rows, [(label, "aligned") for label in rows if label != "aligned"], ("asr", "asr_positive", "utility")
    ):
        print(f"   test, paired on the same prompts: {sentence}")
    print(
        "   test 95 % Wilson: "
        + "; ".join(
            f"{label} ASR {r.rate('asr').format()}, utility {r.rate('utility').format()}" for label, r in rows.items()
        )
    )

    print("4. depth of an edit: KL(aligned || edited aligned) on the held-out harmful pairs")
    edits = {"LoX k=8 α=1": LoX(8, 1.0).edit(a, b, cache)} | {
        f"random perturbation α=1, seed {seed}": point_edit(a.model, [RandomDirection(seed)], (1.0,), ("linear",))
        for seed in range(3)  # one random direction is one draw: three seeds, their spread
    }
    aligned_base = divs["test harmful (held out)"]
    random_shares = []
    for label, e in edits.items():
        d = depth.divergence(a, a, test_h, edit_q=e, cache=cache)
        if label.startswith("random"):
            random_shares.append(d.share_first(3))
        print(
            f"   {label:36s} share {d.share_first_cell(3):22s} summed {d.total_kl():7.3f}  "
            + " ".join(f"{m:.2g}" for m in d.profile("kl", 6).mean)
        )
        print(f"      {d.share_first_difference(aligned_base, 3, paired=True).sentence('this edit', 'base')}")
    print(
        f"   random perturbation over {len(random_shares)} seeds: share {100 * np.mean(random_shares):.1f} ± "
        f"{100 * np.std(random_shares, ddof=1):.1f} % (mean ± sd)"
    )
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
