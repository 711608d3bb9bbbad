"""The measured effect of each project variant against the reference convention (the default), on
the shipped demo pair's test split (120 + 120 prompts), 128 calibration samples per set. The numbers behind the
README's "Deviations" lines:

- set difference, SNIP, p = q = 0.03 (the app's default): per matrix (reference) vs per row (variant); the
  Jaccard index of the two regions, per matrix (min–max);
- Wanda set difference S_0.03 \\ U_0.01 per matrix: activations at the response tokens (reference) vs at the
  positions predicting them (variant);
- ActSVD (r_s = 3) and orthogonal projection (r_s = 3, r_u = 8): layer by layer (reference) vs one pass;
- R_align at k = 8: mean of per-weight ratios with lm_head (reference) vs pooled over the decoder weights.
Usage: python benchmarks/conventions_effect.py [--threads 2]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _reference import bench_args  # noqa: E402

from analysis.core.cache import Cache  # noqa: E402
from analysis.core.evaluation import evaluate, make_spec  # noqa: E402
from analysis.core.models import load_pair  # noqa: E402
from analysis.methods.critical_regions.build import RegionSettings, build  # noqa: E402
from analysis.methods.critical_regions.scoring import default_calibration  # noqa: E402
from analysis.methods.lox import alignment_factors, retention, retention_scope  # noqa: E402
from analysis.methods.spectra import delta as weight_delta  # noqa: E402


def main() -> None:
    bench_args()
    pair = load_pair("demo", device="cpu")
    lm, base = pair.aligned, pair.base
    cache = Cache(tempfile.mkdtemp())
    cal = default_calibration(lm, 128, cache=cache)
    spec = make_spec(lm, **lm.data.sets("test", 120))
    r0 = evaluate(lm, spec, cache=cache)
    print(f"aligned: ASR {r0.asr:.1%}, really complies {r0.asr_positive:.1%}, utility {r0.utility:.1%}")

    results: dict[str, object] = {}

    def show(label: str, settings: RegionSettings):
        region = build(lm, settings, cal, base, cache=cache)
        r = results[label] = evaluate(lm, spec, region.edit, cache=cache)
        print(
            f"  {label:44s} removed {100 * region.removed_fraction:5.2f}% of {region.unit}: ASR {r.asr:6.1%}, "
            f"really complies {r.asr_positive:6.1%}, utility {r.utility:6.1%}, degenerate {r.degenerate_rate:5.1%}"
        )
        return region

    def paired(reference: str, variant: str) -> None:
        """variant − reference on the same 120 + 120 test prompts, each rate (Newcombe interval, exact McNemar)."""
        a, b = results[reference], results[variant]
        for metric in ("asr", "asr_positive", "utility", "degenerate_rate"):
            print(f"    paired, variant − reference, {metric}: {a.paired(b, metric).format()}")

    print("set difference, SNIP, p = q = 0.03:")
    m = show("per matrix (reference)", RegionSettings("set_difference", "snip", 0.03, 0.03, "matrix"))
    w = show("per row (project variant)", RegionSettings("set_difference", "snip", 0.03, 0.03, "row"))
    paired("per matrix (reference)", "per row (project variant)")
    jac = []
    for n in m.edit.masks:
        a, b = m.edit.masks[n], w.edit.masks[n]
        union = int((a | b).sum())
        jac.append(int((a & b).sum()) / union if union else 1.0)
    print(
        f"  Jaccard(per matrix, per row) over matrices: {min(jac):.2f}–{max(jac):.2f} (mean {sum(jac) / len(jac):.2f})"
    )
    print("set difference, Wanda, S_0.03 \\ U_0.01 per matrix:")
    show("response-token positions (reference)", RegionSettings("set_difference", "wanda", 0.01, 0.03, "matrix"))
    show(
        "predicting positions (project variant)",
        RegionSettings("set_difference", "wanda", 0.01, 0.03, "matrix", positions="predicting"),
    )
    paired("response-token positions (reference)", "predicting positions (project variant)")
    for method in ("actsvd", "orthogonal"):
        print(f"{method}, r_s = 3" + (", r_u = 8:" if method == "orthogonal" else ":"))
        show(f"{method} layer by layer (reference)", RegionSettings(method, r_s=3, r_u=8))
        show(f"{method} one pass (project variant)", RegionSettings(method, r_s=3, r_u=8, procedure="one-pass"))
        paired(f"{method} layer by layer (reference)", f"{method} one pass (project variant)")
    for mode in ("mean", "pooled"):
        bases = {n: t.U for n, t in alignment_factors(lm, base, 8, cache=cache, scope=retention_scope(mode)).items()}
        r = retention(bases, {n: weight_delta(lm, base, n) for n in bases}, mode)
        print(f"R_align (k = 8), {mode:6s} over {len(bases)} weights: {r:.4f}")


if __name__ == "__main__":
    main()
