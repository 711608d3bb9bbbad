"""Intervals and paired tests for the rates an evaluation reports (pure Python + numpy, no scipy).

- :func:`wilson`: 95 % Wilson score interval of a proportion k/n.
- :func:`bootstrap_mean_ci`: percentile bootstrap interval of a (weighted) mean, e.g. the response loss;
  :func:`loss_over_draws_ci` the same for a loss averaged over several runs (seeds, directions) of one item set.
- :func:`t_quantile_95`: the two-sided 95 % quantile of Student's t (a table to 30 degrees of freedom), for the
  interval of a mean over a few draws (directions, seeds).
- :func:`mcnemar_exact`: two-sided exact McNemar test — a binomial(n_discordant, ½) test on the pairs where
  A and B disagree.
- :func:`paired_difference_ci`: Newcombe's hybrid score interval for the difference of two paired proportions
  (Newcombe 1998, Stat. Med. 17:2635, method 10: Wilson limits of each proportion combined with the
  phi correlation of the pairs; a positive phi gets Newcombe's correction max(eh − fg − n/2, 0), so that
  pairs with no discordance do not give a zero-width interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
ALPHA = 0.05


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes out of n (``(0, 1)`` when n = 0); it always holds k / n (at k = n its
    upper end is exactly 1, where float rounding alone would give 0.9999999999999999)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def bootstrap_mean_ci(
    values, n_boot: int = 2000, seed: int = 0, weights=None, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (of Σ values / Σ weights when ``weights`` are
    given, e.g. per-item loss sums over per-item token counts), resampling items with a fixed seed."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, v.size, size=(n_boot, v.size))
    means = v[idx].sum(1) / np.maximum(w[idx].sum(1), 1e-12)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


_T95: tuple[float, ...] = (
    *(12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131),
    *(2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042),
)  # t_{0.975, df} for df = 1 … 30


def t_quantile_95(df: int) -> float:
    """t_{0.975, df}: the tabled value to 30 degrees of freedom, beyond it the first two Cornish–Fisher terms
    (within 0.001 of the exact value)."""
    if df < 1:
        raise ValueError("a t interval needs at least 1 degree of freedom")
    if df <= len(_T95):
        return _T95[df - 1]
    return Z95 + (Z95**3 + Z95) / (4 * df) + (5 * Z95**5 + 16 * Z95**3 + 3 * Z95) / (96 * df**2)


def mean_t_interval(values) -> tuple[float, float]:
    """95 % t interval of the mean of a few draws (nan with fewer than two)."""
    v = [float(x) for x in values]
    if len(v) < 2:
        return math.nan, math.nan
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    half = t_quantile_95(len(v) - 1) * sd / math.sqrt(len(v))
    return m - half, m + half


def loss_over_draws_ci(sums_per_draw, tokens) -> tuple[float, float]:
    """Percentile bootstrap interval of a loss utility averaged over draws (attack seeds, landscape directions)
    that score the same items: each item's loss sum is averaged over the draws, then the items are resampled with
    their token counts as weights — the evaluation set's sampling noise of the mean curve."""
    import numpy as np

    return bootstrap_mean_ci(np.mean(np.array(sums_per_draw, dtype=np.float64), axis=0), weights=tokens)


def _discordant(a: list[bool], b: list[bool]) -> tuple[int, int, int, int]:
    """(both, only a, only b, neither) counts of two paired outcome lists."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need the same prompts: {len(a)} vs {len(b)} outcomes")
    both = sum(1 for x, y in zip(a, b) if x and y)
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    return both, only_a, only_b, len(a) - both - only_a - only_b


def mcnemar_exact(a: list[bool], b: list[bool]) -> float:
    """Two-sided exact McNemar p-value: 2 · P(X ≤ min(n₁₀, n₀₁)) for X ~ Binomial(n₁₀ + n₀₁, ½), capped at 1."""
    _, only_a, only_b, _ = _discordant(a, b)
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_difference_ci(a: list[bool], b: list[bool], z: float = Z95) -> tuple[float, float, float]:
    """Difference p_b − p_a of two paired proportions and its Newcombe (hybrid score, method 10) interval."""
    e, only_a, only_b, h = _discordant(a, b)
    n = len(a)
    if n == 0:
        return 0.0, -1.0, 1.0
    # θ = p1 − p2 with p1 = p_b, p2 = p_a (Newcombe's notation)
    k1, k2 = e + only_b, e + only_a
    p1, p2 = k1 / n, k2 / n
    l1, u1 = wilson(k1, n, z)
    l2, u2 = wilson(k2, n, z)
    den = (e + only_b) * (only_a + h) * (e + only_a) * (only_b + h)
    num: float = e * h - only_b * only_a
    num = max(num - n / 2, 0.0) if num > 0 else num
    phi = num / math.sqrt(den) if den > 0 else 0.0
    theta = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return theta, max(-1.0, theta - delta), min(1.0, theta + eps)


def _num(x: float, digits: int = 1) -> str:
    """A number with a real minus sign."""
    s = f"{x:.{digits}f}"
    return s.replace("-", "−")


@dataclass(frozen=True)
class Rate:
    """A rate with its 95 % interval: a proportion (k of n, Wilson) or a mean loss (bootstrap)."""

    value: float
    lo: float
    hi: float
    n: int
    k: int | None = None  # successes, for a proportion
    kind: str = "proportion"  # "proportion" or "loss"

    @classmethod
    def of(cls, k: int, n: int) -> "Rate":
        lo, hi = wilson(k, n)
        return cls(k / n if n else 0.0, lo, hi, n, k)

    @classmethod
    def of_share(cls, share: float, n: int) -> "Rate":
        """The rate of a share (0–1) of ``n`` prompts: k = round(share · n) of n (Wilson)."""
        return cls.of(round(share * n), n)

    @classmethod
    def of_outcomes(cls, outcomes: list[bool]) -> "Rate":
        return cls.of(sum(bool(x) for x in outcomes), len(outcomes))

    def format(self) -> str:
        """``97.5 % [93.0, 99.2]`` for a proportion, ``1.234 [1.201, 1.270]`` for a loss."""
        if self.kind == "loss":
            return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}]"
        return f"{100 * self.value:.1f} % [{100 * self.lo:.1f}, {100 * self.hi:.1f}]"

    def interval(self) -> str:
        """Only the bracket, ``[93.0, 99.2]`` (percent for a proportion)."""
        s = 100 if self.kind == "proportion" else 1
        d = 1 if self.kind == "proportion" else 3
        return f"[{_num(s * self.lo, d)}, {_num(s * self.hi, d)}]"


@dataclass(frozen=True)
class LossDifference:
    """``b`` − ``a`` of a token-weighted mean loss (nats, lower is better) on the same items: the difference and
    its 95 % paired percentile bootstrap interval (both resampled with the same items)."""

    diff: float
    lo: float
    hi: float
    n: int
    a: str = "A"
    b: str = "B"

    @property
    def significant(self) -> bool:
        """The interval leaves out 0 (a 5 % two-sided test by the bootstrap)."""
        return not (self.lo <= 0 <= self.hi)

    def format(self) -> str:
        """``+0.034 nats [+0.012, +0.057], paired bootstrap over 48 items (significant)``."""
        signed = lambda x: ("+" if x > 0 else "") + _num(x, 3)  # noqa: E731  (a real minus sign, as elsewhere)
        return (
            f"{signed(self.diff)} nats [{signed(self.lo)}, {signed(self.hi)}], paired bootstrap over {self.n} items "
            f"({'significant' if self.significant else 'not significant'})"
        )

    @classmethod
    def of(
        cls, sums_a, tokens_a, sums_b, tokens_b, a: str = "A", b: str = "B", n_boot: int = 2000, seed: int = 0
    ) -> "LossDifference":
        """From per-item loss sums and token counts of the same items under A and under B."""
        import numpy as np

        sa, ta, sb, tb = (np.asarray(x, dtype=np.float64) for x in (sums_a, tokens_a, sums_b, tokens_b))
        if not sa.size or len({sa.size, ta.size, sb.size, tb.size}) != 1:
            raise ValueError(f"paired losses need the same items: {sa.size}, {ta.size}, {sb.size}, {tb.size}")
        idx = np.random.default_rng(seed).integers(0, sa.size, size=(n_boot, sa.size))
        diffs = sb[idx].sum(1) / np.maximum(tb[idx].sum(1), 1e-12) - sa[idx].sum(1) / np.maximum(ta[idx].sum(1), 1e-12)
        diff = float(sb.sum() / max(tb.sum(), 1e-12) - sa.sum() / max(ta.sum(), 1e-12))
        return cls(diff, float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975)), int(sa.size), a, b)


@dataclass(frozen=True)
class PairedDifference:
    """B − A on the same prompts, in proportion units, with Newcombe's interval and the exact McNemar test."""

    a: str
    b: str
    diff: float
    lo: float
    hi: float
    p_value: float
    n: int
    only_a: int  # prompts where only A had the outcome
    only_b: int

    @classmethod
    def of(cls, a: list[bool], b: list[bool], name_a: str = "A", name_b: str = "B") -> "PairedDifference":
        diff, lo, hi = paired_difference_ci(a, b)
        _, only_a, only_b, _ = _discordant(a, b)
        return cls(name_a, name_b, diff, lo, hi, mcnemar_exact(a, b), len(a), only_a, only_b)

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def borderline(self) -> bool:
        """The interval and the test disagree: Newcombe's interval excludes 0 while the exact McNemar test is not
        significant, or the other way round (few discordant prompts, all one way, say)."""
        return (self.lo > 0 or self.hi < 0) != self.significant

    def p_text(self) -> str:
        return (
            "p < 0.001"
            if self.p_value < 0.001
            else f"p = {self.p_value:.3f}"
            if self.p_value < 0.01
            else f"p = {self.p_value:.2f}"
        )

    def format(self) -> str:
        """``−56.7 points [−65.2, −47.3], McNemar p < 0.001 (significant)``; where the interval and the test
        disagree, the verdict (the test's) says so: ``(not significant; borderline: the interval excludes 0)``."""
        sign = "+" if self.diff > 0 else ""
        verdict = "significant" if self.significant else "not significant"
        if self.borderline:
            verdict += "; borderline: the interval " + ("includes 0" if self.significant else "excludes 0")
        return (
            f"{sign}{_num(100 * self.diff)} points [{_num(100 * self.lo)}, {_num(100 * self.hi)}], McNemar "
            f"{self.p_text()} ({verdict})"
        )

    def sentence(self, metric: str = "") -> str:
        """``pruned vs aligned ASR: +62.5 points [52.1, 71.8], McNemar p < 0.001 (significant)``."""
        what = f" {metric}" if metric else ""
        return f"{self.b} vs {self.a}{what}: {self.format()}"
