"""Warm-up computes exactly what the pages ask for: after `warm` has run a page's teaching default, opening that
page with it computes nothing new (no cache miss), and a warm-up on another spec would show as misses."""

import pytest
from streamlit.testing.v1 import AppTest

from analysis import experiments as ex
from analysis.app_support.config import load_config
from analysis.app_support.presets import presets
from analysis.app_support.warm import warm_preset
from conftest import ROOT

CLICK = {"critical_regions": "cr_go", "safety_landscape": "ls_go"}  # pages that compute on a button
SMALL = "max_prompts = 8\n"  # 8 prompts per set keeps each page quick


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache for both the warm-up and the page, and a small launch config both read."""
    import analysis.core.cache as cache_mod

    monkeypatch.setattr(cache_mod, "DEFAULT_ROOT", tmp_path / "cache")
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    monkeypatch.setenv("BRITTLE_CONFIG", str(cfg))
    ex.forget()
    yield cache_mod.Cache(), load_config(cfg)
    ex.forget()


def _open(page: str) -> AppTest:
    """Run ``page`` with its first preset (applied on the first visit) and press its compute button."""
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=600).run()
    assert not at.exception, [e.value for e in at.exception]
    if page in CLICK:
        at.button(key=CLICK[page]).click().run()
        assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("page", ex.WARMABLE)
def test_a_warmed_preset_is_a_cache_hit_on_its_page(page, cache, demo_pair):
    store, cfg = cache
    warm_preset(demo_pair, presets(page)[0], cfg, store)
    warmed = store.count()
    assert warmed > 0
    ex.forget()  # the page re-reads the disk cache, as a fresh server would
    at = _open(page)
    assert store.count() == warmed, f"{page}: {store.count() - warmed} results computed although warmed"
    assert at.get("plotly_chart") or at.get("metric") or at.dataframe  # the page did show its results


def test_a_warm_up_on_another_spec_leaves_misses(cache, demo_pair):
    """The check above can fail: warmed with 16 prompts per set, the page (8 per set) computes its own."""
    store, cfg = cache
    from dataclasses import replace

    warm_preset(demo_pair, presets("lox")[0], replace(cfg, max_prompts=16), store)
    warmed = store.count()
    ex.forget()
    _open("lox")
    assert store.count() > warmed
