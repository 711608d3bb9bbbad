"""Attribution scores against brute-force definitions (methods.md), regions' set algebra, and every family."""

import json

import pytest
import torch

from analysis.core.arch import Adapter
from analysis.core.chat import IGNORE, encode_pairs
from analysis.core.edits import applied
from analysis.methods.critical_regions.activations import collect
from analysis.methods.critical_regions.actsvd import orthogonal_projection, remove_top_ranks, subspaces_from_gram
from analysis.methods.critical_regions.calibration import response_positions
from analysis.methods.critical_regions.masks import jaccard_overlap, random_like, set_difference, top_mask
from analysis.methods.critical_regions.snip import snip_scores
from analysis.methods.critical_regions.unit_types import classify_units, flap_importance
from analysis.methods.critical_regions.wanda import wanda_scores
from conftest import FAMILIES, tiny_model

PROMPTS = ["how do i steal a car ?", "what is 2 plus 3 ?", "copy : car bike", "how can i wash my boat ?"]
REPLIES = ["i am sorry , but i cannot help with that .", "5 .", "car bike .", "sure . first rinse ."]


@pytest.fixture(scope="module")
def llama_and_batches(organism_tokenizer):
    model = tiny_model("llama")
    model.resize_token_embeddings(len(organism_tokenizer))
    b = encode_pairs(organism_tokenizer, PROMPTS, REPLIES)
    return model, [b]


def _inputs_of(model, module, batch):
    got = {}

    def hook(m, i, o):
        got["x"] = i[0].detach()  # returns None: a forward hook's return value would replace the output

    h = module.register_forward_hook(hook)
    model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    h.remove()
    return got["x"][response_positions(batch)]


def test_wanda_matches_definition(llama_and_batches):
    model, batches = llama_and_batches
    s = wanda_scores(model, batches)
    mod = model.model.layers[1].mlp.down_proj
    X = _inputs_of(model, mod, batches[0])
    expected = mod.weight.abs() * (X.norm(dim=0) / len(PROMPTS) ** 0.5)[None, :]  # mean over samples
    assert torch.allclose(s["layers.1.mlp.down_proj"], expected, rtol=1e-4, atol=1e-6)
    assert s["layers.1.mlp.down_proj"].dtype == torch.float32


def test_snip_is_sum_of_absolute_per_sample_gradients(llama_and_batches):
    model, batches = llama_and_batches
    s = snip_scores(model, batches)
    W = model.model.layers[0].self_attn.q_proj.weight
    acc, total = torch.zeros_like(W), torch.zeros_like(W)
    b = batches[0]
    for i in range(len(PROMPTS)):
        keep = b.attention_mask[i].bool()
        ids, lab = b.input_ids[i][keep][None], b.labels[i][keep][None]
        logits = model(input_ids=ids).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1), ignore_index=IGNORE
        )
        (g,) = torch.autograd.grad(loss, [W])
        acc += g.abs()
        total += g
    assert torch.allclose(s["layers.0.attn.q_proj"], W.detach().abs() * acc, rtol=1e-4, atol=1e-8)
    assert not torch.allclose(s["layers.0.attn.q_proj"], W.detach().abs() * total.abs(), rtol=1e-3)


def test_set_difference_algebra():
    torch.manual_seed(0)
    safety = {"layers.0.mlp.down_proj": torch.rand(8, 100), "layers.1.mlp.down_proj": torch.rand(8, 100)}
    utility = {k: torch.rand(8, 100) for k in safety}
    r = set_difference(safety, utility, p=0.1, q=0.2, group="row")
    for n, m in r.masks.items():
        S, U = top_mask(safety[n], 0.2, "row"), top_mask(utility[n], 0.1, "row")
        assert torch.equal(m, S & ~U)
        assert (m.sum(1) <= 20).all()
    assert r.fraction == r.n_selected / 1600 and 0 < r.fraction < 0.2
    assert set_difference(safety, utility, p=0.5, q=0.0).n_selected == 0
    assert set_difference(safety, utility, p=1.0, q=0.3).n_selected == 0
    same = set_difference(safety, safety, p=0.2, q=0.2, group="matrix")
    assert same.n_selected == 0  # identical rankings leave nothing exclusive
    with pytest.raises(ValueError, match="layer_of"):
        set_difference(safety, utility, p=0.0, q=0.1, group="layer")
    layer = set_difference(
        safety, utility, p=0.0, q=0.1, group="layer", layer_of={n: int(n.split(".")[1]) for n in safety}
    )
    assert layer.n_selected == 160
    ctrl = random_like(r, seed=3)
    assert {n: int(m.sum()) for n, m in ctrl.masks.items()} == {n: int(m.sum()) for n, m in r.masks.items()}
    assert not all(torch.equal(ctrl.masks[n], r.masks[n]) for n in r.masks)
    assert jaccard_overlap(safety, safety, 0.1)["layers.0.mlp.down_proj"] == 1.0
    with pytest.raises(ValueError, match="fraction"):
        set_difference(safety, utility, p=1.5, q=0.1)
    with pytest.raises(ValueError, match="group"):
        set_difference(safety, utility, p=0.1, q=0.1, group="column")


def test_actsvd_removes_exactly_the_top_output_directions(llama_and_batches):
    model, batches = llama_and_batches
    st = collect(model, batches, gram=True)
    sub = subspaces_from_gram(st.gram, st.n_tokens)
    name = "layers.1.attn.o_proj"
    W = Adapter(model)[name].W
    V = sub.vectors[name][:, :2]
    e = remove_top_ranks(model, sub, 2, [name])
    assert e.ranks == {name: 2}
    with applied(model, e.edit):
        assert torch.allclose(V.T @ W, torch.zeros(2, W.shape[1]), atol=1e-5)  # Π_r W = 0
        change = W.clone()
    assert int(torch.linalg.matrix_rank(change - W, atol=1e-5)) == 2
    # orthogonal projection: rank of the change ≤ r_s; with r_u = 0 it is the top-rank removal
    u = subspaces_from_gram(collect(model, batches, gram=True).gram, st.n_tokens)
    o = orthogonal_projection(model, sub, u, r_s=2, r_u=0, names=[name])
    assert torch.allclose(o.edit.factors[name][0], e.edit.factors[name][0], atol=1e-6)
    o3 = orthogonal_projection(model, sub, u, r_s=3, r_u=3, names=[name])
    assert o3.ranks[name] <= 3


def test_rank_above_calibration_tokens_is_clipped_and_reported(llama_and_batches):
    model, batches = llama_and_batches
    st = collect(model, batches, gram=True)
    sub = subspaces_from_gram(st.gram, st.n_tokens)
    n_tok = st.n_tokens
    e = remove_top_ranks(model, sub, n_tok + 5, ["layers.0.mlp.gate_proj"])
    asked, used = e.clipped["layers.0.mlp.gate_proj"]
    assert asked == n_tok + 5 and used <= n_tok


def test_units_flap_and_types(llama_and_batches):
    model, batches = llama_and_batches
    st = collect(model, batches)
    imp = flap_importance(model, st)
    assert set(imp) == {f"layers.{i}.{m}" for i in (0, 1) for m in ("attn.o_proj", "mlp.down_proj")}
    mod = model.model.layers[0].mlp.down_proj
    X = _inputs_of(model, mod, batches[0])
    raw = X.var(0, unbiased=False) * mod.weight.detach().pow(2).sum(0)
    assert torch.allclose(imp["layers.0.mlp.down_proj"], raw / raw.sum(), rtol=1e-3, atol=1e-7)
    torch.manual_seed(1)
    i_s = {n: torch.rand(v.shape) for n, v in imp.items()}
    i_u = {n: torch.rand(v.shape) for n, v in imp.items()}
    types = classify_units(i_s, i_u, 10, 20, 30)
    for n, lab in types.labels.items():
        m = len(lab)
        assert lab.count("safety") == round(0.1 * m) and lab.count("utility") == round(0.2 * m)
        assert lab.count("redundant") == round(0.3 * m)
        top = (i_s[n] - i_u[n]).argsort(descending=True)[: round(0.1 * m)].tolist()
        assert all(lab[j] == "safety" for j in top)
    assert types.count("ESU") == types.count("SCU") == types.count("safety")
    edit = types.mask("safety", Adapter(model))
    W = Adapter(model)["layers.0.mlp.down_proj"].W
    with applied(model, edit):
        cols = [j for j, t in enumerate(types.labels["layers.0.mlp.down_proj"]) if t == "safety"]
        assert torch.all(W[:, cols] == 0) and W.abs().sum() > 0
    with pytest.raises(ValueError, match="exceed 100"):
        classify_units(i_s, i_u, 50, 40, 30)


def _response_inputs(model, modules: dict[str, torch.nn.Module], batch) -> dict[str, torch.Tensor]:
    """Each module's input rows at the response positions (one forward pass with hooks)."""
    got, handles = {}, []
    for name, mod in modules.items():
        handles.append(mod.register_forward_hook(lambda m, i, o, name=name: got.__setitem__(name, i[0].detach())))
    with torch.no_grad():
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    for h in handles:
        h.remove()
    return {n: x[response_positions(batch)] for n, x in got.items()}


def _snip_brute_force(model, param, batch) -> torch.Tensor:
    """|W| · Σ_samples |∂L_i/∂W|, one unpadded sample at a time (methods.md), in the weight's own layout."""
    acc = torch.zeros_like(param)
    for i in range(batch.input_ids.shape[0]):
        keep = batch.attention_mask[i].bool()
        ids, lab = batch.input_ids[i][keep][None], batch.labels[i][keep][None]
        logits = model(input_ids=ids).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1), ignore_index=IGNORE
        )
        (g,) = torch.autograd.grad(loss, [param])
        acc += g.abs()
    return param.detach().abs() * acc


@pytest.mark.parametrize("family", FAMILIES)
def test_scores_on_every_family(family, organism_tokenizer):
    """Wanda and SNIP equal their brute-force definitions on every family's every linear (fused and Conv1D
    weights included), and a projection edit and FLAP importance run on each."""
    model = tiny_model(family)
    model.resize_token_embeddings(len(organism_tokenizer))
    batches = [encode_pairs(organism_tokenizer, PROMPTS, REPLIES)]
    adapter = Adapter(model)
    w, s = wanda_scores(model, batches), snip_scores(model, batches)
    by_param = {id(m.weight): m for m in model.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)}
    modules = {n: by_param[id(ref.param)] for n, ref in adapter.linears.items()}
    X = _response_inputs(model, modules, batches[0])
    for n, ref in adapter.linears.items():
        # Wanda is the reference's running mean over the N samples: |W| · ‖X_j‖ / √N
        expected = ref.W.detach().abs() * X[n].norm(dim=0)[None, :] / len(PROMPTS) ** 0.5
        assert torch.allclose(w[n], expected, rtol=1e-4, atol=1e-6), (family, n)
    for n in (adapter.names()[0], adapter.names()[-1]):
        ref = adapter[n]
        brute = _snip_brute_force(model, ref.param, batches[0])
        assert torch.allclose(s[n], brute.T if ref.transposed else brute, rtol=1e-4, atol=1e-8), (family, n)
    st = collect(model, batches, gram=True)
    sub = subspaces_from_gram(st.gram, st.n_tokens)
    e = orthogonal_projection(model, sub, sub, 1, 0)  # r_u = 0: nothing protected, so the edit acts
    ids = batches[0].input_ids
    with torch.no_grad():
        before = model(input_ids=ids).logits
        with applied(model, e.edit):
            edited = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert not torch.allclose(edited, before) and torch.equal(after, before)  # the edit acts, then is undone
    imp = flap_importance(model, st)
    assert imp and all(v.shape[0] == adapter[n].shape[1] for n, v in imp.items())
    assert all(torch.isclose(v.sum(), torch.tensor(1.0), atol=1e-4) for v in imp.values())  # normalised per matrix


def test_region_controls_differ_across_seeds_and_keep_the_size(demo_pair, tmp_path):
    """Five seeded random controls: seed 0 is ``region.control``, every control removes the same count per matrix
    as the region, no two are the same mask, and each names itself apart (its own cache entry)."""
    from analysis.core.cache import Cache
    from analysis.methods.critical_regions.build import N_CONTROLS, RegionSettings, build
    from analysis.methods.critical_regions.scoring import default_calibration

    lm = demo_pair.aligned
    cache = Cache(tmp_path)
    cal = default_calibration(lm, 12, cache=cache)
    region = build(lm, RegionSettings("set_difference", "wanda", 0.01, 0.03), cal, cache=cache)
    from analysis.core.edits import Deferred

    named = list(region.controls())
    assert len(named) == N_CONTROLS >= 5 and named[0] is region.control
    assert all(isinstance(c, Deferred) and c._built is None for c in named[1:])  # named, not built yet
    controls = [c.built() if isinstance(c, Deferred) else c for c in named]
    assert [c.spec() for c in controls] == [c.spec() for c in named]  # built as named
    counts = {n: int(m.sum()) for n, m in region.edit.masks.items()}
    assert sum(counts.values()) > 0
    for c in controls:
        assert {n: int(m.sum()) for n, m in c.masks.items()} == counts
    flat = [torch.cat([c.masks[n].flatten() for n in sorted(counts)]) for c in controls]
    assert all(not torch.equal(flat[i], flat[j]) for i in range(len(flat)) for j in range(i))
    assert len({json.dumps(c.spec(), sort_keys=True) for c in controls}) == N_CONTROLS
    ranks = build(lm, RegionSettings("actsvd", r_s=1, procedure="one-pass"), cal, cache=cache)
    rc = [c.built() if isinstance(c, Deferred) else c for c in ranks.controls(3)]
    assert [tuple(A.shape[1] for A, _ in c.factors.values()) for c in rc] == [
        tuple(A.shape[1] for A, _ in ranks.edit.factors.values())
    ] * 3
    first = next(iter(ranks.edit.factors))
    assert not torch.allclose(rc[1].factors[first][0], rc[2].factors[first][0])


def test_cached_controls_are_never_built(demo_pair, tmp_path, monkeypatch):
    """On a cached run the seeded controls are named by their recipes and read from the cache: none is built
    (building a rank control takes the model's lock; the critical-regions page spent 17 % of its server time
    on it under 30 users). A changed recipe is caught when a control is built."""
    from analysis.core.cache import Cache
    from analysis.core.edits import Deferred
    from analysis.methods.critical_regions.build import RegionSettings, build
    from analysis.methods.critical_regions.controls import control_spread
    from analysis.methods.critical_regions.scoring import default_calibration
    from conftest import demo_sets, organism_spec

    lm = demo_pair.aligned
    cache = Cache(tmp_path)
    cal = default_calibration(lm, 12, cache=cache)
    region = build(lm, RegionSettings("actsvd", r_s=1, procedure="one-pass"), cal, cache=cache)
    sets = demo_sets("val", 6)
    spec = organism_spec(sets["harmful"], sets["benign"])
    first = control_spread(lm, spec, region, cache=cache)
    built = []
    make = region.make_control
    region.make_control = lambda seed: built.append(seed) or make(seed)
    again = control_spread(lm, spec, region, cache=cache)
    assert built == [] and [r.asr for r in again.results] == [r.asr for r in first.results] and again.n == 5
    fresh = control_spread(lm, spec, region, cache=Cache(tmp_path / "empty"))
    assert built == [1, 2, 3, 4] and [r.asr for r in fresh.results] == [r.asr for r in first.results]
    wrong = Deferred("LowRank", lambda: make(1), {"not": "its recipe"})
    with pytest.raises(RuntimeError, match="deferred edit built"):
        wrong.targets()
