"""No number on screen from hand-written text: a preset's caption quotes its cached result or says it is not
computed yet, and every number it quotes is the one the result holds."""

import re

import pytest

from analysis.app_support.config import AppConfig
from analysis.app_support.presets import NOT_COMPUTED, PRESETS, caption, find
from analysis.app_support.warm import cached_numbers, warm_preset
from analysis.core.cache import Cache
from analysis.core.evaluation import compare, make_spec
from analysis.core.models import load_pair

RESULT_LIKE = re.compile(r"\d\s*%|\bpoints\b|\bASR \d|\bstep \d|\d\s*→|VISAGE \d")


def test_no_description_states_a_result():
    for page, items in PRESETS.items():
        for p in items:
            assert not RESULT_LIKE.search(p.description), (page, p.name, p.description)
            assert not re.search(r"\d\s*(%|points|nats)", p.quote.format_map(_Blank())), p.quote  # numbers come in


class _Blank(dict):
    def __missing__(self, key):
        return "…"


@pytest.fixture(scope="module")
def pair():
    return load_pair("demo", "demo:base", device="cpu")


def test_lox_caption_quotes_the_cached_result_and_nothing_before(pair, tmp_path):
    cfg, cache = AppConfig(), Cache(tmp_path)
    preset = find("lox", "LoX as chosen on validation (k = 16, α = 0.75, decoder Linears)")
    assert cached_numbers(pair, preset, cfg, cache) is None
    assert caption(preset, None).endswith(NOT_COMPUTED)
    warm_preset(pair, preset, cfg, cache)
    shown = caption(preset, cached_numbers(pair, preset, cfg, cache))
    from analysis.methods.lox import LoX

    lm = pair.aligned
    sets = {k: v.head(48) for k, v in lm.data.sets("test").items()}  # the LoX page's default data, built here
    spec = make_spec(lm, sets["harmful"], sets["benign"])
    out = compare(lm, spec, {"aligned": None, "LoX": LoX(16, 0.75, scope="decoder").edit(lm, pair.base)}, cache)
    a, x = out["aligned"], out["LoX"]
    assert f"ASR {x.rate('asr').format()}" in shown, shown  # with its 95 % Wilson interval
    if a.utility_kind == "exact":
        d = a.paired(x, "utility", "aligned", "LoX")  # LoX − aligned on the same prompts, with its paired test
        assert f"utility {d.format()}" in shown and "McNemar" in shown, shown
        assert d.diff == x.utility - a.utility
        assert f"{a.rate('utility').format()} → {x.rate('utility').format()}" in shown, shown
    numbers = cached_numbers(pair, preset, cfg, cache)
    numbers["lox_asr"] = "12.3 %" if numbers["lox_asr"] != "12.3 %" else "45.6 %"
    assert f"ASR {100 * x.asr:.1f} %" not in caption(preset, numbers)  # a caption that disagrees is caught


def test_overview_caption_pairs_the_base_with_the_aligned_model_on_the_same_prompts(pair, tmp_path):
    """Aligned vs base on the same prompts is a paired comparison: the caption quotes base − aligned with its
    interval and exact McNemar test, the same the evaluation results give."""
    cfg, cache = AppConfig(max_prompts=40), Cache(tmp_path)
    preset = find("overview", "The papers' setting: no system prompt")
    warm_preset(pair, preset, cfg, cache)
    shown = caption(preset, cached_numbers(pair, preset, cfg, cache))
    lm = pair.aligned
    sets = {k: v.head(40) for k, v in lm.data.sets("test").items()}
    spec = make_spec(lm, sets["harmful"], sets["benign"])
    a, b = (
        compare(lm, spec, {"aligned": None}, cache)["aligned"],
        compare(pair.base, spec, {"base": None}, cache)["base"],
    )
    d = a.paired(b, "asr", "before", "after")
    assert f"base − aligned on the same prompts {d.format()}" in shown and "McNemar" in shown, shown
    assert d.diff == b.asr - a.asr > 0.9
