"""A self-contained HTML findings report: model pair, settings, key numbers, figures, sample generations.

Plain data in (figures as Plotly JSON specs, so this module never draws), one HTML string out, with
plotly.js inlined once: the file opens offline, figures stay interactive.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
from dataclasses import dataclass, field


@dataclass
class Section:
    """What one page contributes: numbers, figures (Plotly JSON) and tables (rows of dicts)."""

    title: str
    notes: list[str] = field(default_factory=list)
    numbers: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)          # title -> Plotly figure JSON
    tables: dict[str, list[dict]] = field(default_factory=dict)    # title -> rows

    def empty(self) -> bool:
        return not (self.numbers or self.figures or self.tables or self.notes)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.9em} td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top} th{background:#f4f4f4} .meta{color:#666;font-size:.9em} .fig{margin:1em 0}
.numbers td:first-child{font-weight:600}
"""


def _js(obj) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj).replace("</", "<\\/")


def _table(rows: list[dict], limit: int = 50) -> str:
    if not rows:
        return "<p class='meta'>(no rows)</p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
                   for r in rows[:limit])
    more = f"<p class='meta'>… {len(rows) - limit} more rows</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def build(title: str, pair: dict[str, str], settings: dict[str, str], sections: list[Section],
          plotly_js: str | None = None) -> str:
    """The report as one HTML document (``plotly_js`` defaults to the installed plotly's bundle)."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style><script>{plotly_js}</script></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='meta'>Generated {stamp} by the alignment brittleness explorer.</p>",
             "<h2>Model pair</h2>", _table([{"role": k, "model": v} for k, v in pair.items()])]
    if settings:
        parts += ["<h2>Settings</h2>", _table([{"setting": k, "value": v} for k, v in settings.items()])]
    n_fig = 0
    shown = [s for s in sections if not s.empty()]
    if not shown:
        parts.append("<p>No results were computed in this session yet: open a page first.</p>")
    for s in shown:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(n)}</p>" for n in s.notes]
        if s.numbers:
            parts.append("<table class='numbers'>" + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in s.numbers.items())
                + "</table>")
        for ftitle, spec in s.figures.items():
            n_fig += 1
            fig = json.loads(spec)
            parts.append(f"<div class='fig'><div id='fig{n_fig}'></div></div><script>Plotly.newPlot('fig{n_fig}', "
                         f"{_js(fig.get('data', []))}, {_js(fig.get('layout', {}))}, "
                         "{responsive: true});</script>")
        for ttitle, rows in s.tables.items():
            parts += [f"<h3>{html.escape(ttitle)}</h3>", _table(rows)]
    parts.append("</body></html>")
    return "".join(parts)
