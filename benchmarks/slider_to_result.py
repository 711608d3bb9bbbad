"""Slider-to-result on the demo pair once scores are cached: build the region from cached scores, apply it,
regenerate 4 prompts, restore. Goal: <= 1 s. Measured in one run, best of 5.
Usage: python benchmarks/slider_to_result.py [--threads 2]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _reference import bench_args  # noqa: E402

from analysis.core.cache import Cache  # noqa: E402
from analysis.core.edits import applied  # noqa: E402
from analysis.core.generation import generate  # noqa: E402
from analysis.core.models import load_pair  # noqa: E402
from analysis.methods.critical_regions.build import RegionSettings, build  # noqa: E402
from analysis.methods.critical_regions.scoring import default_calibration  # noqa: E402


def main() -> None:
    bench_args()
    pair = load_pair("demo", device="cpu")
    lm = pair.aligned
    cache = Cache(tempfile.mkdtemp())
    cal = default_calibration(lm, 128, cache=cache)
    sets = lm.data.sets("test")
    prompts = sets["harmful"].prompts()[:2] + sets["benign"].prompts()[:2]
    settings = {
        "set difference (SNIP, q=p=0.03)": RegionSettings("set_difference", "snip", 0.03, 0.03),
        "orthogonal projection (r_s=1, r_u=2)": RegionSettings("orthogonal", r_s=1, r_u=2),
        "units (2% safety)": RegionSettings("units"),
    }
    for s in settings.values():  # warm the cache: the first computation is not what a slider move costs
        build(lm, s, cal, pair.base, cache=cache)
    print("demo pair, scores cached; region build + apply + 4 prompts x 24 tokens + restore, best of 5")
    for label, s in settings.items():
        times = []
        for q in (0.03, 0.031, 0.032, 0.033, 0.034):  # a moving slider: a new region each time
            s.q = q
            t = time.perf_counter()
            region = build(lm, s, cal, pair.base, cache=cache)
            with applied(lm.model, region.edit):
                generate(lm.model, lm.tokenizer, prompts, max_new_tokens=24)
            times.append(time.perf_counter() - t)
        print(f"{label:40s} {min(times):.3f}s  (goal <= 1 s)")


if __name__ == "__main__":
    main()
