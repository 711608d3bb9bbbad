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


def test_a_2d_random_landscape_spans_one_plane_per_draw_and_reports_visage_over_them(demo_pair, tmp_path):
    """2D random: ``directions`` planes, plane k from seeds seed + 2k and seed + 2k + 1; plane 0 is the one-plane
    landscape itself (same grid, bit for bit); VISAGE per plane, mean ± sd over them."""
    import numpy as np

    from analysis.methods.landscape.grid import LandscapeSettings
    from analysis.methods.landscape.multi import random_plane
    from analysis.methods.landscape.visage import visage_2d

    sets = demo_sets("test", 4)
    spec = organism_spec(sets["harmful"], sets["benign"])
    cache = Cache(tmp_path)
    three = LandscapeSettings(-2.0, 2.0, 3, directions=3)
    run = ex.landscape(demo_pair, three, spec, "2D", "random", cache=cache)
    planes = run.planes
    assert planes is not None and planes.n == 3 and planes.seeds == [(123, 124), (125, 126), (127, 128)]
    assert run.landscape is planes.landscapes[0] and run.directions[0].seed == 123
    d1, d2 = random_plane(demo_pair.aligned.model, three, 2)
    assert d1.seed == 127 and d2.d2.seed == 128 and abs(d2.coef) < 1  # the plane's second axis, orthogonalised
    one = ex.landscape(demo_pair, LandscapeSettings(-2.0, 2.0, 3, directions=1), spec, "2D", "random", cache=cache)
    assert one.planes is not None and one.planes.n == 1 and np.array_equal(one.landscape.asr, planes.landscapes[0].asr)
    visages = [visage_2d(100 * land.asr, (1, 1)) for land in planes.landscapes]
    assert planes.visages == visages and np.isclose(planes.visage_mean, np.mean(visages))
    assert np.isclose(planes.visage_sd, np.std(visages, ddof=1))
    assert planes.describe().startswith(f"{np.mean(visages):.1f} ± ") and "per plane" in planes.describe()
    assert one.planes.describe() == f"{visages[0]:.1f} (one plane)"
