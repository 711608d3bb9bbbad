"""How a utility value is shown: it carries its kind everywhere it is printed or plotted.

Utility is either exact-answer accuracy ("exact", a fraction, higher is better) or the mean response-token
loss ("loss", nats, lower is better); "none" when the benign set has no references. A loss must never be
printed as a percentage.
"""
from __future__ import annotations

import math

KINDS = ("exact", "loss", "none")
LEGEND = "utility = exact-answer accuracy (%) or mean response loss in nats ('L', lower is better)"


def utility_kind(benign) -> str:
    """The kind :func:`analysis.evaluate.evaluate` reports for this benign set (same rule)."""
    if benign.items and all(it.answer is not None for it in benign.items):
        return "exact"
    if benign.items and all(it.response for it in benign.items):
        return "loss"
    return "none"


def format_utility(value, kind: str, width: int = 0) -> str:
    """'97.5%' for accuracy, '1.963L' for a loss, '-' when there is none (missing, NaN or kind 'none')."""
    if kind not in KINDS:
        raise ValueError(f"utility kind must be one of {KINDS}, got {kind!r}")
    if value is None or kind == "none" or (isinstance(value, float) and math.isnan(value)):
        text = "-"
    elif kind == "exact":
        text = f"{100 * float(value):.1f}%"
    else:
        text = f"{float(value):.3f}L"
    return text.rjust(width) if width else text
