"""How a utility value is shown: it carries its kind everywhere it is printed or plotted.

Utility is either exact-answer accuracy ("exact", a fraction, higher is better) or the mean response-token
loss ("loss", nats, lower is better); "none" when the benign set has no references. A loss must never be
printed as a percentage.
"""
from __future__ import annotations

import math

KINDS = ("exact", "loss", "none")
LEGEND = "utility = exact-answer accuracy (%) or mean response loss in nats ('L', lower is better)"


def format_utility(value, kind: str, width: int = 0, sep: str = "") -> str:
    """'97.5%' for accuracy, '1.963L' for a loss, '-' when there is none (missing, NaN or kind 'none');
    ``sep`` goes between number and unit (pages write '97.5 %')."""
    if kind not in KINDS:
        raise ValueError(f"utility kind must be one of {KINDS}, got {kind!r}")
    if value is None or kind == "none" or (isinstance(value, float) and math.isnan(value)):
        text = "-"
    elif kind == "exact":
        text = f"{100 * float(value):.1f}{sep}%"
    else:
        text = f"{float(value):.3f}{sep}L"
    return text.rjust(width) if width else text


def format_utility_delta(before, after, kind: str) -> str | None:
    """The change of a utility value in its own unit ('+1.2' points of accuracy, '+0.034' nats); None if unknown."""
    if before is None or after is None or kind not in ("exact", "loss"):
        return None
    return f"{100 * (after - before):+.1f}" if kind == "exact" else f"{after - before:+.3f}"


def delta_color(kind: str) -> str:
    """Streamlit's delta colour: a lower loss is better, a higher accuracy is."""
    return "inverse" if kind == "loss" else "normal"
