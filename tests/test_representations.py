"""Hidden states, projections, probes, the refusal direction and its reversible ablation."""

import numpy as np
import pytest
import torch

from analysis.core.cache import Cache
from analysis.core.edits import checksum
from analysis.core.generation import generate
from analysis.methods import representations as rep
from conftest import demo_sets, organism_spec, tiny_model


@pytest.fixture(scope="module")
def demo_states(demo_pair, tmp_path_factory):
    cache = Cache(tmp_path_factory.mktemp("rep"))
    sets = demo_sets("val")
    h, b = sets["harmful"].head(40), sets["benign"].head(40)
    lm = demo_pair.aligned
    return cache, h, b, rep.states_cached(lm, h, cache=cache), rep.states_cached(lm, b, cache=cache)


def test_states_shape_and_padding_invariance(demo_pair):
    lm = demo_pair.aligned
    prompts = ["how do i rob a bank ?", "what is 3 plus 4 ?", "repeat after me : cat dog bird"]
    together = rep.hidden_states(lm.model, lm.tokenizer, prompts)
    assert together.last.shape == (5, 3, 128) and together.mean.shape == (5, 3, 128)
    for i, p in enumerate(prompts):  # left padding and explicit positions: a batch changes nothing
        alone = rep.hidden_states(lm.model, lm.tokenizer, [p])
        assert torch.allclose(alone.last[:, 0], together.last[:, i], atol=1e-4)
        assert torch.allclose(alone.mean[:, 0], together.mean[:, i], atol=1e-4)
    with pytest.raises(ValueError, match="no prompts"):
        rep.hidden_states(lm.model, lm.tokenizer, [])


def test_probes_separate_harmful_from_benign_in_late_layers(demo_states):
    _, h, b, sh, sb = demo_states
    y = np.array([1] * len(h) + [0] * len(b))
    acc = rep.probe_accuracy(torch.cat([sh.last, sb.last], 1), y)
    assert len(acc) == 5
    assert acc[0] == pytest.approx(0.5, abs=0.05)  # embeddings of the same last token: chance
    assert max(acc[2:]) >= 0.95  # late layers: near perfect
    with pytest.raises(ValueError, match="at least 5 prompts of each class"):
        rep.probe_accuracy(sh.last[:, :4], np.ones(4))


def test_projections_are_seeded_and_checked(demo_states):
    _, h, b, sh, sb = demo_states
    X = torch.cat([sh.last[3], sb.last[3]]).numpy()
    p1 = rep.project(X, "pca")
    Z = (X - X.mean(0)) / (X.std(0) + 1e-8)  # PCA by hand: the top two left singular
    U, S, _ = np.linalg.svd(Z - Z.mean(0), full_matrices=False)  # vectors scaled by their singular values
    ref = U[:, :2] * S[:2]
    assert p1.shape == (80, 2) and np.allclose(np.abs(p1), np.abs(ref), atol=1e-6)  # (each axis up to its sign)
    u0, u0_again, u1 = rep.project(X, "umap", seed=0), rep.project(X, "umap", seed=0), rep.project(X, "umap", seed=1)
    assert u0.shape == (80, 2) and np.isfinite(u0).all()
    assert np.array_equal(u0, u0_again)  # the seed fixes the layout
    assert not np.allclose(u0, u1, atol=1e-3)  # and another seed gives another one
    with pytest.raises(ValueError, match="projection must be one of"):
        rep.project(X, "tsne")
    with pytest.raises(ValueError, match="at least 3 prompts"):
        rep.project(X[:2], "pca")


def test_ablating_the_refusal_direction_breaks_refusal_and_is_reversible(demo_pair, demo_states):
    cache, h, b, _, _ = demo_states
    lm = demo_pair.aligned
    train = demo_sets("train")
    dirs = rep.refusal_directions(
        rep.states_cached(lm, train["harmful"], cache=cache), rep.states_cached(lm, train["benign"], cache=cache)
    )
    assert dirs.shape == (5, 128) and torch.allclose(dirs[1:].norm(dim=1), torch.ones(4), atol=1e-5)
    before = checksum(lm.model)
    ref = [g.text for g in generate(lm.model, lm.tokenizer, h.prompts()[:8])]
    scan = rep.ablation_scan(lm, dirs, organism_spec(h, b.head(16)), layers=[1, 4], cache=cache)
    assert scan.baseline_asr <= 0.05
    assert scan.asr[scan.layers.index(4)] >= 0.55 and scan.best_layer == 4  # +50 points at least
    assert scan.utility[scan.layers.index(4)] >= 0.8
    # hooks are gone and weights untouched: the same replies as before
    assert checksum(lm.model) == before
    assert [g.text for g in generate(lm.model, lm.tokenizer, h.prompts()[:8])] == ref
    with pytest.raises(RuntimeError):
        with rep.ablated(lm.model, dirs[4]):
            raise RuntimeError("boom")
    assert [g.text for g in generate(lm.model, lm.tokenizer, h.prompts()[:8])] == ref


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen2"])
def test_ablation_removes_the_direction_from_the_residual_stream(family):
    model = tiny_model(family)
    ids = torch.randint(3, 60, (2, 7))
    r = torch.randn(32)
    r = r / r.norm()
    with rep.ablated(model, r), torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    for h in hs[:-1]:  # every layer boundary before the final norm carries no r component
        assert float((h @ r).abs().max()) < 1e-4


def test_probe_accuracies_are_cached(demo_pair, demo_states):
    cache, h, b, sh, sb = demo_states
    lm = demo_pair.aligned
    y = np.array([1] * len(h) + [0] * len(b))
    direct = rep.probe_accuracy(torch.cat([sh.last, sb.last], 1), y)
    assert rep.probe_cv_cached(lm, h, b, cache=cache)["accuracy"] == pytest.approx(direct)
    n = cache.info().by_kind["probe-accuracy"]
    assert rep.probe_cv_cached(lm, h, b, cache=cache)["accuracy"] == pytest.approx(direct)
    assert cache.info().by_kind["probe-accuracy"] == n == 1


def test_projections_are_cached_and_edits_applied_only_on_a_miss(demo_pair, demo_states):
    from analysis.core.edits import Mask

    cache, h, b, sh, sb = demo_states
    lm = demo_pair.aligned
    xy = rep.projection_cached(lm, h, b, 3, cache=cache)
    assert np.allclose(xy, rep.project(torch.cat([sh.last[3], sb.last[3]]).numpy(), "pca"))
    n = cache.info().by_kind["projection"]
    assert np.allclose(rep.projection_cached(lm, h, b, 3, cache=cache), xy) and cache.info().by_kind["projection"] == n

    class Counting(Mask):
        calls = 0

        def apply_to(self, name, W):
            Counting.calls += 1
            super().apply_to(name, W)

    name = "layers.0.mlp.down_proj"
    edit = Counting({name: torch.zeros(lm.adapter[name].shape, dtype=torch.bool)})
    s1 = rep.states_cached(lm, h, cache=cache, edit=edit)
    s2 = rep.states_cached(lm, h, cache=cache, edit=edit)
    assert Counting.calls == 1 and torch.equal(s1.last, s2.last) and torch.allclose(s1.last, sh.last, atol=1e-5)


def test_the_ablation_layer_is_chosen_on_validation_prompts(demo_pair, tmp_path, monkeypatch):
    """The page reports the ablation of the layer chosen on the model's validation prompts (as many as it shows),
    never on the prompts it reports; without a validation split there is no held-out choice (None)."""
    from analysis.core.evaluation import make_spec

    lm = demo_pair.aligned
    test = {k: v.head(16) for k, v in lm.data.sets("test").items()}
    spec = make_spec(lm, test["harmful"], test["benign"])
    h, b = lm.data.calibration_sets(32)
    dirs = rep.refusal_directions_for(lm, h, b, None)
    layer, val = rep.val_chosen_layer(lm, dirs, spec, layers=[1, 2, 3, 4], cache=Cache(tmp_path))
    shown = [g.prompt for g in val.baseline.harmful]
    assert shown == lm.data.sets("val", 16)["harmful"].prompts() and not set(shown) & set(test["harmful"].prompts())
    assert layer == val.layers[int(np.argmax(val.asr))] and val.asr[val.layers.index(layer)] >= 0.5

    def no_split(self, split, n=120):
        raise ValueError(f"no {split} split")

    monkeypatch.setattr(type(lm.data), "sets", no_split)
    assert rep.val_chosen_layer(lm, dirs, spec, layers=[1, 2], cache=Cache(tmp_path)) is None


def test_probe_cv_matches_scikit_learn_and_keeps_each_prompts_outcome():
    """The probes' accuracy is scikit-learn's cross_val_score on the same folds; each prompt's held-out outcome
    is kept, so two models on the same prompts can be paired (their share of correct prompts is the accuracy
    when the folds are equal)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    g = torch.Generator().manual_seed(0)
    y = np.array([1] * 20 + [0] * 20)
    X = torch.randn(3, 40, 8, generator=g)
    X[1, :20] += 0.8  # layer 1 separates the classes a little, layer 2 well
    X[2, :20] += 3.0
    acc, correct = rep.probe_cv(X, y)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    for layer in range(3):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        assert acc[layer] == pytest.approx(cross_val_score(clf, X[layer].numpy(), y, cv=cv).mean(), abs=1e-12)
        assert sum(correct[layer]) / 40 == pytest.approx(acc[layer])  # 5 equal folds of 8
    assert acc[2] > 0.9 and acc[0] < acc[2] and len(correct[0]) == 40
