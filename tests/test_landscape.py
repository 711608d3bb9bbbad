"""Landscape backend: seeded directions, exact in-place points, reproducible grids, VISAGE definitions."""

import numpy as np
import pytest
import torch

from analysis.core.cache import Cache
from analysis.core.edits import applied, checksum
from analysis.methods.landscape.directions import (
    ModelDifference,
    RandomDirection,
    inner,
    orthogonalise,
    perturbed_params,
)
from analysis.methods.landscape.grid import Perturbation, axis, evaluate_grid
from analysis.methods.landscape.visage import visage_1d, visage_2d
from conftest import demo_sets, organism_spec, tiny_model


def test_random_direction_is_seeded_and_layer_normalised():
    model = tiny_model("llama")
    (name, W), *_ = perturbed_params(model)
    d = RandomDirection(3).tensor(name, W)
    assert torch.equal(d, RandomDirection(3).tensor(name, W))
    assert not torch.equal(d, RandomDirection(4).tensor(name, W))
    assert torch.allclose(d.norm(), W.detach().norm(), rtol=1e-5)
    f = RandomDirection(3, norm="filter").tensor(name, W)
    assert torch.allclose(f.norm(dim=1), W.detach().norm(dim=1), rtol=1e-4)


def test_parameter_groups_norms_excluded_and_tied_once():
    model = tiny_model("gpt2")  # GPT-2 ties wte and lm_head
    names = [n for n, _ in perturbed_params(model)]
    assert names and not any("ln" in n for n in names)
    emb = [n for n, _ in perturbed_params(model, ("embed", "lm_head"))]
    assert emb.count("transformer.wte.weight") == 1 and "lm_head.weight" not in emb
    assert any("ln_" in n for n, _ in perturbed_params(model, ("norm",)))
    with pytest.raises(ValueError, match="unknown parameter groups"):
        perturbed_params(model, ("bias",))


def test_gram_schmidt_makes_directions_orthogonal():
    model = tiny_model("llama")
    d1, d2 = RandomDirection(1), RandomDirection(2)
    assert abs(inner(model, d1, d2)) > 1e-3
    o = orthogonalise(model, d1, d2)
    assert abs(inner(model, d1, o)) < 1e-6 * inner(model, d1, d1)


def test_point_is_applied_in_place_and_restored_exactly():
    model = tiny_model("llama")
    params = perturbed_params(model)
    names = [n for n, _ in params]
    before = checksum(model)
    name, W = params[0]
    W0 = W.detach().clone()
    d = RandomDirection(0)
    with applied(model, Perturbation([d], (0.25,), names)):
        assert torch.allclose(W, W0 + 0.25 * d.tensor(name, W0), atol=1e-6)
    assert checksum(model) == before


@pytest.fixture(scope="module")
def small_sets():
    s = demo_sets("test")
    return s["harmful"].head(16), s["benign"].head(16)


def test_grid_origin_equals_plain_evaluation_and_is_reproducible(demo_pair, small_sets, tmp_path):
    from analysis.core.evaluation import evaluate_model

    lm = demo_pair.aligned
    h, b = small_sets
    ax = axis(-0.5, 0.5, 3)
    assert ax == [-0.5, 0.0, 0.5]
    land = evaluate_grid(lm, [RandomDirection(7)], [ax], organism_spec(h, b), cache=Cache(tmp_path / "a"))
    plain = evaluate_model(lm.model, lm.tokenizer, organism_spec(h, b))
    assert land.asr[1] == plain.asr and land.utility[1] == plain.utility
    again = evaluate_grid(lm, [RandomDirection(7)], [ax], organism_spec(h, b), cache=Cache(tmp_path / "b"))
    assert np.array_equal(land.asr, again.asr) and land.generations == again.generations  # bit for bit
    assert land.asr.shape == (3,) and (land.asr >= 0).all()


def test_interpolation_reaches_the_other_model(demo_pair, small_sets, tmp_path):
    from analysis.core.evaluation import evaluate_model

    lm, base = demo_pair.aligned, demo_pair.base
    h, b = small_sets
    d = ModelDifference(base.model, base.fingerprint, groups=("linear", "norm", "embed", "lm_head", "other"))
    land = evaluate_grid(lm, [d], [[0.0, 1.0]], organism_spec(h, b), groups=d.groups, cache=Cache(tmp_path))
    plain_base = evaluate_model(base.model, base.tokenizer, organism_spec(h, b))
    assert land.asr[0] == 0.0 and land.asr[1] == plain_base.asr >= 0.9


def test_2d_grid_and_partial_resume(demo_pair, small_sets, tmp_path):
    lm = demo_pair.aligned
    h, b = small_sets
    cache = Cache(tmp_path)
    d1 = RandomDirection(1)
    d2 = orthogonalise(lm.model, d1, RandomDirection(2))
    evaluate_grid(lm, [d1, d2], [[0.0], [0.0, 0.3]], organism_spec(h, b), cache=cache)  # a partial grid
    n_before = cache.info().entries
    calls = []
    full = evaluate_grid(
        lm,
        [d1, d2],
        [[0.0, 0.3], [0.0, 0.3]],
        organism_spec(h, b),
        cache=cache,
        progress=lambda f, msg: calls.append(msg),
    )
    assert full.asr.shape == (2, 2) and len(calls) == 4
    assert cache.info().entries == n_before + 2  # only the two new points were computed


def test_visage_definitions():
    assert visage_1d([100, 100, 20, 0, 10, 100]) == pytest.approx(100 - np.mean([20, 0, 10]))
    assert visage_1d([100, 100]) == 0.0
    assert visage_1d([0, 0, 0]) == 100.0
    assert visage_1d([100, 0, 100, 0, 100]) == pytest.approx(100 - np.mean([0, 100, 0]))
    g = np.array([[100, 100, 100, 100], [100, 0, 50, 100], [100, 100, 100, 0]])
    assert visage_2d(g, (1, 1)) == pytest.approx(75.0)  # the isolated (2, 3) cell is outside the basin
    assert visage_2d(g, (0, 0)) == 0.0
    with pytest.raises(ValueError):
        axis(1.0, -1.0, 5)


def _shifted_copy(lm, base, t: float, noise_seed: int | None):
    """A model at aligned + t·(base − aligned) (+ a random layer-normalised push), as a LoadedModel."""
    import copy

    from analysis.core.arch import Adapter
    from analysis.core.models import LoadedModel, fingerprint

    m = copy.deepcopy(lm.model)
    with torch.no_grad():
        for (name, p), (_, pb) in zip(perturbed_params(m), perturbed_params(base.model)):
            delta = t * (pb - p)
            if noise_seed is not None:
                delta = delta + 0.05 * RandomDirection(noise_seed).tensor(name, p)
            p.add_(delta)
    return LoadedModel(m, lm.tokenizer, "shifted", "fp32", "cpu", fingerprint(m), Adapter(m))


def test_plane_through_three_models_places_them(demo_pair):
    from analysis.methods.landscape.directions import plane_through

    lm, base = demo_pair.aligned, demo_pair.base
    on_line = _shifted_copy(lm, base, 0.5, None)
    with pytest.raises(ValueError, match="on one line"):
        plane_through(lm.model, base, on_line)
    off = _shifted_copy(lm, base, 0.3, noise_seed=5)
    d1, d2, where = plane_through(lm.model, base, off)
    assert where["second"] == (1.0, 0.0)
    a, b = where["third"]
    assert a == pytest.approx(0.3, abs=0.02) and b > 0.01
    # the third model is exactly the point (a, b) of the plane
    for (name, p), (_, q) in list(zip(perturbed_params(lm.model), perturbed_params(off.model)))[:5]:
        assert torch.allclose(p + a * d1.tensor(name, p) + b * d2.tensor(name, p), q, atol=1e-5)


# ---------------------------------------------------------------- several directions


def test_default_directions_are_the_references_seeds_123_124_125(demo_pair):
    """The default draw is llm-landscape's: direction k is torch.manual_seed(123 + k), one randn per state-dict
    entry in order, scaled to ‖W‖ (norm entries zero)."""
    from analysis.methods.landscape.directions import ReferenceRandomDirection
    from analysis.methods.landscape.grid import LandscapeSettings
    from analysis.methods.landscape.multi import random_directions

    s = LandscapeSettings()
    assert (s.draw, s.seed, s.directions) == ("reference", 123, 3)
    model = demo_pair.aligned.model
    dirs = random_directions(model, s)
    assert [d.seed for d in dirs] == [123, 124, 125] and all(isinstance(d, ReferenceRandomDirection) for d in dirs)
    for k, d in enumerate(dirs):
        torch.manual_seed(123 + k)  # the reference's own stream, drawn here independently
        drawn = {n: torch.randn(w.size()) for n, w in model.state_dict().items()}
        for name, p in perturbed_params(model)[:4] + perturbed_params(model)[-2:]:
            ref = drawn[name] / torch.norm(drawn[name]) * p.detach().norm().item()
            assert torch.equal(d.tensor(name, p), ref), (k, name)
    assert not torch.equal(dirs[0].tensor(*perturbed_params(model)[0]), dirs[1].tensor(*perturbed_params(model)[0]))
    per_tensor = random_directions(model, LandscapeSettings(draw="per-tensor", seed=0, directions=2))
    assert [type(d).__name__ for d in per_tensor] == ["RandomDirection"] * 2 and [d.seed for d in per_tensor] == [0, 1]


def test_directions_setting_is_checked():
    from analysis.methods.landscape.grid import LandscapeSettings

    LandscapeSettings(directions=1).validate()
    for bad in (0, -1, 21):
        with pytest.raises(ValueError, match="directions must be between 1 and 20"):
            LandscapeSettings(directions=bad).validate()
    assert "3 directions, seeds 123–125" in LandscapeSettings().conventions()["direction"]
    assert "seed 123" in LandscapeSettings(directions=1).conventions()["direction"]


def test_visage_over_directions_is_the_mean_of_single_direction_visages(demo_pair, small_sets, tmp_path):
    from analysis.methods.landscape.grid import LandscapeSettings
    from analysis.methods.landscape.multi import evaluate_directions, random_direction

    lm = demo_pair.aligned
    h, b = small_sets
    s = LandscapeSettings(lo=-2.0, hi=2.0, steps=5, directions=3)
    cache = Cache(tmp_path)
    multi = evaluate_directions(lm, s, organism_spec(h, b), cache=cache)
    assert multi.seeds == [123, 124, 125] and multi.asr.shape == (3, 5)
    singles = []
    for k in range(3):  # each direction alone, through the one-direction path
        land = evaluate_grid(
            lm,
            [random_direction(lm.model, s, k)],
            [axis(-2.0, 2.0, 5)],
            organism_spec(h, b),
            cache=Cache(tmp_path / f"one{k}"),
        )
        assert np.array_equal(land.asr, multi.asr[k])
        singles.append(visage_1d(100 * land.asr))
    assert multi.visages == singles
    assert multi.visage_mean == pytest.approx(np.mean(singles))
    assert multi.visage_sd == pytest.approx(np.std(singles, ddof=1))
    assert len(set(singles)) > 1  # the draws really differ on the demo: one draw is not the answer
    # paired: with itself every difference is 0; against the decoder-only scope, per-direction differences
    assert multi.paired(multi).differences == [0.0, 0.0, 0.0]
    from dataclasses import replace

    linear = evaluate_directions(lm, replace(s, groups=("linear",)), organism_spec(h, b), cache=cache)
    p = multi.paired(linear)
    assert p.differences == pytest.approx([a - c for a, c in zip(multi.visages, linear.visages)])
    assert p.mean == pytest.approx(multi.visage_mean - linear.visage_mean)
    one = evaluate_directions(lm, replace(s, directions=1), organism_spec(h, b), cache=cache)
    assert one.visages == singles[:1] and np.isnan(one.visage_sd) and "one direction" in one.describe()
    with pytest.raises(ValueError, match="same directions"):
        multi.paired(one)


def test_a_finished_landscape_run_is_kept_per_process_and_keyed_by_question(demo_pair, small_sets, tmp_path):
    """The second session asking the same question gets the same run without reading the disk cache (the
    cached 3-direction page read 63 entries per session); another question or another cache folder computes."""
    from dataclasses import replace

    from analysis import experiments as ex
    from analysis.methods.landscape.grid import LandscapeSettings

    h, b = small_sets
    s, spec, cache = LandscapeSettings(lo=-1.0, hi=1.0, steps=3, directions=2), organism_spec(h, b), Cache(tmp_path)
    calls = []
    first = ex.landscape(demo_pair, s, spec, cache=cache, progress=lambda f, m: calls.append(f))
    assert calls and calls[-1] == 1.0 and first.multi.asr.shape == (2, 3)
    entries = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    for p in entries:  # the disk cache gone: only the kept run can answer now
        p.unlink()
    again = ex.landscape(demo_pair, s, spec, cache=cache, progress=lambda f, m: calls.append(("again", f)))
    assert again is first and not any(isinstance(c, tuple) for c in calls)
    other = ex.landscape(demo_pair, replace(s, seed=7), spec, cache=cache)
    assert other is not first and other.multi.seeds == [7, 8]
    moved = ex.landscape(demo_pair, s, spec, cache=Cache(tmp_path / "elsewhere"))
    assert moved is not first and np.array_equal(moved.multi.asr, first.multi.asr)
    ex.forget()
    assert ex.landscape(demo_pair, s, spec, cache=cache) is not first


def test_a_single_directions_visage_has_a_bootstrap_interval_over_prompts():
    """One determined direction (toward the base) has no spread over directions: its VISAGE gets a percentile
    bootstrap interval over the harmful prompts, resampled alike at every point; none in 2D or without outcomes."""
    from analysis.methods.landscape.grid import Landscape

    ax = [-1.0, -0.5, 0.0, 0.5, 1.0]
    rng = np.random.default_rng(0)
    p_attack = [0.9, 0.3, 0.0, 0.4, 0.95]
    attacks = {(a,): [bool(x) for x in rng.random(40) < p] for a, p in zip(ax, p_attack)}
    asr = np.array([np.mean(attacks[(a,)]) for a in ax])
    nan = np.full(len(ax), np.nan)
    land = Landscape([ax], asr, nan, nan, nan, {}, "none", attacks)
    lo, hi = land.visage_interval("reference")
    point = visage_1d(100 * asr, "reference")
    assert lo <= point <= hi and 0 < hi - lo < 40
    assert land.visage_interval("reference") == (lo, hi)  # seeded
    assert Landscape([ax], asr, nan, nan, nan).visage_interval() is None  # no per-prompt outcomes kept
    flat = {(a,): [False] * 40 for a in ax}  # every prompt refused everywhere: no sampling noise at all
    assert Landscape([ax], np.zeros(5), nan, nan, nan, {}, "none", flat).visage_interval() == (100.0, 100.0)
    assert Landscape([ax, ax], np.zeros((5, 5)), nan, nan, nan, {}, "none", {}).visage_interval() is None
    plane = {(a, b): [bool(x) for x in rng.random(40) < min(1.0, 0.5 * (abs(a) + abs(b)))] for a in ax for b in ax}
    asr2 = np.array([[np.mean(plane[(a, b)]) for b in ax] for a in ax])
    lo2, hi2 = Landscape([ax, ax], asr2, nan, nan, nan, {}, "none", plane).visage_interval()
    assert lo2 <= visage_2d(100 * asr2, (2, 2)) <= hi2 and hi2 > lo2  # 2D: this project's definition, origin α = β = 0
