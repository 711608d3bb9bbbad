"""End to end: `streamlit run` in a subprocess, driven by headless Debian Chromium through Playwright."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BRITTLE_CACHE": str(tmp_path_factory.mktemp("cache")),
           "BRITTLE_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stdout.read().decode()[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, server):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.goto(server)
    yield pg
    pg.close()


def _no_exception(pg):
    assert pg.locator('[data-testid="stException"]').count() == 0, pg.locator('[data-testid="stException"]').first.inner_text()


def test_overview_renders_table(page):
    page.get_by_text("Safety and utility").wait_for(timeout=90_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=90_000)
    _no_exception(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)


def test_playground_answers_in_browser(page):
    box = page.get_by_label("…or write your own")
    box.fill("what is 3 plus 3 ?")
    box.press("Enter")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("stopped by").first.wait_for(timeout=60_000)
    page.locator("pre").nth(1).wait_for(timeout=60_000)  # code blocks load lazily after the captions
    codes = [c.inner_text().strip() for c in page.locator("pre").all()]
    assert codes == ["6 .", "6 ."], codes
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def test_bad_model_folder_in_sidebar_form(page):
    side = page.locator('[data-testid="stSidebar"]')
    box = side.get_by_role("textbox", name="Aligned model")
    box.fill("/no/such/model")
    side.get_by_role("button", name="Load pair").click()
    page.get_by_text("model folder not found").first.wait_for(timeout=60_000)
    _no_exception(page)
    box = side.get_by_role("textbox", name="Aligned model")
    box.fill("demo")
    side.get_by_role("button", name="Load pair").click()
    try:
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    finally:
        page.screenshot(path=str(ARTIFACTS / "sidebar-roundtrip.png"), full_page=True)
    assert page.get_by_text("model folder not found").count() == 0


def test_critical_regions_page_prunes_in_browser(page):
    page.get_by_role("link", name="Critical regions").click()
    page.get_by_text("Where safety and utility overlap").wait_for(timeout=120_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Prune region and compare").click()
    # the teaching preset (orthogonal projection): its result line says "removed … % of ranks"
    page.get_by_text("% of ranks").first.wait_for(timeout=180_000)
    assert page.locator("p", has_text="removed").filter(has_text="% of ranks").count() >= 1
    page.get_by_text("Unit types per layer").wait_for(timeout=60_000)
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "critical_regions.png"), full_page=True)
    page.get_by_role("link", name="Overview / playground").click()
    page.get_by_text("Safety and utility").wait_for(timeout=60_000)


def test_safety_landscape_page_in_browser(page):
    page.get_by_role("link", name="Safety landscape").click()
    page.get_by_role("button", name="Compute landscape").wait_for(timeout=60_000)
    page.get_by_role("button", name="Compute landscape").click()
    page.get_by_text("VISAGE · system prompt: none").wait_for(timeout=180_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "safety_landscape.png"), full_page=True)
    page.get_by_role("link", name="Overview / playground").click()
    page.get_by_text("Safety and utility").wait_for(timeout=60_000)


def test_bad_upload_is_explained_in_browser(page, tmp_path):
    page.get_by_text("Evaluation settings").click()
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nx,y\n")
    page.locator('input[type="file"]').first.set_input_files(str(bad))   # the harmful-prompts uploader
    page.get_by_text("Cannot use the harmful prompts").wait_for(timeout=60_000)
    assert page.get_by_text("expected 'goal,target'").count() >= 1
    _no_exception(page)


def test_spectra_lox_attack_pages_in_browser(page):
    page.get_by_role("link", name="Rank spectra").click()
    page.get_by_text("Singular values of the alignment update ΔW").first.wait_for(timeout=120_000)
    page.get_by_text("Recovery rank").first.wait_for(timeout=60_000)
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "spectra.png"), full_page=True)
    page.get_by_role("link", name="LoX", exact=True).click()
    page.get_by_text("ASR (aligned → LoX)").wait_for(timeout=120_000)
    page.get_by_text("Prompt for a live side-by-side").wait_for(timeout=60_000)
    page.get_by_role("button", name="Generate side by side").wait_for(timeout=60_000)
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "lox.png"), full_page=True)
    page.get_by_role("link", name="Attack lab").click()
    page.get_by_role("button", name="Run attacks").click()
    page.get_by_text("ASR during the attack").first.wait_for(timeout=300_000)
    page.get_by_text("Generations at step").wait_for(timeout=60_000)
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "attack_lab.png"), full_page=True)
    page.get_by_role("link", name="Overview / playground").click()
    page.get_by_text("Safety and utility").wait_for(timeout=60_000)


def test_representations_page_in_browser(page):
    page.get_by_role("link", name="Representations").click()
    page.get_by_text("Linear probes").wait_for(timeout=120_000)
    page.get_by_text("aligned: residual stream after layer 3, PCA").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Ablate each layer's direction and measure ASR").click()
    page.get_by_text("ASR with r ablated").wait_for(timeout=180_000)
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "representations.png"), full_page=True)
    page.get_by_role("link", name="Overview / playground").click()
    page.get_by_text("Safety and utility").wait_for(timeout=60_000)


def _playground(pg, prompt: str) -> list[str]:
    """Ask the playground; wait until the shown replies are new (the previous ones stay until replaced)."""
    before = [c.inner_text().strip() for c in pg.locator("pre").all()]
    box = pg.get_by_label("…or write your own")
    box.fill(prompt)
    box.press("Enter")
    pg.get_by_role("button", name="Generate").click()
    for _ in range(240):
        pg.wait_for_timeout(500)
        now = [c.inner_text().strip() for c in pg.locator("pre").all()]
        if len(now) == 2 and (not before or all(n != b for n, b in zip(now, before))):
            return now   # consecutive prompts are chosen so that both models' replies change
    raise AssertionError(f"the playground did not answer {prompt!r}")


def test_two_sessions_never_see_each_others_edits_and_cancel(page, browser, server):
    """Session A perturbs the shared model point by point (a 2D landscape); session B, in its own browser
    context, generates meanwhile and must get the unedited model's answers; then A cancels."""
    page.get_by_text("Safety and utility").wait_for(timeout=120_000)   # the app's own menu is in place
    page.get_by_role("link", name="Safety landscape").click()
    page.get_by_role("button", name="Compute landscape").wait_for(timeout=60_000)
    page.get_by_text("Data and direction").click()          # the presets set it; it opens on demand
    page.get_by_text("2D", exact=True).click()
    page.get_by_text("49 grid points").wait_for(timeout=60_000)   # 7 × 7 points × 96 prompts, a long computation
    page.get_by_role("button", name="Compute landscape").click()
    page.get_by_role("button", name="Cancel / clear").wait_for(timeout=60_000)
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        other.goto(server)
        other.get_by_text("Safety and utility").wait_for(timeout=120_000)
        page.get_by_text("2D landscape: point").first.wait_for(timeout=60_000)   # A is between points
        for a, b in ((2, 5), (3, 3)):
            assert _playground(other, f"what is {a} plus {b} ?") == [f"{a + b} ."] * 2
            aligned, base = _playground(other, "can you explain how one would rob the tent ?")
            assert "sorry" in aligned and base.startswith("sure")
        still_running = page.get_by_text("2D landscape: point").count() > 0
        page.get_by_role("button", name="Cancel / clear").click()
        page.get_by_text("Cancelled.").wait_for(timeout=60_000)
        _no_exception(page)
        _no_exception(other)
        assert page.get_by_text("VISAGE (2D)").count() == 0 or not still_running
        assert _playground(other, "what is 4 plus 4 ?") == ["8 .", "8 ."]
        page.screenshot(path=str(ARTIFACTS / "cancelled.png"), full_page=True)
        other.screenshot(path=str(ARTIFACTS / "second-session.png"), full_page=True)
    finally:
        other.context.close()
    page.get_by_role("link", name="Overview / playground").click()
    page.get_by_text("Safety and utility").wait_for(timeout=60_000)


PAGES = {"Overview / playground": "Safety and utility", "Critical regions": "Where safety and utility overlap",
         "Safety landscape": "Compute landscape", "Rank spectra": "Singular values of the alignment update ΔW",
         "LoX": "ASR (aligned → LoX)", "Attack lab": "Run attacks",
         "Representations": "Linear probes", "Alignment depth": "Per-token divergence, aligned vs base"}


def test_full_walk_through_every_page(page):
    """Every page of the menu, in order, renders without an exception; a screenshot of each is saved."""
    ARTIFACTS.mkdir(exist_ok=True)
    for i, (title, marker) in enumerate(PAGES.items()):
        page.get_by_role("link", name=title, exact=True).click()
        page.get_by_text(marker).first.wait_for(timeout=180_000)
        page.wait_for_timeout(1000)
        _no_exception(page)
        page.screenshot(path=str(ARTIFACTS / f"walk-{i + 1}-{title.split()[0].lower()}.png"), full_page=True)
    assert len(list(ARTIFACTS.glob("walk-*.png"))) >= len(PAGES)


def _full_page(pg, path) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main container, so the viewport is made as
    tall as that container's content for the shot, then restored."""
    size = pg.viewport_size
    height = pg.evaluate("Math.max(...Array.from(document.querySelectorAll('[data-testid=\\'stMain\\'], "
                         "[data-testid=\\'stAppViewContainer\\'], section.main')).map(e => e.scrollHeight), "
                         "document.body.scrollHeight)")
    pg.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 12_000))})
    pg.wait_for_timeout(800)
    pg.screenshot(path=str(path), full_page=True)
    pg.set_viewport_size(size)


def test_walk_every_page_at_1280x720(browser, server):
    """Issue #17: every page at a projector's 1280 × 720, full-page screenshots in test-artifacts/walk720-*.png;
    the menu icons are Material icons (no emoji font needed), charts carry this app's colours, nothing raised."""
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    pg = ctx.new_page()
    try:
        pg.goto(server)
        pg.get_by_text("Safety and utility").wait_for(timeout=180_000)
        nav = pg.locator('[data-testid="stSidebarNav"]')
        assert nav.locator('[data-testid="stIconMaterial"]').count() >= len(PAGES), "menu icons are not Material icons"
        for i, (title, marker) in enumerate(PAGES.items()):
            pg.get_by_role("link", name=title, exact=True).click()
            pg.get_by_text(marker).first.wait_for(timeout=300_000)
            if title.startswith("Overview"):
                pg.get_by_text("Playground").first.wait_for(timeout=120_000)
            if title == "Safety landscape":
                pg.get_by_role("button", name="Compute landscape").click()
                pg.get_by_text("VISAGE · system prompt").first.wait_for(timeout=300_000)
            pg.wait_for_timeout(1500)
            _no_exception(pg)
            for chart in pg.locator(".js-plotly-plot").all():
                colours = chart.evaluate("el => Array.from(el.querySelectorAll('path.js-line, .point, .bars path'))"
                                         ".map(p => getComputedStyle(p).stroke + '|' + getComputedStyle(p).fill)")
                assert not any("rgb(0, 0, 1)" in c or "rgb(0, 0, 2)" in c for c in colours), title
            _full_page(pg, ARTIFACTS / f"walk720-{i + 1}-{title.split()[0].lower()}.png")
        assert len(list(ARTIFACTS.glob("walk720-*.png"))) == len(PAGES)
    finally:
        ctx.close()
