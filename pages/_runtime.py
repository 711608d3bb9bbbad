"""Before a long computation: how long it will take; while it runs: the previous result, greyed.

Run-time estimates are (number of prompt evaluations) × (seconds per evaluation), where the cost per
evaluation is measured on this machine by the last finished run of the same kind (shared by every session of
this server process) and starts from a rough per-device guess.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import streamlit as st

# a first guess of seconds per prompt evaluation (generation + judge) on the demo pair, until one is measured
GUESS_S_PER_UNIT = {"cpu": 0.02, "cuda": 0.004}
_measured: dict[str, float] = {}
_lock = threading.Lock()


def _device() -> str:
    return "cuda" if str(st.session_state.get("device", "auto")).startswith("cuda") else "cpu"


def seconds_per_unit(kind: str) -> tuple[float, bool]:
    """(seconds per prompt evaluation for ``kind``, whether it was measured here)."""
    with _lock:
        if kind in _measured:
            return _measured[kind], True
    return GUESS_S_PER_UNIT[_device()], False


def _fmt(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.1f} min"


def estimate(kind: str, units: int, cached_fraction: float = 0.0) -> str:
    """A one-line estimate for ``units`` prompt evaluations (e.g. points × prompts)."""
    cost, measured = seconds_per_unit(kind)
    total = units * cost * (1 - cached_fraction)
    how = "measured on this machine" if measured else "a first guess until one run is measured"
    return (f"Estimated run time: about {_fmt(total)} ({units:,} prompt evaluations × {cost * 1000:.0f} ms, {how}); "
            "results already in the cache are instant.")


@contextmanager
def timed(kind: str, units: int):
    """Measure a computation of ``units`` prompt evaluations; only a slow (uncached) run updates the cost."""
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    if units > 0 and elapsed / units > 1e-3:       # faster than 1 ms per prompt: it came from the cache
        with _lock:
            _measured[kind] = elapsed / units


def grey_style(container_key: str) -> None:
    st.markdown(f"<style>.st-key-{container_key}{{opacity:0.45;filter:grayscale(60%)}}</style>",
                unsafe_allow_html=True)


def show_previous(state_key: str, caption: str):
    """Draw the figures last stored under ``state_key`` greyed, under ``caption``; returns the placeholder to
    clear once the new result is ready (None when there is no previous result)."""
    prev = st.session_state.get(state_key)
    if not prev:
        return None
    slot = st.empty()
    box = slot.container(key=f"{state_key}_prev")
    grey_style(f"{state_key}_prev")
    with box:
        st.caption(caption)
        for i, fig in enumerate(prev):
            st.plotly_chart(fig, width="stretch", theme=None, key=f"{state_key}_prev_{i}")
    return slot


def remember(state_key: str, figures: list) -> None:
    """Keep ``figures`` as this page's previous result."""
    st.session_state[state_key] = list(figures)
