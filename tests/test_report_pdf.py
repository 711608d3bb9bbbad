"""The findings report opens offline in headless Chromium and prints to a clean PDF (pages rendered to images, its
text extracted) that shows the report's numbers; every file is written under the test's temporary folder."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis.app_support.report import Section, build

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
    pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed"),
]


def _report() -> tuple[str, int]:
    from test_style import _figures

    figs = _figures()
    s1 = Section(
        "Overview",
        settings={"prompts": "120 + 120, system prompt: (none)"},
        summary=[("ASR (keyword), aligned", "0.0 %", "really complies 0.0 %; 120 + 120 prompts")],
        tables={"Sample generations": [{"prompt": f"prompt {i}", "reply": "sure . " * 30} for i in range(12)]},
    )
    s2 = Section(
        "Figures",
        figures={f.layout.title.text + name: f.to_json() for name, f in figs.items()},
        summary=[("VISAGE (1D)", "68.1 / 100", "α ∈ [−2, 2]")],
    )
    return build("Findings", {"aligned": "demo", "base": "demo:base"}, {"device": "cpu"}, [s1, s2]), len(figs)


def test_report_prints_to_pdf(tmp_path):
    from playwright.sync_api import sync_playwright

    html, n_figs = _report()
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,  # software WebGL draws the 3D surface
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
        )
        page = b.new_page(viewport={"width": 1100, "height": 800})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length == {n_figs}", timeout=60_000)
        assert all(u.startswith("file:") or u.startswith("data:") for u in requests), requests  # offline
        page.emulate_media(media="print")
        page.set_viewport_size({"width": 700, "height": 1000})  # about an A4 page's printable width
        page.wait_for_timeout(300)
        overflow = page.evaluate(
            "Array.from(document.querySelectorAll('.fig, table')).filter("
            "e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).length"
        )
        assert overflow == 0, f"{overflow} figures or tables wider than the page"
        page.pdf(path=str(tmp_path / "report.pdf"), format="A4", print_background=True)
        b.close()
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "report.pdf"), str(tmp_path / "pg")], check=True)
    pages = sorted(tmp_path.glob("pg*.png"))
    text = " ".join(
        subprocess.run(
            ["pdftotext", str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )  # table cells wrap: compare word by word
    for shown in (
        "ASR (keyword), aligned",
        "0.0 %",
        "VISAGE (1D)",
        "68.1 / 100",
        "120 + 120, system prompt: (none)",
        "prompt 11",
    ):  # the numbers and the table's last row print
        assert shown in text, shown
    assert len(pages) >= 3
    from PIL import Image

    for pg in pages:
        a = np.asarray(Image.open(pg).convert("L"), dtype=float)
        assert a.std() > 5 and (a < 128).mean() > 0.002, f"{pg.name} is blank"
    first = np.asarray(Image.open(pages[0]).convert("RGB"), dtype=int)
    blue = (abs(first[..., 0] - 0x00) < 40) & (abs(first[..., 1] - 0x72) < 40) & (abs(first[..., 2] - 0xB2) < 40)
    assert blue.sum() > 100  # the summary's frame is on the first page
