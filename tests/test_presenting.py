"""Reports, figure exports and the demo-mode launch config."""

import json
import re

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from analysis.app_support.config import AppConfig, ConfigError, load_config
from analysis.app_support.report import Section, build
from conftest import ROOT


def test_report_is_self_contained_and_escaped():
    fig = go.Figure(go.Scatter(x=[0, 1], y=[2, 3]), layout=dict(title=dict(text="ASR </script><b>x</b>")))
    s = Section(
        "Overview",
        notes=["a note"],
        numbers={"ASR": "0.0 %"},
        figures={"f": fig.to_json()},
        tables={"Sample generations": [{"prompt": "<script>alert(1)</script>", "reply": "sure ."}]},
    )
    from plotly.offline import get_plotlyjs

    sections = [s, Section("empty page"), Section("caveat only", caveat="held on 1 of 6")]
    html = build("Findings", {"aligned": "demo"}, {"system prompt": "None"}, sections)
    assert get_plotlyjs()[:2000] in html and len(html) > 1_000_000  # plotly.js is inlined
    bare = build("Findings", {"aligned": "demo"}, {}, [s], plotly_js="/* plotly */")
    assert "<script src=" not in bare and "http" not in bare  # nothing loaded from outside
    assert html.count("Plotly.newPlot(") == 1
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert "</script><b>" not in html  # figure JSON cannot end the script
    assert "ASR" in html and "0.0 %" in html and "a note" in html and "empty page" not in html
    assert "caveat only" not in html and "held on 1 of 6" not in html  # a caveat alone is not a result
    empty = build("Findings", {"aligned": "demo"}, {}, [], plotly_js="")
    assert "No results were computed" in empty


def test_session_findings_become_a_report(tmp_path, monkeypatch):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    sec = at.session_state["findings"]["Overview"]
    rows = sec.tables["Safety and utility"]
    assert [r["model"] for r in rows] == ["aligned", "base"] and float(rows[1]["ASR (keyword)"].split(" %")[0]) >= 90
    pct = re.compile(r"^\d+\.\d % \[\d+\.\d, \d+\.\d\]$")  # one unit, with its interval
    assert all(pct.match(r["ASR (keyword)"]) and pct.match(r["over-refusal"]) for r in rows), rows
    assert [w for w, _, _ in sec.summary] == ["ASR (keyword), aligned", "ASR (keyword), base"]
    assert sec.settings["prompts"].endswith("system prompt: (none)")
    html = build("Findings", {"aligned": "demo"}, {}, [sec], plotly_js="")
    assert "Sample generations" in html and "i am sorry" in html
    assert html.index("Summary of findings") < html.index("Contents") < html.index("Sample generations")
    assert "system prompt: (none)" in html and "None" not in html.replace("(none)", "")
    # the shipped pair: how often the page's phenomenon held on other builds, under the section's heading
    assert "'evaluate targets' (the README's pass criteria) held on:" in sec.caveat and "**" not in sec.caveat
    assert html.index("<h2 id='overview'") < html.index("fresh builds (a new BASE and alignment each)")
    assert any(b.label == "Findings report (HTML)" for b in at.sidebar.get("download_button"))


def test_every_figure_has_exports(tmp_path, monkeypatch):
    at = AppTest.from_file(str(ROOT / "pages" / "spectra.py"), default_timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [b.label for b in at.get("download_button")]
    n_fig = len(at.get("plotly_chart"))
    assert n_fig >= 3 and labels.count("Interactive HTML") == n_fig
    # chromium + kaleido present: a PNG at a projector's and at a slide's size, and an SVG, per figure
    png = [lb for lb in labels if lb.startswith("PNG")]
    assert png.count("PNG 1280×720 (projector)") == png.count("PNG 1920×1080 (slide)") == labels.count("SVG") == n_fig
    assert len(png) == 2 * n_fig
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert set(titles) <= set(at.session_state["findings"]["Rank spectra"].figures)


def test_figure_exports_render():
    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))
    assert fig.to_html(include_plotlyjs=True).count("<script") >= 2
    assert fig.to_image(format="png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in fig.to_image(format="svg")[:400]


def test_demo_config_file_and_bad_configs(tmp_path):
    cfg = load_config(ROOT / "configs" / "demo.toml")
    assert cfg.demo_mode and not cfg.allow_custom_paths and not cfg.allow_uploads
    assert cfg.allowed_models == ("demo",) and cfg.max_prompts == 48
    assert load_config(ROOT / "configs" / "default.toml") == AppConfig(source=str(ROOT / "configs" / "default.toml"))
    assert load_config(None) == AppConfig()
    closed = tmp_path / "closed.toml"
    closed.write_text("demo_mode = true\n")
    assert not load_config(closed).allow_uploads  # demo mode closes what it does not open
    cases = {
        "missing": (None, "config file not found"),
        "syntax": ("demo_mode = ", "not valid TOML"),
        "unknown": ("colour = 'red'\n", "unknown key(s) colour"),
        "type": ("max_prompts = 'many'\n", "must be an integer"),
        "bool": ("demo_mode = 1\n", "must be true or false"),
        "empty list": ("allowed_models = []\n", "non-empty list"),
        "negative": ("max_attack_steps = 0\n", "must be >= 1"),
    }
    for name, (text, msg) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.toml"
        if text is not None:
            path.write_text(text)
        with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            load_config(path)


def test_demo_mode_locks_the_app_down(tmp_path, monkeypatch):
    monkeypatch.setenv("BRITTLE_CONFIG", str(ROOT / "configs" / "demo.toml"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.sidebar.text_input  # no free-text model paths
    assert [s.label for s in at.sidebar.selectbox][:2] == ["Aligned model", "Base model"]
    assert not at.sidebar.checkbox  # no remote code
    assert not at.get("file_uploader")  # no uploads
    assert "Clear cache" not in [b.label for b in at.sidebar.button]  # the cache is shared: not the audience's
    import torch

    devices = at.sidebar.selectbox(key="device_input").options
    dtypes = at.sidebar.selectbox(key="dtype_input").options
    assert ("cuda" in devices) == torch.cuda.is_available() and ("fp16" in dtypes) == torch.cuda.is_available()
    assert at.slider(key="overview_sets_n").max == 48 and at.slider(key="overview_max_new").max == 32
    assert at.text_input(key="play_text").max_chars == 300
    page = AppTest.from_file(str(ROOT / "pages" / "safety_landscape.py"), default_timeout=120).run()
    assert "toward another model" not in page.selectbox(key="ls_kind").options
    assert page.slider(key="ls_steps").max == 21
    page.radio(key="ls_dim").set_value("2D").run()
    assert page.slider(key="ls_steps").max == 11
    lox = AppTest.from_file(str(ROOT / "pages" / "lox.py"), default_timeout=300).run()
    assert not any(t.key == "lox_out" for t in lox.text_input)
    attack = AppTest.from_file(str(ROOT / "pages" / "attack_lab.py"), default_timeout=300).run()
    assert attack.slider(key="at_steps").max == 30


def test_playground_pick_replaces_the_prompt(tmp_path, monkeypatch):
    """after a first generation, picking another built-in prompt puts it in the text box."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    pick = at.selectbox(key="play_pick")
    first, second = pick.options[0], pick.options[1]
    assert at.text_input(key="play_text").value == first
    at.button(key="play_go").click().run()
    answered = [c.value for c in at.code]
    assert answered, "Generate showed no reply"
    at.selectbox(key="play_pick").set_value(second).run()
    assert at.text_input(key="play_text").value == second
    at.button(key="play_go").click().run()
    assert at.text_input(key="play_text").value == second and [c.value for c in at.code] != answered


def test_report_keeps_every_result_and_a_summary():
    """Two different results of one page both reach the report (a 1D landscape survives a later 2D one)."""
    fig1 = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout=dict(title=dict(text="1D landscape")))
    fig2 = go.Figure(go.Contour(z=[[0, 1], [1, 0]]), layout=dict(title=dict(text="2D map")))
    first = Section(
        "Safety landscape",
        figures={"1D landscape": fig1.to_json()},
        settings={"grid": "1D"},
        summary=[("VISAGE (1D)", "68.3 / 100", "21 points")],
    )
    again = Section("Safety landscape")
    again.carry_from(first)
    again.figures["1D landscape"] = fig1.to_json()  # a rerun that recomputed the same thing
    second = Section("Safety landscape")
    second.carry_from(again)
    second.figures["2D map"] = fig2.to_json()
    second.settings["grid"] = "2D"
    second.summary.append(("VISAGE (2D)", "71.0 / 100", "7 × 7"))
    assert len(second.results()) == 2
    html = build("Findings", {"aligned": "demo"}, {}, [second], plotly_js="")
    assert html.count("Plotly.newPlot(") == 2 and "grid = 1D" in html and "grid = 2D" in html
    top = html[: html.index("Contents")]
    assert "VISAGE (1D)" in top and "VISAGE (2D)" in top and "68.3 / 100" in top
