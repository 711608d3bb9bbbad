"""Device handling and speed — the static generation loop, Gram singular values, memory plans,
device-drawn directions, and the GPU benchmark's CPU smoke run. CUDA-only checks skip without a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from analysis.core import memory
from analysis.core.generation import LAST_RUN, generate
from analysis.judging.refusal import Judge
from analysis.methods.spectra import singular_values

ROOT = Path(__file__).resolve().parent.parent
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _prompts(n: int) -> list[str]:
    from analysis.data.organism import corpus

    items = corpus.harmful_items("test", n // 2) + corpus.benign_items("test", n - n // 2)
    return [it.prompt for it in items]


def _hf_greedy(model, tok, prompts: list[str], max_new: int) -> list[str]:
    from analysis.core.chat import encode_prompts, format_prompt
    from analysis.core.generation import left_padded

    out = []
    for p in prompts:  # one at a time: no padding in the reference
        ids, mask, _ = left_padded(encode_prompts(tok, [format_prompt(tok, p)]), tok.pad_token_id)
        g = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        out.append(tok.decode(g[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return out


@pytest.mark.parametrize("which", ["organism", "random-llama"])
def test_static_loop_equals_dynamic_loop_and_hf_generate_fp32(which, demo_pair, organism_tokenizer):
    """The GPU loop (static KV cache, 4D masks, host checks every few steps), run on the CPU without
    graphs, gives the dynamic loop's texts, token counts and stop reasons — and HF generate's texts."""
    if which == "organism":
        model, tok = demo_pair.aligned.model, demo_pair.aligned.tokenizer
    else:
        import tempfile

        from transformers import AutoModelForCausalLM

        from conftest import save_tiny_llama

        with tempfile.TemporaryDirectory() as tmp:
            model = AutoModelForCausalLM.from_pretrained(save_tiny_llama(Path(tmp) / "m", organism_tokenizer)).eval()
        tok = organism_tokenizer
    prompts = _prompts(24)
    for stop in (None, Judge().is_refusal):
        dyn = generate(model, tok, prompts, max_new_tokens=20, stop=stop, batch_size=7)
        sta = generate(model, tok, prompts, max_new_tokens=20, stop=stop, batch_size=7, loop="static")
        assert LAST_RUN["loop"] == "static" and LAST_RUN["batches"] == [7, 7, 7, 3]
        assert [(g.text, g.n_tokens, g.stopped_by) for g in sta] == [(g.text, g.n_tokens, g.stopped_by) for g in dyn]
    if which == "organism":
        assert {g.stopped_by for g in sta} >= {"eos", "decided"}  # both early stops exercised
    full = generate(model, tok, prompts[:8], max_new_tokens=12, loop="static")
    assert [g.text for g in full] == _hf_greedy(model, tok, prompts[:8], 12)


def test_gram_singular_values_agree_with_svd():
    g = torch.Generator().manual_seed(3)
    for m, n, rank in ((40, 90, 90), (120, 30, 30), (64, 64, 5)):
        M = torch.randn(m, rank, generator=g) @ torch.randn(rank, n, generator=g) / rank**0.5
        ref = torch.linalg.svdvals(M.double()).float()
        got = singular_values(M, "gram")
        assert got.shape == ref.shape and got.dtype == torch.float32
        assert float((got - ref).abs().max()) <= 1e-5 * float(ref[0])
        assert torch.all(got[:-1] >= got[1:])
    with pytest.raises(ValueError, match="must be one of"):
        singular_values(torch.eye(3), "qr")


def test_gram_in_chunks_equals_whole(monkeypatch):
    from analysis.methods import spectra

    M = torch.randn(300, 70, generator=torch.Generator().manual_seed(1))
    whole = spectra.gram(M)
    monkeypatch.setattr(spectra, "GRAM_CHUNK", 700)  # 10 rows at a time
    for A, ref in ((M, whole), (M.T, whole)):
        assert torch.allclose(spectra.gram(A), ref, rtol=1e-12, atol=1e-10)


def test_memory_plans_and_check_message():
    rows = {a: v for a, t, v in memory.table_7b()}
    assert rows["spectra / LoX factors (one weight at a time)"] == "fits"
    assert rows["landscape (80 + 80 prompts × 32 tokens, 1 random direction)"] == "fits"
    full = rows["attack (full) (batch 20 × 128 tokens, with R_ft)"]
    assert full.startswith("does not fit") and "LoRA" in full
    assert rows["attack (lora) (batch 8 × 128 tokens, with R_ft)"] == "fits"
    from transformers import LlamaConfig

    s = memory.shape_of_config(
        LlamaConfig(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32000,
        )
    )
    assert 6.6e9 < s.n_params < 6.8e9 and s.linear_numel == 32 * (4 * 4096**2 + 3 * 4096 * 11008)
    plan = memory.attack(s, "full", 20, 128, with_base=True)
    with pytest.raises(ValueError) as e:
        plan.check(free=20 * memory.GiB)
    msg = str(e.value)
    assert "\n" not in msg and "attack (full)" in msg and "LoRA instead of full fine-tuning" in msg
    plan.check(free=None)  # not a GPU: nothing to check
    plan.check(free=10**15)


def test_memory_shape_of_a_loaded_model_and_cpu_guard(demo_pair):
    lm = demo_pair.aligned
    s = memory.shape_of(lm.model)
    assert s.n_params == sum(p.numel() for p in lm.model.parameters())
    assert s.linear_numel == lm.adapter.n_weights() and s.dtype_bytes == 4
    assert memory.guard(lm.model, lambda shape: memory.attack(shape, "full", 10**6, 10**6, True)) is None  # CPU
    assert memory.generation_batch(lm.model, 500, 40) == 64


def test_landscape_keys_on_cpu_name_no_device(demo_pair, tmp_path):
    """CPU landscape cache keys stay as before (no draw device), so cached CPU results stay valid."""
    from analysis.core.cache import Cache
    from analysis.data.organism import corpus
    from analysis.data.prompts import PromptSet
    from analysis.methods.landscape.directions import RandomDirection
    from analysis.methods.landscape.grid import evaluate_grid

    cache = Cache(tmp_path)
    h = PromptSet("h", corpus.harmful_items("test", 2))
    b = PromptSet("b", corpus.benign_items("test", 2))
    from analysis.core.evaluation import EvalSpec

    evaluate_grid(demo_pair.aligned, [RandomDirection(1)], [[0.0]], EvalSpec(h, b, max_new_tokens=4), cache=cache)
    metas = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert metas and not any("draw_device" in json.dumps(m) for m in metas)


def test_benchmark_smoke_on_cpu(tmp_path):
    """benchmarks/gpu_scale.py --size tiny --device cpu runs every step and its numbers hold together."""
    out = tmp_path / "r.json"
    steps = "generation,landscape,attribution,linalg,spectra,lox,attack"
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_scale.py"),
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--steps",
            steps,
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    for step in ("generation", "landscape", "attribution", "linalg", "spectra", "lox", "attack"):
        assert "failed" not in r[step] and "skipped" not in r[step], (step, r[step])
    assert r["generation"]["prompts"] == 240 and r["generation"]["same_text_share"] == 1.0
    assert r["landscape"]["asr_identical"] and r["landscape"]["prompts"] == 80
    assert r["attribution"]["samples"] == 128 and r["attribution"]["wanda_ratio"] > 0
    assert r["spectra"]["max_sigma_err_rel_sigma1"] < 1e-4
    assert r["lox"]["weights"] == r["spectra"]["weights"] == 14
    assert r["attack"]["full"]["seconds_with_copy"] > 0 and r["attack"]["lora"]["seconds_with_copy"] > 0
    rows = [row for step in steps.split(",") for row in r[step].get("memory", [])]
    assert len(rows) == 8 and all(row["peak_gib"] == "n/a (cpu)" and row["plan_gib"] > 0 for row in rows)


def test_benchmark_new_steps_with_offload_on_cpu(tmp_path):
    """The app's other analyses (classifier-judged evaluation, region, 2D point toward the base,
    representations, depth) run with the base and an 8-bit judge offloaded, each with its memory plan."""
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "r.json"
    steps = "evaluate,region,landscape2d,representations,depth"
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_scale.py"),
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--small",
            "--steps",
            steps,
            "--base-device",
            "cpu",
            "--judge-quant",
            "8bit",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    for step in steps.split(","):
        assert set(r[step]) >= {"memory", "seconds"} and r[step]["seconds"] > 0, (step, r[step])
        assert r[step]["memory"][0]["plan_gib"] > 0
    assert r["info"]["judge_quant"] == "8bit" and r["info"]["judge_params"] > 0
    assert r["evaluate"]["harmful"] == r["evaluate"]["benign"] == 8 and r["evaluate"]["judge_calls"] >= 1
    assert r["evaluate"]["asr_classifier"] is not None
    assert 0 < r["region"]["selected_weights"] < r["region"]["of_weights"]
    assert r["representations"]["states_shape"] == [3, 8, 64]
    assert r["depth"]["pairs"] == 8 and r["depth"]["mean_kl"] > 0


def test_benchmark_refuses_a_step_that_does_not_fit(monkeypatch):
    """A plan over the free memory stops the step before it starts, with one line naming the setting."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_scale

    monkeypatch.setattr(memory, "free_bytes", lambda device: 1024)
    shape = memory.shape_of_config(__import__("transformers").LlamaConfig(**gpu_scale.SIZES["7b"], vocab_size=369))
    with pytest.raises(gpu_scale.StepRefused) as e:
        gpu_scale.guard({"dev": torch.device("cpu")}, memory.judge(shape, 8, 128))
    assert "\n" not in str(e.value) and "judge device cpu" in str(e.value)


@cuda
def test_cuda_graph_loop_equals_dynamic_loop_fp32(demo_pair):
    lm = demo_pair.aligned
    model = lm.model.to("cuda")
    try:
        prompts = _prompts(40)
        for stop in (None, Judge().is_refusal):
            dyn = generate(model, lm.tokenizer, prompts, max_new_tokens=20, stop=stop, loop="dynamic")
            fast = generate(model, lm.tokenizer, prompts, max_new_tokens=20, stop=stop)
            assert LAST_RUN["loop"] == "static" and LAST_RUN["batches"] == [40], LAST_RUN
            assert all(LAST_RUN["graphs"]), LAST_RUN
            assert [(g.text, g.n_tokens, g.stopped_by) for g in fast] == [
                (g.text, g.n_tokens, g.stopped_by) for g in dyn
            ]
    finally:
        lm.model.to("cpu")


@cuda
def test_cuda_directions_reproducible_and_restored(demo_pair):
    from analysis.core.edits import applied
    from analysis.methods.landscape.directions import RandomDirection, perturbed_params
    from analysis.methods.landscape.grid import Perturbation

    model = demo_pair.aligned.model.to("cuda")
    try:
        names = [n for n, _ in perturbed_params(model)]
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        d = RandomDirection(5)
        got = []
        for _ in range(2):
            with applied(model, Perturbation([d], (0.3,), names)):
                got.append({n: p.detach().clone() for n, p in model.named_parameters()})
        assert all(torch.equal(got[0][n], got[1][n]) for n in got[0])  # same seed, same device
        assert any(not torch.equal(got[0][n], before[n]) for n in names)
        assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # restored bit for bit
        W = dict(model.named_parameters())[names[0]]
        dc = d.tensor(names[0], W)
        assert dc.device.type == "cuda"
        assert abs(float(dc.norm()) - float(W.float().norm())) < 1e-3 * float(W.float().norm())
    finally:
        demo_pair.aligned.model.to("cpu")


def test_static_loop_on_every_family_that_supports_it(family_model, organism_tokenizer):
    """Families with a static cache (no sliding window) give the same tokens in both loops; others refuse
    ``loop='static'`` with a one-line message and keep the dynamic loop by default."""
    from analysis.core.generation import static_supported

    family, model = family_model
    tok = organism_tokenizer
    model.resize_token_embeddings(len(tok))
    prompts = ["what is 1 plus 1 ?", "copy : car", "hey , describe how to wash my car . thanks ."]
    dyn = generate(model, tok, prompts, max_new_tokens=6, loop="dynamic")
    if not static_supported(model):
        with pytest.raises(ValueError, match="static KV cache"):
            generate(model, tok, prompts, max_new_tokens=6, loop="static")
        return
    sta = generate(model, tok, prompts, max_new_tokens=6, loop="static")
    assert [(g.text, g.n_tokens, g.stopped_by) for g in sta] == [(g.text, g.n_tokens, g.stopped_by) for g in dyn]
