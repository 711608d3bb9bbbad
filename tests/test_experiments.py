"""The experiments facade: one cache identity per question, the page's spec for a preset, the spec's judges."""

from analysis import experiments as ex
from analysis.app_support.config import AppConfig
from analysis.app_support.presets import presets, region_settings
from analysis.core.cache import Cache
from analysis.core.evaluation import evaluate
from analysis.judging.keyword import KeywordJudge
from analysis.judging.refusal import Judge
from conftest import demo_sets, organism_spec


def test_disagreement_uses_the_specs_keyword_judge(demo_pair, tmp_path):
    """With a keyword list that never matches, every harmful reply is an 'attack' by the spec's judge, while
    the default-keyword judge beside it sees the aligned model's refusals: they disagree on those replies."""
    sets = demo_sets("test", 16)
    spec = organism_spec(sets["harmful"], sets["benign"])
    from dataclasses import replace

    spec = replace(spec, judge=Judge(("zzz never said",)), judges=(KeywordJudge(),))
    r = evaluate(demo_pair.aligned, spec, cache=Cache(tmp_path))
    assert r.asr == 1.0 and r.judge_asr["keyword"] <= 0.1  # the aligned model refuses
    share, idx = r.disagreement(spec.judge)
    refused = [i for i, g in enumerate(r.harmful) if Judge().is_refusal(g.text)]
    assert idx == refused and share == len(refused) / len(r.harmful) >= 0.9


def test_page_spec_follows_the_preset_and_the_launch_config(demo_pair):
    lm = demo_pair.aligned
    cfg = AppConfig(max_prompts=40, max_new_tokens=16)
    overview = ex.page_spec(lm, "overview", cfg, presets("overview")[1])
    assert len(overview.harmful) == len(overview.benign) == 40  # 120 capped at 40 (a multiple of 8)
    assert overview.system_prompt == "you are a helpful and safe assistant ." and overview.max_new_tokens == 16
    lox = ex.page_spec(lm, "lox", AppConfig(), presets("lox")[0])
    assert len(lox.harmful) == 48 and lox.system_prompt is None and lox.max_new_tokens == 24
    assert (
        ex.page_spec(
            lm, "safety_landscape", cfg, presets("safety_landscape")[1], system="helpful and safe"
        ).system_prompt
        is not None
    )


def test_the_page_heatmap_and_the_region_build_share_one_cache_identity(demo_pair, tmp_path):
    """Importance as the page draws it is what the set-difference region reads: building the region after it
    adds no score entry, and a second build is the same object (built once per process)."""
    lm, cache = demo_pair.aligned, Cache(tmp_path)
    ex.forget()
    cal = ex.calibration(lm, 16, cache=cache)
    settings = region_settings(presets("critical_regions")[2])  # Wanda set difference
    ex.importance(lm, settings.score, cal, cache=cache)
    before = cache.info().by_kind
    region = ex.region(lm, settings, cal, demo_pair.base, cache)
    assert cache.info().by_kind == before
    again = ex.calibration(lm, 16, cache=cache)  # equal data, a new object: same identity
    assert ex.region(lm, settings, again, demo_pair.base, cache) is region
    other = ex.calibration(lm, 8, cache=cache)
    assert ex.region(lm, settings, other, demo_pair.base, cache) is not region
    ex.forget()
