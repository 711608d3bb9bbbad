"""Figures with export buttons, and the session's findings that the report collects.

Every page starts its section with :func:`section`; :func:`figure` shows a Plotly figure with HTML / PNG /
SVG downloads (generated only when clicked) and records it in that section; pages add key numbers and sample
generations with :func:`record`. The sidebar's report button turns all sections into one HTML file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import threading
from collections import OrderedDict

import streamlit as st

from analysis.app_support.report import Section, build
from pages._style import EXPORT_SIZES, TEMPLATE, colour_traces

_PAGE = "_findings_page"


def findings() -> dict[str, Section]:
    return st.session_state.setdefault("findings", {})


def section(title: str) -> Section:
    """Start this page's findings for the current run; its earlier, different results are kept (the report
    shows every result computed in the session, each with its settings)."""
    st.session_state[_PAGE] = title
    s = Section(title)
    previous = findings().get(title)
    if previous is not None:
        s.carry_from(previous)
    findings()[title] = s
    return s


def current() -> Section:
    title = st.session_state.get(_PAGE, "Results")
    return findings().setdefault(title, Section(title))


def record(
    numbers: dict | None = None,
    table: tuple[str, list[dict]] | None = None,
    note: str | None = None,
    settings: dict | None = None,
    summary: list[tuple[str, str, str]] | None = None,
    convention: str | None = None,
) -> None:
    """Add to this page's current result: key numbers, a table, a note, the settings used, summary rows
    (what was measured, the result, its caveat or control) for the report's top, a convention it follows."""
    s = current()
    s.numbers.update({k: str(v) for k, v in (numbers or {}).items()})
    s.settings.update({k: str(v) for k, v in (settings or {}).items()})
    s.summary += [row for row in (summary or []) if row not in s.summary]
    if convention and convention not in s.conventions:
        s.conventions.append(convention)
    if table:
        s.tables[table[0]] = table[1]
    if note:
        s.notes.append(note)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "figure"


def can_render_images() -> bool:
    """kaleido renders PNG/SVG on the server through a Chrome/Chromium it finds on the machine."""
    if importlib.util.find_spec("kaleido") is None:
        return False
    return any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome"))


# --- figures built once per server process ---------------------
# Building and styling a Plotly figure costs 10–40 ms of the one interpreter lock (validation, template copies);
# with 30 sessions rerunning the same preset at once that was ~40 % of the server's time. A figure is built once
# per content of its arguments and shared read-only by every session (st.plotly_chart only serialises it).
_FIGURES: OrderedDict[str, object] = OrderedDict()
_FIGURES_LOCK = threading.Lock()
MAX_FIGURES = 64


def _feed(h, x) -> None:
    """Hash ``x`` by content: numbers, strings, containers, arrays and tensors by their values; any other object
    (a model adapter) by its identity — the caller names what it stands for (a fingerprint) in ``key``."""
    import numpy as np

    if x is None or isinstance(x, (bool, int, float, str)):
        h.update(f"{type(x).__name__}:{x!r};".encode())
    elif isinstance(x, bytes):
        h.update(b"bytes:%d;" % len(x) + x)
    elif isinstance(x, (list, tuple)):
        h.update(f"{type(x).__name__}[{len(x)}](".encode())
        for v in x:
            _feed(h, v)
        h.update(b")")
    elif isinstance(x, dict):
        h.update(f"dict[{len(x)}](".encode())
        for k, v in x.items():
            _feed(h, k)
            _feed(h, v)
        h.update(b")")
    elif type(x).__module__ == "torch" and hasattr(x, "detach"):
        _feed(h, x.detach().cpu().contiguous().numpy())
    elif isinstance(x, np.ndarray):
        a = np.ascontiguousarray(x)
        h.update(f"ndarray{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    elif isinstance(x, np.generic):
        _feed(h, x.item())
    else:
        h.update(f"obj:{type(x).__qualname__}@{id(x)};".encode())


def built(build, *args, key=(), **kwargs):
    """``build(*args, **kwargs)`` — a Plotly figure — styled for :func:`figure` and kept for this server process,
    per the content of the arguments and ``key``. Every session gets the same figure: do not change it after."""
    h = hashlib.blake2b(digest_size=20)
    _feed(h, (build.__module__, build.__qualname__, key, args, kwargs))
    digest = h.hexdigest()
    with _FIGURES_LOCK:
        fig = _FIGURES.get(digest)
        if fig is not None:
            _FIGURES.move_to_end(digest)
            return fig
    fig = build(*args, **kwargs)
    _finish(fig)
    fig._brittle_json = fig.to_json()  # the report's copy, serialised once
    with _FIGURES_LOCK:
        _FIGURES[digest] = fig
        while len(_FIGURES) > MAX_FIGURES:
            _FIGURES.popitem(last=False)
    return fig


def _finish(fig) -> None:
    fig.update_layout(template=TEMPLATE)  # also for a figure not made in pages/_plots.py: real colours in its JSON
    colour_traces(fig)


def figure(fig, key: str, where=None) -> None:
    """Show ``fig`` (in ``where``, a column, or the page), record it, and offer HTML / PNG / SVG downloads.
    A figure from :func:`built` is already styled and serialised (and shared: it is not changed here)."""
    where = where or st
    report_json = getattr(fig, "_brittle_json", None)
    if report_json is None:
        _finish(fig)
    title = (fig.layout.title.text or key) if fig.layout.title else key
    name = _slug(title)
    # theme=None: the chart on screen is the one exported and reported (same template, same colours)
    where.plotly_chart(
        fig,
        width="stretch",
        key=key,
        theme=None,
        config={"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}},
    )
    current().figures[title] = report_json or fig.to_json()
    with where.popover("Export", icon=":material/download:"):
        st.download_button(
            "Interactive HTML",
            lambda f=fig: f.to_html(include_plotlyjs=True, full_html=True),
            file_name=f"{name}.html",
            mime="text/html",
            key=f"{key}_html",
            on_click="ignore",
        )
        if can_render_images():
            for use, (w, h) in EXPORT_SIZES.items():
                st.download_button(
                    f"PNG {w}×{h} ({use})",
                    lambda f=fig, w=w, h=h: image(f, w, h),
                    file_name=f"{name}-{w}x{h}.png",
                    mime="image/png",
                    key=f"{key}_png_{use}",
                    on_click="ignore",
                )
            st.download_button(
                "SVG",
                lambda f=fig: f.to_image(format="svg"),
                file_name=f"{name}.svg",
                mime="image/svg+xml",
                key=f"{key}_svg",
                on_click="ignore",
            )
        else:
            st.caption(
                "PNG/SVG on the server need kaleido and Chrome/Chromium; the chart's camera button "
                "saves a PNG in the browser."
            )


def image(fig, width: int, height: int, fmt: str = "png") -> bytes:
    """``fig`` rendered at ``width`` × ``height`` pixels (a projector's 1280×720, a slide's 1920×1080), in the
    house style, the title clear of the edges."""
    return fig.to_image(format=fmt, width=width, height=height, scale=1)


def report_sidebar() -> None:
    """The sidebar's Report section. It stays while the model path is wrong: results already computed in this
    session stay reachable (the report names the pair they were computed on)."""
    meta = st.session_state.get("_report_meta")
    if meta is None and not any(not s.empty() or s.runs for s in findings().values()):
        return
    pair, settings = meta or ({}, {})
    with st.sidebar:
        st.header("Report")
        report_button(pair, settings)


def report_button(pair: dict[str, str], settings: dict[str, str]) -> None:
    """Sidebar button: the whole session's findings as one self-contained HTML file."""
    snapshot = findings()
    st.download_button(
        "Findings report (HTML)",
        lambda: build("Alignment brittleness: findings", pair, settings, list(snapshot.values())),
        file_name="findings-report.html",
        mime="text/html",
        key="report_download",
        on_click="ignore",
        help="model pair, settings, key numbers, figures and sample generations of this session",
    )
