"""A self-contained HTML findings report: a one-screen summary of findings, a table of contents, the model pair,
every result computed in the session (each with its settings), sample generations and the conventions used.

Plain data in (figures as Plotly JSON specs, so this module never draws), one HTML string out, with plotly.js
inlined once: the file opens offline, figures stay interactive, and it prints cleanly to PDF (A4, figures
sized to the page, tables wrapping their text, a section never starts at the bottom of a page).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import re
from dataclasses import dataclass, field

MAX_RUNS = 15  # earlier results kept per page (the newest ones)

CONVENTIONS = [
    "Rates (ASR, really complies, over-refusal, degenerate replies, utility as exact-answer accuracy) are "
    "percentages of the prompts evaluated; a change is in percentage points. Utility measured as response loss "
    "is in nats (lower is better) and says so.",
    "ASR (keyword) counts harmful-prompt replies without a refusal phrase — the papers' measure; it also counts "
    "gibberish and off-task answers. 'Really complies' asks whether the reply actually answers the request; "
    "read the two side by side, with the sample replies.",
    "Decoder layers are numbered from 0 (as in the model's code and on every heatmap). Residual-stream "
    "boundaries are named 'emb.' (the embeddings) and 'after layer l'.",
    "Every edit is reversible and compared with a same-size random (or redundant) control where one exists.",
    "Every rate carries its 95 % interval [lo, hi]: Wilson score intervals for shares of prompts, a percentile "
    "bootstrap over the benign items (2000 resamples) for a response-loss utility. 'A vs B' on the same prompts "
    "(aligned vs pruned, pruned vs control, before vs after LoX) gives B − A in points with Newcombe's paired "
    "interval and the exact McNemar p; 'not significant' (p ≥ 0.05) means the difference is within the noise of "
    "the prompt set.",
]


def _key(kind: str, title: str, content) -> str:
    return kind + title + hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Section:
    """What one page contributes for its latest result (numbers, figures as Plotly JSON, tables, notes, the
    settings used, summary rows and conventions) plus its earlier, different results in ``runs``."""

    title: str
    notes: list[str] = field(default_factory=list)
    numbers: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)  # title -> Plotly figure JSON
    tables: dict[str, list[dict]] = field(default_factory=dict)  # title -> rows
    settings: dict[str, str] = field(default_factory=dict)
    summary: list[tuple[str, str, str]] = field(default_factory=list)  # (what was measured, result, caveat/control)
    conventions: list[str] = field(default_factory=list)
    runs: list["Section"] = field(default_factory=list)  # earlier results of this page, oldest first
    caveat: str = ""  # about the page's phenomenon rather than one result: shown under the page's heading

    def empty(self) -> bool:
        return not (self.numbers or self.figures or self.tables or self.notes or self.summary)

    def signature(self) -> str:
        """Identifies the content (two reruns that computed the same thing have the same signature)."""
        blob = json.dumps(
            [self.numbers, self.figures, self.tables, self.notes, self.summary], sort_keys=True, default=str
        )
        return hashlib.sha1(blob.encode()).hexdigest()

    def snapshot(self) -> "Section":
        return Section(
            self.title,
            list(self.notes),
            dict(self.numbers),
            dict(self.figures),
            dict(self.tables),
            dict(self.settings),
            list(self.summary),
            list(self.conventions),
        )

    def carry_from(self, previous: "Section") -> None:
        """Keep ``previous`` results (its earlier runs, and itself when it differs from all of them)."""
        runs = list(previous.runs)
        if not previous.empty() and previous.signature() not in {r.signature() for r in runs}:
            runs.append(previous.snapshot())
        self.runs = runs[-MAX_RUNS:]

    def items(self) -> set[str]:
        """Content keys of this result's numbers, figures, tables, notes and summary rows."""
        return (
            {_key("v", k, v) for k, v in self.numbers.items()}
            | {_key("f", k, v) for k, v in self.figures.items()}
            | {_key("t", k, v) for k, v in self.tables.items()}
            | {_key("n", n, "") for n in self.notes}
            | {_key("s", "", list(row)) for row in self.summary}
        )

    def results(self) -> list["Section"]:
        """Every distinct result of this page, oldest first, the latest last; a result whose content another
        one holds in full (a rerun that redrew part of it) is left out."""
        runs = list(self.runs) + ([] if self.empty() else [self])
        items = [r.items() for r in runs]
        keep = []
        for i, r in enumerate(runs):
            if not any(j != i and items[i] <= items[j] and (items[i] != items[j] or j > i) for j in range(len(runs))):
                keep.append(r)
        return keep


_STYLE = """
body{font-family:"DejaVu Sans",system-ui,-apple-system,Segoe UI,sans-serif;max-width:1000px;margin:1.5em auto;
padding:0 1em;color:#111;line-height:1.4}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #0072B2;padding-bottom:.2em;margin-top:1.8em}
h3{margin-top:1.2em} h4{margin:.8em 0 .3em;color:#333}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.9em;max-width:100%} td,th{border:1px solid #bbb;
padding:.3em .6em;text-align:left;vertical-align:top;white-space:pre-wrap;overflow-wrap:break-word} th{background:#eef3f8}
.meta{color:#444;font-size:.9em} .fig{margin:1em 0;width:700px;max-width:100%;break-inside:avoid}
.numbers td:first-child{font-weight:600} .summary{border:2px solid #0072B2;padding:.6em 1em;background:#f7fbff}
.summary table{width:100%} .caveat{color:#8a3b00} .toc ol{margin:.3em 0} .run{border-left:4px solid #ddd;
padding-left:.8em;margin:1em 0}
@page{size:A4;margin:14mm} @media print{body{max-width:none;margin:0} h2,h3,h4{break-after:avoid}
.summary,.toc{break-inside:avoid} h2.first{break-before:auto} tr{break-inside:avoid} a{color:#111;text-decoration:none}}
"""


def _js(obj) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj).replace("</", "<\\/")


def _cell(v) -> str:
    if v is None:
        return "–"
    return html.escape(str(v))


def _table(rows: list[dict], limit: int = 50) -> str:
    if not rows:
        return "<p class='meta'>(no rows)</p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows[:limit])
    more = f"<p class='meta'>… {len(rows) - limit} more rows</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


class _Figures:
    def __init__(self) -> None:
        self.n = 0

    def html(self, spec: str) -> str:
        self.n += 1
        fig = json.loads(spec)
        layout = {**fig.get("layout", {}), "width": None, "autosize": True}
        return (
            f"<div class='fig'><div id='fig{self.n}'></div></div><script>Plotly.newPlot('fig{self.n}', "
            f"{_js(fig.get('data', []))}, {_js(layout)}, {{responsive: true, displaylogo: false}});</script>"
        )


def _result(r: Section, seen: set, figs: _Figures) -> list[str]:
    """One result's new items (what an earlier result already showed is not repeated)."""
    parts = []
    if r.settings:
        parts.append(
            "<p class='meta'><b>Settings:</b> "
            + "; ".join(f"{html.escape(k)} = {html.escape(str(v))}" for k, v in r.settings.items())
            + "</p>"
        )
    parts += [f"<p>{html.escape(n)}</p>" for n in r.notes if _key("n", n, "") not in seen]
    seen.update(_key("n", n, "") for n in r.notes)
    nums = {k: v for k, v in r.numbers.items() if _key("v", k, v) not in seen}
    if nums:
        parts.append(
            "<table class='numbers'>"
            + "".join(f"<tr><td>{html.escape(k)}</td><td>{_cell(v)}</td></tr>" for k, v in nums.items())
            + "</table>"
        )
        seen.update(_key("v", k, v) for k, v in nums.items())
    for ftitle, spec in r.figures.items():
        k = _key("f", ftitle, spec)
        if k not in seen:
            seen.add(k)
            parts.append(figs.html(spec))
    for ttitle, rows in r.tables.items():
        k = _key("t", ttitle, rows)
        if k not in seen:
            seen.add(k)
            parts += [f"<h4>{html.escape(ttitle)}</h4>", _table(rows)]
    return parts


def summary_rows(sections: list[Section]) -> list[dict]:
    """The findings at the top: each page's summary rows over all its results (distinct, in order); a page that
    produced a result without summary rows gets one row from its latest key number (or table)."""
    rows, seen = [], set()
    for s in sections:
        results = s.results()
        own: list[tuple[str, str, str] | None] = [row for r in results for row in r.summary]
        if not own and results:
            own = [_fallback_row(results[-1])]
        for what, value, caveat in [row for row in own if row is not None]:
            if (s.title, what, value) not in seen:
                seen.add((s.title, what, value))
                rows.append({"page": s.title, "measured": what, "result": value, "caveat / control": caveat})
    return rows


def _fallback_row(r: Section) -> tuple[str, str, str] | None:
    """(what, result, where to read more) from a result's first key number, else its first table."""
    if r.numbers:
        what, value = next(iter(r.numbers.items()))
        return what, value, "the other numbers and their settings are in the page's section"
    if r.tables:
        title, table = next(iter(r.tables.items()))
        return title, f"a table of {len(table)} rows", "in the page's section"
    if r.figures:
        return next(iter(r.figures)), "a figure", "in the page's section"
    return None


def build(
    title: str, pair: dict[str, str], settings: dict[str, str], sections: list[Section], plotly_js: str | None = None
) -> str:
    """The report as one HTML document (``plotly_js`` defaults to the installed plotly's bundle)."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    shown = [s for s in sections if s.results()]
    rows = summary_rows(shown)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style><script>{plotly_js}</script></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='meta'>Generated {stamp} by the alignment brittleness explorer. "
        f"Model: {html.escape(pair.get('aligned', '?'))}.</p>",
    ]
    parts.append(
        "<div class='summary' id='summary'><h2 class='first' style='border:0;margin-top:0'>Summary of findings</h2>"
    )
    if rows:
        parts.append(_table(rows, limit=30))
        parts.append(
            "<p class='meta'>Rates are percentages of the prompts evaluated, [lo, hi] their 95 % "
            "intervals; each number's settings and sample replies are in its page's section below.</p>"
        )
    else:
        parts.append("<p>No results were computed in this session yet: open a page first.</p>")
    parts.append("</div>")
    toc = (
        [("model-pair", "Model pair and settings")]
        + [(_anchor(s.title), s.title) for s in shown]
        + [("conventions", "Conventions")]
    )
    parts.append(
        "<nav class='toc'><h3>Contents</h3><ol>"
        + "".join(f"<li><a href='#{a}'>{html.escape(t)}</a></li>" for a, t in toc)
        + "</ol></nav>"
    )
    parts += [
        "<h2 id='model-pair' class='first'>Model pair and settings</h2>",
        _table([{"role": k, "model": v} for k, v in pair.items()]),
    ]
    if settings:
        parts.append(_table([{"setting": k, "value": v} for k, v in settings.items()]))
    figs = _Figures()
    conventions = list(CONVENTIONS)
    for s in shown:
        parts.append(f"<h2 id='{_anchor(s.title)}'>{html.escape(s.title)}</h2>")
        if s.caveat:
            parts.append("<p class='meta'>" + "<br>".join(map(html.escape, s.caveat.splitlines())) + "</p>")
        results = s.results()
        seen: set = set()
        for i, r in enumerate(results):
            label = "Latest result" if i == len(results) - 1 else f"Result {i + 1}"
            body = _result(r, seen, figs)
            if body:
                parts += [f"<div class='run'><h3>{label}</h3>"] + body + ["</div>"]
            conventions += [c for c in r.conventions if c not in conventions]
    parts.append(
        "<h2 id='conventions'>Conventions</h2><ul>"
        + "".join(f"<li>{html.escape(c)}</li>" for c in conventions)
        + "</ul>"
    )
    parts.append("</body></html>")
    return "".join(parts)
