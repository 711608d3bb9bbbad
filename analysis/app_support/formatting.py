"""How a utility value is shown: it carries its kind everywhere it is printed or plotted.

Utility is either exact-answer accuracy ("exact", a fraction, higher is better) or the mean response-token
loss ("loss", nats, lower is better); "none" when the benign set has no references. A loss must never be
printed as a percentage.

Every rate is shown with its 95 % interval (:func:`rate_cell`: Wilson for proportions, bootstrap for the loss)
and every "A vs B on the same prompts" with a paired test (:func:`comparison_rows`, :func:`comparison_sentences`:
Newcombe interval of the difference, exact McNemar p).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analysis.core.stats import PairedDifference

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


# --- intervals and paired comparisons ------------------------------------------------------------------------
METRIC_LABELS = {
    "asr": "ASR (keyword)",
    "asr_positive": "ASR (really complies)",
    "utility": "utility",
    "over_refusal": "over-refusal",
    "degenerate_rate": "degenerate",
}
PAIRED_METRICS = ("asr", "asr_positive", "utility", "over_refusal")
DEFAULT_PAIRS = (("pruned", "aligned"), ("pruned", "control"))


def metric_label(metric: str) -> str:
    """'ASR (keyword)', …; an extra judge's ASR as 'ASR (<judge>)'."""
    return f"ASR ({metric[6:]})" if metric.startswith("judge:") else METRIC_LABELS.get(metric, metric)


def rate_cell(result, metric: str) -> str:
    """One rate of an :class:`~analysis.core.evaluation.EvalResult` with its 95 % interval: '97.5 % [92.9, 99.1]'
    (Wilson), a loss utility as '1.234 L [1.201, 1.270]' (bootstrap); '–' when the rate does not exist."""
    rate = result.rate(metric)
    if rate is None:
        return "–"
    if rate.kind == "loss":
        return f"{rate.value:.3f} L {rate.interval()}"
    return rate.format()


def rate_rows(results: dict, label: str = "model") -> list[dict]:
    """Table rows, one per state, every rate with its interval (the metrics of the first result)."""
    metrics = next(iter(results.values())).metrics() if results else []
    return [{label: name, **{metric_label(m): rate_cell(r, m) for m in metrics}} for name, r in results.items()]


def _paired(results: dict, x: str, y: str, metric: str) -> PairedDifference | None:
    """x − y on the same prompts (None where the metric has no per-prompt outcomes, e.g. a loss)."""
    try:
        return results[y].paired(results[x], metric, y, x)
    except ValueError:
        return None


def comparisons(results: dict, pairs=DEFAULT_PAIRS, metrics=None) -> list[tuple[str, str, str, PairedDifference]]:
    """(x, y, metric, PairedDifference) for every pair present in ``results`` and every pairable metric."""
    out: list[tuple[str, str, str, PairedDifference]] = []
    for x, y in pairs:
        if x not in results or y not in results:
            continue
        ms = metrics or [m for m in results[x].metrics() if m in PAIRED_METRICS or m.startswith("judge:")]
        for m in ms:
            d = _paired(results, x, y, m)
            if d is not None:
                out.append((x, y, m, d))
    return out


def comparison_rows(results: dict, pairs=DEFAULT_PAIRS, metrics=None) -> list[dict]:
    """Table rows of paired comparisons: x − y in points, the Newcombe 95 % interval, the exact McNemar p and
    whether the difference is significant at 5 %."""
    return [
        {
            "comparison": f"{x} vs {y}",
            "metric": metric_label(m),
            "difference": f"{100 * d.diff:+.1f} points",
            "95 % interval": f"[{100 * d.lo:.1f}, {100 * d.hi:.1f}]",
            "McNemar": d.p_text(),
            "significant": "yes" if d.significant else "no (within noise)",
        }
        for x, y, m, d in comparisons(results, pairs, metrics)
    ]


def comparison_sentences(results: dict, pairs=DEFAULT_PAIRS, metrics=("asr",)) -> list[str]:
    """'pruned vs control, ASR (keyword): +62.5 points [52.1, 71.8], McNemar p < 0.001 (significant)'."""
    return [f"{x} vs {y}, {metric_label(m)}: {d.format()}" for x, y, m, d in comparisons(results, pairs, metrics)]
