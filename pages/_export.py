"""Figures with export buttons, and the session's findings that the report collects.

Every page starts its section with :func:`section`; :func:`figure` shows a Plotly figure with HTML / PNG /
SVG downloads (generated only when clicked) and records it in that section; pages add key numbers and sample
generations with :func:`record`. The sidebar's report button turns all sections into one HTML file.
"""
from __future__ import annotations

import importlib.util
import re
import shutil

import streamlit as st

from analysis.app_support.report import Section, build
from pages._style import TEMPLATE, colour_traces

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


def record(numbers: dict | None = None, table: tuple[str, list[dict]] | None = None, note: str | None = None,
           settings: dict | None = None, summary: list[tuple[str, str, str]] | None = None,
           convention: str | None = None) -> None:
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


def figure(fig, key: str, where=None) -> None:
    """Show ``fig`` (in ``where``, a column, or the page), record it, and offer HTML / PNG / SVG downloads."""
    where = where or st
    fig.update_layout(template=TEMPLATE)   # also for a figure not made in pages/_plots.py: real colours in its JSON
    colour_traces(fig)
    title = (fig.layout.title.text or key) if fig.layout.title else key
    name = _slug(title)
    # theme=None: the chart on screen is the one exported and reported (same template, same colours)
    where.plotly_chart(fig, width="stretch", key=key, theme=None,
                       config={"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}})
    current().figures[title] = fig.to_json()
    with where.popover("Export", icon=":material/download:"):
        st.download_button("Interactive HTML", lambda f=fig: f.to_html(include_plotlyjs=True, full_html=True),
                           file_name=f"{name}.html", mime="text/html", key=f"{key}_html", on_click="ignore")
        if can_render_images():
            st.download_button("PNG", lambda f=fig: f.to_image(format="png", scale=2), file_name=f"{name}.png",
                               mime="image/png", key=f"{key}_png", on_click="ignore")
            st.download_button("SVG", lambda f=fig: f.to_image(format="svg"), file_name=f"{name}.svg",
                               mime="image/svg+xml", key=f"{key}_svg", on_click="ignore")
        else:
            st.caption("PNG/SVG on the server need kaleido and Chrome/Chromium; the chart's camera button "
                       "saves a PNG in the browser.")


def report_button(pair: dict[str, str], settings: dict[str, str]) -> None:
    """Sidebar button: the whole session's findings as one self-contained HTML file."""
    snapshot = findings()
    st.download_button("Findings report (HTML)",
                       lambda: build("Alignment brittleness: findings", pair, settings, list(snapshot.values())),
                       file_name="findings-report.html", mime="text/html", key="report_download", on_click="ignore",
                       help="model pair, settings, key numbers, figures and sample generations of this session")
