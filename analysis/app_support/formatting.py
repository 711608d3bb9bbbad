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
