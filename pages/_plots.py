"""Plotly figures shared by pages (kept out of analysis/, which never draws); all in the style of pages/_style."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from pages._style import (
    ASR,
    ASR_SCALE,
    BLACK,
    DASHES,
    GREEN,
    GROUP_COLOURS,
    ORANGE,
    SEQUENTIAL,
    SERIES,
    TYPE_COLOURS,
    UTILITY,
    colorbar,
    style,
)

LAYER_AXIS = "decoder layer (0-based)"
BOUNDARY_AXIS = "residual stream after decoder layer (0-based; 'emb.' = embeddings)"


def layer_label(i: int) -> str:
    """A decoder layer's name on every chart and table (0-based, as the model's code counts them)."""
    return f"layer {i}"


def boundary_label(b: int) -> str:
    """Residual-stream boundary b (0 = embeddings, b = after decoder layer b − 1, 0-based)."""
    return "emb." if b == 0 else f"after layer {b - 1}"


def layer_module_heatmap(
    values: dict[str, float],
    adapter,
    title: str,
    fmt: str = ".3f",
    colorscale: str = SEQUENTIAL,
    colorbar_title: str = "value",
) -> go.Figure:
    """Layers × modules; each weight's cell from its WeightRef (``adapter.linears``), never from its name."""
    layers, modules = adapter.n_layers, adapter.modules
    z = np.full((layers, len(modules)), np.nan)
    for name, v in values.items():
        ref = adapter.linears[name]
        z[ref.layer, modules.index(ref.module)] = v
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(modules),
            y=[layer_label(i) for i in range(layers)],
            colorscale=colorscale,
            texttemplate=f"%{{z:{fmt}}}",
            textfont=dict(size=13),
            colorbar=colorbar(colorbar_title, tickformat=fmt.replace("%", "")),
            hovertemplate="%{y}, %{x}: %{z:" + fmt + "}<extra></extra>",
        )
    )
    style(fig, title, x="module (weight matrix)", y=LAYER_AXIS, height=170 + 60 * layers, legend=False)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", tickangle=-30)
    return fig


def score_histogram(safety, utility, title: str, bins: int = 80) -> go.Figure:
    """Both score distributions binned here (80 shared bins): the figure carries 2 × 80 counts, not one number per
    weight (a demo matrix sent 200 kB to every browser on every rerun; a 7B model's would not fit)."""
    logs = {
        label: np.log10(s.reshape(-1).detach().float().cpu().numpy() + 1e-12)  # scores may live on the GPU
        for label, s in (("safety", safety), ("utility", utility))
    }
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    fig = go.Figure()
    for label, v in logs.items():
        counts, _ = np.histogram(v[np.isfinite(v)], edges)
        fig.add_trace(
            go.Bar(
                x=centres,
                y=counts,
                width=width,
                name=f"{label} score",
                opacity=0.6,
                marker_color=TYPE_COLOURS[label],
                hovertemplate="log10 score %{x:.2f}: %{y} weights<extra>" + label + "</extra>",
            )
        )
    fig.update_layout(barmode="overlay", bargap=0)
    return style(fig, title, x="log10 importance score", y="weights (count)", height=340)


def unit_type_bars(
    shares_by_layer: dict[int, dict[str, float]], title: str = "Unit types per decoder layer"
) -> go.Figure:
    layers = sorted(shares_by_layer)
    fig = go.Figure()
    for t, colour in TYPE_COLOURS.items():
        fig.add_trace(
            go.Bar(
                x=[layer_label(i) for i in layers],
                y=[100 * shares_by_layer[i][t] for i in layers],
                name=t,
                marker_color=colour,
                hovertemplate="%{x}: %{y:.1f}%<extra>" + t + "</extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return style(fig, title, x=LAYER_AXIS, y="units (% of o_proj + down_proj inputs)", height=380)


def wilson_error_y(rates, n: int | None, colour: str | None = None) -> dict | None:
    """Plotly ``error_y`` (in %) of 95 % Wilson intervals around rates (0–1) measured on ``n`` prompts each;
    None without ``n``."""
    if not n:
        return None
    from analysis.core.stats import wilson

    up, down = [], []
    for v in rates:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            up.append(np.nan), down.append(np.nan)
            continue
        lo, hi = wilson(round(float(v) * n), n)
        up.append(100 * (hi - float(v))), down.append(100 * (float(v) - lo))
    return dict(
        type="data",
        symmetric=False,
        array=up,
        arrayminus=down,
        thickness=1.2,
        width=3,
        **({"color": colour} if colour else {}),
    )


def landscape_1d(
    curves: dict[str, dict],
    axis_label: str = "α (step along the direction)",
    title: str = "Safety landscape (1D): ASR and utility along α",
) -> go.Figure:
    """ASR and utility against α on one chart; ``curves`` maps a label to {"x", "asr", "utility"} and, for 95 %
    Wilson error bars, the prompt counts "n_harmful" / "n_benign" (utility bars only for an accuracy).
    ASR is always vermillion, utility blue; a second curve set (another system prompt) is dashed."""
    fig = go.Figure()
    for k, (label, c) in enumerate(curves.items()):
        dash, symbol = DASHES[k % len(DASHES)], ["circle", "square", "diamond", "cross"][k % 4]
        fig.add_trace(
            go.Scatter(
                x=c["x"],
                y=100 * np.asarray(c["asr"]),
                name=f"ASR · {label}",
                mode="lines+markers",
                line=dict(color=ASR, dash=dash, width=3),
                marker=dict(color=ASR, symbol=symbol),
                error_y=wilson_error_y(c["asr"], c.get("n_harmful"), ASR),
            )
        )
        loss = c.get("utility_kind") == "loss"
        fig.add_trace(
            go.Scatter(
                x=c["x"],
                y=np.asarray(c["utility"], dtype=float) * (1 if loss else 100),
                name=f"{'benign loss (nats)' if loss else 'utility'} · {label}",
                mode="lines+markers",
                line=dict(color=UTILITY, dash=dash, width=3),
                marker=dict(color=UTILITY, symbol=symbol),
                error_y=_utility_error_y(c, c["utility"], UTILITY),
                yaxis="y2" if loss else "y",
            )
        )
    fig.add_vline(x=0, line_width=1, line_dash="dot", line_color="grey")
    style(fig, title, x=axis_label, y="rate (%)", height=420)
    fig.update_yaxes(range=[-3, 103])
    _loss_axis(fig, curves)
    return fig


def _utility_error_y(c: dict, values, colour: str) -> dict | None:
    """A utility curve's error bars: 95 % Wilson for an accuracy (``values`` 0–1, "n_benign" prompts), the given 95 %
    bootstrap interval for a loss in nats ("utility_interval": (lo, hi) arrays); None without either."""
    if c.get("utility_kind") == "loss":
        return interval_error_y(values, *c["utility_interval"], colour=colour) if "utility_interval" in c else None
    return wilson_error_y(list(values), c.get("n_benign"), colour)


def _loss_axis(fig: go.Figure, curves: dict[str, dict]) -> None:
    """A loss utility (nats, lower is better) is not a rate: it gets its own right-hand axis, never a % scale."""
    if any(c.get("utility_kind") == "loss" for c in curves.values()):
        fig.update_layout(
            yaxis2=dict(
                title="benign loss (nats, lower is better)",
                overlaying="y",
                side="right",
                showgrid=False,
                autorange=True,
            )
        )


def _origin_value(ax0, ax1, z) -> float:
    i = list(ax0).index(0.0) if 0.0 in ax0 else len(ax0) // 2
    j = list(ax1).index(0.0) if 0.0 in ax1 else len(ax1) // 2
    return 100 * float(np.asarray(z)[i, j])


def wilson_text(z, n: int | None) -> list | None:
    """Per grid point, its rate's 95 % Wilson interval as text ('[92.6, 100.0] over 48 prompts'); None without n."""
    if not n:
        return None
    from analysis.core.stats import Rate

    return [[f"{Rate.of_share(float(v), n).interval()} over {n} prompts" for v in row] for row in np.asarray(z)]


def landscape_surface(
    ax0, ax1, z, title: str = "Safety landscape (2D): ASR surface", marker=None, n: int | None = None
) -> go.Figure:
    """3D surface of a 2D landscape (z fixed to 0–100 %) with its contour projected on the floor; origin marked;
    with ``n`` (harmful prompts per point) each point's hover gives its 95 % Wilson interval."""
    text = wilson_text(z, n)
    fig = go.Figure(
        go.Surface(
            x=ax1,
            y=ax0,
            z=100 * np.asarray(z),
            colorscale=ASR_SCALE,
            cmin=0,
            cmax=100,
            colorbar=colorbar("ASR (%)", x=1.0),
            name="ASR",
            contours={"z": {"show": True, "project_z": True, "usecolormap": True}},
            **(
                {"customdata": text, "hovertemplate": "α %{y}, β %{x}: ASR %{z:.1f} % %{customdata}<extra></extra>"}
                if text
                else {}
            ),
        )
    )
    fig.add_trace(
        go.Scatter3d(
            x=[0],
            y=[0],
            z=[_origin_value(ax0, ax1, z)],
            mode="markers",
            marker=dict(size=6, color=BLACK),
            name="aligned model (origin)",
        )
    )
    style(fig, title, height=520)
    fig.update_layout(
        showlegend=True,
        legend=dict(x=0.0, y=1.0, yanchor="bottom"),
        scene=dict(
            xaxis_title="β (second direction)",
            yaxis_title="α (first direction)",
            zaxis=dict(title="ASR (%)", range=[0, 100]),
        ),
        margin=dict(l=10, r=10, t=90, b=10),
    )
    return fig


POINT_STYLES = [
    (BLACK, "x", "top right"),
    (ORANGE, "diamond", "bottom left"),
    (GREEN, "square", "top left"),
    (SERIES[4], "triangle-up", "bottom right"),
]


def landscape_contour(
    ax0,
    ax1,
    z,
    title: str = "Safety landscape (2D): ASR map",
    points: dict[str, tuple[float, float]] | None = None,
    n: int | None = None,
) -> go.Figure:
    """ASR map with the models placed on it; labels at different sides so nearby points stay readable; with ``n``
    (harmful prompts per point) each point's hover gives its 95 % Wilson interval."""
    return _map(ax0, ax1, 100 * np.asarray(z), title, points, "ASR", "%", ASR_SCALE, (0, 100), wilson_text(z, n))


def utility_contour(
    ax0,
    ax1,
    z,
    kind: str,
    title: str = "Safety landscape (2D): utility map",
    points: dict[str, tuple[float, float]] | None = None,
    n: int | None = None,
    interval: tuple | None = None,
) -> go.Figure:
    """Utility map of a 2D landscape with the models placed on it. ``kind`` "exact": a rate (0–1 in ``z``, drawn in
    %, higher is better), each point's hover with its 95 % Wilson interval over ``n`` benign prompts; "loss": the
    response loss in nats (lower is better), each point's hover with its 95 % bootstrap interval ``interval`` =
    (lo, hi) arrays over the benign items."""
    if kind == "exact":
        return _map(
            ax0, ax1, 100 * np.asarray(z), title, points, "utility", "%", SEQUENTIAL, (0, 100), wilson_text(z, n)
        )
    if kind != "loss":
        raise ValueError(f"no utility map for utility kind {kind!r} (exact or loss)")
    text = None
    if interval is not None:
        lo, hi = (np.asarray(a, dtype=float) for a in interval)
        text = [
            ["" if np.isnan(a) else f"[{a:.3f}, {b:.3f}] over the benign items" for a, b in zip(r0, r1)]
            for r0, r1 in zip(lo, hi)
        ]
    scale = SEQUENTIAL + "_r"  # a low loss (good) bright, as a high utility rate is on the exact map
    return _map(ax0, ax1, np.asarray(z, dtype=float), title, points, "utility loss", "nats", scale, None, text)


def _map(ax0, ax1, z, title, points, measure: str, unit: str, scale, z_range, text) -> go.Figure:
    """A 2D landscape's contour map of one measure (values as drawn) with the models placed on it."""
    fmt = ".1f" if unit == "%" else ".3f"
    fig = go.Figure(
        go.Contour(
            x=ax1,
            y=ax0,
            z=z,
            colorscale=scale,
            **({"zmin": z_range[0], "zmax": z_range[1]} if z_range else {}),
            colorbar=colorbar(f"{measure} ({unit})"),
            name=measure,
            hovertemplate=f"α %{{y}}, β %{{x}}: {measure} %{{z:{fmt}}} {unit}"
            + (" %{customdata}" if text else "")
            + "<extra></extra>",
            **({"customdata": text} if text else {}),
        )
    )
    for k, (label, (a, b)) in enumerate((points or {}).items()):
        colour, symbol, pos = POINT_STYLES[k % len(POINT_STYLES)]
        fig.add_trace(
            go.Scatter(
                x=[b],
                y=[a],
                mode="markers+text",
                text=[label],
                textposition=pos,
                textfont=dict(color=colour, size=14),
                marker=dict(size=12, color=colour, symbol=symbol, line=dict(width=1, color="white")),
                name=label,
            )
        )
    style(fig, title, x="β (second direction)", y="α (first direction)", height=520)
    fig.update_layout(showlegend=bool(points))
    return fig


def spectra_lines(values: dict[str, "np.ndarray"], title: str) -> go.Figure:
    """Singular values (log scale) of ΔW, one line per weight (colour, then dash, tell them apart)."""
    fig = go.Figure()
    for k, (name, s) in enumerate(values.items()):
        s = np.asarray(s)
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(s) + 1),
                y=np.maximum(s, 1e-12),
                name=name,
                mode="lines",
                line=dict(color=SERIES[k % len(SERIES)], dash=DASHES[(k // len(SERIES)) % len(DASHES)], width=2),
            )
        )
    style(fig, title, x="index i (largest singular value first)", y="singular value σ_i of ΔW (log scale)", height=420)
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


ATTACK_AXES = {
    "asr": "ASR (%)",
    "utility": "utility (%)",
    "r_ft": "R_ft (share of ‖W − W_base‖, 0–1)",
    "over_refusal": "over-refusal (%)",
}


def attack_curves(
    curves: list, field: str, title: str, percent: bool = True, y_title: str | None = None, n: int | None = None
) -> go.Figure:
    """One line per variant: ``field`` (asr, utility, r_ft, …) against attack steps; with ``n`` (prompts per
    evaluation) a rate gets 95 % Wilson error bars."""
    fig = go.Figure()
    for k, c in enumerate(curves):
        y = np.array([np.nan if v is None else v for v in getattr(c, field)], dtype=float)
        colour = SERIES[k % len(SERIES)]
        fig.add_trace(
            go.Scatter(
                x=c.steps,
                y=100 * y if percent else y,
                name=c.variant,
                mode="lines+markers",
                line=dict(color=colour, dash=DASHES[k // len(SERIES) % 4], width=3),
                marker=dict(color=colour, symbol=["circle", "square", "diamond", "cross"][k % 4]),
                error_y=wilson_error_y(list(y), n, colour) if percent else None,
            )
        )
    style(fig, title, x="attack step (optimizer updates)", y=y_title or ATTACK_AXES.get(field, field), height=400)
    if percent:
        fig.update_yaxes(range=[-3, 103])
    return fig


def scatter_2d(xy, groups: list[str], hover: list[str], title: str, method: str = "PCA") -> go.Figure:
    """2D projection, one trace per group (harmful / benign / refused)."""
    fig = go.Figure()
    xy = np.asarray(xy)
    for k, g in enumerate(dict.fromkeys(groups)):
        idx = [i for i, x in enumerate(groups) if x == g]
        fig.add_trace(
            go.Scatter(
                x=xy[idx, 0],
                y=xy[idx, 1],
                mode="markers",
                name=g,
                marker=dict(
                    size=7,
                    color=GROUP_COLOURS.get(g, SERIES[k % len(SERIES)]),
                    symbol=["circle", "x", "square", "diamond"][k % 4],
                ),
                text=[hover[i] for i in idx],
                hovertemplate="%{text}<extra>" + g + "</extra>",
            )
        )
    return style(fig, title, x=f"{method} 1 (arbitrary units)", y=f"{method} 2 (arbitrary units)", height=440)


def per_layer_lines(
    series: dict[str, list[float]],
    title: str,
    yaxis: str,
    percent: bool = True,
    n: dict[str, int] | None = None,
    intervals: dict[str, tuple[list[float], list[float]]] | None = None,
) -> go.Figure:
    """One line per model over residual-stream boundaries (0 = embeddings, b = after decoder layer b − 1); ``n``
    (prompts per point, by series) adds 95 % Wilson error bars to those rates, ``intervals`` (lo, hi lists by
    series, in the series' own units) given error bars to values that are not rates (a loss in nats)."""
    fig = go.Figure()
    bars: dict[str, dict | None] = {}
    for k, (label, ys) in enumerate(series.items()):
        y = 100 * np.asarray(ys, dtype=float) if percent else np.asarray(ys, dtype=float)
        colour = ASR if label == "ASR" else UTILITY if label == "utility" else SERIES[k % len(SERIES)]
        if label in (intervals or {}):
            bars[label] = interval_error_y(ys, *(intervals or {})[label], colour=colour)
        fig.add_trace(
            go.Scatter(
                x=[boundary_label(b) for b in range(len(ys))],
                y=y,
                name=label,
                mode="lines+markers",
                line=dict(color=colour, width=3, dash=DASHES[k // len(SERIES) % 4]),
                marker=dict(color=colour, symbol=["circle", "square", "diamond", "cross"][k % 4]),
                error_y=wilson_error_y(list(ys), (n or {}).get(label), colour) if percent else bars.get(label),
            )
        )
    style(fig, title, x=BOUNDARY_AXIS, y=yaxis, height=400)
    fig.update_xaxes(type="category")
    if percent:
        fig.update_yaxes(range=[-3, 103])
    return fig


# ----- alignment depth ------------------------------------------------------------------------------


def position_band(profiles: dict, title: str, yaxis: str, log: bool = False) -> go.Figure:
    """Mean per response position with a 25–75 % band across prompts; ``profiles`` maps a label to a
    :class:`analysis.methods.depth.Profile`."""
    fig = go.Figure()
    for i, (label, p) in enumerate(profiles.items()):
        colour = SERIES[i % len(SERIES)]
        x = list(p.position)
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=list(p.q75) + list(p.q25)[::-1],
                fill="toself",
                fillcolor=colour,
                opacity=0.18,
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
                name=f"{label} 25–75 %",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=p.mean,
                name=label,
                mode="lines+markers",
                line=dict(color=colour),
                customdata=p.count,
                hovertemplate="position %{x}: %{y:.4g} (%{customdata} prompts)<extra>" + label + "</extra>",
            )
        )
    style(fig, title, x="response position t (0 = first reply token)", y=yaxis, height=420)
    fig.update_xaxes(dtick=1)
    fig.update_yaxes(type="log" if log else "linear", exponentformat="power")
    return fig


def token_bars(tokens: list[str], values: list[float], title: str, yaxis: str) -> go.Figure:
    """One prompt's response tokens, each bar coloured by its value (the zoom view)."""
    x = [f"{t} ·{i}" for i, t in enumerate(tokens)]  # positions keep repeated tokens apart
    fig = go.Figure(
        go.Bar(
            x=x,
            y=values,
            name=yaxis,
            hovertemplate="%{x}: %{y:.4g}<extra></extra>",
            marker=dict(color=values, colorscale=SEQUENTIAL, showscale=True, colorbar=colorbar(yaxis)),
        )
    )
    style(fig, title, x="response token · position", y=yaxis, height=380, legend=False)
    fig.update_xaxes(tickangle=-45)
    return fig


def rate_curves(
    x: list[float],
    series: dict[str, list[float | None]],
    title: str,
    xaxis: str,
    refs: dict[str, float] | None = None,
    n: int | dict[str, int] | None = None,
) -> go.Figure:
    """Rates (0–1, drawn in %) against a setting, with horizontal reference lines (e.g. aligned and base); with
    ``n`` (prompts per point: one number, or one per series) 95 % Wilson error bars."""
    fig = go.Figure()
    for i, (label, ys) in enumerate(series.items()):
        y = [np.nan if v is None else 100 * v for v in ys]
        colour = SERIES[i % len(SERIES)]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                name=label,
                mode="lines+markers",
                line=dict(color=colour, width=3),
                marker=dict(color=colour),
                error_y=wilson_error_y(ys, n.get(label) if isinstance(n, dict) else n, colour),
            )
        )
    for label, v in (refs or {}).items():
        if v is not None:
            fig.add_hline(
                y=100 * v, line_dash="dot", line_color="grey", annotation_text=label, annotation_position="top left"
            )
    style(fig, title, x=xaxis, y="rate (% of prompts)", height=400)
    fig.update_yaxes(range=[-3, 103])
    return fig


def landscape_1d_band(
    curves: dict[str, dict],
    axis_label: str = "α (step along the direction)",
    title: str = "Safety landscape (1D): ASR and utility along α, several directions",
) -> go.Figure:
    """Several directions per setting: ``curves`` maps a label to {"x", "asr", "utility"} with ``asr`` and
    ``utility`` arrays of directions × points, and for error bars the prompt counts "n_harmful" / "n_benign". Each
    direction is a thin line, the mean a thick one with 95 % Wilson error bars (the mean rate taken as one run's:
    the evaluation set's sampling noise), the min–max over directions a shaded band (the directions' spread); ASR
    vermillion, utility blue, a second setting dashed."""
    fig = go.Figure()
    for k, (label, c) in enumerate(curves.items()):
        dash, symbol = DASHES[k % len(DASHES)], ["circle", "square", "diamond", "cross"][k % 4]
        x = list(c["x"])
        for what, colour in (("asr", ASR), ("utility", UTILITY)):
            loss = what == "utility" and c.get("utility_kind") == "loss"  # nats on its own axis, not a rate
            scale, axis = (1, "y2") if loss else (100, "y")
            v = scale * np.atleast_2d(np.asarray(c[what], dtype=float))
            name = f"{'ASR' if what == 'asr' else 'benign loss (nats)' if loss else 'utility'} · {label}"
            mean = np.nanmean(v, 0)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=mean,
                    mode="lines+markers",
                    legendgroup=name,  # mean first
                    name=name + (f" (mean of {len(v)} directions)" if len(v) > 1 else ""),
                    line=dict(color=colour, dash=dash, width=3),
                    marker=dict(color=colour, symbol=symbol),
                    error_y=_utility_error_y(c, mean / scale, colour)
                    if what == "utility"
                    else wilson_error_y(list(mean / 100), c.get("n_harmful"), colour),
                    yaxis=axis,
                )
            )
            if len(v) > 1:
                fig.add_trace(
                    go.Scatter(
                        x=x + x[::-1],
                        y=list(np.nanmax(v, 0)) + list(np.nanmin(v, 0))[::-1],
                        fill="toself",
                        fillcolor=colour,
                        opacity=0.15,
                        line=dict(width=0),
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=name,
                        name=f"{name}: min–max over {len(v)} directions",
                        yaxis=axis,
                    )
                )
                for i, row in enumerate(v):
                    fig.add_trace(
                        go.Scatter(
                            x=x,
                            y=row,
                            mode="lines",
                            line=dict(color=colour, dash=dash, width=1),
                            opacity=0.45,
                            showlegend=False,
                            legendgroup=name,
                            name=f"{name}, direction {i + 1}",
                            yaxis=axis,
                        )
                    )
    fig.add_vline(x=0, line_width=1, line_dash="dot", line_color="grey")
    style(fig, title, x=axis_label, y="rate (%)", height=420)
    fig.update_yaxes(range=[-3, 103])
    _loss_axis(fig, curves)
    return fig


def interval_error_y(values, lo, hi, colour: str | None = None) -> dict | None:
    """Plotly ``error_y`` of given intervals [lo, hi] around ``values`` (same units; nan where there is none);
    None when no point has one."""
    v, lo, hi = (np.asarray(a, dtype=float) for a in (values, lo, hi))
    if not np.isfinite(lo).any():
        return None
    return dict(
        type="data",
        symmetric=False,
        array=list(hi - v),
        arrayminus=list(v - lo),
        thickness=1.2,
        width=3,
        **({"color": colour} if colour else {}),
    )


def attack_bands(
    bands: list, field: str, title: str, percent: bool = True, y_title: str | None = None, n: int | None = None
) -> go.Figure:
    """One band per variant (:class:`analysis.methods.attacks.seeds.AttackBand`): the mean over data-order seeds
    as a line, min–max over seeds shaded; with ``n`` (prompts evaluated per point, for a rate) each point carries
    its 95 % Wilson interval as an error bar, and a loss utility (``field`` "utility", not ``percent``) its 95 %
    bootstrap interval over the benign items."""
    fig = go.Figure()
    k_ = 100 if percent else 1
    for k, b in enumerate(bands):
        colour, x = SERIES[k % len(SERIES)], list(b.steps)
        if percent:
            error_y = wilson_error_y(list(b.mean(field)), n, colour)
        elif field == "utility":
            error_y = interval_error_y(b.mean(field), *b.loss_interval(), colour=colour)
        else:
            error_y = None
        fig.add_trace(
            go.Scatter(
                x=x,
                y=k_ * b.mean(field),
                error_y=error_y,
                mode="lines+markers",
                legendgroup=b.variant,
                name=b.variant + (f" (mean of {len(b.seeds)} seeds)" if len(b.seeds) > 1 else ""),
                line=dict(color=colour, dash=DASHES[k // len(SERIES) % 4], width=3),
                marker=dict(color=colour, symbol=["circle", "square", "diamond", "cross"][k % 4]),
            )
        )
        if len(b.seeds) > 1:
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=list(k_ * b.hi(field)) + list(k_ * b.lo(field))[::-1],
                    fill="toself",
                    fillcolor=colour,
                    opacity=0.18,
                    line=dict(width=0),
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=b.variant,
                    name=f"{b.variant}: min–max over {len(b.seeds)} seeds",
                )
            )
    style(fig, title, x="attack step (optimizer updates)", y=y_title or ATTACK_AXES.get(field, field), height=400)
    if percent:
        fig.update_yaxes(range=[-3, 103])
    return fig
