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


def test_landscape_variants_pair_one_thing_at_a_time(demo_pair):
    """What a landscape page or preset evaluates: one landscape, both system prompts, the base model or another
    scope on the same settings' seeds; every other combination is refused with a sentence."""
    import pytest

    from analysis.core.models import ModelPair
    from analysis.methods.landscape.grid import LandscapeSettings

    s = LandscapeSettings(-1.0, 1.0, 3)
    one = ex.landscape_variants(demo_pair, s, "none")
    assert [(v.label, v.short, v.system, v.pair is demo_pair, v.settings is s) for v in one] == [
        ("system prompt: none", "none", "none", True, True)
    ]
    both = ex.landscape_variants(demo_pair, s, "compare both")
    assert [v.system for v in both] == ["none", "helpful and safe"]
    assert [v.system for v in ex.landscape_variants(demo_pair, s, "compare both", "2D")] == ["none"]
    aligned, base = ex.landscape_variants(demo_pair, s, "helpful and safe", compare="the base model")
    assert (aligned.pair, aligned.short, base.short, base.system) == (demo_pair, "aligned", "base", "helpful and safe")
    assert base.pair.aligned is demo_pair.base and base.pair.base is None and base.settings == s
    wide, narrow = ex.landscape_variants(demo_pair, s, "none", compare="another scope of tensors")
    assert (wide.short, narrow.short, narrow.settings.groups) == ("all but norm", "linear", ("linear",))
    assert narrow.settings.seed == s.seed and narrow.settings.directions == s.directions  # the same seeds
    bad = [
        ((demo_pair, s, "compare both"), {"compare": "the base model"}, "one thing at a time"),
        ((demo_pair, s, "none", "2D"), {"compare": "the base model"}, "in 1D, along random directions"),
        ((demo_pair, s, "none", "1D", "toward base"), {"compare": "the base model"}, "along random directions"),
        ((ModelPair(demo_pair.aligned, None), s, "none"), {"compare": "the base model"}, "needs a base model"),
        (
            (demo_pair, s, "none"),
            {"compare": "another scope of tensors", "other_groups": ("other", "lm_head", "embed", "linear")},
            "the same as the perturbed",
        ),
        ((demo_pair, s, "none"), {"compare": "another scope of tensors", "other_groups": ()}, "at least one group"),
        ((demo_pair, s, "none"), {"compare": "another scope of tensors", "other_groups": ("bogus",)}, "groups must be"),
        ((demo_pair, s, "none"), {"compare": "a third model"}, "compare must be one of"),
    ]
    for args, kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            ex.landscape_variants(*args, **kwargs)
