"""Plotly figures shared by pages (kept out of analysis/, which never draws)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

TYPE_COLOURS = {"safety": "#d62728", "utility": "#1f77b4", "complex": "#9467bd", "redundant": "#c7c7c7"}


def layer_module_heatmap(values: dict[str, float], layers: int, modules: list[str], title: str,
                         fmt: str = ".3f", colorscale: str = "Viridis") -> go.Figure:
    z = np.full((layers, len(modules)), np.nan)
    for name, v in values.items():
        _, layer, _, module = name.split(".")
        z[int(layer), modules.index(module)] = v
    fig = go.Figure(go.Heatmap(z=z, x=modules, y=[f"layer {i}" for i in range(layers)], colorscale=colorscale,
                               texttemplate=f"%{{z:{fmt}}}", hovertemplate="%{y}, %{x}: %{z:" + fmt + "}<extra></extra>"))
    fig.update_layout(title=title, height=120 + 60 * layers, margin=dict(l=10, r=10, t=40, b=10),
                      yaxis=dict(autorange="reversed"))
    return fig


def score_histogram(safety, utility, title: str) -> go.Figure:
    fig = go.Figure()
    for label, s in (("safety", safety), ("utility", utility)):
        v = np.log10(s.reshape(-1).numpy() + 1e-12)
        fig.add_trace(go.Histogram(x=v, name=label, opacity=0.6, nbinsx=80,
                                   marker_color=TYPE_COLOURS[label]))
    fig.update_layout(barmode="overlay", title=title, xaxis_title="log10 score", yaxis_title="weights",
                      height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def unit_type_bars(shares_by_layer: dict[int, dict[str, float]]) -> go.Figure:
    layers = sorted(shares_by_layer)
    fig = go.Figure()
    for t, colour in TYPE_COLOURS.items():
        fig.add_trace(go.Bar(x=[f"layer {i}" for i in layers], y=[100 * shares_by_layer[i][t] for i in layers],
                             name=t, marker_color=colour, hovertemplate="%{x}: %{y:.1f}%<extra>" + t + "</extra>"))
    fig.update_layout(barmode="stack", yaxis_title="% of units (o_proj + down_proj inputs)", height=340,
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig
