"""Plotly figures shared by pages (kept out of analysis/, which never draws)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

TYPE_COLOURS = {"safety": "#d62728", "utility": "#1f77b4", "complex": "#9467bd", "redundant": "#c7c7c7"}


def layer_module_heatmap(values: dict[str, float], adapter, title: str, fmt: str = ".3f",
                         colorscale: str = "Viridis") -> go.Figure:
    """Layers × modules; each weight's cell from its WeightRef (``adapter.linears``), never from its name."""
    layers, modules = adapter.n_layers, adapter.modules
    z = np.full((layers, len(modules)), np.nan)
    for name, v in values.items():
        ref = adapter.linears[name]
        z[ref.layer, modules.index(ref.module)] = v
    fig = go.Figure(go.Heatmap(z=z, x=modules, y=[f"layer {i}" for i in range(layers)], colorscale=colorscale,
                               texttemplate=f"%{{z:{fmt}}}", hovertemplate="%{y}, %{x}: %{z:" + fmt + "}<extra></extra>"))
    fig.update_layout(title=title, height=120 + 60 * layers, margin=dict(l=10, r=10, t=40, b=10),
                      yaxis=dict(autorange="reversed"))
    return fig


def score_histogram(safety, utility, title: str) -> go.Figure:
    fig = go.Figure()
    for label, s in (("safety", safety), ("utility", utility)):
        v = np.log10(s.reshape(-1).cpu().numpy() + 1e-12)  # scores may live on the GPU (issue #15)
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


def landscape_1d(curves: dict[str, dict], axis_label: str = "α") -> go.Figure:
    """ASR and utility against α on one chart; ``curves`` maps a label to {"x", "asr", "utility"}."""
    fig = go.Figure()
    dashes = ["solid", "dash", "dot", "dashdot"]
    for k, (label, c) in enumerate(curves.items()):
        dash = dashes[k % len(dashes)]
        fig.add_trace(go.Scatter(x=c["x"], y=100 * np.asarray(c["asr"]), name=f"ASR · {label}", mode="lines+markers",
                                 line=dict(color="#d62728", dash=dash)))
        fig.add_trace(go.Scatter(x=c["x"], y=100 * np.asarray(c["utility"]), name=f"utility · {label}",
                                 mode="lines+markers", line=dict(color="#1f77b4", dash=dash)))
    fig.add_vline(x=0, line_width=1, line_dash="dot", line_color="grey")
    fig.update_layout(xaxis_title=axis_label, yaxis_title="%", yaxis_range=[-3, 103], height=380,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h"))
    return fig


def landscape_surface(ax0, ax1, z, title: str, marker=None) -> go.Figure:
    """3D surface of a 2D landscape with its contour projected on the floor; origin marked."""
    fig = go.Figure(go.Surface(x=ax1, y=ax0, z=100 * np.asarray(z), colorscale="RdBu_r", cmin=0, cmax=100,
                               contours={"z": {"show": True, "project_z": True, "usecolormap": True}}))
    fig.add_trace(go.Scatter3d(x=[0], y=[0], z=[100 * float(np.asarray(z)[list(ax0).index(0.0) if 0.0 in ax0 else 0,
                                                                           list(ax1).index(0.0) if 0.0 in ax1 else 0])],
                               mode="markers", marker=dict(size=5, color="black"), name="model"))
    fig.update_layout(title=title, height=460, margin=dict(l=0, r=0, t=40, b=0),
                      scene=dict(xaxis_title="β", yaxis_title="α", zaxis_title="ASR %"))
    return fig


def landscape_contour(ax0, ax1, z, title: str, points: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    fig = go.Figure(go.Contour(x=ax1, y=ax0, z=100 * np.asarray(z), colorscale="RdBu_r", zmin=0, zmax=100,
                               colorbar=dict(title="ASR %")))
    for label, (a, b) in (points or {}).items():
        fig.add_trace(go.Scatter(x=[b], y=[a], mode="markers+text", text=[label], textposition="top center",
                                 marker=dict(size=10, color="black", symbol="x"), name=label))
    fig.update_layout(title=title, xaxis_title="β", yaxis_title="α", height=460, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def spectra_lines(values: dict[str, "np.ndarray"], title: str) -> go.Figure:
    """Singular values (log scale) of ΔW, one line per weight."""
    fig = go.Figure()
    for name, s in values.items():
        s = np.asarray(s)
        fig.add_trace(go.Scatter(x=np.arange(1, len(s) + 1), y=np.maximum(s, 1e-12), name=name, mode="lines"))
    fig.update_layout(title=title, xaxis_title="index i", yaxis_title="σ_i", yaxis_type="log", height=380,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def attack_curves(curves: list, field: str, title: str, percent: bool = True) -> go.Figure:
    """One line per variant: ``field`` (asr, utility, r_ft, …) against attack steps."""
    fig = go.Figure()
    for c in curves:
        y = np.array([np.nan if v is None else v for v in getattr(c, field)], dtype=float)
        fig.add_trace(go.Scatter(x=c.steps, y=100 * y if percent else y, name=c.variant, mode="lines+markers"))
    fig.update_layout(title=title, xaxis_title="attack step", yaxis_title="%" if percent else field,
                      yaxis_range=[-3, 103] if percent else None, height=360, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.25))
    return fig


GROUP_COLOURS = {"harmful, refused": "#2ca02c", "harmful, complied": "#d62728", "benign": "#1f77b4",
                 "benign, refused": "#ff7f0e", "harmful": "#d62728"}


def scatter_2d(xy, groups: list[str], hover: list[str], title: str) -> go.Figure:
    """2D projection, one trace per group (harmful / benign / refused)."""
    fig = go.Figure()
    xy = np.asarray(xy)
    for g in dict.fromkeys(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        fig.add_trace(go.Scatter(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=g,
                                 marker=dict(size=6, color=GROUP_COLOURS.get(g)), text=[hover[i] for i in idx],
                                 hovertemplate="%{text}<extra>" + g + "</extra>"))
    fig.update_layout(title=title, height=400, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"))
    return fig


def per_layer_lines(series: dict[str, list[float]], title: str, yaxis: str, percent: bool = True) -> go.Figure:
    """One line per model over layer boundaries (0 = embeddings)."""
    fig = go.Figure()
    for label, ys in series.items():
        y = 100 * np.asarray(ys, dtype=float) if percent else np.asarray(ys, dtype=float)
        fig.add_trace(go.Scatter(x=list(range(len(ys))), y=y, name=label, mode="lines+markers"))
    fig.update_layout(title=title, xaxis=dict(title="layer boundary (0 = embeddings, l = after layer l)", dtick=1),
                      yaxis_title=yaxis, height=360, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"))
    return fig


# ----- alignment depth (issue #18) ------------------------------------------------------------------------------

DEPTH_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]


def position_band(profiles: dict, title: str, yaxis: str, log: bool = False) -> go.Figure:
    """Mean per response position with a 25–75 % band across prompts; ``profiles`` maps a label to a
    :class:`analysis.depth.Profile`."""
    fig = go.Figure()
    for i, (label, p) in enumerate(profiles.items()):
        colour = DEPTH_COLOURS[i % len(DEPTH_COLOURS)]
        x = list(p.position)
        fig.add_trace(go.Scatter(x=x + x[::-1], y=list(p.q75) + list(p.q25)[::-1], fill="toself", fillcolor=colour,
                                 opacity=0.18, line=dict(width=0), hoverinfo="skip", showlegend=False,
                                 name=f"{label} 25–75 %"))
        fig.add_trace(go.Scatter(x=x, y=p.mean, name=label, mode="lines+markers", line=dict(color=colour),
                                 customdata=p.count,
                                 hovertemplate="position %{x}: %{y:.4g} (%{customdata} prompts)<extra>" + label
                                               + "</extra>"))
    fig.update_layout(title=title, xaxis=dict(title="response position t (0 = first reply token)", dtick=1),
                      yaxis=dict(title=yaxis, type="log" if log else "linear", exponentformat="power"), height=400,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.22))
    return fig


def token_bars(tokens: list[str], values: list[float], title: str, yaxis: str) -> go.Figure:
    """One prompt's response tokens, each bar coloured by its value (the zoom view)."""
    x = [f"{t} ·{i}" for i, t in enumerate(tokens)]   # positions keep repeated tokens apart
    fig = go.Figure(go.Bar(x=x, y=values, marker=dict(color=values, colorscale="Reds", showscale=True),
                           hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    fig.update_layout(title=title, yaxis_title=yaxis, xaxis=dict(tickangle=-45), height=340,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


def rate_curves(x: list[float], series: dict[str, list[float | None]], title: str, xaxis: str,
                refs: dict[str, float] | None = None) -> go.Figure:
    """Rates (0–1, drawn in %) against a setting, with horizontal reference lines (e.g. aligned and base)."""
    fig = go.Figure()
    for i, (label, ys) in enumerate(series.items()):
        y = [np.nan if v is None else 100 * v for v in ys]
        fig.add_trace(go.Scatter(x=x, y=y, name=label, mode="lines+markers",
                                 line=dict(color=DEPTH_COLOURS[i % len(DEPTH_COLOURS)])))
    for label, v in (refs or {}).items():
        if v is not None:
            fig.add_hline(y=100 * v, line_dash="dot", line_color="grey", annotation_text=label,
                          annotation_position="top left")
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title="%", yaxis_range=[-3, 103], height=380,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"))
    return fig
