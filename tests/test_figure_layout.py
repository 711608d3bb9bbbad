"""Figures fit for a projector and a slide: titles clear of the toolbar and the left edge, no tick below zero on
an axis of non-negative data, exports at 1280×720 and 1920×1080 read from the rendered layout and pixels."""

import io
from types import SimpleNamespace

import numpy as np
import pytest
from test_style import _figures

from pages import _plots
from pages._export import can_render_images, image
from pages._style import EXPORT_SIZES, TITLE_INSET_PX, TOOLBAR_PX, layout_problems

needs_kaleido = pytest.mark.skipif(not can_render_images(), reason="kaleido and Chromium render the exports")


def _band():
    p = SimpleNamespace(
        position=list(range(8)),
        mean=[0.0, 2, 1, 0.5, 0.2, 0.1, 0.1, 0.05],
        q25=[0.0] * 8,
        q75=[0.0, 3, 2, 1, 0.4, 0.2, 0.2, 0.1],
        count=[6] * 8,
    )
    return _plots.position_band({"harmful": p, "benign": p}, "KL per position", "KL (nats)")


def _attack():
    c = SimpleNamespace(steps=[0, 3, 6, 9], asr=[0.0, 0.5, 1.0, 1.0], variant="aligned")
    return _plots.attack_curves([c], "asr", "ASR during the attack")


def test_every_figure_keeps_its_title_clear_of_the_toolbar_and_the_edge():
    figs = {**_figures(), "band": _band(), "attack": _attack()}
    bad = {name: layout_problems(f) for name, f in figs.items() if layout_problems(f)}
    assert not bad, bad
    t = figs["band"].layout.title
    assert t.pad.t >= TOOLBAR_PX and t.pad.l >= TITLE_INSET_PX
    assert figs["band"].layout.margin.t >= TOOLBAR_PX + 30 + 24  # title and one legend row below the band


def test_layout_problems_sees_an_old_style_title():
    f = _band()
    f.update_layout(title=dict(xref="container", pad=dict(t=12, l=0)), margin=dict(t=60))
    found = layout_problems(f)
    assert any("toolbar" in p for p in found) and any("left edge" in p for p in found)


@needs_kaleido
@pytest.mark.parametrize("size", list(EXPORT_SIZES))
def test_axes_of_non_negative_data_have_no_tick_below_zero(size):
    w, h = EXPORT_SIZES[size]
    for fig in (_band(), _attack()):
        fig.update_layout(width=w, height=h)
        full = fig.full_figure_for_development(warn=False)
        lo, hi = full.layout.xaxis.range
        dtick, tick0 = float(full.layout.xaxis.dtick), float(full.layout.xaxis.tick0)
        first = tick0 + np.ceil((lo - tick0) / dtick) * dtick
        assert lo >= 0 and first >= 0, (fig.layout.title.text, lo, first)


@needs_kaleido
@pytest.mark.parametrize("size", list(EXPORT_SIZES))
def test_exports_have_the_slide_size_and_an_inset_title(size):
    from PIL import Image

    w, h = EXPORT_SIZES[size]
    png = Image.open(io.BytesIO(image(_band(), w, h))).convert("L")
    assert png.size == (w, h)
    px = np.asarray(png)
    title_rows = px[TOOLBAR_PX : TOOLBAR_PX + 26]  # the title line, below the toolbar band
    dark = np.nonzero((title_rows < 128).any(axis=0))[0]
    assert dark.size and dark[0] >= TITLE_INSET_PX - 2, dark[:3]  # ink, and none flush against the left edge
    assert (px[: TOOLBAR_PX - 4] > 200).all(), "the toolbar band holds no ink"
