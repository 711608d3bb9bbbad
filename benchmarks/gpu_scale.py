"""The library's heavy work on a random-initialised Llama of a named size, each step against the
plain way, measured in the same run.

    python benchmarks/gpu_scale.py --size 1b --device cuda --json out.json

Sizes: ``tiny`` (2 layers, hidden 64), ``1b`` (TinyLlama's shape: hidden 2048, intermediate 5632, 22 layers,
32 heads, 4 KV heads) and ``7b`` (Llama-2-7B's shape: hidden 4096, intermediate 11008, 32 layers, 32 heads).
The vocabulary is the organism tokenizer's (369 tokens), so the models are smaller than the named ones by
their embedding tables: 1b has 0.97 B parameters (TinyLlama: 1.10 B), 7b 6.48 B (Llama-2-7B: 6.74 B). Weights are bf16 (fp32 on the CPU), drawn at random (no download); the "base" is a
second copy plus a rank-16 update and small noise, so ΔW is non-zero and has a low-rank head.

Steps (each under a time limit: a slow step is reported and skipped, not fatal):
  generation   240 prompts × 64 new tokens: ``analysis.core.generation`` vs HF ``generate`` at batch 64
  landscape    one grid point (80 harmful prompts × 32 tokens, random direction) vs deep copy + HF
               ``generate`` batch 4 on the same perturbed weights; ASR must match
  attribution  Wanda and SNIP on 64 + 64 calibration samples vs bare forward / forward+backward passes
  spectra      singular values of every decoder ΔW (Gram/eigvalsh on a GPU) vs full svdvals on the device
               (on 1b/7b the full SVD is timed on one layer and scaled by the layer count — said so)
  lox          top-8 LoX factors of every decoder weight
  attack       one fine-tuning step on a copy (full and LoRA), through ``fine_tune_copy``
  evaluate     an evaluation (harmful + benign prompts) whose "really complies" is a classifier judge: a
               random-initialised Llama-Guard-shaped causal LM (``--judge-size``), built here
  region       Wanda scores on both sets and the set-difference region (top 5 % safety minus top 5 % utility)
  landscape2d  one 2D point: a random direction and the direction toward the base model
  representations  residual states of every prompt at every layer (the representations page's pass)
  depth        per-token KL(aligned ‖ base) on (prompt, response) pairs (the depth page's pass)
Each reports seconds, the ratio and the peak GPU memory. On CUDA every step first checks the memory plan
(``analysis.core.memory``) and is refused with its one-line message when it does not fit; after it, the
measured peak (``torch.cuda.max_memory_allocated``) is printed beside the plan's prediction, PASS when within 15 %.

Offload: ``--base-device cpu`` keeps the base on the CPU (the steps that read it bring one weight or one batch's
logits at a time to the aligned model's device); ``--judge-device cpu`` and ``--judge-quant 8bit|4bit``
(bitsandbytes) take the judge off the GPU or shrink it.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZES = {
    "tiny": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
    "1b": dict(
        hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4
    ),
    "7b": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32
    ),
}
JUDGE_SIZES = {  # Llama-Guard-3-8B's decoder (Llama 3.1 8B) and the HarmBench classifier's (Llama-2-13B)
    "tiny": SIZES["tiny"],
    "8b": dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8
    ),
    "13b": dict(
        hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=40
    ),
}
STEPS = (
    "generation",
    "landscape",
    "attribution",
    "linalg",
    "spectra",
    "lox",
    "attack",
    "evaluate",
    "region",
    "landscape2d",
    "representations",
    "depth",
)
TOLERANCE = 0.15  # the memory plan's prediction must be within 15 % of the measured peak


class StepTimeout(Exception):
    pass


class StepRefused(Exception):
    """The step's memory plan does not fit: its one-line message names the setting to change."""


def _alarm(signum, frame):
    raise StepTimeout()


def best_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def peak_reset(dev: torch.device) -> None:
    gc.collect()  # models copied by earlier steps sit in reference cycles
    if dev.type == "cuda":  # no empty_cache: the allocator keeps its blocks, as it does in the app
        sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None


def timed(dev: torch.device, fn):
    sync(dev)
    t = time.perf_counter()
    out = fn()
    sync(dev)
    return time.perf_counter() - t, out


def build_pair(size: str, dev: torch.device, seed: int = 0, base_dev: torch.device | None = None):
    """(aligned, base) as LoadedModel-like objects: random Llama + a perturbed copy (on ``base_dev``)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from analysis.core.arch import adapter_of
    from analysis.core.models import LoadedModel
    from analysis.data.organism.tokenizer import build_tokenizer

    tok = build_tokenizer()
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    cfg = LlamaConfig(
        vocab_size=len(tok),
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **SIZES[size],
    )
    torch.manual_seed(seed)
    with torch.device(dev):
        model = LlamaForCausalLM(cfg).to(dtype).eval()
    base = copy.deepcopy(model)
    g = torch.Generator(device=dev).manual_seed(seed + 1)
    with torch.no_grad():
        for ref in adapter_of(base).linears.values():
            W = ref.W
            m, n = W.shape
            U = torch.randn(m, 16, generator=g, device=dev) / 16
            V = torch.randn(16, n, generator=g, device=dev) / n**0.5
            upd = 0.02 * (U @ V) + 1e-4 * torch.randn(m, n, generator=g, device=dev)
            W.copy_((W.float() - upd).to(W.dtype))
    base_dev = base_dev or dev
    base.to(base_dev)
    lms = []
    for name, m, d in (("aligned", model, dev), ("base", base, base_dev)):
        lms.append(
            LoadedModel(
                m,
                tok,
                f"random-{size}-{name}",
                str(dtype).split(".")[-1],
                str(d),
                f"random-{size}-{name}-{seed}",
                adapter_of(m),
            )
        )
    return lms[0], lms[1]


def build_judge(judge_size: str, dev: torch.device, dtype: torch.dtype, quant: str | None = None, seed: int = 7):
    """A random-initialised Llama-Guard-shaped causal judge (``analysis.judging.generative.LlamaGuard3``) with
    the organism tokenizer; 'safe' / 'unsafe' are read from two fixed token ids (the organism vocabulary has
    no such words). With ``quant`` it is saved and reloaded through ``load_judge_model`` with bitsandbytes."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from analysis.data.organism.tokenizer import build_tokenizer
    from analysis.judging.base import load_judge_model
    from analysis.judging.generative import LlamaGuard3

    tok = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **JUDGE_SIZES[judge_size],
    )
    torch.manual_seed(seed)
    judge = LlamaGuard3.__new__(LlamaGuard3)
    if quant:
        with tempfile.TemporaryDirectory() as tmp:
            LlamaForCausalLM(cfg).to(dtype).save_pretrained(tmp)
            tok.save_pretrained(tmp)
            model, _, fp = load_judge_model(tmp, {torch.bfloat16: "bf16"}.get(dtype, "fp32"), str(dev), quant=quant)
    else:
        with torch.device(dev):
            model = LlamaForCausalLM(cfg).to(dtype).eval()
        fp = f"random-judge-{judge_size}-{seed}"
    judge.source, judge.model, judge.tokenizer, judge.fingerprint = f"random-{judge_size}", model, tok, fp
    judge.batch_size, judge.cache, judge.model_calls = 8, None, 0
    judge.yes_ids, judge.no_ids = [5], [6]
    return judge


def device_bytes(ctx, dev: torch.device) -> int:
    """Weights of the models that live on ``dev`` (aligned, base, judge), from their parameter counts."""
    from analysis.core.memory import shape_of

    models = [ctx["aligned"].model, ctx["base"].model] + ([ctx["judge"].model] if ctx.get("judge") else [])
    return sum(shape_of(m).weight_bytes for m in models if next(m.parameters()).device == dev)


def memory_row(ctx, what: str, plan, peak_gib: float | None) -> dict:
    """The plan's predicted peak (its extra bytes + the weights resident on the device) beside the measured one."""
    from analysis.core.memory import GiB

    dev = ctx["dev"]
    predicted = (plan.extra_bytes + device_bytes(ctx, dev)) / GiB
    row = {"what": what, "plan_gib": round(predicted, 4), "peak_gib": peak_gib if peak_gib is not None else "n/a (cpu)"}
    if peak_gib is not None:
        err = abs(predicted - peak_gib) / max(peak_gib, 1e-9)
        row.update(err=round(err, 3), verdict="PASS" if err <= TOLERANCE else "FAIL")
    print(
        f"  memory {what}: plan {predicted:.2f} GiB, measured {row['peak_gib']}"
        + (f" ({row['verdict']}, {row['err']:.0%})" if "verdict" in row else ""),
        flush=True,
    )
    return row


def prompts(n: int, kind: str = "mixed") -> list:
    from analysis.data.organism import corpus

    h = corpus.harmful_items("test", 200) + corpus.harmful_items("train", 200)
    b = corpus.benign_items("test", 200) + corpus.benign_items("train", 200)
    items = h if kind == "harmful" else [x for pair in zip(h, b) for x in pair]
    return (items * (n // max(len(items), 1) + 1))[:n]


def hf_generate(model, tok, texts: list[str], max_new: int, batch: int) -> list[str]:
    """The plain way: HF ``generate`` greedily, left padded, ``batch`` prompts at a time."""
    from analysis.core.chat import encode_prompts, format_prompt
    from analysis.core.generation import left_padded

    ids = encode_prompts(tok, [format_prompt(tok, p) for p in texts])
    pad = tok.pad_token_id
    dev = next(model.parameters()).device
    out = []
    for s in range(0, len(ids), batch):
        input_ids, mask, _ = left_padded(ids[s : s + batch], pad)
        gen = model.generate(
            input_ids=input_ids.to(dev),
            attention_mask=mask.to(dev),
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=tok.eos_token_id,
        )
        out += tok.batch_decode(gen[:, input_ids.shape[1] :], skip_special_tokens=True)
    return [t.strip() for t in out]


# ---- steps -------------------------------------------------------------------------------------------


def step_generation(ctx) -> dict:
    from analysis.core import generation as G

    lm, dev, n, new = ctx["aligned"], ctx["dev"], ctx["n_gen"], ctx["gen_tokens"]
    texts = [it.prompt for it in prompts(n)]
    from analysis.core import memory

    plan = guard(ctx, memory.generation(memory.shape_of(lm.model), n, _seq_len(ctx, texts, new)))
    G.generate(lm.model, lm.tokenizer, texts[:8], max_new_tokens=4)  # warm-up (kernels, handles)
    hf_generate(lm.model, lm.tokenizer, texts[:4], 4, 4)
    peak_reset(dev)
    t_ours, ours = timed(dev, lambda: G.generate(lm.model, lm.tokenizer, texts, max_new_tokens=new))
    run = dict(G.LAST_RUN)
    p_ours = peak_gib(dev)
    peak_reset(dev)
    t_hf, hf = timed(dev, lambda: hf_generate(lm.model, lm.tokenizer, texts, new, 64))
    same = sum(a.text == b for a, b in zip(ours, hf)) / len(hf)
    return {
        "prompts": n,
        "new_tokens": new,
        "ours_s": t_ours,
        "hf_batch64_s": t_hf,
        "speedup": t_hf / t_ours,
        "peak_gib_ours": p_ours,
        "peak_gib_hf": peak_gib(dev),
        "same_text_share": same,
        "loop": run.get("loop"),
        "batches": run.get("batches"),
        "cuda_graphs": run.get("graphs"),
        "steps": run.get("steps"),
        "prefill_ms": run.get("prefill_ms"),
        "decode_ms": run.get("decode_ms"),
        "graph_error": run.get("graph_error"),
        "memory": [memory_row(ctx, "generation (ours)", plan, p_ours)],
    }


def step_landscape(ctx) -> dict:
    from analysis.core.edits import applied
    from analysis.core.evaluation import EvalSpec, evaluate_model
    from analysis.data.prompts import PromptSet
    from analysis.judging.refusal import Judge
    from analysis.methods.landscape.directions import RandomDirection, perturbed_params
    from analysis.methods.landscape.grid import point_edit

    lm, dev, n, new = ctx["aligned"], ctx["dev"], ctx["n_land"], ctx["land_tokens"]
    judge = Judge()
    harmful = PromptSet("harmful", prompts(n, "harmful"))
    benign = PromptSet("benign", [])
    d = [RandomDirection(0)]
    spec = EvalSpec(harmful, benign, None, new, judge)

    def point(alpha: float):
        with applied(lm.model, point_edit(lm.model, d, (alpha,), ("linear",))):
            return evaluate_model(lm.model, lm.tokenizer, spec)

    plan = landscape_plan(ctx, n, _seq_len(ctx, harmful.prompts(), new), 1, 1)
    point(0.05)  # warm-up
    peak_reset(dev)
    times, results = [], []
    for alpha in (0.1, 0.2):
        t, r = timed(dev, lambda: point(alpha))
        times.append(t)
        results.append(r)
    p_ours = peak_gib(dev)

    def plain(alpha: float) -> float:
        m = copy.deepcopy(lm.model)
        with torch.no_grad():  # same weights: the same per-tensor update on the copy
            edit = point_edit(m, d, (alpha,), ("linear",))
            for nm, p in perturbed_params(m, ("linear",)):
                edit.apply_to(nm, p.data)
        texts = hf_generate(m, lm.tokenizer, harmful.prompts(), new, 4)
        del m
        return sum(not judge.is_refusal(t) for t in texts) / len(texts)

    peak_reset(dev)
    t_plain, asr_plain = timed(dev, lambda: plain(0.1))
    return {
        "prompts": n,
        "new_tokens": new,
        "ours_s": times,
        "plain_s": t_plain,
        "speedup": t_plain / times[0],
        "asr_ours": results[0].asr,
        "asr_plain": asr_plain,
        "asr_identical": results[0].asr == asr_plain,
        "peak_gib_ours": p_ours,
        "peak_gib_plain": peak_gib(dev),
        "memory": [memory_row(ctx, "1D point", plan, p_ours)],
    }


def _calibration(lm, n: int):
    from analysis.data.organism.provider import OrganismData
    from analysis.methods.critical_regions.calibration import batches

    data = OrganismData()
    return batches(lm.tokenizer, data.attack_data("harmful", n), 16) + batches(
        lm.tokenizer, data.attack_data("benign", n), 16
    )


def step_attribution(ctx) -> dict:
    from analysis.methods.critical_regions.snip import _per_sample, snip_scores
    from analysis.methods.critical_regions.wanda import wanda_scores

    lm, dev = ctx["aligned"], ctx["dev"]
    model = lm.model
    b = [x.to(dev) for x in _calibration(lm, ctx["n_cal"])]
    params = [r.param for r in lm.adapter.linears.values()]
    from analysis.core import memory

    shape = memory.shape_of(model)
    size, length = max(x.input_ids.shape[0] for x in b), max(x.input_ids.shape[1] for x in b)
    plan_w, plan_s = guard(ctx, memory.wanda(shape, size, length)), guard(ctx, memory.snip(shape, length))

    def bare_forward():
        with torch.no_grad():
            for x in b:
                model(input_ids=x.input_ids, attention_mask=x.attention_mask)

    def bare_backward():
        for ids, labels in _per_sample(b):
            logits = model(input_ids=ids).logits[:, :-1].float()
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
            )
            torch.autograd.grad(loss, params)

    bare_forward()
    peak_reset(dev)
    t_fwd, _ = timed(dev, bare_forward)
    t_wanda, s = timed(dev, lambda: wanda_scores(model, b))
    del s
    p_wanda = peak_gib(dev)
    peak_reset(dev)
    t_bwd, _ = timed(dev, bare_backward)
    t_snip, s = timed(dev, lambda: snip_scores(model, b))
    del s
    return {
        "samples": 2 * ctx["n_cal"],
        "wanda_s": t_wanda,
        "forward_s": t_fwd,
        "wanda_ratio": t_wanda / t_fwd,
        "snip_s": t_snip,
        "forward_backward_s": t_bwd,
        "snip_ratio": t_snip / t_bwd,
        "peak_gib_wanda": p_wanda,
        "peak_gib_snip": peak_gib(dev),
        "memory": [memory_row(ctx, "Wanda", plan_w, p_wanda), memory_row(ctx, "SNIP", plan_s, peak_gib(dev))],
    }


def step_spectra(ctx) -> dict:
    from analysis.core.cache import Cache
    from analysis.methods.spectra import delta, singular_values, spectra

    a, b, dev = ctx["aligned"], ctx["base"], ctx["dev"]
    names = list(a.adapter.linears)
    from analysis.core import memory

    plan = guard(ctx, memory.spectra(memory.shape_of(a.model)))
    peak_reset(dev)
    with tempfile.TemporaryDirectory() as tmp:
        t_ours, specs = timed(dev, lambda: spectra(a, b, Cache(tmp)))
    p_ours = peak_gib(dev)
    # full SVD on the device: all weights for tiny, one layer scaled by the layer count otherwise
    layer0 = [n for n in names if a.adapter[n].layer == 0]
    subset = names if ctx["size"] == "tiny" else layer0
    t_svd, vals = timed(dev, lambda: [singular_values(delta(a, b, n), "svd") for n in subset])
    scale = len(names) / len(subset)
    err = max(float(((specs[n].values.to(v.device) - v).abs().max() / v[0]).item()) for n, v in zip(subset, vals))
    return {
        "weights": len(names),
        "ours_s": t_ours,
        "method": "gram" if dev.type != "cpu" else "svd",
        "full_svd_s": t_svd * scale,
        "full_svd_extrapolated": scale != 1,
        "speedup": t_svd * scale / t_ours,
        "max_sigma_err_rel_sigma1": err,
        "peak_gib": p_ours,
        "memory": [memory_row(ctx, "spectra", plan, p_ours)],
    }


def step_linalg(ctx) -> dict:
    """Seconds per matrix of the candidate singular-value routines at this model's weight shapes."""
    dev, a = ctx["dev"], ctx["aligned"]
    shapes = sorted({tuple(r.W.shape) for r in a.adapter.linears.values()})
    g = torch.Generator(device=dev).manual_seed(0)
    out = {}
    for m, n in shapes:
        M = torch.randn(m, n, generator=g, device=dev)
        side = min(m, n)
        G64 = (M.double().T @ M.double()) if m >= n else (M.double() @ M.double().T)
        runs = {
            "svdvals_fp32": lambda: torch.linalg.svdvals(M),
            "gram_eigvalsh_fp64": lambda: torch.linalg.eigvalsh(G64),
            "gram_eigvalsh_fp32": lambda: torch.linalg.eigvalsh(G64.float()),
        }
        if dev.type == "cuda":
            runs["svdvals_gesvdj_fp32"] = lambda: torch.linalg.svdvals(M, driver="gesvdj")
            runs["gram_eigvalsh_fp64_batch4_per_matrix"] = lambda: torch.linalg.eigvalsh(
                G64.expand(4, side, side).clone()
            )
        res = {}
        for k, f in runs.items():
            f()
            t, _ = timed(dev, f)
            res[k] = t / (4 if "batch4" in k else 1)
        out[f"{m}x{n}"] = res
    # accuracy on a real ΔW of the pair (the first weight), against float64 svdvals
    from analysis.methods.spectra import delta, singular_values

    name = next(iter(a.adapter.linears))
    d = delta(a, ctx["base"], name)
    ref = torch.linalg.svdvals(d.double())
    out["accuracy_vs_fp64_svd"] = {
        "weight": name,
        **{k: float((singular_values(d, k).double() - ref).abs().max() / ref[0]) for k in ("gram", "svd")},
    }
    return out


def step_lox(ctx) -> dict:
    from analysis.core.cache import Cache
    from analysis.methods.lox import alignment_factors

    a, b, dev = ctx["aligned"], ctx["base"], ctx["dev"]
    from analysis.core import memory

    plan = guard(ctx, memory.spectra(memory.shape_of(a.model)))
    peak_reset(dev)
    with tempfile.TemporaryDirectory() as tmp:
        # the decoder weights, as the spectra step and the target ("LoX factors for all of them")
        t, f = timed(dev, lambda: alignment_factors(a, b, 8, cache=Cache(tmp), scope="decoder"))
    fell_back = sum(x.method != "randomized" for x in f.values())
    return {
        "weights": len(f),
        "k": 8,
        "seconds": t,
        "full_svd_fallbacks": fell_back,
        "peak_gib": peak_gib(dev),
        "memory": [memory_row(ctx, "LoX factors", plan, peak_gib(dev))],
    }


def step_attack(ctx) -> dict:
    from analysis.data.organism.provider import OrganismData
    from analysis.methods.attacks.finetune import AttackSettings, Variant, fine_tune_copy

    attack_set = OrganismData().attack_data

    from analysis.core import memory
    from analysis.methods.critical_regions.calibration import batches

    lm, dev = ctx["aligned"], ctx["dev"]
    out = {"memory": []}
    data = attack_set("harmful", 20)
    length = max(x.input_ids.shape[1] for x in batches(lm.tokenizer, data, 20))
    for method in ("full", "lora"):
        peak_reset(dev)
        s = AttackSettings(method=method, steps=1, batch_size=20, n_examples=20)
        try:
            plan = guard(ctx, memory.attack(memory.shape_of(lm.model), method, 20, length, False))
            t, m = timed(dev, lambda: fine_tune_copy(lm, Variant(method), s, data))
            del m
            out[method] = {"seconds_with_copy": t, "peak_gib": peak_gib(dev)}
            out["memory"].append(memory_row(ctx, f"attack step ({method})", plan, peak_gib(dev)))
        except (ValueError, StepRefused) as e:  # the memory check said no before anything was copied
            out[method] = {"refused": str(e)}
        peak_reset(dev)
    return out


def guard(ctx, plan):
    """Refuse the step before it starts when its plan does not fit the free memory (one-line ValueError)."""
    from analysis.core.memory import free_bytes

    try:
        plan.check(free_bytes(ctx["dev"]))
    except ValueError as e:
        raise StepRefused(str(e)) from None
    return plan


def landscape_plan(ctx, n: int, seq: int, n_dirs: int, n_models: int):
    """The landscape plan with all ``n`` prompts in one batch (what the generation loop does when they fit)."""
    from analysis.core import memory

    plan = memory.landscape(memory.shape_of(ctx["aligned"].model), n, seq, n_dirs, n_models)
    one = plan.extra.pop("generation, one sequence (the batch fits what is left)")
    plan.extra[f"generation, {n} prompts in one batch"] = one * n
    return guard(ctx, plan)


def _seq_len(ctx, texts: list[str], new: int) -> int:
    from analysis.core.memory import longest_prompt

    return longest_prompt(ctx["aligned"].tokenizer, texts) + new


def step_evaluate(ctx) -> dict:
    """Generation on harmful + benign prompts, keyword ASR, and the classifier judge's "really complies"."""
    from analysis.core import memory
    from analysis.core.evaluation import ClassifierCompliance, EvalSpec, evaluate_model
    from analysis.data.prompts import PromptSet

    lm, dev, n, new, judge = ctx["aligned"], ctx["dev"], ctx["n_land"], ctx["land_tokens"], ctx["judge"]
    items = prompts(2 * n)
    harmful = PromptSet("harmful", [it for it in items if it.label == "harmful"][:n])
    benign = PromptSet("benign", [it for it in items if it.label != "harmful"][:n])
    spec = EvalSpec(harmful, benign, None, new, compliance=ClassifierCompliance(judge))
    jdev = next(judge.model.parameters()).device
    seq = _seq_len(ctx, harmful.prompts() + benign.prompts(), new)
    gen = memory.generation(memory.shape_of(lm.model), len(harmful) + len(benign), seq)
    plan = memory.Plan("evaluate", {}, dict(gen.extra), gen.advice)
    if jdev == dev:  # the judge's format wraps prompt and reply: about 64 tokens more
        plan.extra.update(memory.judge(memory.shape_of(judge.model), judge.batch_size, seq + 64).extra)
        plan.advice = memory.judge(memory.shape_of(judge.model), 1, 1).advice
    guard(ctx, plan)
    evaluate_model(lm.model, lm.tokenizer, spec.head(4))  # warm-up
    peak_reset(dev)
    t, r = timed(dev, lambda: evaluate_model(lm.model, lm.tokenizer, spec))
    peak = peak_gib(dev)
    return {
        "harmful": len(harmful),
        "benign": len(benign),
        "new_tokens": new,
        "seconds": t,
        "asr": r.asr,
        "asr_classifier": r.asr_positive,
        "judge_device": str(jdev),
        "judge_calls": judge.model_calls,
        "memory": [memory_row(ctx, "evaluate", plan, peak)],
    }


def step_region(ctx) -> dict:
    from analysis.core import memory
    from analysis.methods.critical_regions.masks import set_difference
    from analysis.methods.critical_regions.wanda import wanda_scores

    lm, dev = ctx["aligned"], ctx["dev"]
    cal = [x.to(dev) for x in _calibration(lm, ctx["n_cal"])]
    half = len(cal) // 2
    size = max(b.input_ids.shape[0] for b in cal)
    length = max(b.input_ids.shape[1] for b in cal)
    plan = guard(ctx, memory.region(memory.shape_of(lm.model), size, length))
    peak_reset(dev)

    def run():
        s = wanda_scores(lm.model, cal[:half])
        u = wanda_scores(lm.model, cal[half:])
        return set_difference(s, u, 0.05, 0.05)

    t, region = timed(dev, run)
    return {
        "seconds": t,
        "selected_weights": region.n_selected,
        "of_weights": region.n_total,
        "memory": [memory_row(ctx, "scores + region", plan, peak_gib(dev))],
    }


def step_landscape2d(ctx) -> dict:
    from analysis.core.edits import applied
    from analysis.core.evaluation import EvalSpec, evaluate_model
    from analysis.data.prompts import PromptSet
    from analysis.methods.landscape.directions import ModelDifference, RandomDirection
    from analysis.methods.landscape.grid import point_edit

    lm, base, dev, n, new = ctx["aligned"], ctx["base"], ctx["dev"], ctx["n_land"], ctx["land_tokens"]
    harmful = PromptSet("harmful", prompts(n, "harmful"))
    spec = EvalSpec(harmful, PromptSet("benign", []), None, new)
    d = [RandomDirection(0), ModelDifference(base.model)]

    def point(a: float, b: float):
        with applied(lm.model, point_edit(lm.model, d, (a, b), ("linear",))):
            return evaluate_model(lm.model, lm.tokenizer, spec)

    n_models = 2 if next(base.model.parameters()).device == dev else 1
    plan = landscape_plan(ctx, n, _seq_len(ctx, harmful.prompts(), new), 2, n_models)
    point(0.05, 0.05)  # warm-up
    peak_reset(dev)
    t, r = timed(dev, lambda: point(0.1, 0.5))
    return {
        "prompts": n,
        "seconds": t,
        "asr": r.asr,
        "base_device": str(next(base.model.parameters()).device),
        "memory": [memory_row(ctx, "2D point", plan, peak_gib(dev))],
    }


def step_representations(ctx) -> dict:
    from analysis.core import memory
    from analysis.methods.representations import hidden_states

    lm, dev, n = ctx["aligned"], ctx["dev"], ctx["n_land"]
    texts = [it.prompt for it in prompts(n)]
    plan = guard(ctx, memory.representations(memory.shape_of(lm.model), min(32, n), _seq_len(ctx, texts, 0)))
    hidden_states(lm.model, lm.tokenizer, texts[:4])
    peak_reset(dev)
    t, st = timed(dev, lambda: hidden_states(lm.model, lm.tokenizer, texts))
    return {
        "prompts": n,
        "seconds": t,
        "states_shape": list(st.last.shape),
        "memory": [memory_row(ctx, "hidden states", plan, peak_gib(dev))],
    }


def step_depth(ctx) -> dict:
    from analysis.core import memory
    from analysis.methods.depth import pair_rows, token_divergence

    a, b, dev = ctx["aligned"], ctx["base"], ctx["dev"]
    from analysis.data.organism.provider import OrganismData

    pairs = OrganismData().attack_data("harmful", ctx["n_cal"])
    rows, starts = pair_rows(a.tokenizer, pairs)
    pad = a.tokenizer.pad_token_id
    n_models = 2 if next(b.model.parameters()).device == dev else 1
    plan = guard(ctx, memory.depth(memory.shape_of(a.model), 16, max(len(r) for r in rows), n_models))
    token_divergence(a.model, b.model, rows[:4], starts[:4], pad)
    peak_reset(dev)
    t, (kl, _) = timed(dev, lambda: token_divergence(a.model, b.model, rows, starts, pad))
    return {
        "pairs": len(rows),
        "seconds": t,
        "mean_kl": sum(map(sum, kl)) / max(sum(map(len, kl)), 1),
        "base_device": str(next(b.model.parameters()).device),
        "memory": [memory_row(ctx, "token divergence", plan, peak_gib(dev))],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="tiny")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of " + ",".join(STEPS))
    ap.add_argument("--step-limit", type=int, default=150, help="seconds per step before it is skipped")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--small", action="store_true", help="fewer prompts/tokens (smoke test)")
    ap.add_argument("--base-device", default=None, help="put the base model here (e.g. cpu: offloaded)")
    ap.add_argument("--judge-device", default=None, help="put the evaluate step's judge here (e.g. cpu)")
    ap.add_argument(
        "--judge-quant", choices=["8bit", "4bit"], default=None, help="load the judge quantised (bitsandbytes)"
    )
    ap.add_argument(
        "--judge-size",
        choices=list(JUDGE_SIZES),
        default=None,
        help="the judge's shape (default: tiny for --size tiny, else 8b = Llama-Guard-3-8B)",
    )
    args = ap.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    bad = set(steps) - set(STEPS)
    if bad:
        print(f"error: unknown steps {sorted(bad)}; choose from {STEPS}", file=sys.stderr)
        return 2
    dev = best_device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(int(os.environ.get("BRITTLE_THREADS", "1")))
    t0 = time.perf_counter()
    base_dev = torch.device(args.base_device) if args.base_device else dev
    aligned, base = build_pair(args.size, dev, base_dev=base_dev)
    n_params = sum(p.numel() for p in aligned.model.parameters())
    info = {
        "size": args.size,
        "device": str(dev),
        "params": n_params,
        "vocab": len(aligned.tokenizer),
        "dtype": aligned.dtype,
        "build_s": time.perf_counter() - t0,
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "torch": torch.__version__,
    }
    import transformers

    info["transformers"] = transformers.__version__
    print(json.dumps(info), flush=True)
    small = args.small
    ctx = {
        "aligned": aligned,
        "base": base,
        "dev": dev,
        "size": args.size,
        "n_gen": 24 if small else 240,
        "gen_tokens": 8 if small else 64,
        "n_land": 8 if small else 80,
        "land_tokens": 8 if small else 32,
        "n_cal": 8 if small else 64,
    }
    if "evaluate" in steps:
        size_j = args.judge_size or ("tiny" if args.size == "tiny" else "8b")
        jdev = torch.device(args.judge_device) if args.judge_device else dev
        try:
            ctx["judge"] = build_judge(size_j, jdev, next(aligned.model.parameters()).dtype, args.judge_quant)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        info.update(
            judge_size=size_j,
            judge_device=str(jdev),
            judge_quant=args.judge_quant,
            judge_params=sum(p.numel() for p in ctx["judge"].model.parameters()),
        )
    info["base_device"] = str(base_dev)
    results = {"info": info}
    fns = {
        "generation": step_generation,
        "landscape": step_landscape,
        "attribution": step_attribution,
        "linalg": step_linalg,
        "spectra": step_spectra,
        "lox": step_lox,
        "attack": step_attack,
        "evaluate": step_evaluate,
        "region": step_region,
        "landscape2d": step_landscape2d,
        "representations": step_representations,
        "depth": step_depth,
    }
    signal.signal(signal.SIGALRM, _alarm)
    for s in steps:
        signal.alarm(args.step_limit)
        t = time.perf_counter()
        try:
            r = fns[s](ctx)
        except StepTimeout:
            r = {"skipped": f"over the {args.step_limit} s step limit"}
        except StepRefused as e:  # the memory plan said no before the step started
            r = {"refused": str(e)}
            print(f"refused: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - a failing step is reported, the others still run
            r = {"failed": f"{type(e).__name__}: {str(e)[:300]}"}
        finally:
            signal.alarm(0)
        r["wall_s"] = time.perf_counter() - t
        results[s] = r
        print(json.dumps({s: r}, default=float), flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
