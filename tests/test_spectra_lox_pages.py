"""AppTest drives the rank-spectra, LoX and attack-lab pages on the demo pair."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from analysis.core.stats import wilson
from conftest import ROOT


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=300)
    at.run()
    return at


@pytest.fixture(scope="module")
def spectra_page():
    return _page("spectra.py")


@pytest.fixture(scope="module")
def lox_page():
    return _page("lox.py")


def _charts(page):
    return [json.loads(c.proto.spec) for c in page.get("plotly_chart")]


def test_spectra_render(spectra_page):
    page = spectra_page
    assert not page.exception, [e.value for e in page.exception]
    titles = [c["layout"]["title"]["text"] for c in _charts(page)]
    assert "Singular values of the alignment update ΔW" in titles and any(
        t.startswith("Effective rank") for t in titles
    )
    lines = next(
        c for c in _charts(page) if c["layout"]["title"]["text"] == "Singular values of the alignment update ΔW"
    )
    assert len(lines["data"]) == 4 and lines["layout"]["yaxis"]["type"] == "log"  # q_proj of 4 layers


def test_spectra_page_claims_no_phenomenon(spectra_page):
    assert not any("On other builds" in i.value for i in spectra_page.info)


def test_recovery_rank(spectra_page):
    page = spectra_page
    page.slider(key="sp_sets_n").set_value(40)
    page.multiselect(key="sp_ranks").set_value([1, 8])
    page.button(key="sp_recover").click().run()
    assert not page.exception, [e.value for e in page.exception]
    m = next(m for m in page.metric if m.label == "Recovery rank")
    table = page.dataframe[-1].value
    asr = dict(zip(table["rank r"], table["ASR %"]))
    n = len(page.session_state["sp_recovery"].asr) and page.session_state["sp_recovery"].n_harmful
    for a, cell in zip(table["ASR %"], table["95 % interval"]):  # each rank's ASR with its Wilson interval
        lo, hi = wilson(round(a / 100 * n), n)
        assert cell == f"[{100 * lo:.1f}, {100 * hi:.1f}]", (a, cell)
    assert asr[1] >= 30  # one direction of ΔW does not bring the refusal back
    assert m.value == ("8" if asr[8] <= 5 else "> 8")
    rec = page.session_state["sp_recovery"]
    diffs = dict(zip(table["rank r"], table["− aligned, same prompts"]))
    assert diffs[1].startswith(f"+{asr[1]:.1f} [") or asr[1] == 0  # the aligned model refuses all: diff = ASR
    assert rec.vs_aligned[0].significant and "(n.s.)" not in table["McNemar"][0]  # rank 1 is far from aligned
    if rec.rank is not None:
        assert any(rec.found_vs_aligned() in c.value for c in page.caption)


def test_lox_renders_with_the_teaching_default(lox_page):
    from analysis.app_support.presets import presets

    page = lox_page
    assert not page.exception, [e.value for e in page.exception]
    first = presets("lox")[0].settings  # the page's first preset (k = 16, α = 0.75, decoder, chosen on val)
    assert page.slider(key="lox_k").value == first["k"] and page.slider(key="lox_alpha").value == first["alpha"]
    labels = [m.label for m in page.metric]
    assert "ASR (aligned → LoX)" in labels and "Utility" in labels
    asr = float(page.metric[labels.index("ASR (aligned → LoX)")].value.split()[0])
    assert asr <= 10.0  # extrapolating the alignment update keeps nearly all refusals (8.3 % of 48 measured)
    cards = {m.label: m.proto for m in page.metric}
    for label in ("Utility", "Over-refusal", "Degenerate replies"):  # each change with its paired test
        assert "95 % interval" in cards[label].help and "McNemar" in cards[label].help, cards[label].help
        if cards[label].delta.endswith("n.s."):  # within the noise: grey, never a red or green arrow
            assert cards[label].color == cards["ASR (aligned → LoX)"].color  # the 'no change' card's grey
        else:
            assert "(significant)" in cards[label].help
    # on the shipped pair the page says how often LoX held on other builds of the organism (the record's counts)
    note = next(i.value for i in page.info if "On other builds of the demo organism" in i.value)
    assert "'LoX vs a harmful attack'" in note and "2 of 10 fresh builds" in note


def test_lox_slider_changes_the_result_and_restores_weights(lox_page):
    page = lox_page
    page.slider(key="lox_alpha").set_value(3.0)
    page.slider(key="lox_k").set_value(0).run()
    assert not page.exception, [e.value for e in page.exception]
    util = float(page.metric[[m.label for m in page.metric].index("Utility")].value.split()[0])
    assert util < 90.0  # α = 3 on all of ΔW hurts utility
    assert any("LoX" in d.value.columns for d in page.dataframe)  # the replies side by side
    rates = page.dataframe[0].value  # aligned and LoX, every rate with its 95 % interval
    rates = rates.data if hasattr(rates, "data") else rates
    assert list(rates.index) == ["aligned", "LoX"] and rates.loc["LoX", "degenerate"].endswith("]")
    lox_util = rates.loc["LoX", "utility"]
    assert lox_util.startswith(f"{util:.1f} % [")  # the tile's number, with its interval
    paired = " ".join(c.value for c in page.caption if "LoX vs aligned on the same prompts" in c.value)
    for metric in ("ASR (keyword)", "ASR (really complies)", "utility", "over-refusal", "degenerate"):
        assert f"LoX vs aligned, {metric}:" in paired and "McNemar" in paired, paired


def _values(a) -> np.ndarray:
    """A plotly JSON array: a list, or numpy's base64 ``{"dtype", "bdata"}``."""
    if isinstance(a, dict):
        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"]).astype(float)
    return np.asarray(a, dtype=float)


def _assert_wilson_bars(chart: dict, n: int) -> None:
    """Every curve's error bars are the 95 % Wilson interval of its plotted rate (k of ``n`` prompts)."""
    widths = []
    for trace in chart["data"]:
        y = _values(trace["y"]) / 100
        bars = trace["error_y"]
        up, down = _values(bars["array"]) / 100, _values(bars["arrayminus"]) / 100
        for rate, u, d in zip(y, up, down):
            assert abs(rate * n - round(rate * n)) < 1e-9  # one seed: a rate of n prompts
            lo, hi = wilson(round(rate * n), n)
            assert rate - d == pytest.approx(lo, abs=1e-9) and rate + u == pytest.approx(hi, abs=1e-9)
            widths.append(u + d)
    assert max(widths) > 0.1  # 16 prompts: intervals tens of points wide


def test_attack_lab_waits_then_plots_curves():
    page = _page("attack_lab.py")
    assert not page.exception, [e.value for e in page.exception]
    assert any("press Run attacks" in i.value for i in page.info)
    page.slider(key="at_lox_k").set_value(8)
    page.slider(key="at_lox_alpha").set_value(1.0)
    assert page.selectbox(key="at_lox_scope").value == "decoder"  # the first preset's, chosen on val
    page.selectbox(key="at_lox_scope").set_value("all-2d")
    page.slider(key="at_sets_n").set_value(16)
    page.slider(key="at_steps").set_value(4)
    page.slider(key="at_every").set_value(2)
    page.button(key="at_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    charts = {c["layout"]["title"]["text"]: c for c in _charts(page)}
    asr = charts["ASR during the attack"]
    assert [t["name"] for t in asr["data"]] == ["aligned", "LoX k=8 α=1"]
    assert asr["data"][0]["x"] == [0, 2, 4]
    assert any(t.startswith("R_ft") for t in charts)
    _assert_wilson_bars(asr, 16)
    _assert_wilson_bars(charts["Utility during the attack"], 16)  # the demo's utility is exact-answer accuracy
    assert any("Error bars: 95 % Wilson interval" in c.value for c in page.caption)
    paired = next(c.value for c in page.caption if "each variant vs aligned on the same 16 harmful prompts" in c.value)
    assert paired.startswith("At step 4,") and "LoX k=8 α=1: " in paired and "McNemar" in paired, paired
    others = next(c.value for c in page.caption if c.value.startswith("The other rates at step 4"))
    for name in ("really complies", "utility", "over-refusal"):  # every rate of the run paired, not only ASR
        assert f"LoX k=8 α=1, {name}: " in others, others
    util = {t["name"]: _values(t["y"]) for t in charts["Utility during the attack"]["data"] if t.get("name")}
    diff = util["LoX k=8 α=1"][-1] - util["aligned"][-1]  # the chart's last points, in percent
    shown = others.split("LoX k=8 α=1, utility: ")[1].split(" points")[0]
    assert float(shown.replace("−", "-")) == pytest.approx(diff, abs=0.06), (shown, diff)
    assert list(page.table[-1].value.columns)[1:] == ["aligned", "LoX k=8 α=1"]  # 3 samples: shown in full
    rows = [r for s in page.session_state["findings"].values() for r in s.summary if r[0].startswith("ASR after")]
    assert rows and all("paired, last step − step 0: " in r[2] and "McNemar" in r[2] for r in rows), rows
    assert all("one data-order seed" in r[2] for r in rows)  # one seed is named as such in the report
    page.slider(key="at_seeds").set_value(2)
    page.button(key="at_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    paired = next(c.value for c in page.caption if "each variant vs aligned on the same 16 harmful prompts" in c.value)
    fixed_note = [c.value for c in page.caption if "so the seeds are one run and the band has no width" in c.value]
    from analysis.methods.attacks.finetune import AttackSettings

    assert page.radio(key="at_examples").value == "first"
    assert len(fixed_note) == (page.slider(key="at_n").value <= AttackSettings.batch_size) == 1, fixed_note
    by_seed = paired.split("Seed by seed (each variant against the aligned run of the same data order): ")[1]
    assert (
        by_seed.startswith("LoX k=8 α=1: ") and "over 2 seed(s) (per seed " in by_seed and " of 2, McNemar)" in by_seed
    )
    # drawn examples: each seed trains on its own draw, so the two seeds' runs are not one run repeated
    page.radio(key="at_examples").set_value("drawn")
    page.slider(key="at_n").set_value(10)  # 10 of a pool of 50 per seed: draws that differ within 4 steps
    page.button(key="at_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    charts = {c["layout"]["title"]["text"]: c for c in _charts(page)}
    widths = []
    for title in ("ASR during the attack", "Utility during the attack"):
        for band in [t for t in charts[title]["data"] if t.get("fill") == "toself"]:  # hi forward, lo backward
            y = [float(v) for v in _values(band["y"])]
            half = len(y) // 2
            widths.append(max(h - lo for h, lo in zip(y[:half], y[half:][::-1])))
    assert len(widths) == 4 and max(widths) > 0, widths  # a band per variant and chart; the draws differ
    assert any("their data order and each seed's draw of the examples" in c.value for c in page.caption)
    assert not any("the band has no width" in c.value for c in page.caption)
