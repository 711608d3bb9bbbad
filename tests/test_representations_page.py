"""AppTest drives the representations page on the demo pair."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from conftest import page_charts as _charts
from conftest import plotly_values as _values


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import analysis.core.cache as cache

    old = cache.DEFAULT_ROOT
    cache.DEFAULT_ROOT = tmp_path_factory.mktemp("cache")
    at = AppTest.from_file(str(ROOT / "pages" / "representations.py"), default_timeout=300)
    at.run()
    yield at
    cache.DEFAULT_ROOT = old


def test_views_and_probes_render(page):
    assert not page.exception, [e.value for e in page.exception]
    charts = _charts(page)
    assert (
        "aligned: residual stream after layer 3, PCA" in charts and "base: residual stream after layer 3, PCA" in charts
    )
    probes = charts["Probe accuracy, harmful vs benign (5-fold CV, last token)"]
    by_model = {t["name"]: _values(t["y"]) for t in probes["data"]}
    assert set(by_model) == {"aligned", "base"}
    assert max(by_model["aligned"]) >= 95 and by_model["aligned"][0] == pytest.approx(50, abs=5)
    from analysis.core.stats import wilson

    n = 240  # 120 + 120 prompts, each predicted once by the fold that held it out
    for t in probes["data"]:  # 95 % Wilson error bars around every layer's accuracy
        ys, up, down = _values(t["y"]), _values(t["error_y"]["array"]), _values(t["error_y"]["arrayminus"])
        for y, u, d in zip(ys, up, down):
            lo, hi = wilson(round(y / 100 * n), n)
            assert (y + u, y - d) == (pytest.approx(100 * hi, abs=0.01), pytest.approx(100 * lo, abs=0.01))
    caption = next(c.value for c in page.caption if "held-out predictions" in c.value)
    assert "Last layer: aligned " in caption and " [" in caption
    assert "last layer: base − aligned " in caption and "McNemar" in caption  # paired on the same predictions
    assert {t["name"] for t in charts["aligned: residual stream after layer 3, PCA"]["data"]} == {"harmful", "benign"}
    slider = page.select_slider(key="rp_layer")  # the slider names the layer as its plot does
    assert slider.options[0] == "emb." and slider.options[-1] == "after layer 3"
    assert slider.options[slider.value] == "after layer 3"  # its value is the boundary the charts above show


def test_umap_colour_by_refusal_and_an_edited_model(page):
    page.radio(key="rp_edit").set_value("LoX")
    page.radio(key="rp_proj").set_value("umap")
    page.radio(key="rp_colour").set_value("refused").run()
    assert not page.exception, [e.value for e in page.exception]
    charts = _charts(page)
    from analysis.methods.lox import LoX

    edited = [t for t in charts if t.startswith(f"edited (LoX k={LoX.k} α=1)")]  # the page's α slider starts at 1
    assert edited and edited[0].endswith("UMAP")
    names = {t["name"] for t in charts["aligned: residual stream after layer 3, UMAP"]["data"]}
    assert "harmful, refused" in names and "benign" in names
    assert len(charts["Probe accuracy, harmful vs benign (5-fold CV, last token)"]["data"]) == 3


def test_direction_ablation_scan(page):
    page.radio(key="rp_proj").set_value("pca")
    page.button(key="rp_ablate").click().run()
    assert not page.exception, [e.value for e in page.exception]
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Chosen direction"] == "after layer 3"  # boundary 4, 0-based layers
    assert float(metrics["ASR with r ablated"].split()[0]) >= 50
    assert any("chosen on the validation prompts" in c.value for c in page.caption)  # not on the prompts shown
    card = next(m for m in page.metric if m.label == "ASR with r ablated")
    assert "95 % interval" in card.proto.help and "McNemar p < 0.001 (significant)" in card.proto.help
    assert card.proto.delta.startswith("+") and "n.s." not in card.proto.delta
    assert "replies with r ablated (r from after layer 3)" in page.dataframe[-1].value.columns
    rates = next(d.value for d in page.dataframe if "ASR (keyword)" in d.value.columns)  # the best layer's rates
    rates = rates.data if hasattr(rates, "data") else rates
    assert list(rates.index) == ["unedited", "ablated after layer 3"]
    assert all(cell.endswith("]") for cell in rates.to_numpy().ravel())  # each with its 95 % interval
    assert rates.loc["ablated after layer 3", "ASR (keyword)"].startswith(metrics["ASR with r ablated"].split()[0])
    paired = " ".join(c.value for c in page.caption if "Ablated vs unedited" in c.value)
    assert "ablated after layer 3 vs unedited, ASR (keyword): +" in paired and "McNemar p < 0.001" in paired, paired
    chart = _charts(page)["Ablating the refusal direction taken at each layer"]
    asr_trace = next(t for t in chart["data"] if t["name"] == "ASR")
    assert asr_trace["error_y"] is not None  # Wilson error bars on every ablated layer's ASR


def test_a_pruned_model_is_one_of_the_edited_models(page):
    page.radio(key="rp_edit").set_value("pruned").run()
    assert not page.exception, [e.value for e in page.exception]
    charts = _charts(page)
    assert any(t.startswith("edited (pruned: orthogonal projection: r_s = 3, r_u = 8 (one-pass))") for t in charts)
    probes = charts["Probe accuracy, harmful vs benign (5-fold CV, last token)"]
    assert len(probes["data"]) == 3


def test_a_random_perturbation_is_named_one_draw(page):
    page.radio(key="rp_edit").set_value("random perturbation").run()
    assert not page.exception, [e.value for e in page.exception]
    assert any("The random perturbation is one draw (random seed 0" in c.value for c in page.caption)
    rows = [r for s in page.session_state["findings"].values() for r in s.summary if "random seed" in r[0]]
    assert rows and all("one random direction (one draw)" in r[2] for r in rows), rows


def test_a_loss_utility_scan_draws_the_benign_loss_with_bootstrap_bars(page):
    """With the built-in 'instruct' benign set (reference replies, no checkable answer for every item: a loss
    utility, as a real model's default), the ablation scan draws the benign loss in nats on its own chart with each
    layer's 95 % bootstrap interval over the benign items."""
    page.radio(key="rp_edit").set_value("none")
    page.radio(key="rp_proj").set_value("pca")
    page.selectbox(key="rp_sets_benign_set").set_value("instruct")
    try:
        page.run()
        page.button(key="rp_ablate").click().run()
        assert not page.exception, [e.value for e in page.exception]
        chart = _charts(page)["Benign loss with the refusal direction of each layer ablated (lower is better)"]
        trace = chart["data"][0]
        num = lambda vs: [float("nan") if v is None else float(v) for v in _values(vs)]  # noqa: E731  (nan: null)
        ys, up, down = num(trace["y"]), num(trace["error_y"]["array"]), num(trace["error_y"]["arrayminus"])
        assert len(ys) == 5 and ys[0] != ys[0]  # no point at the embeddings (nan), one per ablated boundary 1–4
        assert all(u > 0 and d > 0 for u, d in zip(up[1:], down[1:])), (up, down)  # a real spread over the items
        assert all(y > 0 for y in ys[1:]) and max(ys[1:]) < 50  # nats, not percentages
        assert "Ablating the refusal direction taken at each layer" in _charts(page)  # the ASR chart stays
    finally:
        page.selectbox(key="rp_sets_benign_set").set_value("(the model's default)").run()
