"""AppTest drives the alignment-depth page on the demo pair with small sizes."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from conftest import page_charts as _charts
from conftest import plotly_values as _values


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from analysis.core.cache import Cache

    old = Cache.__init__.__defaults__  # Cache() binds its default root at import: point it at a fresh folder
    Cache.__init__.__defaults__ = (tmp_path_factory.mktemp("cache"),)
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "alignment_depth.py"), default_timeout=300)
        at.run()
        at.slider(key="ad_n").set_value(16).run()
        yield at
    finally:
        Cache.__init__.__defaults__ = old


def _trace(chart, name):
    return next(_values(t["y"]) for t in chart["data"] if t.get("name") == name)


def test_kl_curves_and_zoom(page):
    assert not page.exception, [e.value for e in page.exception]
    charts = _charts(page)
    kl = charts["Per-token KL(aligned ‖ base), mean and 25–75 % band"]
    harmful, benign = _trace(kl, "harmful"), _trace(kl, "benign (control)")
    assert harmful[0] > 1.0 and harmful[0] > 100 * benign[0]  # alignment acts on the first reply token
    assert max(harmful[3:]) < 0.1 * harmful[0]
    zoom = [t for t in charts if t.startswith("KL(aligned ‖ base) per token")]
    assert zoom and _values(charts[zoom[0]]["data"][0]["y"])[0] == pytest.approx(harmful[0], rel=1.0)
    shares = [m.value for m in page.metric if m.label.startswith("KL in the first 3")]
    assert shares and float(shares[0].rstrip(" %")) > 90
    caption = next(c.value for c in page.caption if "bootstrap intervals over pairs" in c.value)
    assert f"harmful {shares[0]} [" in caption and "harmful − benign control: " in caption


def test_prefilling_and_emulated_disalignment(page):
    page.multiselect(key="ad_ks").set_value([0, 1, 3])
    page.button(key="ad_pf_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    chart = _charts(page)["Prefilling attack: ASR against prefilled tokens k"]
    aligned = _trace(chart, "aligned · keyword")
    assert aligned[0] <= 10 and min(aligned[1:]) >= 80
    assert min(_trace(chart, "base · keyword")) >= 90
    assert all(t["error_y"] is not None for t in chart["data"])  # 95 % Wilson bars over the 16 prompts
    rates = next(d.value for d in page.dataframe if "k" in d.value.columns)
    assert list(rates["k"]) == [0, 1, 3] and all(c.endswith("]") for c in rates["aligned ASR"])
    paired = " ".join(c.value for c in page.caption if "Base vs aligned at each k" in c.value)
    assert "k=0: +" in paired and "McNemar" in paired and "k=3:" in paired, paired  # base minus aligned at k = 0
    # "really complies" paired the same way: base − aligned from the table's own rates at k = 0
    comply = paired.split("Really complies (")[1]
    a0, b0 = (float(rates[f"{who} complies"].iloc[0].split(" %")[0]) for who in ("aligned", "base"))
    assert f"k=0: +{b0 - a0:.1f} points [" in comply and comply.count("McNemar") == 3, comply
    table = next(d.value for d in page.dataframe if "aligned reply" in d.value.columns)
    assert len(table) == 16 and all(r.startswith(p) for r, p in zip(table["aligned reply"], table["prefix"]))
    page.multiselect(key="ad_alphas").set_value([0.0, 1.0])
    page.slider(key="ad_ed_sets_n").set_value(8)
    page.button(key="ad_ed_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    ed = _charts(page)["Emulated disalignment: ASR and utility against α"]
    assert min(_trace(ed, "ASR (keyword)")) >= 80 and min(_trace(ed, "utility")) >= 75
    models = next(d.value for d in page.dataframe if "model" in d.value.columns)
    assert list(models["model"]) == ["aligned", "base", "ED α=0", "ED α=1"]
    assert all(c.endswith("]") for c in models["ASR (keyword)"])  # every rate with its 95 % interval
    paired = " ".join(c.value for c in page.caption if "Each α vs the aligned model" in c.value)
    assert "ED α=1 vs aligned, ASR (keyword): +" in paired and "McNemar" in paired, paired
    assert "ED α=1 vs aligned, ASR (really complies): " in paired, paired  # the plotted "really complies" too


def test_depth_of_a_lox_edit(page):
    page.radio(key="ad_edit").set_value("LoX").run()
    page.button(key="ad_edit_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    chart = next(c for t, c in _charts(page).items() if t.startswith("Depth of an edit"))
    names = [t.get("name") for t in chart["data"] if t.get("mode")]
    assert names[0] == "aligned ‖ base" and names[1].startswith("aligned ‖ LoX")
    lox = _trace(chart, names[1])
    assert all(v >= 0 for v in lox) and max(lox) > 0
    caption = next(c.value for c in page.caption if "over the same" in c.value and "harmful pairs" in c.value)
    assert "paired bootstrap over the same pairs" in caption and " − base: " in caption


def test_depth_of_a_random_perturbation_reports_its_spread_over_seeds(page):
    """One random direction is one draw: beside the chosen seed's share, the page gives the share along the
    next seeds' directions too, as mean ± sd, and the chosen seed's share is the first of them."""
    page.radio(key="ad_edit").set_value("random perturbation").run()
    page.number_input(key="ad_edit_seed").set_value(4)
    page.button(key="ad_edit_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    shown = next(m.value for m in page.metric if m.label.startswith("KL in the first 3 positions (random seed 4"))
    caption = next(c.value for c in page.caption if "Over the directions of seeds" in c.value)
    spread = caption.split("Over the directions of seeds 4–6: ")[1]
    per_seed = [float(v) for v in spread.split("(per seed ")[1].split(")")[0].split(", ")]
    assert len(per_seed) == 3 and per_seed[0] == float(shown.rstrip(" %"))
    mean = float(spread.split(" ± ")[0])
    assert mean == pytest.approx(sum(per_seed) / 3, abs=0.06) and "(sd, n = 3)" in spread
    assert len(set(per_seed)) == 3  # three directions, three different depths
