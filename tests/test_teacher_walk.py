"""In the browser: chart titles clear of the toolbar and the edge (read from the rendered page), and the
Report button still there after a typo in the model path. Reuses the teacher walk's checks."""

import sys

import pytest
from test_browser import CHROMIUM, browser, server, server_cache  # noqa: F401  (module fixtures: one server, one Chromium)

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from teacher_walk import WALK, title_problems  # noqa: E402


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    pg = browser.new_page(viewport={"width": 1280, "height": 720})
    pg.goto(server)
    pg.locator('[data-testid="stSidebar"]').get_by_role("link", name="Rank spectra").click()
    yield pg
    pg.close()


def test_walk_covers_every_page():
    from pages._catalog import PAGES

    assert len(WALK) == len(PAGES)


def test_titles_clear_of_the_toolbar_on_screen(page):
    page.locator('[data-testid="stMain"] .js-plotly-plot').first.wait_for(timeout=180_000)
    page.wait_for_timeout(1000)
    page.locator('[data-testid="stMain"] .js-plotly-plot').first.hover()  # the toolbar shows on hover
    assert page.locator(".gtitle").count() >= 1
    assert title_problems(page) == []


def test_report_button_survives_a_wrong_model_path(page):
    side = page.locator('[data-testid="stSidebar"]')
    side.get_by_test_id("stDownloadButton").filter(has_text="Findings report (HTML)").wait_for(timeout=60_000)
    side.get_by_role("textbox", name="Aligned model").fill("/no/such/model")
    side.get_by_role("button", name="Load pair").click()
    page.get_by_text("model folder not found").first.wait_for(timeout=60_000)
    assert side.get_by_test_id("stDownloadButton").filter(has_text="Findings report (HTML)").is_visible()
    with page.expect_download(timeout=60_000) as dl:
        side.get_by_test_id("stDownloadButton").filter(has_text="Findings report (HTML)").click()
    html = open(dl.value.path()).read()
    assert "Rank spectra" in html.split("Summary of findings", 1)[1].split("</table>", 1)[0]
