"""Run-time estimates that learn: throughput measured on this machine, per operation and model.

Each long computation counts its work in *units* (prompt evaluations, attack-step prompt-costs, …). After a run
that really computed (not one read from the cache), :func:`record` stores its throughput (units per second)
as a cache entry keyed by the operation and the model's fingerprint, blended with the previous value by an
exponential average, so a busy machine's slower runs pull the estimate up. :func:`estimate` turns units into
seconds from that throughput (or a first per-device guess until one run is measured); :class:`Remaining`
turns the progress fraction of a running computation into a live "about N s left".
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from analysis.core.cache import Cache, make_key

SMOOTHING = 0.5  # weight of the newest run in the exponential average
GUESS_UNITS_PER_S = {"cpu": 50.0, "cuda": 250.0}  # a first guess until one run is measured on this machine
MIN_MEASURED_S = 0.05  # shorter runs (or under 1 ms a unit) came from the cache: not a measurement; a fast
# machine evaluates the demo's 96 validation prompts in under 0.3 s, so the floor must sit well below that
_lock = threading.Lock()


def _parts(op: str, fingerprint: str) -> dict:
    return {"kind": "throughput", "v": 1, "op": op, "model": fingerprint}


def throughput(op: str, fingerprint: str, cache: Cache | None = None) -> float | None:
    """Units per second measured for ``op`` on this model on this machine (None until one run is measured)."""
    hit = (cache or Cache()).get(make_key(**_parts(op, fingerprint)), "json")
    return float(hit["units_per_s"]) if hit else None


def record(op: str, fingerprint: str, units: float, seconds: float, cache: Cache | None = None) -> float | None:
    """Blend one finished run into the stored throughput; returns the new value (None when the run was too
    short to be a measurement, e.g. a cache hit)."""
    if units <= 0 or seconds < MIN_MEASURED_S or seconds / units < 1e-3:
        return None
    cache = cache or Cache()
    with _lock:
        old = throughput(op, fingerprint, cache)
        new = units / seconds if old is None else SMOOTHING * units / seconds + (1 - SMOOTHING) * old
        parts = _parts(op, fingerprint)
        try:
            cache.put(make_key(**parts), {"units_per_s": new, "runs": 1 + (old is not None)}, "json", parts)
        except OSError:
            pass  # a read-only cache: the estimate stays a guess
    return new


@dataclass(frozen=True)
class Estimate:
    seconds: float
    measured: bool  # from a run on this machine, or the first guess

    def sentence(self) -> str:
        how = "from the last runs on this machine" if self.measured else "a first guess until one run is measured"
        return f"Estimated run time: about {duration(self.seconds)} ({how}); results already in the cache are instant."


def estimate(op: str, fingerprint: str, units: float, device: str = "cpu", cache: Cache | None = None) -> Estimate:
    """Seconds that ``units`` of ``op`` should take on this model here."""
    rate = throughput(op, fingerprint, cache)
    if rate is None:
        return Estimate(units / GUESS_UNITS_PER_S["cuda" if device.startswith("cuda") else "cpu"], False)
    return Estimate(units / rate, True)


def duration(seconds: float) -> str:
    """'8 s', '2.5 min' — a duration as a person reads it."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.1f} min"


class Remaining:
    """Live remaining time of a running computation, from its progress fraction: at the start the estimate,
    then more and more the rate measured so far in this run."""

    def __init__(self, estimate_s: float | None, clock=time.perf_counter):
        self.estimate_s, self.clock, self.start = estimate_s, clock, clock()

    def seconds(self, fraction: float) -> float | None:
        elapsed, f = self.clock() - self.start, min(max(fraction, 0.0), 1.0)
        prior = None if self.estimate_s is None else max(self.estimate_s - elapsed, 0.0)
        if f <= 0.0:
            return prior
        measured = elapsed * (1 - f) / f
        if prior is None:
            return measured
        w = min(1.0, f / 0.25)  # trust this run's own rate fully after a quarter of the work
        return w * measured + (1 - w) * prior

    def text(self, fraction: float) -> str:
        s = self.seconds(fraction)
        if fraction >= 1.0:
            return "done"
        return "time left unknown" if s is None else f"about {duration(s)} left"


@contextmanager
def timed(op: str, fingerprint: str, units: float, cache: Cache | None = None) -> Iterator[None]:
    """Measure the enclosed computation and :func:`record` it (a cache hit is too fast to count)."""
    start = time.perf_counter()
    yield
    record(op, fingerprint, units, time.perf_counter() - start, cache)
