"""Every figure the app draws, exports and reports: real, distinct colours per series, titles, unclipped ticks."""

import json
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import streamlit  # noqa: F401  (importing it installs Streamlit's placeholder template as the default)
import torch

from analysis.app_support.report import Section, build
from analysis.core.models import load_pair
from pages import _plots
from pages._style import ASR, PLACEHOLDER, problems, style


def demo_pair():
    return load_pair("demo", device="cpu")


def _figures() -> dict[str, go.Figure]:
    lm = demo_pair().aligned
    names = list(lm.adapter.linears)
    values = {n: float(i) / 10 for i, n in enumerate(names)}
    curve = SimpleNamespace(steps=[0, 3, 6], asr=[0.0, 0.5, 1.0], utility=[0.9, 0.8, None], r_ft=[0.9, 0.8, 0.7])
    ax = [-1.0, 0.0, 1.0]
    z = np.linspace(0, 1, 9).reshape(3, 3)
    return {
        "heatmap": _plots.layer_module_heatmap(
            values, lm.adapter, "Jaccard overlap (wanda, p = 0.10)", ".1f", colorbar_title="Jaccard (0–1)"
        ),
        "histogram": _plots.score_histogram(torch.rand(50), torch.rand(50), "q_proj: score distribution"),
        "units": _plots.unit_type_bars(
            {
                0: dict(safety=0.1, utility=0.2, complex=0.3, redundant=0.4),
                1: dict(safety=0.2, utility=0.2, complex=0.3, redundant=0.3),
            }
        ),
        "1d": _plots.landscape_1d(
            {
                "system prompt: none": {"x": ax, "asr": [1, 0, 1], "utility": [0, 1, 0]},
                "system prompt: helpful and safe": {"x": ax, "asr": [1, 0, 0.5], "utility": [0, 1, 0.2]},
            }
        ),
        "surface": _plots.landscape_surface(ax, ax, z),
        "contour": _plots.landscape_contour(
            ax, ax, z, points={"aligned": (0.0, 0.0), "base (projected)": (0.01, 0.02)}
        ),
        "utility map": _plots.utility_contour(ax, ax, z, "exact", points={"aligned": (0.0, 0.0)}, n=48),
        "spectra": _plots.spectra_lines({f"w{i}": np.linspace(1, 0.01, 20) for i in range(12)}, "Singular values"),
        "attack": _plots.attack_curves(
            [SimpleNamespace(variant=v, **vars(curve)) for v in ("aligned", "LoX")], "asr", "ASR during the attack"
        ),
        "rft": _plots.attack_curves(
            [SimpleNamespace(variant=v, **vars(curve)) for v in ("aligned", "LoX")], "r_ft", "R_ft", percent=False
        ),
        "scatter": _plots.scatter_2d(
            np.random.default_rng(0).normal(size=(6, 2)),
            ["harmful"] * 3 + ["benign"] * 3,
            list("abcdef"),
            "aligned: layer 3, PCA",
        ),
        "probes": _plots.per_layer_lines(
            {"aligned": [0.5, 0.7, 1, 1, 1], "base": [0.5, 0.6, 0.8, 0.8, 0.9], "edited": [0.5, 0.5, 0.5, 0.6, 0.6]},
            "Probe accuracy",
            "accuracy (%)",
        ),
    }


def test_every_figure_is_fit_to_show_export_and_report():
    figs = _figures()
    for name, fig in figs.items():
        spec = fig.to_json()
        assert not PLACEHOLDER.search(spec), name
        assert problems(spec) == [], (name, problems(spec))
        layout = json.loads(spec)["layout"]
        assert layout["template"]["layout"]["colorway"][0].lower() == "#0072b2"  # ours, not Streamlit's
        assert layout["margin"]["l"] >= 60 and layout["margin"]["b"] >= 50 or name == "surface"
    # ASR is one colour on every chart
    assert figs["1d"].data[0].line.color == ASR
    for name in ("probes", "attack", "units"):  # series of models / variants never borrow ASR's colour
        assert ASR not in {getattr(t, "line", None) and t.line.color for t in figs[name].data if t.type == "scatter"}
    assert _plots.per_layer_lines({"ASR": [0, 1], "utility": [1, 1]}, "t", "%").data[0].line.color == ASR
    # heatmap labels: categories in full, values with a leading zero
    heat = figs["heatmap"]
    assert heat.data[0].y[0] == "layer 0" and heat.data[0].texttemplate == "%{z:.1f}"
    assert heat.layout.yaxis.type == "category" and heat.layout.xaxis.automargin
    # 2D: z fixed to 0–100 %, the colour bar titled, the point labels on different sides
    assert tuple(figs["surface"].layout.scene.zaxis.range) == (0, 100)
    assert figs["contour"].data[0].colorbar.title.text == "ASR (%)"
    assert figs["contour"].data[1].textposition != figs["contour"].data[2].textposition
    # the report carries the same real colours
    sec = Section("Safety landscape", figures={f.layout.title.text: f.to_json() for f in figs.values()})
    html = build("Findings", {"aligned": "demo"}, {}, [sec], plotly_js="")
    assert '"#000001"' not in html and html.count("Plotly.newPlot(") == len(figs)


def test_problems_catches_streamlit_palette_and_same_colours():
    fig = go.Figure([go.Scatter(y=[1, 2], name="a"), go.Scatter(y=[2, 1], name="b")])
    found = problems(fig.to_json())  # streamlit's default template, no colours, no title
    assert any("placeholder" in p for p in found) and any("no explicit colour" in p for p in found)
    assert any("no title" in p for p in found)
    same = go.Figure(
        [
            go.Scatter(y=[1], name="a", line=dict(color="#0072B2")),
            go.Scatter(y=[2], name="b", line=dict(color="#0072B2")),
        ]
    )
    assert any("look the same" in p for p in problems(style(same, "t", "x", "y").to_json()))
    fixed = style(go.Figure([go.Scatter(y=[1, 2], name="a"), go.Scatter(y=[2, 1], name="b")]), "t", "x (s)", "y (%)")
    assert problems(fixed.to_json()) == []


@pytest.mark.parametrize("fmt", [".1f", ".3f"])
def test_heatmap_values_keep_the_leading_zero(fmt):
    lm = demo_pair().aligned
    fig = _plots.layer_module_heatmap({n: 0.1 for n in lm.adapter.linears}, lm.adapter, "t", fmt, colorbar_title="v")
    assert fig.data[0].colorbar.tickformat == fmt and "%{z:" + fmt + "}" == fig.data[0].texttemplate


def test_figures_recorded_by_pages_are_fit_to_export(tmp_path, monkeypatch):
    """The figures real pages show, export and put in the report: titled, real distinct colours, margins."""
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    at = AppTest.from_file(str(ROOT / "pages" / "safety_landscape.py"), default_timeout=600).run()
    at.button(key="ls_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    sp = AppTest.from_file(str(ROOT / "pages" / "spectra.py"), default_timeout=600).run()
    assert not sp.exception, [e.value for e in sp.exception]
    figures = {
        **at.session_state["findings"]["Safety landscape"].figures,
        **sp.session_state["findings"]["Rank spectra"].figures,
    }
    assert len(figures) >= 4
    for title, spec in figures.items():
        assert problems(spec) == [], (title, problems(spec))
    shown = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert all(not PLACEHOLDER.search(json.dumps(f)) for f in shown)  # on screen too (theme=None)
