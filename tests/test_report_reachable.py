"""The report's summary has a row for every page that produced a result, and its button stays in the sidebar
while the model path is wrong (results already computed stay reachable)."""

from streamlit.testing.v1 import AppTest

from analysis.app_support.report import Section, build, summary_rows
from conftest import ROOT


def _depth() -> Section:
    s = Section("Alignment depth")
    s.numbers["share of per-token KL in the first 3 positions (harmful)"] = "97.1 %"
    return s


def test_summary_has_one_row_per_page_with_a_result():
    cr = Section("Critical regions")
    cr.summary.append(("ASR (keyword) after pruning", "0.0 % → 97.5 %", "control 0.8 %"))
    overview = Section("Overview")
    overview.tables["Safety and utility"] = [{"model": "aligned"}, {"model": "base"}]
    rows = summary_rows([cr, _depth(), overview, Section("Spectra")])  # Spectra: nothing computed
    assert [r["page"] for r in rows] == ["Critical regions", "Alignment depth", "Overview"]
    assert rows[0]["result"] == "0.0 % → 97.5 %"  # a page's own rows come first
    assert rows[1]["result"] == "97.1 %" and "first 3 positions" in rows[1]["measured"]
    html = build("Findings", {"aligned": "demo"}, {}, [cr, _depth(), overview], plotly_js="")
    summary = html.split("Summary of findings", 1)[1].split("</table>", 1)[0]
    assert "Alignment depth" in summary and "97.1 %" in summary


def test_report_button_stays_while_the_model_path_is_wrong(tmp_path, monkeypatch):
    import analysis.core.cache as cache

    monkeypatch.setattr(cache, "DEFAULT_ROOT", tmp_path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["findings"] = {"Alignment depth": _depth()}  # a result computed earlier this session
    at.session_state["aligned_src"] = "/no/such/model"
    at.session_state["aligned_src_input"] = "/no/such/model"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Could not load the model pair" in e.value for e in at.error)
    assert any(b.label == "Findings report (HTML)" for b in at.sidebar.get("download_button"))
