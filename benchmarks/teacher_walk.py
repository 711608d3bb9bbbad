"""Before class: walk every page on its first preset, then the report, as a teacher would; time to each result.

Run ``python -m analysis warm --model demo --config configs/demo.toml`` first (it fills the cache the class
reads), then

    python benchmarks/teacher_walk.py                  # starts the app on 127.0.0.1, walks, stops it
    python benchmarks/teacher_walk.py --url http://…   # walks an app that is already running

One headless Chromium at 1280×720 opens each page from the sidebar, presses the page's start button where it
waits for a click, and waits until the result shows; it prints each page's time to result, whether a chart
title is clear of the chart toolbar and of the left edge (read from the rendered page), and saves a screenshot
per page under ``--shots``. Exit status 1 when a page shows an error or does not finish within ``--timeout``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from load_test import CHROMIUM  # noqa: E402
from streamlit_server import start_server, stop_server  # noqa: E402

MAIN = '[data-testid="stMain"] [data-testid="stElementContainer"]:not([data-stale="true"])'  # this run's elements
CHART = f"{MAIN} .js-plotly-plot"
RUNNING = '[data-testid="stStatusWidget"]'  # the "Running… / Stop" widget, shown while the page computes


@dataclass(frozen=True)
class Step:
    link: str  # the sidebar link
    page: str  # the page's key in pages/_catalog.PAGES (its title shows first)
    button: str | None  # the start button, where the page waits for a click
    result: str  # a CSS selector or "text=…" that shows the result


WALK = [
    Step("Overview / playground", "overview", None, f'{MAIN} [data-testid="stDataFrame"]'),
    Step("Critical regions", "critical_regions", "Prune region and compare", "text=removed"),
    Step("Safety landscape", "safety_landscape", "Compute landscape", "text=VISAGE · system prompt"),
    Step("Rank spectra", "spectra", None, CHART),
    Step("LoX", "lox", None, f'{MAIN} [data-testid="stMetric"]'),
    Step("Attack lab", "attack_lab", "Run attacks", CHART),
    Step("Representations", "representations", None, CHART),
    Step("Alignment depth", "alignment_depth", None, CHART),
]

TITLE_CHECK = """() => {
  const out = [];
  for (const plot of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
    const t = plot.querySelector('.gtitle'), bar = plot.querySelector('.modebar');
    if (!t) continue;
    const a = t.getBoundingClientRect(), box = plot.getBoundingClientRect();
    let clash = false;
    if (bar) { const b = bar.getBoundingClientRect();
      clash = b.width > 0 && !(a.right < b.left || b.right < a.left || a.bottom < b.top || b.bottom < a.top); }
    out.push({title: t.textContent, clash: clash, inset: a.left - box.left});
  }
  return out;
}"""


def title_problems(page) -> list[str]:
    """Chart titles under the toolbar or flush against the chart's left edge, read from the rendered page."""
    out = []
    for t in page.evaluate(TITLE_CHECK):
        if t["clash"]:
            out.append(f"'{t['title'][:40]}' under the toolbar")
        if t["inset"] < 8:
            out.append(f"'{t['title'][:40]}' at the left edge")
    return out


def _wait(page, step: Step, timeout_s: float) -> None:
    """Until the step's page shows its title, then its result, and has finished computing."""
    from pages._catalog import PAGES

    ms = timeout_s * 1000
    page.get_by_role("heading", name=PAGES[step.page].title).first.wait_for(timeout=ms)
    if step.button:
        page.get_by_role("button", name=step.button).click(timeout=ms)
    sel = step.result
    (page.locator(MAIN).get_by_text(sel[5:]).first if sel.startswith("text=") else page.locator(sel).first).wait_for(
        timeout=ms
    )
    page.wait_for_timeout(300)
    page.locator(RUNNING).wait_for(state="hidden", timeout=ms)


def walk(url: str, timeout_s: float, shots: Path | None, width: int = 1280, height: int = 720) -> list[dict]:
    """Walk every page and the report; one row per step: page, seconds to result, problems."""
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        side = page.locator('[data-testid="stSidebar"]')
        for step in WALK:
            t, problems = time.perf_counter(), []
            try:
                if step.link != WALK[0].link:
                    side.get_by_role("link", name=step.link, exact=True).click()
                _wait(page, step, timeout_s)
                took = time.perf_counter() - t
                page.wait_for_timeout(500)  # let the charts draw their titles
                problems += title_problems(page)
            except Exception as e:  # a timeout: reported, the walk goes on
                took, problems = None, [f"no result within {timeout_s:.0f} s ({type(e).__name__})"]
            if page.locator('[data-testid="stException"]').count():
                problems.append("an error is shown")
            if shots:
                page.screenshot(path=str(shots / f"{len(rows) + 1:02d}-{step.link.split()[0].lower()}.png"))
            rows.append({"page": step.link, "seconds": took, "problems": problems})
        t = time.perf_counter()
        try:
            with page.expect_download(timeout=timeout_s * 1000) as dl:
                side.get_by_test_id("stDownloadButton").filter(has_text="Findings report (HTML)").click()
            html = Path(dl.value.path()).read_text()
            summary = html.split("Summary of findings", 1)[1].split("</table>", 1)[0].count("<tr>") - 1
            rows.append(
                {
                    "page": "Report",
                    "seconds": time.perf_counter() - t,
                    "problems": [] if summary >= len(WALK) - 1 else [f"summary has {summary} rows"],
                }
            )
        except Exception as e:
            rows.append({"page": "Report", "seconds": None, "problems": [f"no report ({type(e).__name__})"]})
        browser.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="an app already running (default: start one on a free port)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "demo.toml"), help="launch config of the app started")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a page may take to show its result")
    ap.add_argument(
        "--shots",
        type=Path,
        default=ROOT / "test-artifacts" / "teacher-walk",
        help="folder for one 1280×720 screenshot per page",
    )
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: Chromium not found at {CHROMIUM}", file=sys.stderr)
        return 2
    args.shots.mkdir(parents=True, exist_ok=True)
    try:
        proc, url = (None, args.url) if args.url else start_server(args.config)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        rows = walk(url, args.timeout, args.shots)
    finally:
        if proc is not None:
            stop_server(proc)
    print(f"{'page':24s} {'time to result':>15s}  problems")
    for r in rows:
        took = "—" if r["seconds"] is None else f"{r['seconds']:.1f} s"
        print(f"{r['page']:24s} {took:>15s}  {'; '.join(r['problems']) or 'none'}")
    return 1 if any(r["problems"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
