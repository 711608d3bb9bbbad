"""AppTest drives the critical-regions page on the demo pair: heatmap, prune with control, bad settings."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import analysis.core.cache as cache

    root = tmp_path_factory.mktemp("cache")
    old = cache.DEFAULT_ROOT
    cache.DEFAULT_ROOT = root
    at = AppTest.from_file(str(ROOT / "pages" / "critical_regions.py"), default_timeout=300)
    at.run()
    yield at
    cache.DEFAULT_ROOT = old


def _rate(cell: str) -> float:
    """A table cell '97.5 % [92.9, 99.1]' as the fraction 0.975."""
    return float(cell.split(" %")[0]) / 100


def test_page_renders_heatmaps_and_units(page):
    assert not page.exception, [e.value for e in page.exception]
    assert page.title[0].value == "Critical regions"
    charts = page.get("plotly_chart")
    assert len(charts) == 3  # overlap heatmap, score histogram, unit bars


def test_prune_shows_pruned_and_control_rows(page):
    page.slider(key="cr_sets_n").set_value(16)
    page.button(key="cr_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    df = page.dataframe[0].value
    df = df.data if hasattr(df, "data") else df
    assert list(df.index) == ["aligned", "pruned", "control"]
    assert _rate(df.loc["aligned", "ASR (keyword)"]) <= 0.1
    assert "McNemar" in " ".join(c.value for c in page.caption)  # the paired comparisons are said
    head = page.markdown[0].value  # the teaching preset: the orthogonal projection chosen on val
    assert "removed" in head and "r_s = 3, r_u = 8" in head and "of ranks" in head


def test_orthogonal_projection_reports_ranks(page):
    page.selectbox(key="cr_method").set_value("orthogonal").run()
    page.slider(key="cr_rs").set_value(2)
    page.button(key="cr_go").click().run()
    assert not page.exception
    assert "r_s = 2" in page.markdown[0].value and "of ranks" in page.markdown[0].value
    df = page.dataframe[0].value
    df = df.data if hasattr(df, "data") else df
    assert _rate(df.loc["pruned", "ASR (keyword)"]) > _rate(df.loc["aligned", "ASR (keyword)"])  # refusal broken


def test_extreme_sliders_do_not_crash(page):
    page.selectbox(key="cr_method").set_value("set_difference").run()
    page.slider(key="cr_q").set_value(0.0)
    page.button(key="cr_go").click().run()
    assert not page.exception
    assert "**0.00 %**" in page.markdown[0].value
    page.selectbox(key="cr_method").set_value("units").run()
    page.slider(key="cr_spct").set_value(20.0)
    page.slider(key="cr_upct").set_value(40.0)
    page.slider(key="cr_rpct").set_value(40.0)
    page.button(key="cr_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert "safety units" in page.markdown[0].value  # every slider at its maximum still types all units
    page.slider(key="cr_spct").set_value(0.0)
    page.button(key="cr_go").click().run()
    assert not page.exception
    assert "prune 0 safety units" in page.markdown[0].value
