"""AppTest drives the critical-regions page on the demo pair: heatmap, prune with control, bad settings."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analysis.core.stats import wilson
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
    assert list(df.index) == ["aligned", "pruned", "controls (mean ± sd of 5 seeds)"]
    assert _rate(df.loc["aligned", "ASR (keyword)"]) <= 0.1
    captions = " ".join(c.value for c in page.caption)
    assert "McNemar" in captions and "pruned vs aligned, ASR (keyword): " in captions  # the paired comparisons
    assert "pruned vs aligned, utility: " in captions  # the utility cost too, on screen
    assert "pruned vs the 5 controls, ASR (keyword)" in captions
    # every rate of the table paired: pruned vs aligned and vs the control, over-refusal and degenerate included
    paired = next(
        d.value
        for d in page.dataframe
        if "comparison" in d.value.columns and "pruned vs aligned" in set(d.value["comparison"])
    )
    pairs = {(r["comparison"], r["metric"]) for _, r in paired.iterrows()}
    for who in ("pruned vs aligned", "pruned vs control"):
        assert {(who, m) for m in ("ASR (keyword)", "utility", "over-refusal", "degenerate")} <= pairs, pairs
    head = page.markdown[0].value  # the teaching preset: the orthogonal projection chosen on val
    assert "removed" in head and "r_s = 3, r_u = 8" in head and "of ranks" in head


def _frame(page, i: int):
    df = page.dataframe[i].value
    return df.data if hasattr(df, "data") else df


def test_controls_row_is_the_mean_and_sd_of_five_seeded_controls(page):
    """The controls' row is mean ± sd over the 5 seeds' own evaluations, which the expander lists one by one."""
    if "cr_result" not in page.session_state:  # this test may run on a worker where the pruning was not pressed
        page.slider(key="cr_sets_n").set_value(16)
        page.button(key="cr_go").click().run()
    out = page.session_state["cr_result"][0]
    seeds = out.controls.results
    assert len(seeds) == 5 and seeds[0] is out.results["control"]
    edits = {json.dumps(e.spec(), sort_keys=True, default=str) for e in out.region.controls()}
    assert len(edits) == 5  # five different random controls, not one evaluated five times
    asr = np.array([r.asr for r in seeds])
    util = np.array([r.utility for r in seeds])
    row = _frame(page, 0).loc["controls (mean ± sd of 5 seeds)"]
    assert row["ASR (keyword)"] == f"{100 * asr.mean():.1f} ± {100 * asr.std(ddof=1):.1f} %"
    assert row["utility"] == f"{100 * util.mean():.1f} ± {100 * util.std(ddof=1):.1f} %"
    frames = [_frame(page, i) for i in range(len(page.dataframe))]
    per_seed = next(f for f in frames if "control seed 0" in list(f.index))
    assert list(per_seed.index) == [f"control seed {k}" for k in range(5)]
    for k, r in enumerate(seeds):  # each seed's rate with its Wilson interval
        lo, hi = wilson(round(r.asr * r.n_harmful), r.n_harmful)
        assert per_seed.loc[f"control seed {k}", "ASR (keyword)"] == (
            f"{100 * r.asr:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"
        )
    paired = next(f for f in frames if "comparison" in f.columns and "pruned vs control seed 0" in set(f["comparison"]))
    asr_rows = paired[paired["metric"] == "ASR (keyword)"]
    assert list(asr_rows["comparison"]) == [f"pruned vs control seed {k}" for k in range(5)]
    pruned = out.results["pruned"]
    for k, r in enumerate(seeds):
        assert asr_rows.iloc[k]["difference"] == f"{100 * (pruned.asr - r.asr):+.1f} points"


def test_orthogonal_projection_reports_ranks(page):
    page.selectbox(key="cr_method").set_value("orthogonal").run()
    page.slider(key="cr_rs").set_value(2)
    page.button(key="cr_go").click().run()
    assert not page.exception
    assert "r_s = 2" in page.markdown[0].value and "of ranks" in page.markdown[0].value
    df = page.dataframe[0].value
    df = df.data if hasattr(df, "data") else df
    assert _rate(df.loc["pruned", "ASR (keyword)"]) > _rate(df.loc["aligned", "ASR (keyword)"])  # refusal broken


def test_lowrank_decomposition_is_chosen_with_its_seed(page):
    """The reference's seeded svd_lowrank is a widget: the convention caption names it with its seed, and the
    one-pass procedure with it is a message on the page, not a traceback."""
    page.selectbox(key="cr_method").set_value("orthogonal").run()
    page.selectbox(key="cr_procedure").set_value("sequential").run()
    page.selectbox(key="cr_decomposition").set_value("lowrank").run()
    page.number_input(key="cr_lowrank_seed").set_value(5).run()
    page.button(key="cr_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert any("svd_lowrank, q = r, niter = 20, seed 5" in c.value for c in page.caption), [
        c.value for c in page.caption
    ]
    page.selectbox(key="cr_procedure").set_value("one-pass").run()
    page.button(key="cr_go").click().run()
    assert not page.exception
    assert any("use procedure sequential" in e.value for e in page.error), [e.value for e in page.error]
    page.selectbox(key="cr_decomposition").set_value("exact").run()
    page.selectbox(key="cr_procedure").set_value("sequential").run()


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
