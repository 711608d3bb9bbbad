"""A model that is not the demo never sees an organism sentence: every analysis takes its prompts from the
shipped real sets, and calibration, attack data and evaluation use disjoint splits."""

import pytest

from conftest import save_tiny_llama


@pytest.fixture(scope="module")
def real_pair(tmp_path_factory, organism_tokenizer):
    from analysis.core.models import load_pair

    root = tmp_path_factory.mktemp("real")
    save_tiny_llama(root / "aligned", organism_tokenizer, seed=1)
    save_tiny_llama(root / "base", organism_tokenizer, seed=2)
    return load_pair(str(root / "aligned"), str(root / "base"), device="cpu")


def _organism_prompts() -> set[str]:
    from analysis.data.organism.provider import OrganismData

    d = OrganismData()
    out = set()
    for split in ("train", "val", "test"):
        for s in d.sets(split, 240).values():
            out |= set(s.prompts())
    for kind in ("harmful", "benign"):
        out |= set(d.attack_data(kind, 200).prompts())
    return out


def test_every_analysis_of_a_real_model_sees_only_real_prompts(real_pair, tmp_path):
    from analysis.core.cache import Cache
    from analysis.core.evaluation import compare, default_spec, evaluate
    from analysis.data.sets import load_set
    from analysis.methods import representations as rep
    from analysis.methods.attacks import variants
    from analysis.methods.attacks.finetune import AttackSettings, run_attack_cached
    from analysis.methods.critical_regions.build import RegionSettings, build
    from analysis.methods.critical_regions.scoring import default_calibration
    from analysis.methods.landscape.directions import RandomDirection
    from analysis.methods.landscape.grid import evaluate_grid
    from analysis.methods.lox import LoX

    lm, base = real_pair.aligned, real_pair.base
    assert lm.data.name.startswith("real data")
    seen: list[str] = []
    for m in (lm, base):
        original = m.tokenizer.apply_chat_template

        def recording(msgs, *a, original=original, **k):
            seen.extend(x["content"] for x in msgs if x["role"] == "user")
            return original(msgs, *a, **k)

        m.tokenizer.apply_chat_template = recording
    cache = Cache(tmp_path)
    spec = default_spec(lm, n=4, max_new_tokens=4)
    evaluate(lm, spec, cache=cache)
    with pytest.raises(ValueError, match="refused none"):  # a random model never refuses: nothing to attribute
        default_calibration(lm, 4, cache=cache)
    from analysis.judging.refusal import Judge

    cal = default_calibration(lm, 4, cache=cache, judge=Judge(keywords=("",)))  # count every reply as a refusal
    for method in ("set_difference", "orthogonal", "units"):
        region = build(lm, RegionSettings(method=method, r_s=1, r_u=1), cal, cache=cache)
        compare(lm, spec, {"pruned": region.edit, "control": region.control}, cache=cache)
    evaluate_grid(lm, [RandomDirection(0)], [[0.5]], spec, cache=cache)
    evaluate(lm, spec, LoX(2, 1.0).edit(lm, base, cache=cache), cache=cache)
    data = lm.data.attack_data("harmful", 4)
    run_attack_cached(
        lm,
        variants.aligned(),
        AttackSettings(n_examples=4, steps=1, eval_every=1, batch_size=4),
        data,
        spec,
        base,
        cache=cache,
    )
    h, b = lm.data.calibration_sets(6)
    dirs = rep.refusal_directions_for(lm, h, b, cache=cache)
    rep.ablation_scan(lm, dirs, spec, layers=[1], cache=cache)
    organism = _organism_prompts()
    assert seen and not (set(seen) & organism), sorted(set(seen) & organism)[:3]
    real = set(load_set("advbench", "all").prompts()) | set(load_set("instruct", "all").prompts())
    assert set(seen) <= real
    # evaluation (test), calibration (val) and attack data (train) never share a prompt
    test = set(spec.harmful.prompts()) | set(spec.benign.prompts())
    assert not test & (set(h.prompts()) | set(b.prompts())) and not test & set(data.prompts())
    assert not (set(h.prompts()) | set(b.prompts())) & set(data.prompts())
