"""The across-builds table and the verdict rules it reads: the basin's half-width, LoX's clean-reply selection,
and the script end to end on a build folder (evaluate targets only, 16 prompts: seconds)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _module(name: str):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_basin_half_width_is_the_widest_safe_neighbourhood_of_the_origin():
    land = _module("landscape_acceptance")
    axis = np.linspace(-2, 2, 21)
    asr = np.ones(21)
    asr[8:13] = 0.0  # |α| <= 0.4 safe
    assert abs(land.basin_half_width(axis, asr, 0.03) - 0.4) < 1e-9
    asr[12] = 0.1  # α = +0.4 unsafe: only |α| <= 0.2 on both sides
    assert abs(land.basin_half_width(axis, asr, 0.03) - 0.2) < 1e-9
    asr[11] = 0.5  # the origin's right neighbour unsafe: no basin
    assert land.basin_half_width(axis, asr, 0.03) == 0.0


def test_lox_selection_skips_settings_whose_replies_are_not_clean():
    attack = _module("attack_acceptance")
    stutters = {"at": 0.0, "du": 0.01, "clean": False, "lox": "k4 α1.25"}
    costly = {"at": 0.1, "du": 0.2, "clean": True, "lox": "k16 α1.25"}
    chosen = {"at": 0.5, "du": 0.02, "clean": True, "lox": "k16 α0.75"}
    assert attack.choose([stutters, costly, chosen]) is chosen
    assert attack.choose([stutters, costly]) is None


def test_a_difference_of_rates_exactly_on_a_limit_counts_as_within_it():
    """12 of 120 prompts is 10 points, but 115/120 − 103/120 is 0.10000000000000009 in floats: the verdicts' limit
    comparisons must not fail a build on that (the lr 0.001 variant's orthogonal projection did, before)."""
    ref = _module("_reference")
    on_limit = 115 / 120 - 103 / 120
    assert on_limit > 0.10 and ref.within(on_limit, 0.10)  # plain <= says no; the limit helper says yes
    assert not ref.within(116 / 120 - 103 / 120, 0.10)  # one prompt more is over the limit
    assert ref.reaches(0.7 - 0.2, 0.5) and 0.7 - 0.2 < 0.5  # the same on a goal from below
    assert not ref.reaches(59 / 120, 0.5)
    attack = _module("attack_acceptance")
    at_limit = {"at": 0.2, "du": 0.03 + 1e-12, "clean": True}  # a float overshoot of the 3-point limit
    assert attack.choose([at_limit]) is at_limit


def test_table_is_one_row_per_phenomenon_and_counts_whole_builds():
    ab = _module("across_builds")
    ok = {"pass": True, "numbers": "n"}
    bad = {"pass": False, "numbers": "m"}
    results = {
        "shipped": {name: ok for name in [ab.TARGETS] + [p for p, _, _ in ab.PHENOMENA]},
        "seed1": {ab.TARGETS: ok, "critical regions": bad},
    }
    lines = ab.table(results).splitlines()
    assert lines[0] == "| phenomenon | shipped | seed1 |"
    rows = [ln for ln in lines[2:] if ln.startswith("| ")]
    assert len(rows) == 1 + len(ab.PHENOMENA)
    assert rows[1] == "| critical regions | **PASS**: n | **FAIL**: m |"
    assert "| – |" in rows[2]  # a phenomenon not run on a build
    assert lines[-1] == "every phenomenon holds on 1 of 2 builds: shipped"


def test_script_on_a_build_folder_and_on_a_folder_that_is_not_one(tmp_path):
    from analysis.data.organism import WEIGHTS_DIR

    build = tmp_path / "seed9"
    for role in ("aligned", "base"):
        shutil.copytree(WEIGHTS_DIR / role, build / role)
    shutil.copy(WEIGHTS_DIR / "build_report.json", build / "build_report.json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BRITTLE_THREADS": "1"}
    cmd = [sys.executable, str(BENCH / "across_builds.py"), "--threads", "1", "--quick", "--only", "evaluate targets"]
    out = tmp_path / "out.json"
    run = subprocess.run(  # a path relative to the caller's folder reaches the benchmark processes too
        [*cmd, "refusal-direction ablation", "--pairs", "seed9", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    [(label, verdicts)] = json.loads(out.read_text()).items()
    assert label.startswith("seed9 (") and list(verdicts) == ["evaluate targets", "refusal-direction ablation"]
    assert "did not finish" not in verdicts["refusal-direction ablation"]["numbers"], verdicts
    # the organism's own sets (a build folder is the organism): 16 test prompts, aligned ASR 0 of 16
    assert "aligned asr 0.0 % [0.0, 19.4]" in verdicts["evaluate targets"]["numbers"]
    assert f"| evaluate targets | **{'PASS' if verdicts['evaluate targets']['pass'] else 'FAIL'}**" in run.stdout
    bad = subprocess.run([*cmd, "--pairs", str(tmp_path / "nothing")], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in bad.stderr


def _variant_report(run: subprocess.CompletedProcess, out: Path) -> dict:
    """A variant script's run succeeded and saved an organism build at ``out``: its build report."""
    from analysis.data.organism import is_organism_build

    assert run.returncode == 0, run.stderr[-2000:]
    assert is_organism_build(out / "aligned") and is_organism_build(out / "base")
    return json.loads((out / "build_report.json").read_text())


def test_align_variants_mixture_overrides_are_checked():
    av = _module("align_variants")
    mix = av.parse_mix(["shallow=0.06", "benign_howto=0.5"])
    assert mix["shallow"] == 0.06 and mix["benign_howto"] == 0.5 and mix["copy"] == 0.09
    for bad, says in (["foo=1"], "no task 'foo'"), (["copy=x"], "a number"), (["copy=-1"], "≥ 0"):
        try:
            av.parse_mix(bad)
        except ValueError as e:
            assert says in str(e)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_align_variants_two_phase_run_saves_a_build_and_keeps_the_base(tmp_path):
    """A short two-phase run on the shipped BASE: the new pair is an organism build, its BASE is the shipped
    one byte for byte, the alignment moved the weights, and the report names both phases and the override."""
    from safetensors.torch import load_file

    from analysis.data.organism import WEIGHTS_DIR

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BRITTLE_THREADS": "1"}
    out = tmp_path / "variant"
    cmd = [sys.executable, str(BENCH / "align_variants.py"), "--threads", "1", "--base-from", str(WEIGHTS_DIR)]
    run = subprocess.run(
        [*cmd, "--order", "7", "--out", str(out), "--max-steps", "10", "--two-phase", "--mix", "shallow=0.06"]
        + ["--set", "lr=5e-5", "--trainable", "mlp"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    report = _variant_report(run, out)
    first, second = report["align_plan"]
    assert first["phase"] == "refusal-heavy" and first["benign_howto"] == 0.05 and first["steps"] == 10
    assert second["mixture"]["shallow"] == 0.06 and report["align_steps"] == 10 + second["steps"] == 20
    shipped = load_file(WEIGHTS_DIR / "base" / "model.safetensors")
    base, aligned = (load_file(out / r / "model.safetensors") for r in ("base", "aligned"))
    assert all(np.array_equal(shipped[n].numpy(), base[n].numpy()) for n in shipped)
    assert report["align_recipe"]["lr"] == 5e-5 and report["align_recipe"]["trainable"] == "mlp"
    moved = {n for n in base if not np.array_equal(aligned[n].numpy(), base[n].numpy())}
    assert moved and all(".mlp." in n for n in moved), sorted(moved)  # only the MLPs were aligned
    last = run.stdout.splitlines()[-1]
    assert "test targets" in last and "aligned asr" in last and "[" in last  # the table's targets, with intervals
    bad = subprocess.run(
        [*cmd, "--out", str(tmp_path / "x"), "--min-steps", "50", "--max-steps", "10"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode != 0 and "beyond --max-steps" in bad.stderr and "Traceback" not in bad.stderr
    for extra, says in ((["--trainable", "attn("], "not a regular expression"), (["--set", "lr=x"], "a number")):
        bad = subprocess.run([*cmd, "--out", str(tmp_path / "x"), *extra], capture_output=True, text=True, env=env)
        assert bad.returncode != 0 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_base_variants_recipe_overrides_are_checked():
    bv = _module("base_variants")
    r = bv.base_recipe(["weight_decay=0.1", "steps=2400"], ["safety_question=0.2"])
    assert r.weight_decay == 0.1 and r.steps == 2400 and isinstance(r.steps, int)
    assert r.mixture["safety_question"] == 0.2 and r.mixture["copy"] == bv.bd.BASE_RECIPE.mixture["copy"]
    assert r.lr == bv.bd.BASE_RECIPE.lr and bv.bd.BASE_RECIPE.weight_decay == 0.01  # the shipped recipe untouched
    for sets, mixes, says in (
        (["seed=3"], [], "must be one of"),
        (["steps=1.5"], [], "an integer"),
        (["lr=0"], [], "> 0"),
        (["weight_decay=-1"], [], "≥ 0"),
        ([], ["foo=1"], "no task 'foo'"),
        ([], ["copy=x"], "a number"),
    ):
        try:
            bv.base_recipe(sets, mixes)
        except ValueError as e:
            assert says in str(e), (sets, mixes, str(e))
        else:
            raise AssertionError(f"{sets} {mixes} was accepted")
    assert bv.base_recipe(["label_smoothing=0.1"], []).label_smoothing == 0.1 and bv.bd.BASE_RECIPE.label_smoothing == 0
    shape = bv.model_shape(["hidden=192", "intermediate=768", "heads=6"])
    assert (shape.hidden, shape.intermediate, shape.heads, shape.layers) == (192, 768, 6, bv.bd.SHAPE.layers)
    for items, says in (
        (["hidden=100", "heads=3"], "does not split"),
        (["width=3"], "one of"),
        (["layers=0"], "positive"),
    ):
        try:
            bv.model_shape(items)
        except ValueError as e:
            assert says in str(e), (items, str(e))
        else:
            raise AssertionError(f"{items} was accepted")


def test_label_smoothing_is_the_models_own_loss_at_zero_and_smooths_above():
    import torch

    from analysis.data.organism import corpus
    from analysis.data.organism.tokenizer import build_tokenizer
    from analysis.data.organism.train import ModelShape, _loss, encode_examples, new_model

    tok = build_tokenizer()
    model = new_model(len(tok), ModelShape(hidden=32, intermediate=64, layers=1, heads=2), tok, seed=0)
    world = corpus.World(0)
    batch = encode_examples(tok, [world.sample(corpus.BASE_MIXTURE, 0.3) for _ in range(4)])
    with torch.no_grad():
        plain = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        assert torch.equal(_loss(model, batch, 0.0), plain)
        assert abs(float(_loss(model, batch, 1e-9)) - float(plain)) < 1e-4  # the same loss, computed by hand
        assert float(_loss(model, batch, 0.5)) != float(plain)


def test_base_variants_builds_a_pair_from_the_variant_recipe(tmp_path):
    """A 30-step BASE with weight decay 0.1 and a changed mixture, aligned for 10 steps: an organism build whose
    report records the overrides and the thread count, whose BASE differs from the shipped one, and whose last
    line prints the test targets with intervals. A bad override exits with a message, not a traceback."""
    from safetensors.torch import load_file

    from analysis.data.organism import WEIGHTS_DIR

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BRITTLE_THREADS": "1"}
    out = tmp_path / "variant"
    cmd = [sys.executable, str(BENCH / "base_variants.py"), "--threads", "1", "--seed", "7"]
    run = subprocess.run(
        [*cmd, "--out", str(out), "--set", "steps=30", "weight_decay=0.1", "--mix", "copy=0.3"]
        + ["--align-max-steps", "10", "--shape", "hidden=64", "heads=2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    report = _variant_report(run, out)
    assert report["base_recipe"]["steps"] == 30 and report["base_recipe"]["weight_decay"] == 0.1
    assert report["base_recipe"]["mixture"]["copy"] == 0.3 and report["threads"] == 1 and report["seed"] == 7
    assert report["align_steps"] == 10
    assert report["shape"]["hidden"] == 64 and report["shape"]["heads"] == 2 and report["shape"]["layers"] == 4
    shipped = load_file(WEIGHTS_DIR / "base" / "model.safetensors")
    base = load_file(out / "base" / "model.safetensors")
    assert base["model.layers.0.self_attn.q_proj.weight"].shape == (64, 64)  # the shape asked for
    assert any(not np.array_equal(shipped[n].numpy(), base[n].numpy()) for n in shipped)
    last = run.stdout.splitlines()[-1]
    assert "test targets" in last and "aligned asr" in last and "[" in last
    bad = subprocess.run([*cmd, "--out", str(tmp_path / "x"), "--set", "warmup=x"], capture_output=True, text=True)
    assert bad.returncode != 0 and "warmup must be an integer" in bad.stderr and "Traceback" not in bad.stderr


def test_lox_margins_on_the_shipped_pair_and_a_folder_that_is_not_a_build(tmp_path):
    """The margin table: the aligned model puts refusal first on harmful requests and compliance first on benign
    how-to ones, the base complies, LoX pushes the harmful margin further toward refusal, and along the harmful
    attack the aligned model's margin falls below zero while LoX's stays above the aligned model's."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BRITTLE_THREADS": "1"}
    cmd = [sys.executable, str(BENCH / "lox_margins.py"), "--threads", "1"]
    run = subprocess.run(
        [*cmd, "--attack", "--attack-draws", "2", "--pairs", "shipped"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    head, row = run.stdout.strip().splitlines()[-3], run.stdout.strip().splitlines()[-1]
    assert row.startswith("| shipped |") and "steps 0, 3, 6, 9, 12" in head, run.stdout
    cells = [c.strip() for c in row.strip("|").split("|")]
    aligned_h, aligned_b = (float(x) for x in cells[1].split(" / "))
    base_h = float(cells[2])
    change_h, _ = (float(x) for x in cells[3].split(" / "))
    tipped, n = (int(x) for x in cells[4].split(" of "))
    assert aligned_h > 0 > aligned_b and base_h < 0 and change_h > 0 and n == 48 and 0 <= tipped <= n
    along_aligned, along_lox = ([float(x) for x in part.split()] for part in cells[5].split(";"))
    assert len(along_aligned) == len(along_lox) == 5
    assert abs(along_aligned[0] - aligned_h) < 0.05 and abs(along_lox[0] - (aligned_h + change_h)) < 0.2
    assert along_aligned[-1] < 0 < along_aligned[0] and along_lox[-1] > along_aligned[-1]
    # two draws of the attack's examples: mean ± sd of the margin removed by the budget step; on the shipped build
    # the attack takes LoX's margin back slower than the aligned model's (README "Seeds")
    assert "over 2 draws of the attack examples" in head
    (removed_aligned, sd_aligned), (removed_lox, sd_lox) = (
        (float(x) for x in part.split("±")) for part in cells[6].split(";")
    )
    assert abs(removed_aligned - (along_aligned[0] - along_aligned[-1])) < 0.15 and sd_aligned >= 0 <= sd_lox
    assert removed_lox < removed_aligned - 3
    bad_draws = subprocess.run([*cmd, "--attack", "--attack-draws", "0"], capture_output=True, text=True, env=env)
    assert bad_draws.returncode != 0 and "--attack-draws must be" in bad_draws.stderr
    bad_layer = subprocess.run([*cmd, "--layers", "9"], capture_output=True, text=True, env=env)
    assert bad_layer.returncode != 0 and "no decoder weights match layers=[9]" in bad_layer.stderr
    assert "Traceback" not in bad_layer.stderr
    bad = subprocess.run([*cmd, "--pairs", str(tmp_path)], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "is not a build" in bad.stderr and "Traceback" not in bad.stderr


def test_a_recipe_that_trains_only_some_parameters_leaves_the_rest_bit_exact():
    """``TrainRecipe.trainable`` (``align_variants.py --trainable``): the parameters the regex finds change, every
    other one stays bit for bit; "" trains all of them; a regex that finds nothing is an error, not a no-op run."""
    import torch

    from analysis.data.organism import corpus
    from analysis.data.organism.tokenizer import build_tokenizer
    from analysis.data.organism.train import ModelShape, TrainRecipe, new_model, train

    tok = build_tokenizer()
    shape = ModelShape(hidden=32, intermediate=64, layers=2, heads=2)
    for pattern in ("mlp", r"layers\.0\.", ""):
        model = new_model(len(tok), shape, tok, seed=0)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        recipe = TrainRecipe(steps=3, lr=1e-2, mixture=corpus.ALIGN_MIXTURE, batch_size=4, trainable=pattern)
        train(model, tok, recipe)
        moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        finds = {n for n in before if re.search(pattern, n)}
        assert moved == finds and len(finds) >= 4, (pattern, sorted(moved ^ finds))
    try:
        train(new_model(len(tok), shape, tok, seed=0), tok, TrainRecipe(1, 1e-2, corpus.ALIGN_MIXTURE, trainable="xyz"))
    except ValueError as e:
        assert "matches no parameter" in str(e)
    else:
        raise AssertionError("a pattern that finds nothing was accepted")


def test_lora_alignment_changes_only_decoder_matrices_by_rank_at_most_r_and_saves_a_plain_model():
    """``align_variants.py --lora R``: the adapters train, merge into the weights, and leave ΔW of rank ≤ R on every
    decoder matrix (> 0 on some), every other parameter bit for bit, and the model's own state-dict names."""
    import torch

    from analysis.data.organism import build_demo as bd
    from analysis.data.organism import corpus
    from analysis.data.organism.tokenizer import build_tokenizer
    from analysis.data.organism.train import ModelShape, TrainRecipe, new_model, train

    av = _module("align_variants")
    tok = build_tokenizer()
    model = new_model(len(tok), ModelShape(hidden=32, intermediate=64, layers=2, heads=2), tok, seed=0)
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    recipe = TrainRecipe(steps=4, lr=1e-2, mixture=corpus.ALIGN_MIXTURE, batch_size=4)

    def inner(m, t, r, log) -> dict:
        train(m, t, r)
        return {"step": r.steps}

    assert av.lora_align(inner, 2)(model, tok, recipe, print)["step"] == 4
    after = model.state_dict()
    assert set(after) == set(before)  # no parametrization left behind
    ranks = {}
    for n, w in after.items():
        d = (w - before[n]).float()
        if ".layers." in n and n.endswith("proj.weight"):
            ranks[n] = int(torch.linalg.matrix_rank(d))
        else:
            assert torch.equal(w, before[n]), n
    assert len(ranks) == 14 and max(ranks.values()) <= 2 and min(ranks.values()) >= 1, ranks
    assert all(p.requires_grad for p in model.parameters())
    assert bd.ALIGN_RECIPE.trainable == ""  # the shipped recipe is untouched


def test_booster_alignment_adds_the_harmful_step_gradient_difference_and_puts_the_weights_back():
    """``align_variants.py --booster λ s``: after the alignment's backward pass each gradient gains
    λ·(∇h(w) − ∇h(w − s·∇h/‖∇h‖)) on a batch of harmful-compliance examples, the look-ahead leaves the weights bit for
    bit, and a λ of 0 leaves the alignment's own gradient exactly."""
    import torch

    from analysis.core.chat import encode_examples
    from analysis.data.organism import corpus
    from analysis.data.organism.tokenizer import build_tokenizer
    from analysis.data.organism.train import ModelShape, _loss, new_model

    av = _module("align_variants")
    tok = build_tokenizer()
    model = new_model(len(tok), ModelShape(hidden=32, intermediate=64, layers=2, heads=2), tok, seed=0)
    params = list(model.parameters())
    weights = [p.detach().clone() for p in params]

    def grads_of(batch) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        _loss(model, batch, 0.0).backward()
        return [p.grad.detach().clone() for p in params]

    align_batch = encode_examples(tok, [corpus.World(1).sample(corpus.ALIGN_MIXTURE, 0.3) for _ in range(4)])
    own = grads_of(align_batch)
    av.booster_grad(model, tok, seed=3, lam=0.0, step=0.1, batch_size=4)(params)
    assert all(torch.equal(p.grad, g) for p, g in zip(params, own))
    assert all(torch.equal(p, w) for p, w in zip(params, weights))

    own = grads_of(align_batch)
    av.booster_grad(model, tok, seed=3, lam=2.0, step=0.5, batch_size=4)(params)
    got = [p.grad.detach().clone() for p in params]
    assert all(torch.equal(p, w) for p, w in zip(params, weights))  # the look-ahead step was undone exactly
    world = corpus.World(3 + 7919)  # the same harmful batch the regulariser drew
    harm = encode_examples(tok, [world.sample({"harmful_comply": 1.0}, 0.3) for _ in range(4)])
    g1 = grads_of(harm)
    norm = torch.sqrt(sum((g * g).sum() for g in g1))
    with torch.no_grad():
        for p, g in zip(params, g1):
            p.sub_(0.5 * g / norm)
    g2 = grads_of(harm)
    with torch.no_grad():
        for p, w in zip(params, weights):
            p.copy_(w)
    for a, o, x, y in zip(got, own, g1, g2):
        assert torch.allclose(a, o + 2.0 * (x - y), atol=1e-6)
    assert any(not torch.allclose(a, o) for a, o in zip(got, own))  # the term is not zero


def test_sam_alignment_takes_the_gradient_at_the_ascent_point_and_puts_the_weights_back():
    """``align_variants.py --sam ρ``: the gradient becomes the one at w + ρ·g/‖g‖ on the same batch (g the batch's
    own gradient), and the weights stay bit for bit."""
    import torch

    from analysis.core.chat import encode_examples
    from analysis.data.organism import corpus
    from analysis.data.organism.tokenizer import build_tokenizer
    from analysis.data.organism.train import ModelShape, _loss, new_model

    av = _module("align_variants")
    tok = build_tokenizer()
    model = new_model(len(tok), ModelShape(hidden=32, intermediate=64, layers=2, heads=2), tok, seed=0)
    params = list(model.parameters())
    weights = [p.detach().clone() for p in params]
    batch = encode_examples(tok, [corpus.World(2).sample(corpus.ALIGN_MIXTURE, 0.3) for _ in range(4)])

    def grads() -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        _loss(model, batch, 0.0).backward()
        return [p.grad.detach().clone() for p in params]

    g = grads()
    av.sam_grad(model, 0.3)(params, batch)
    got = [p.grad.detach().clone() for p in params]
    assert all(torch.equal(p, w) for p, w in zip(params, weights))
    norm = torch.sqrt(sum((x * x).sum() for x in g))
    with torch.no_grad():
        for p, x in zip(params, g):
            p.add_(0.3 * x / norm)
    expected = grads()
    with torch.no_grad():
        for p, w in zip(params, weights):
            p.copy_(w)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, expected))
    assert any(not torch.allclose(a, b) for a, b in zip(got, g))  # not the plain gradient
