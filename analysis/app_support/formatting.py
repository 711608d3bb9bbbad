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
PAIRED_METRICS = ("asr", "asr_positive", "utility", "over_refusal", "degenerate_rate")
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


# --- a region's seeded controls -------------------------------------------------------------------------------
def spread_cell(spread, metric: str) -> str:
    """One rate over the controls of a :class:`~analysis.methods.critical_regions.controls.ControlSpread` as
    mean ± sd: '3.3 ± 1.2 %' (a loss utility '1.234 ± 0.010 L'); a single control is one evaluation, so its rate
    with its 95 % interval (:func:`rate_cell`); '–' without the rate."""
    if spread.n == 1:
        return rate_cell(spread.results[0], metric)
    ms = spread.mean_sd(metric)
    if ms is None:
        return "–"
    (m, s), loss = ms, metric == "utility" and spread.results[0].utility_kind == "loss"
    k, d, unit = (1, 3, "L") if loss else (100, 1, "%")
    return f"{k * m:.{d}f}{'' if math.isnan(s) else f' ± {k * s:.{d}f}'} {unit}"


def spread_row(spread, metrics: list[str], label: str = "model") -> dict:
    """A table row like :func:`rate_rows`' of the controls' mean ± sd, labelled with their number."""
    n = spread.n
    name = f"controls (mean ± sd of {n} seeds)" if n > 1 else "control (1: deterministic)"
    return {label: name, **{metric_label(m): spread_cell(spread, m) for m in metrics}}


def control_differences(pruned, controls: dict, metric: str = "asr") -> list[PairedDifference]:
    """pruned − each control on the same prompts (Newcombe interval, exact McNemar), in the order of ``controls``."""
    return [c.paired(pruned, metric, name, "pruned") for name, c in controls.items()]


def control_sentence(pruned, controls: dict, metric: str = "asr") -> str:
    """'pruned vs the 5 controls, ASR (keyword): +61.7 points on average (per seed +60.0, …); significant against
    5 of 5 (McNemar)' — or 'not significant against any of the 5'."""
    ds = control_differences(pruned, controls, metric)
    if not ds:
        return f"pruned vs controls, {metric_label(metric)}: no control"
    n_sig = sum(d.significant for d in ds)
    mean = 100 * sum(d.diff for d in ds) / len(ds)
    sig = (
        f"not significant against any of the {len(ds)}"
        if n_sig == 0
        else f"significant against {n_sig} of {len(ds)}"
        + ("" if n_sig == len(ds) else ", not significant against the others")
    )
    signed = lambda v: f"{v:+.1f}".replace("-", "−")  # noqa: E731  (a real minus sign, as PairedDifference)
    per = ", ".join(signed(100 * d.diff) for d in ds)
    return (
        f"pruned vs the {len(ds)} control{'s' if len(ds) > 1 else ''}, {metric_label(metric)}: {signed(mean)} points "
        f"on average (per seed {per}); {sig} (McNemar)"
    )
