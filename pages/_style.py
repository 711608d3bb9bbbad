"""One palette and one figure style for the app, its exports and the findings report.

Colour-blind-safe Okabe–Ito colours, one meaning per colour (ASR is always vermillion, utility always blue),
and a Plotly template registered as ``"brittle"``. :func:`style` is the one call every figure goes through:
it sets the template (so ``fig.to_json()`` carries real colours, never Streamlit's ``#00000x`` placeholder
palette), the title, the axis titles with their units, margins that leave room for tick labels, a legend that
never covers a colour bar, and an explicit colour on every trace. :func:`problems` checks a saved figure.
Any page (e.g. a new "Alignment depth" page) adopts it with ``style(fig, title, x=..., y=...)``.
"""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008), "Color universal design": distinguishable with every common colour-vision deficiency.
BLACK, ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE, GREY = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#7F7F7F",
)

# what each colour means, everywhere
ASR, UTILITY, OVER_REFUSAL, REALLY_COMPLIES = VERMILLION, BLUE, ORANGE, PURPLE
SERIES = [BLUE, ORANGE, GREEN, PURPLE, SKY, BLACK, GREY, VERMILLION]  # vermillion (= ASR) last; no yellow
ROLE_COLOURS = {"aligned": BLUE, "base": ORANGE, "edited": GREEN, "LoX": GREEN, "pruned": VERMILLION, "control": GREY}
TYPE_COLOURS = {"safety": VERMILLION, "utility": BLUE, "complex": PURPLE, "redundant": GREY}
GROUP_COLOURS = {
    "harmful, refused": GREEN,
    "harmful, complied": VERMILLION,
    "benign": BLUE,
    "benign, refused": ORANGE,
    "harmful": VERMILLION,
}
DASHES = ["solid", "dash", "dot", "dashdot"]

# colour scales: ASR from safe (blue) to unsafe (vermillion) through white; sequential values in viridis
ASR_SCALE = [[0.0, BLUE], [0.5, "#F7F7F7"], [1.0, VERMILLION]]
SEQUENTIAL = "Viridis"
PLACEHOLDER = re.compile(
    r'"#0000(0[1-9]|[1-9][0-9])"'
)  # Streamlit's theme palette #000001…#000099 (its frontend swaps them)

FONT = dict(family="DejaVu Sans, Arial, sans-serif", size=14, color="#111111")
MARGIN = dict(l=80, r=30, t=90, b=70)
TOOLBAR_PX = 38  # the band at the top where Streamlit's and Plotly's toolbars float over a chart
TITLE_PX = 30  # one title line (18 px font) and its gap to the legend or the plot
LEGEND_ROW_PX = 24
TITLE_INSET_PX = 16  # the least distance of the title from the figure's left edge (it starts where the plot does)
EXPORT_SIZES = {"projector": (1280, 720), "slide": (1920, 1080)}


def _template() -> go.layout.Template:
    axis = dict(
        automargin=True,
        showline=True,
        linecolor="#444444",
        ticks="outside",
        gridcolor="#E5E5E5",
        zerolinecolor="#BBBBBB",
        title=dict(standoff=8),
        tickfont=dict(size=13),
    )
    return go.layout.Template(
        layout=go.Layout(
            font=FONT,
            colorway=SERIES,
            paper_bgcolor="white",
            plot_bgcolor="white",
            title=dict(x=0.0, xanchor="left", font=dict(size=18)),
            margin=MARGIN,
            xaxis=axis,
            yaxis=axis,
            colorscale=dict(sequential=SEQUENTIAL, diverging=ASR_SCALE),
            legend=dict(
                orientation="h", x=0.0, xanchor="left", y=1.0, yanchor="bottom", bgcolor="rgba(255,255,255,0.8)"
            ),
            hoverlabel=dict(font=dict(size=13)),
            separators=".,",
        )
    )


TEMPLATE = "brittle"
pio.templates[TEMPLATE] = _template()


def colorbar(title: str, **kw) -> dict:
    """A titled colour bar (units in the title) that keeps clear of the plot and the legend."""
    return dict(
        title=dict(text=title, side="right"),
        thickness=16,
        len=0.85,
        y=0.45,
        yanchor="middle",
        tickformat=kw.pop("tickformat", None),
        **kw,
    )


def _colour_of(trace) -> str | None:
    for attr in ("line", "marker"):
        obj = getattr(trace, attr, None)
        c = getattr(obj, "color", None) if obj is not None else None
        if isinstance(c, str):
            return c
    return None


def colour_traces(fig: go.Figure) -> go.Figure:
    """Give every line / marker / bar trace without one an explicit palette colour, each a different one."""
    used = {c for t in fig.data if (c := _colour_of(t))}
    free = [c for c in SERIES if c not in used] or SERIES
    k = 0
    for t in fig.data:
        if t.type in ("heatmap", "contour", "surface", "histogram2d"):
            continue
        if _colour_of(t) is None:
            colour = free[k % len(free)]
            k += 1
            if t.type in ("scatter", "scattergl", "scatter3d"):
                mode = t.mode or "lines"
                if "lines" in mode:
                    t.line.color = colour
                if "markers" in mode or "lines" not in mode:
                    t.marker.color = colour
            else:
                t.marker.color = colour
    return fig


def legend_lines(fig: go.Figure, width_px: int = 640) -> int:
    """Rows a horizontal legend takes at ``width_px`` (so the top margin holds it and the title apart)."""
    rows, used = 1, 0
    for t in fig.data:
        if t.showlegend is False or not t.name:
            continue
        w = 45 + 8 * len(t.name)
        if used and used + w > width_px:
            rows, used = rows + 1, 0
        used += w
    return rows


def style(
    fig: go.Figure,
    title: str,
    x: str | None = None,
    y: str | None = None,
    height: int | None = None,
    legend: bool = True,
) -> go.Figure:
    """The house style: template, title (it also names the export file), axis titles with units, margins."""
    show = legend and len(fig.data) > 1
    top = TOOLBAR_PX + TITLE_PX + (LEGEND_ROW_PX * legend_lines(fig) if show else 0)
    fig.update_layout(
        template=TEMPLATE,
        title=dict(
            text=title,
            x=0.0,
            xref="paper",
            xanchor="left",
            y=1.0,
            yref="container",
            yanchor="top",
            pad=dict(t=TOOLBAR_PX, l=TITLE_INSET_PX),
        ),
        showlegend=show,
        margin={**MARGIN, "t": top},
    )
    if height:
        fig.update_layout(height=height)
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    no_negative_ticks(fig)
    return colour_traces(fig)


def _values(arr) -> list[float] | None:
    """The numbers of a trace's x or y (None when it holds text, e.g. category labels)."""
    if arr is None:
        return None
    out = []
    for v in arr.tolist() if hasattr(arr, "tolist") else list(arr):
        if v is None or (isinstance(v, float) and v != v):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        out.append(float(v))
    return out


def no_negative_ticks(fig: go.Figure) -> go.Figure:
    """An axis whose data are all ≥ 0 (steps, positions, counts, singular values) starts at 0: no tick at −1
    from the padding Plotly adds around markers; markers on the axis stay whole."""
    for letter in ("x", "y"):
        vals, seen = [], False
        for t in fig.data:
            if t.type not in ("scatter", "bar", "histogram"):
                vals = None  # a map or a surface spans its own range
                break
            if getattr(t, f"{letter}axis", None) not in (None, letter) or getattr(t, letter, None) is None:
                continue
            v = _values(getattr(t, letter))
            if v is None:
                vals = None
                break
            vals += v
            seen = True
        if seen and vals and min(vals) >= 0:
            fig.update_layout({f"{letter}axis": dict(rangemode="nonnegative")})
            for t in fig.data:
                if t.type == "scatter":
                    t.cliponaxis = False
    return fig


def layout_problems(fig: go.Figure | dict) -> list[str]:
    """What keeps a figure from a projector or a slide: a title under the toolbar or flush against the left
    edge, a top margin that does not hold the title and the legend."""
    layout = (fig.to_plotly_json() if isinstance(fig, go.Figure) else fig).get("layout", {})
    title, out = layout.get("title") or {}, []
    pad = title.get("pad") or {}
    if pad.get("t", 0) < TOOLBAR_PX or title.get("yref") != "container":
        out.append("title may sit under the chart toolbar")
    if (
        title.get("xref", "container") == "container"
        and title.get("xanchor") == "left"
        and pad.get("l", 0) < TITLE_INSET_PX
        and title.get("x", 0) <= 0.01
    ):
        out.append("title flush against the left edge")
    top = (layout.get("margin") or {}).get("t", 0)
    if top < pad.get("t", 0) + TITLE_PX:
        out.append(f"top margin {top} px does not hold the toolbar band and the title")
    return out


def problems(spec: str | dict) -> list[str]:
    """What is wrong with a saved figure (Plotly JSON): placeholder or missing colours, series sharing a
    colour, no title, axes without titles or automargin. Empty when the figure is fit to show."""
    fig = json.loads(spec) if isinstance(spec, str) else spec
    layout, out = fig.get("layout", {}), []
    text = json.dumps(fig)
    if PLACEHOLDER.search(text):
        out.append("carries Streamlit's placeholder palette (#0000xx)")
    title = (layout.get("title") or {}).get("text")
    if not title:
        out.append("no title")
    seen: dict[tuple, str] = {}
    for t in fig.get("data", []):
        if t.get("type") in ("heatmap", "contour", "surface"):
            if not t.get("colorscale"):
                out.append(f"{t.get('type')} without an explicit colour scale")
            if t.get("showscale", True) and not ((t.get("colorbar") or {}).get("title") or {}).get("text"):
                out.append(f"{t.get('type')} colour bar without a title")
            continue
        colour = (t.get("line") or {}).get("color") or (t.get("marker") or {}).get("color")
        if not isinstance(colour, (str, list)):
            out.append(f"trace {t.get('name')!r} has no explicit colour")
            continue
        style_key = (
            json.dumps(colour),
            (t.get("line") or {}).get("dash", "solid"),
            (t.get("marker") or {}).get("symbol", "circle"),
        )
        if t.get("showlegend", True) is not False and t.get("name"):
            if style_key in seen and seen[style_key] != t.get("name"):
                out.append(f"traces {seen[style_key]!r} and {t.get('name')!r} look the same")
            seen.setdefault(style_key, t.get("name"))
    for axis in ("xaxis", "yaxis"):
        ax = layout.get(axis, {})
        if (
            not (ax.get("title") or {}).get("text")
            and fig.get("data")
            and fig["data"][0].get("type") not in ("surface", "scatter3d")
        ):
            out.append(f"{axis} has no title")
        if ax and not ax.get("automargin"):
            out.append(f"{axis} without automargin (tick labels may be clipped)")
    return out
