"""The Streamlit side of run-time estimates (the learning lives in :mod:`analysis.app_support.runtime`).

Before a long computation :func:`estimate` gives a one-line estimate from the throughput measured on this
machine for this model; :func:`timed` measures the run and stores it; while it runs, :func:`left` gives the live
remaining time that progress bars show. While a run computes, the previous result stays on screen, greyed.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import streamlit as st

from analysis.app_support import runtime

_active = threading.local()  # the running computation's Remaining (one script thread per session)


def _model() -> tuple[str, str]:
    """(fingerprint of the loaded aligned model, its device); ("none", "cpu") before a pair is loaded."""
    from pages._widgets import current_pair

    pair = current_pair(show_errors=False)
    return (pair.aligned.fingerprint, str(pair.aligned.device)) if pair is not None else ("none", "cpu")


def estimate(kind: str, units: int, cached_fraction: float = 0.0) -> str:
    """A one-line estimate for ``units`` of work of ``kind`` (e.g. points × prompts)."""
    fingerprint, device = _model()
    return runtime.estimate(kind, fingerprint, units * (1 - cached_fraction), device).sentence()


@contextmanager
def timed(kind: str, units: int):
    """Measure a computation of ``units``; progress bars drawn inside show its remaining time."""
    fingerprint, device = _model()
    _active.remaining = runtime.Remaining(runtime.estimate(kind, fingerprint, units, device).seconds)
    try:
        with runtime.timed(kind, fingerprint, units):
            yield
    finally:
        _active.remaining = None


def left(fraction: float, bar_remaining: "runtime.Remaining | None" = None) -> str:
    """' · about 40 s left' for the running computation (from its estimate, else from the bar's own pace)."""
    rem = getattr(_active, "remaining", None) or bar_remaining
    if rem is None or fraction >= 1.0 or (rem.estimate_s is None and fraction <= 0.0):
        return ""
    return f" · {rem.text(fraction)}"


def grey_style(container_key: str) -> None:
    st.markdown(f"<style>.st-key-{container_key}{{opacity:0.45;filter:grayscale(60%)}}</style>", unsafe_allow_html=True)


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
