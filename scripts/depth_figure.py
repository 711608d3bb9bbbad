"""Render the README's alignment-depth figure (docs/depth_kl.png) for the demo pair: per-token
KL(aligned ‖ base) on the held-out harmful prompts with their compliant answers and on benign prompts with their
answers, drawn with the page's own figure code and screenshot in headless Chromium (as landscape_figure.py).
Usage: HF_HUB_OFFLINE=1 .venv/bin/python scripts/depth_figure.py [--out docs/depth_kl.png]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "benchmarks")]

import torch  # noqa: E402
from depth_acceptance import held_out_pairs  # noqa: E402
from landscape_figure import screenshot  # noqa: E402

from analysis.core.models import load_pair  # noqa: E402
from analysis.methods import depth  # noqa: E402
from pages._plots import position_band  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "depth_kl.png"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    pair = load_pair("demo", device="cpu")
    harmful, benign = held_out_pairs(pair.aligned, "test", 120)
    profiles = {
        label: depth.divergence(pair.aligned, pair.base, pairs).profile("kl", 20)
        for label, pairs in (("harmful prompt + compliant answer", harmful), ("benign prompt + answer", benign))
    }
    fig = position_band(
        profiles,
        "Demo pair: per-token KL(aligned ‖ base), mean and 25–75 % band (120 test prompts)",
        "KL (nats, log scale)",
        log=True,
    )
    out = Path(args.out)
    if out.suffix == ".html":
        fig.write_html(out, include_plotlyjs=True, full_html=True)
    else:
        screenshot(fig, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
