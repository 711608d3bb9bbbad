"""A findings report from a real session on the demo pair (teaching presets, cached results), and a screenshot of
its summary for the README: ``python scripts/report_example.py [--out DIR]``.

Runs the Overview, Critical regions (prune on the default preset) and Safety landscape (compute the default
preset, then the 2D preset: both results stay in the report) pages headlessly with Streamlit's AppTest,
builds the report from their findings, and renders it with headless Chromium: ``findings-report.html`` and
``findings-report.pdf`` in test-artifacts/, and ``report_summary.png`` (the summary) in DIR (default docs/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def session_sections() -> list:
    """The findings of a short session: every page's Section (with its earlier results)."""
    from streamlit.testing.v1 import AppTest

    sections = {}
    at = AppTest.from_file(str(ROOT / "pages" / "overview.py"), default_timeout=600).run()
    sections.update(at.session_state["findings"])
    at = AppTest.from_file(str(ROOT / "pages" / "critical_regions.py"), default_timeout=600).run()
    at.button(key="cr_go").click().run()
    sections.update(at.session_state["findings"])
    at = AppTest.from_file(str(ROOT / "pages" / "safety_landscape.py"), default_timeout=600).run()
    at.button(key="ls_go").click().run()
    at.selectbox(key="safety_landscape_preset").set_value("The basin in 2D (7 × 7)").run()
    at.button(key="ls_go").click().run()
    sections.update(at.session_state["findings"])
    for a in (at,):
        if a.exception:
            raise SystemExit(f"error: a page failed: {a.exception[0].value}")
    return list(sections.values())


def render(html_path: Path, pdf_path: Path | None, png_path: Path | None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,  # software WebGL draws the 3D surface
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
        )
        page = b.new_page(viewport={"width": 1100, "height": 760})
        page.goto(html_path.resolve().as_uri())
        page.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot').length == document.querySelectorAll('.fig').length"
        )
        if png_path is not None:
            page.locator("#summary").screenshot(path=str(png_path))
        if pdf_path is not None:
            page.emulate_media(media="print")
            page.pdf(path=str(pdf_path), format="A4", print_background=True)
        b.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from analysis.app_support.report import build
    from analysis.core.models import load_pair

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pair = load_pair("demo", device="cpu")
    html = build(
        "Alignment brittleness: findings",
        {role: f"{lm.source} ({lm.family}, {lm.n_params / 1e6:.2f} M params)" for role, lm in pair.models().items()},
        {"device": "cpu"},
        session_sections(),
    )
    files = ROOT / "test-artifacts"
    files.mkdir(exist_ok=True)
    html_path = files / "findings-report.html"
    html_path.write_text(html, encoding="utf-8")
    render(html_path, files / "findings-report.pdf", out / "report_summary.png")
    print(f"wrote {html_path}, {files / 'findings-report.pdf'} and {out / 'report_summary.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
