"""Scale-out on a local Ray instance: the same numbers as in process, written into the same cache."""

import numpy as np
import pytest
import torch

from analysis.core.cache import Cache
from analysis.core.edits import checksum
from analysis.methods.landscape.directions import ModelDifference, RandomDirection
from analysis.methods.landscape.grid import evaluate_grid
from conftest import demo_sets, organism_spec

ray = pytest.importorskip("ray")


def test_unreachable_cluster_is_a_clear_error():
    from analysis.core import distributed

    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    with pytest.raises(ValueError, match="could not connect to the Ray cluster"):
        distributed.connect("127.0.0.1:1")


@pytest.fixture(scope="module")
def local_ray():
    from analysis.core.distributed import connect

    connect("local", num_cpus=2)
    yield "local"
    ray.shutdown()


@pytest.fixture(scope="module")
def small_sets():
    s = demo_sets("val")
    return s["harmful"].head(12), s["benign"].head(12)


def test_landscape_points_on_ray_match_in_process_and_fill_the_cache(
    local_ray, demo_pair, small_sets, tmp_path, monkeypatch
):
    lm = demo_pair.aligned
    before = checksum(lm.model)
    h, b = small_sets
    axis = [-1.0, 0.0, 1.0]
    on_ray = evaluate_grid(
        lm, [RandomDirection(3)], [axis], organism_spec(h, b), cache=Cache(tmp_path / "ray"), ray_address=local_ray
    )
    local = evaluate_grid(lm, [RandomDirection(3)], [axis], organism_spec(h, b), cache=Cache(tmp_path / "local"))
    assert np.array_equal(on_ray.asr, local.asr) and np.array_equal(on_ray.utility, local.utility)
    assert on_ray.generations == local.generations
    assert checksum(lm.model) == before
    # the app reads the Ray results from the cache: nothing is recomputed
    import analysis.core.evaluation as evaluation

    monkeypatch.setattr(
        evaluation, "evaluate_model", lambda *a, **k: pytest.fail("recomputed a point the cluster cached")
    )
    again = evaluate_grid(lm, [RandomDirection(3)], [axis], organism_spec(h, b), cache=Cache(tmp_path / "ray"))
    assert np.array_equal(again.asr, local.asr)


def test_model_difference_directions_load_the_other_model_on_workers(local_ray, demo_pair, small_sets, tmp_path):
    lm, base = demo_pair.aligned, demo_pair.base
    h, b = small_sets
    d = ModelDifference(base.model, base.fingerprint)
    on_ray = evaluate_grid(
        lm,
        [d],
        [[0.0, 1.0]],
        organism_spec(h, b),
        cache=Cache(tmp_path / "r"),
        ray_address=local_ray,
        other_models=[base],
    )
    local = evaluate_grid(lm, [d], [[0.0, 1.0]], organism_spec(h, b), cache=Cache(tmp_path / "l"))
    assert np.array_equal(on_ray.asr, local.asr)
    assert on_ray.asr[0] <= 0.1 and on_ray.asr[1] >= 0.9  # α = 1 is the base model: it complies
    with pytest.raises(ValueError, match="no source known"):
        evaluate_grid(lm, [d], [[0.5]], organism_spec(h, b), cache=Cache(tmp_path / "x"), ray_address=local_ray)


@pytest.mark.parametrize("method", ["wanda", "snip"])
def test_sharded_scores_add_up_to_the_in_process_scores(local_ray, demo_pair, tmp_path, method):
    from analysis.methods.critical_regions.scoring import default_calibration, scores

    lm = demo_pair.aligned
    cal = default_calibration(lm, 24, cache=Cache(tmp_path / "c"))
    sharded = scores(lm, method, "utility", cal, Cache(tmp_path / "ray"), ray_address=local_ray)
    plain = scores(lm, method, "utility", cal, Cache(tmp_path / "plain"))
    assert sharded.keys() == plain.keys()
    for n in plain:
        assert torch.allclose(sharded[n], plain[n], rtol=1e-4, atol=1e-7), n
