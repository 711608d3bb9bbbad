"""The reference's own randomness and the end-of-sequence convention, measured on the shipped demo pair.

1. ``svd_lowrank`` spread: the default ActSVD and orthogonal-projection settings (sequential, r_s = 1, r_u = 2)
   with the reference's randomised decomposition (``torch.svd_lowrank(q=r, niter=20)``) over several seeds,
   against the project's exact default: per seed the worst matrix's edit difference
   ‖ΔW_lowrank − ΔW_exact‖_F / ‖ΔW_exact‖_F, and the test ASR (keyword); mean ± sd over seeds, next to the
   exact edit's ASR and its 95 % Wilson interval (the sampling noise of 120 prompts).
2. EOS: the default region (SNIP set difference) with calibration responses without the end-of-sequence token
   (the reference's, now the default) and with it (the former default): entries that move, Jaccard, test ASR.
Usage: python benchmarks/lowrank_spread.py [--threads 1] [--seeds 5] [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.core.cache import Cache  # noqa: E402
from analysis.core.evaluation import default_spec, evaluate  # noqa: E402
from analysis.core.models import load_pair  # noqa: E402
from analysis.methods.critical_regions.build import RegionSettings, build  # noqa: E402
from analysis.methods.critical_regions.scoring import default_calibration  # noqa: E402
from benchmarks._reference import bench_args  # noqa: E402


def delta(edit) -> dict[str, torch.Tensor]:
    """ΔW per weight of a LowRank edit (factors A, B: ΔW = A B)."""
    return {n: (a.double() @ b.double()) for n, (a, b) in edit.factors.items()}


def worst_difference(d: dict, ref: dict) -> tuple[float, str]:
    rel = {n: float((d[n] - ref[n]).norm() / ref[n].norm().clamp(min=1e-300)) for n in ref}
    name = max(rel, key=rel.get)
    return rel[name], name


def main() -> None:
    args = bench_args(
        "16 prompts, 16 calibration samples, 2 seeds",
        **{"--seeds": dict(type=int, default=5, help="svd_lowrank seeds (0 .. N-1)")},
    )
    n_eval, cal_n, seeds = (16, 16, 2) if args.quick else (120, 128, args.seeds)
    pair = load_pair("demo", device="cpu")
    lm, cache = pair.aligned, Cache(tempfile.mkdtemp())
    cal = default_calibration(lm, cal_n, cache=cache)
    spec = default_spec(lm, "test", n_eval)
    print(
        f"demo pair, calibration {len(cal.safety)} safety + {len(cal.utility)} utility pairs, "
        f"test {len(spec.harmful)} + {len(spec.benign)} prompts, {args.threads} thread(s)"
    )
    for method in ("actsvd", "orthogonal"):
        exact = build(lm, RegionSettings(method), cal, cache=cache)
        r0 = evaluate(lm, spec, exact.edit, cache)
        ref = delta(exact.edit)
        diffs, asrs, d_seeds = [], [], []
        first = None
        for seed in range(seeds):
            reg = build(lm, RegionSettings(method, decomposition="lowrank", lowrank_seed=seed), cal, cache=cache)
            d = delta(reg.edit)
            w, name = worst_difference(d, ref)
            r = evaluate(lm, spec, reg.edit, cache)
            if first is None:
                first = d
            else:
                d_seeds.append(worst_difference(d, first)[0])
            diffs.append(w), asrs.append(r.asr)
            print(
                f"{method:10s} seed {seed}: worst-matrix edit difference vs exact {100 * w:5.1f} % ({name}); "
                f"test ASR {r.rate('asr').format()}"
            )
        a, dd = 100 * np.array(asrs), 100 * np.array(diffs)
        print(f"{method:10s} exact: test ASR {r0.rate('asr').format()}")
        print(
            f"{method:10s} lowrank over {seeds} seeds: worst-matrix difference vs exact {dd.mean():.1f} ± "
            f"{dd.std(ddof=1) if seeds > 1 else 0:.1f} % (range {dd.min():.1f}–{dd.max():.1f}); seed vs seed 0 "
            f"worst {100 * max(d_seeds, default=0):.1f} %; test ASR {a.mean():.1f} ± "
            f"{a.std(ddof=1) if seeds > 1 else 0:.1f} % (range {a.min():.1f}–{a.max():.1f})"
        )
    # the end-of-sequence token in the calibration responses
    s = RegionSettings()
    regions = {eos: build(lm, s, replace(cal, eos=eos), cache=cache) for eos in (False, True)}
    masks = {eos: {n: m.bool() for n, m in r.edit.masks.items()} for eos, r in regions.items()}
    moved = sum(int((masks[False][n] ^ masks[True][n]).sum()) for n in masks[False])
    inter = sum(int((masks[False][n] & masks[True][n]).sum()) for n in masks[False])
    union = sum(int((masks[False][n] | masks[True][n]).sum()) for n in masks[False])
    res = {eos: evaluate(lm, spec, r.edit, cache) for eos, r in regions.items()}
    print(
        f"default region ({s.score} set difference, p = q = {s.q}): {moved} entries move when the EOS token "
        f"counts (Jaccard {inter / max(union, 1):.3f}); test ASR without EOS (reference, default) "
        f"{res[False].rate('asr').format()}, with EOS {res[True].rate('asr').format()}; paired: "
        f"{res[False].paired(res[True], 'asr', 'without EOS', 'with EOS').format()}"
    )


if __name__ == "__main__":
    main()
