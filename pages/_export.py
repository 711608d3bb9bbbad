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

from analysis.report import Section, build

_PAGE = "_findings_page"


def findings() -> dict[str, Section]:
    return st.session_state.setdefault("findings", {})


def section(title: str) -> Section:
    """Start (or restart) this page's findings for the current run."""
    st.session_state[_PAGE] = title
    s = findings()[title] = Section(title)
    return s


def current() -> Section:
    title = st.session_state.get(_PAGE, "Results")
    return findings().setdefault(title, Section(title))


def record(numbers: dict | None = None, table: tuple[str, list[dict]] | None = None, note: str | None = None,
           settings: dict | None = None) -> None:
    s = current()
    s.numbers.update({k: str(v) for k, v in (numbers or {}).items()})
    s.numbers.update({f"setting · {k}": str(v) for k, v in (settings or {}).items()})
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
    title = (fig.layout.title.text or key) if fig.layout.title else key
    name = _slug(title)
    where.plotly_chart(fig, width="stretch", key=key,
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


def report_html(pair: dict[str, str], settings: dict[str, str]) -> str:
    return build("Alignment brittleness: findings", pair, settings, list(findings().values()))


def report_button(pair: dict[str, str], settings: dict[str, str]) -> None:
    """Sidebar button: the whole session's findings as one self-contained HTML file."""
    snapshot = findings()
    st.download_button("Findings report (HTML)",
                       lambda: build("Alignment brittleness: findings", pair, settings, list(snapshot.values())),
                       file_name="findings-report.html", mime="text/html", key="report_download", on_click="ignore",
                       help="model pair, settings, key numbers, figures and sample generations of this session")
