"""AppTest drives the rank-spectra / LoX / attack-lab page on the demo pair."""
import json

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import analysis.cache as cache

    old = cache.DEFAULT_ROOT
    cache.DEFAULT_ROOT = tmp_path_factory.mktemp("cache")
    at = AppTest.from_file(str(ROOT / "pages" / "spectra_lox.py"), default_timeout=300)
    at.run()
    yield at
    cache.DEFAULT_ROOT = old


def _charts(page):
    return [json.loads(c.proto.spec) for c in page.get("plotly_chart")]


def test_spectra_and_lox_render(page):
    assert not page.exception, [e.value for e in page.exception]
    titles = [c["layout"]["title"]["text"] for c in _charts(page)]
    assert "Singular values of ΔW" in titles and any(t.startswith("Effective rank") for t in titles)
    lines = next(c for c in _charts(page) if c["layout"]["title"]["text"] == "Singular values of ΔW")
    assert len(lines["data"]) == 4 and lines["layout"]["yaxis"]["type"] == "log"   # q_proj of 4 layers
    labels = [m.label for m in page.metric]
    assert "ASR (aligned → LoX)" in labels and "Utility" in labels
    # the default LoX on the demo keeps refusing and keeps utility
    asr = float(page.metric[labels.index("ASR (aligned → LoX)")].value.split()[0])
    assert asr <= 5.0


def test_lox_slider_changes_the_result_and_restores_weights(page):
    page.slider(key="lox_alpha").set_value(3.0)
    page.slider(key="lox_k").set_value(0).run()
    assert not page.exception, [e.value for e in page.exception]
    util = float(page.metric[[m.label for m in page.metric].index("Utility")].value.split()[0])
    assert util < 90.0   # α = 3 on all of ΔW hurts utility
    assert "LoX" in page.dataframe[0].value.columns


def test_recovery_rank(page):
    page.multiselect(key="sp_ranks").set_value([1, 8])
    page.button(key="sp_recover").click().run()
    assert not page.exception, [e.value for e in page.exception]
    m = next(m for m in page.metric if m.label == "Recovery rank")
    assert m.value in ("1", "8", "> 8")


def test_attack_lab_waits_then_plots_curves(page):
    page.slider(key="lox_alpha").set_value(1.0)
    page.slider(key="lox_k").set_value(8).run()
    assert any("press Run attacks" in i.value for i in page.info)
    page.slider(key="sl_sets_n").set_value(16)
    page.slider(key="at_steps").set_value(4)
    page.slider(key="at_every").set_value(2)
    page.button(key="at_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    charts = {c["layout"]["title"]["text"]: c for c in _charts(page)}
    asr = charts["ASR during the attack"]
    assert [t["name"] for t in asr["data"]] == ["aligned", "LoX k=8 α=1"]
    assert asr["data"][0]["x"] == [0, 2, 4]
    assert any(t.startswith("R_ft") for t in charts)
    assert list(page.dataframe[-1].value.columns)[1:] == ["aligned", "LoX k=8 α=1"]
