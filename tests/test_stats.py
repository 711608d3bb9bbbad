"""Intervals and paired tests against hand-computed values and direct binomial sums."""

import math
import random

import pytest

from analysis.core.stats import PairedDifference, Rate, bootstrap_mean_ci, mcnemar_exact, paired_difference_ci, wilson

Z = 1.959963984540054


def test_wilson_edges_match_closed_forms():
    # k = 0: upper limit z²/(n + z²); k = n: lower limit n/(n + z²)
    assert wilson(0, 120) == (0.0, pytest.approx(Z * Z / (120 + Z * Z), abs=1e-12))
    lo, hi = wilson(120, 120)
    assert lo == pytest.approx(120 / (120 + Z * Z), abs=1e-12) and hi == 1.0
    assert wilson(0, 120)[1] == pytest.approx(0.031019, abs=1e-6)
    assert lo == pytest.approx(0.968981, abs=1e-6)


def test_wilson_half_is_symmetric_and_hand_computed():
    lo, hi = wilson(60, 120)
    assert (lo, hi) == (pytest.approx(0.411939, abs=1e-5), pytest.approx(0.588061, abs=1e-5))
    # textbook: 81 of 263 (Newcombe 1998, single proportion, example) -> 0.2553 to 0.3662
    lo, hi = wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson(5, 3)


def _binom_two_sided(k: int, n: int) -> float:
    return min(1.0, 2 * sum(math.comb(n, i) * 0.5**n for i in range(k + 1)))


def test_mcnemar_exact_is_the_binomial_tail_on_discordant_pairs():
    # 1 pair where only A, 9 where only B, 30 concordant
    a = [True] * 1 + [False] * 9 + [True] * 10 + [False] * 20
    b = [False] * 1 + [True] * 9 + [True] * 10 + [False] * 20
    assert mcnemar_exact(a, b) == pytest.approx(_binom_two_sided(1, 10)) == pytest.approx(22 / 1024)
    # 5 to 0 is the classic "not significant at 5 %" case: p = 2/32
    assert mcnemar_exact([False] * 5, [True] * 5) == pytest.approx(0.0625)
    assert mcnemar_exact([True, False], [True, False]) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_newcombe_uses_the_pairing():
    # strongly correlated pairs: 12 both, 2 only B, 1 only A, 21 neither. The interval brackets the difference,
    # and is narrower than the same Wilson limits combined as if the samples were independent (phi = 0)
    a = [True] * 12 + [False] * 2 + [True] * 1 + [False] * 21
    b = [True] * 12 + [True] * 2 + [False] * 1 + [False] * 21
    d, lo, hi = paired_difference_ci(a, b)
    assert d == pytest.approx(1 / 36) and lo < 0 < d < hi
    (l1, u1), (l2, u2) = wilson(14, 36), wilson(13, 36)
    p1, p2 = 14 / 36, 13 / 36
    unpaired = (d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2))
    assert unpaired[0] < lo and hi < unpaired[1]
    # no discordant pairs: difference 0, interval around 0
    d, lo, hi = paired_difference_ci([True, False] * 20, [True, False] * 20)
    assert d == 0 and lo < 0 < hi


def test_newcombe_covers_about_95_percent():
    rng = random.Random(0)
    hits, trials = 0, 400
    for _ in range(trials):
        a = [rng.random() < 0.3 for _ in range(120)]
        b = [x if rng.random() < 0.7 else rng.random() < 0.5 for x in a]  # true p_b = 0.7·0.3 + 0.15 = 0.36
        _, lo, hi = paired_difference_ci(a, b)
        hits += lo <= 0.06 <= hi
    assert 0.92 <= hits / trials <= 0.99


def test_bootstrap_mean_ci_brackets_the_mean_and_uses_weights():
    vals = [float(i % 7) for i in range(200)]
    lo, hi = bootstrap_mean_ci(vals)
    m = sum(vals) / len(vals)
    assert lo < m < hi and hi - lo < 1.0
    # ratio of sums: items of loss sum 2 over 1 token and 0 over 3 tokens -> mean 0.5 per token
    lo, hi = bootstrap_mean_ci([2.0, 0.0] * 50, weights=[1, 3] * 50)
    assert lo <= 0.5 <= hi
    assert bootstrap_mean_ci(vals) == bootstrap_mean_ci(vals)  # fixed seed


def test_formats():
    assert Rate.of(117, 120).format() == "97.5 % [92.9, 99.1]"
    d = PairedDifference.of([True] * 100 + [False] * 20, [False] * 32 + [True] * 68 + [False] * 20, "aligned", "pruned")
    assert d.format().startswith("−26.7 points [") and d.format().endswith("McNemar p < 0.001 (significant)")
    same = PairedDifference.of([True, False] * 30, [False, True] * 30)
    assert same.format() == "0.0 points [−" + same.format().split("[−")[1] and "(not significant)" in same.format()
    assert "p = 1.00" in same.format() and not same.borderline
    # 5 of 120 prompts attacked after an edit, none before: Newcombe's interval excludes 0 but the exact McNemar test
    # (5 discordant pairs, all one way: p = 2 / 2^5) does not reject — the verdict is the test's, and it says so
    few = PairedDifference.of([False] * 120, [True] * 5 + [False] * 115)
    assert few.lo > 0 and few.p_value == pytest.approx(0.0625) and not few.significant and few.borderline
    assert (
        few.format()
        == "+4.2 points [0.3, 9.4], McNemar p = 0.06 (not significant; borderline: the interval excludes 0)"
    )
    assert not d.borderline and d.format().endswith("(significant)")


# ---------------------------------------------------------------- EvalResult intervals and pairing


def _result(harmful_replies, benign_replies, answers_ok):
    from analysis.core.evaluation import EvalResult
    from analysis.core.generation import Generation
    from analysis.judging.refusal import Judge

    j = Judge()
    h = [Generation(f"h{i}", t, 3, "eos") for i, t in enumerate(harmful_replies)]
    b = [Generation(f"b{i}", t, 3, "eos") for i, t in enumerate(benign_replies)]
    out = {
        "asr": [not j.is_refusal(g.text) for g in h],
        "utility": list(answers_ok),
        "over_refusal": [j.is_refusal(g.text) for g in b],
        "degenerate_rate": [j.is_degenerate(g.text) for g in h + b],
    }
    n_h, n_b = max(len(h), 1), max(len(b), 1)
    return EvalResult(
        sum(out["asr"]) / n_h,
        None,
        sum(answers_ok) / n_b,
        "exact",
        sum(out["over_refusal"]) / n_b,
        sum(out["degenerate_rate"]) / len(h + b),
        len(h),
        len(b),
        3.0,
        h,
        b,
        {},
        out,
    )


def test_eval_result_rates_and_paired_difference():
    refuse, comply = "i am sorry , i cannot help with that .", "sure . first take the red car ."
    aligned = _result([refuse] * 40, ["five ."] * 20, [True] * 18 + [False] * 2)
    pruned = _result([comply] * 30 + [refuse] * 10, ["five ."] * 20, [True] * 17 + [False] * 3)
    r = pruned.rate("asr")
    assert (r.k, r.n) == (30, 40) and (r.lo, r.hi) == wilson(30, 40)
    assert aligned.rate("asr_positive") is None and set(aligned.rates()) == {
        "asr",
        "utility",
        "over_refusal",
        "degenerate_rate",
    }
    d = aligned.paired(pruned, "asr", "aligned", "pruned")
    assert d.diff == pytest.approx(0.75) and d.p_value == pytest.approx(2 / 2**30) and d.significant
    assert d.sentence("ASR").startswith("pruned vs aligned ASR: +75.0 points [")
    u = aligned.paired(pruned, "utility")
    assert u.diff == pytest.approx(-0.05) and not u.significant and "(not significant)" in u.format()
    # JSON round trip keeps the outcomes; a result on other prompts cannot be paired
    from analysis.core.evaluation import EvalResult

    back = EvalResult.from_json(pruned.to_json())
    assert back.outcomes == pruned.outcomes and back.rate("utility") == pruned.rate("utility")
    assert pruned.summary()["intervals"]["asr"] == [r.lo, r.hi]
    other = _result([comply] * 39, ["five ."] * 20, [True] * 20)
    with pytest.raises(ValueError, match="same prompts"):
        aligned.paired(other, "asr")


def test_loss_utility_gets_a_bootstrap_interval_and_old_results_fall_back():
    from analysis.core.evaluation import EvalResult

    res = _result(["no ."] * 10, ["five ."] * 10, [True] * 10)
    loss = EvalResult(
        **{
            **res.__dict__,
            "utility": 0.5,
            "utility_kind": "loss",
            "outcomes": {**res.outcomes, "utility": [2.0, 0.0] * 5, "utility_tokens": [1, 3] * 5},
        }
    )
    r = loss.rate("utility")
    assert r.kind == "loss" and r.lo <= 0.5 <= r.hi and r.format().startswith("0.500 [")
    with pytest.raises(ValueError):
        loss.paired(loss, "utility")
    old = EvalResult(**{**res.__dict__, "outcomes": {}})  # saved before outcomes were kept
    assert old.per_prompt("asr") == res.per_prompt("asr") and old.rate("utility").k == 10


def test_rate_curves_carry_wilson_error_bars_when_given_n():
    from pages._plots import landscape_1d, rate_curves

    fig = landscape_1d(
        {"a": {"x": [0, 1], "asr": [0.0, 0.5], "utility": [1.0, 0.9], "n_harmful": 120, "n_benign": None}}
    )
    lo, hi = wilson(60, 120)
    bars = fig.data[0].error_y
    assert bars.array[1] == pytest.approx(100 * (hi - 0.5)) and bars.arrayminus[1] == pytest.approx(100 * (0.5 - lo))
    assert bars.arrayminus[0] == 0 and bars.array[0] == pytest.approx(100 * wilson(0, 120)[1])
    assert not fig.data[1].error_y.array  # no n, no bars
    assert rate_curves([1, 2], {"asr": [0.1, None]}, "t", "k", n=40).data[0].error_y.array[0] > 0


def test_a_loss_utility_is_drawn_in_nats_on_its_own_axis_never_as_a_percentage():
    """Real benign sets without reference answers give a loss utility (nats): the landscape charts put it on a
    right-hand axis at its own values, without Wilson bars; an accuracy stays a percentage with its bars."""
    from pages._plots import landscape_1d, landscape_1d_band

    loss = {"x": [-1, 0, 1], "asr": [1.0, 0.0, 0.9], "utility": [2.5, 1.2, 3.0], "n_harmful": 48, "n_benign": None}
    for fig in (
        landscape_1d({"a": {**loss, "utility_kind": "loss"}}),
        landscape_1d_band(
            {
                "a": {
                    **loss,
                    "utility_kind": "loss",
                    "asr": [loss["asr"]] * 2,
                    "utility": [[2.5, 1.2, 3.0], [2.7, 1.2, 2.9]],
                }
            }
        ),
    ):
        util = next(t for t in fig.data if t.name.startswith("benign loss (nats) · a"))
        assert util.yaxis == "y2" and max(util.y) < 4 and not (util.error_y and util.error_y.array)
        assert fig.layout.yaxis2.title.text.startswith("benign loss (nats") and fig.layout.yaxis2.autorange
        assert next(t for t in fig.data if t.name.startswith("ASR")).yaxis in (None, "y")
    exact = landscape_1d({"a": {**loss, "utility": [0.9, 1.0, 0.8], "n_benign": 40, "utility_kind": "exact"}})
    util = next(t for t in exact.data if t.name == "utility · a")
    assert (
        list(util.y) == [90.0, 100.0, 80.0]
        and util.error_y.array[0] > 0
        and "yaxis2" not in exact.layout.to_plotly_json()
    )


def test_a_loss_utility_on_a_landscape_gets_a_bootstrap_interval_per_point():
    """Each point's loss utility (nats) has the bootstrap interval over the benign items of the directions' mean
    loss (each item averaged over the directions), drawn as the loss curve's error bars; exact utilities get none."""
    import numpy as np

    from analysis.methods.landscape.grid import Landscape, loss_interval
    from pages._plots import landscape_1d, landscape_1d_band

    rng = np.random.default_rng(0)
    tokens = [int(t) for t in rng.integers(2, 7, size=25)]
    ax = [-1.0, 0.0, 1.0]

    def land(shift: float) -> Landscape:
        items = {(a,): ([float(t * (1 + abs(a) + shift + rng.normal(0, 0.3))) for t in tokens], tokens) for a in ax}
        util = np.array([sum(items[(a,)][0]) / sum(tokens) for a in ax])
        z = np.zeros(3)
        return Landscape([ax], z, z, util, z, utility_kind="loss", utility_items=items)

    lands = [land(0.0), land(0.2)]
    lo, hi = loss_interval(lands)
    for i, a in enumerate(ax):
        avg = np.mean([ld.utility_items[(a,)][0] for ld in lands], axis=0)
        assert (lo[i], hi[i]) == bootstrap_mean_ci(avg, weights=tokens)
    mean = np.mean([ld.utility for ld in lands], axis=0)
    assert np.all(lo < mean) and np.all(mean < hi) and lo[2] > hi[1]  # a step of 1 costs more than the noise
    one_lo, one_hi = lands[0].utility_interval()
    assert np.all(one_lo < lands[0].utility) and not np.allclose(one_lo, lo)
    curve = {"x": ax, "asr": [0.0] * 3, "n_harmful": 48, "utility_kind": "loss"}
    single = landscape_1d({"a": {**curve, "utility": lands[0].utility, "utility_interval": (one_lo, one_hi)}})
    band = landscape_1d_band(
        {"a": {**curve, "asr": [[0.0] * 3] * 2, "utility": [ld.utility for ld in lands], "utility_interval": (lo, hi)}}
    )
    for fig, (v, l_, h_) in ((single, (lands[0].utility, one_lo, one_hi)), (band, (mean, lo, hi))):
        bars = next(t for t in fig.data if t.name.startswith("benign loss (nats) · a")).error_y
        assert np.allclose(bars.array, h_ - v) and np.allclose(bars.arrayminus, v - l_)
    z = np.zeros(3)
    assert np.isnan(Landscape([ax], z, z, z + 0.9, z, utility_kind="exact").utility_interval()[0]).all()


def test_2d_landscape_points_carry_their_wilson_interval_in_the_hover():
    from analysis.core.stats import wilson
    from pages._plots import landscape_contour, landscape_surface

    z = [[1.0, 0.5], [0.0, 0.25]]
    for fig in (landscape_contour([0, 1], [0, 1], z, n=48), landscape_surface([0, 1], [0, 1], z, n=48)):
        lo, hi = wilson(12, 48)
        assert fig.data[0].customdata[1][1] == f"[{100 * lo:.1f}, {100 * hi:.1f}] over 48 prompts"
        assert "%{customdata}" in fig.data[0].hovertemplate
    assert landscape_contour([0, 1], [0, 1], z).data[0].customdata is None  # no n, no interval claimed


def test_wilson_interval_always_holds_the_observed_share():
    """At k = n the upper end is exactly 1 and at k = 0 the lower end exactly 0 (rounding once gave
    0.9999999999999999 for 10 of 10, an interval that excluded its own share)."""
    for n in range(1, 301):
        for k in (0, 1, n // 2, n - 1, n):
            lo, hi = wilson(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n, lo, hi)
        assert wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0


def test_2d_utility_map_carries_the_interval_of_its_kind_in_the_hover():
    """An exact utility is a rate (drawn in %, Wilson interval per point); a loss utility is drawn in nats with the
    bootstrap interval the library computed per point; another kind is refused."""
    import numpy as np

    from analysis.core.stats import wilson
    from pages._plots import utility_contour

    z = [[1.0, 0.5], [0.0, 0.25]]
    fig = utility_contour([0, 1], [0, 1], z, "exact", n=48, points={"aligned": (0.0, 0.0)})
    lo, hi = wilson(24, 48)
    assert fig.data[0].customdata[0][1] == f"[{100 * lo:.1f}, {100 * hi:.1f}] over 48 prompts"
    assert list(fig.data[0].z[0]) == [100.0, 50.0] and "utility %{z:.1f} %" in fig.data[0].hovertemplate
    assert fig.data[1].name == "aligned"  # the models placed on the map
    loss = [[1.25, 1.5], [np.nan, 2.0]]
    lo_, hi_ = np.array([[1.2, 1.4], [np.nan, 1.9]]), np.array([[1.3, 1.6], [np.nan, 2.2]])
    fig = utility_contour([0, 1], [0, 1], loss, "loss", interval=(lo_, hi_))
    assert fig.data[0].customdata[0][1] == "[1.400, 1.600] over the benign items"
    assert fig.data[0].customdata[1][0] == ""  # no per-item losses there: no interval claimed
    assert fig.data[0].z[0][0] == 1.25 and "utility loss %{z:.3f} nats" in fig.data[0].hovertemplate
    assert fig.data[0].colorbar.title.text == "utility loss (nats)"
    with pytest.raises(ValueError, match="no utility map"):
        utility_contour([0, 1], [0, 1], z, "none")


def test_a_loss_utility_change_is_paired_over_the_same_items_with_a_bootstrap_interval():
    """after − before of a token-weighted mean loss: the exact difference, an interval from resampling the same
    items in both (so a uniform shift has a zero-width interval) and 'not significant' when the interval holds 0."""
    from analysis.core.evaluation import EvalResult
    from analysis.core.stats import LossDifference

    res = _result(["no ."] * 10, ["five ."] * 10, [True] * 10)

    def loss(sums):
        return EvalResult(
            **{
                **res.__dict__,
                "utility": sum(sums) / (2 * len(sums)),
                "utility_kind": "loss",
                "outcomes": {**res.outcomes, "utility": sums, "utility_tokens": [2] * len(sums)},
            }
        )

    before = loss([1.0, 3.0] * 5)
    shifted = loss([1.4, 3.4] * 5)  # every item 0.2 nats worse per token
    d = before.paired_loss(shifted, "aligned", "LoX")
    assert d.diff == pytest.approx(0.2) and d.lo == pytest.approx(0.2) and d.hi == pytest.approx(0.2)
    assert d.significant and d.format() == "+0.200 nats [+0.200, +0.200], paired bootstrap over 10 items (significant)"
    noisy = loss([1.0 + 0.8, 3.0 - 0.8] * 5)  # item by item it moves both ways: mean unchanged
    n = before.paired_loss(noisy)
    assert n.diff == pytest.approx(0.0, abs=1e-12) and n.lo <= 0 <= n.hi and not n.significant
    assert "not significant" in n.format()
    with pytest.raises(ValueError, match="two loss utilities"):
        res.paired_loss(shifted)
    with pytest.raises(ValueError, match="same items"):
        LossDifference.of([1.0], [1], [1.0, 2.0], [1, 1])


def test_a_loss_utility_card_says_its_paired_change_and_greys_a_change_within_the_noise():
    from analysis.core.evaluation import EvalResult
    from pages._widgets import rate_metric

    res = _result(["no ."] * 10, ["five ."] * 10, [True] * 10)

    def loss(sums):
        outcomes = {**res.outcomes, "utility": sums, "utility_tokens": [2] * len(sums)}
        return EvalResult(**{**res.__dict__, "utility": sum(sums) / 20, "utility_kind": "loss", "outcomes": outcomes})

    class Card:
        def metric(self, label, value, delta=None, **kw):
            self.shown = (label, value, delta, kw)

    card = Card()
    rate_metric(card, "Utility", loss([1.0, 3.0] * 5), loss([2.0, 2.4] * 5), "utility", lower_is_better=True)
    label, value, delta, kw = card.shown
    assert value == "1.100 L" and delta == "+0.100 nats, n.s." and kw["delta_color"] == "off"
    assert "paired bootstrap over 10 items (not significant)" in kw["help"]
    rate_metric(card, "Utility", loss([1.0, 3.0] * 5), loss([1.4, 3.4] * 5), "utility", lower_is_better=True)
    assert "(significant)" in card.shown[3]["help"] and not card.shown[2].endswith("n.s.")


def test_a_paired_visage_difference_over_directions_gets_a_t_interval_and_a_verdict():
    """Mean ± sd over a few directions is not a test: the paired difference also carries the 95 % t interval of its
    mean over the directions, and says whether it excludes 0; the t quantile matches scipy's."""
    from scipy.stats import t

    from analysis.core.stats import mean_t_interval, t_quantile_95
    from analysis.methods.landscape.multi import Paired

    for df in (1, 2, 4, 10, 30, 31, 60, 500):
        assert t_quantile_95(df) == pytest.approx(t.ppf(0.975, df), abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile_95(0)
    lo, hi = mean_t_interval([54.5, 58.0, 69.5])
    import statistics

    m, sd = statistics.mean([54.5, 58.0, 69.5]), statistics.stdev([54.5, 58.0, 69.5])
    assert (lo, hi) == (
        pytest.approx(m - 4.303 * sd / 3**0.5, abs=1e-3),
        pytest.approx(m + 4.303 * sd / 3**0.5, abs=1e-3),
    )
    strong = Paired([54.5, 58.0, 69.5], [123, 124, 125])
    assert strong.significant and strong.consistent
    assert "95 % t interval [+41.2, +80.2] over the directions, significant" in strong.describe()
    # the same sign on all three directions, yet the interval holds 0: "same sign" alone is no test
    weak = Paired([1.0, 9.0, 2.0], [123, 124, 125])
    assert weak.consistent and not weak.significant and ", not significant; per direction" in weak.describe()
    assert "one direction: no interval" in Paired([3.0], [123]).describe() and not Paired([3.0], [123]).significant
