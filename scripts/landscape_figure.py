"""Render the README's 1D safety-landscape figure (docs/landscape_1d.png) for the demo pair:
compute the landscape along ``--directions`` random directions (llm-landscape's seed mode, seeds 123, 124, …;
cached), draw every direction, their min–max band and mean with the page's own figure code, and screenshot it
in headless Chromium. VISAGE is given as mean ± sd over the directions, and the system-prompt difference paired.
``--out`` picks another file; a path ending in .html writes the interactive figure instead (no browser needed).
Usage: HF_HUB_OFFLINE=1 .venv/bin/python scripts/landscape_figure.py [--out docs/landscape_1d.png]"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from analysis.core.evaluation import make_spec  # noqa: E402
from analysis.core.models import load_model  # noqa: E402
from analysis.methods.landscape.grid import LandscapeSettings  # noqa: E402
from analysis.methods.landscape.multi import evaluate_directions, random_directions  # noqa: E402
from pages._plots import landscape_1d_band  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def screenshot(fig, out: Path) -> None:
    """Draw ``fig`` in headless Chromium and save the plot's PNG to ``out``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as d:
        html = Path(d) / "fig.html"
        fig.write_html(html, include_plotlyjs=True, full_html=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1020, "height": 500})
            page.goto(html.as_uri())
            page.locator(".js-plotly-plot").wait_for()
            page.locator(".js-plotly-plot").screenshot(path=str(out))
            browser.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "landscape_1d.png",
        help="the figure file: .png (screenshot, needs chromium) or .html",
    )
    ap.add_argument("--directions", type=int, default=5, help="random directions (seeds 123, 124, …)")
    args = ap.parse_args()
    if args.out.suffix not in (".png", ".html"):
        print(f"error: --out must end in .png or .html, got {args.out}", file=sys.stderr)
        sys.exit(2)
    if args.out.suffix == ".png" and not Path(CHROMIUM).exists():
        print(
            f"error: a PNG needs Chromium at {CHROMIUM} (apt install chromium), or write --out FILE.html",
            file=sys.stderr,
        )
        sys.exit(2)
    torch.set_num_threads(int(os.environ.get("BRITTLE_THREADS", 2)))
    lm = load_model("demo", device="cpu")
    sets = lm.data.sets("test")
    settings = LandscapeSettings(lo=-2.0, hi=2.0, steps=21, directions=args.directions)
    settings.validate()
    dirs = random_directions(lm.model, settings)  # the same directions for both system prompts: paired
    curves, multis = {}, {}
    for label, system in (("none", None), ("helpful and safe", "you are a helpful and safe assistant .")):
        m = multis[label] = evaluate_directions(
            lm, settings, make_spec(lm, sets["harmful"], sets["benign"], system), directions=dirs
        )
        curves[f"system prompt: {label} (VISAGE {m.describe()})"] = {"x": m.axis, "asr": m.asr, "utility": m.utility}
    paired = multis["none"].paired(multis["helpful and safe"])
    print(f"paired VISAGE difference, none − helpful and safe: {paired.describe()}")
    seeds = f"seeds {settings.seed}–{settings.seed + settings.directions - 1}"
    fig = landscape_1d_band(
        curves,
        f"α ({settings.directions} random directions, llm-landscape's draw, {seeds}, "
        "layer-normalised, every tensor except norm weights)",
    )
    fig.update_layout(
        title="Demo pair: 1D safety landscape (keyword ASR and exact-answer utility, 120 + 120 held-out prompts)",
        width=1000,
        height=480,
    )
    if args.out.suffix == ".html":
        fig.write_html(args.out, include_plotlyjs=True, full_html=True)
    else:
        screenshot(fig, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
