"""Run-time estimates learn from runs on this machine (per operation and model) and show the time left."""

import time

import pytest
import torch

from analysis.app_support import runtime
from analysis.core.cache import Cache


def test_throughput_is_stored_per_operation_and_model_and_averaged(tmp_path):
    cache = Cache(tmp_path)
    assert runtime.throughput("evaluate", "abc", cache) is None
    assert not runtime.estimate("evaluate", "abc", 100, cache=cache).measured
    runtime.record("evaluate", "abc", 100, 10.0, cache)  # 10 units/s
    assert runtime.throughput("evaluate", "abc", cache) == pytest.approx(10.0)
    runtime.record("evaluate", "abc", 100, 2.5, cache)  # 40 units/s: the average moves halfway
    assert runtime.throughput("evaluate", "abc", cache) == pytest.approx(25.0)
    assert runtime.throughput("evaluate", "other-model", cache) is None
    assert runtime.throughput("attack", "abc", cache) is None
    est = runtime.estimate("evaluate", "abc", 50, cache=cache)
    assert est.measured and est.seconds == pytest.approx(2.0)
    assert runtime.record("evaluate", "abc", 100, 0.01, cache) is None  # a cache hit is no measurement
    assert runtime.record("evaluate", "abc", 10, 0.04, cache) is None  # too short to time, whatever the units
    assert runtime.throughput("evaluate", "abc", cache) == pytest.approx(25.0)
    assert "about 2 s" in est.sentence() and "this machine" in est.sentence()
    assert not cache.foreign()  # stored as ordinary cache entries


def test_remaining_starts_from_the_estimate_and_follows_the_run():
    now = [0.0]
    rem = runtime.Remaining(100.0, clock=lambda: now[0])
    assert rem.seconds(0.0) == pytest.approx(100.0)
    now[0] = 60.0  # the machine is slower than estimated: 30 % done after 60 s
    assert rem.seconds(0.3) == pytest.approx(60.0 * 0.7 / 0.3)
    assert rem.text(0.3) == "about 2.3 min left"
    assert runtime.Remaining(None, clock=lambda: now[0]).seconds(0.0) is None
    assert rem.text(1.0) == "done"


def test_estimate_after_one_calibration_run_is_within_1_5x_of_the_measured_time(tmp_path):
    from analysis.core.evaluation import evaluate, make_spec
    from analysis.core.models import load_pair

    torch.set_num_threads(1)
    cache = Cache(tmp_path)
    lm = load_pair("demo", "", device="cpu").aligned
    spec = {split: make_spec(lm, *lm.data.sets(split).values()) for split in ("val", "test")}
    evaluate(lm, make_spec(lm, *(v.head(8) for v in lm.data.sets("train").values())), cache=cache)  # warm-up
    units = {k: len(s.harmful) + len(s.benign) for k, s in spec.items()}
    with runtime.timed("evaluate", lm.fingerprint, units["val"], cache):  # the calibration run
        evaluate(lm, spec["val"], cache=cache)
    est = runtime.estimate("evaluate", lm.fingerprint, units["test"], cache=cache)
    start = time.perf_counter()
    evaluate(lm, spec["test"], cache=cache)  # other prompts, as a class would
    took = time.perf_counter() - start
    print(f"estimate {est.seconds:.2f} s, measured {took:.2f} s")
    assert est.measured
    assert took / 1.5 <= est.seconds <= took * 1.5, (est.seconds, took)


def test_progress_bar_draws_at_most_five_updates_a_second_and_always_the_last(monkeypatch):
    """A cached run calls progress once per point within milliseconds: each draw is a message to the browser
    (37 % of the cached landscape page's server time under 30 users), so the bar skips draws closer than 0.2 s."""
    import pages._widgets as w

    drawn = []

    class Bar:
        def progress(self, frac, text=""):
            drawn.append((frac, text))

    monkeypatch.setattr(w.st, "progress", lambda frac, text="": Bar())
    clock = [100.0]
    monkeypatch.setattr(w.time, "monotonic", lambda: clock[0])
    update, _ = w.progress_bar("Landscape")
    for k in range(1, 64):  # 63 points, 1 ms apart
        clock[0] += 0.001
        update(k / 63, f"point {k} of 63")
    assert [f for f, _ in drawn] == [1 / 63, 1.0] and drawn[-1][1].startswith("Landscape: point 63 of 63")
    drawn.clear()
    for k in range(1, 4):  # a slow run: every point drawn
        clock[0] += 0.5
        update(k / 4, f"point {k}")
    assert len(drawn) == 3
