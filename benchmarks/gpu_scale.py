"""Issue #15: the library's heavy work on a random-initialised Llama of a named size, each step against the
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
Each reports seconds, the ratio and the peak GPU memory.
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
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32),
}
STEPS = ("generation", "landscape", "attribution", "linalg", "spectra", "lox", "attack")


class StepTimeout(Exception):
    pass


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
    gc.collect()       # models copied by earlier steps sit in reference cycles
    if dev.type == "cuda":   # no empty_cache: the allocator keeps its blocks, as it does in the app
        sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(dev) / 2 ** 30, 2) if dev.type == "cuda" else None


def timed(dev: torch.device, fn):
    sync(dev)
    t = time.perf_counter()
    out = fn()
    sync(dev)
    return time.perf_counter() - t, out


def build_pair(size: str, dev: torch.device, seed: int = 0):
    """(aligned, base) as LoadedModel-like objects: random Llama + a perturbed copy."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from analysis.core.arch import adapter_of
    from analysis.core.models import LoadedModel
    from analysis.data.organism.tokenizer import build_tokenizer

    tok = build_tokenizer()
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    cfg = LlamaConfig(vocab_size=len(tok), max_position_embeddings=512, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **SIZES[size])
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
            V = torch.randn(16, n, generator=g, device=dev) / n ** 0.5
            upd = 0.02 * (U @ V) + 1e-4 * torch.randn(m, n, generator=g, device=dev)
            W.copy_((W.float() - upd).to(W.dtype))
    lms = []
    for name, m in (("aligned", model), ("base", base)):
        lms.append(LoadedModel(m, tok, f"random-{size}-{name}", str(dtype).split(".")[-1], str(dev),
                               f"random-{size}-{name}-{seed}", adapter_of(m)))
    return lms[0], lms[1]


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
        input_ids, mask, _ = left_padded(ids[s:s + batch], pad)
        gen = model.generate(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), max_new_tokens=max_new,
                             do_sample=False, pad_token_id=pad, eos_token_id=tok.eos_token_id)
        out += tok.batch_decode(gen[:, input_ids.shape[1]:], skip_special_tokens=True)
    return [t.strip() for t in out]


# ---- steps -------------------------------------------------------------------------------------------

def step_generation(ctx) -> dict:
    from analysis.core import generation as G

    lm, dev, n, new = ctx["aligned"], ctx["dev"], ctx["n_gen"], ctx["gen_tokens"]
    texts = [it.prompt for it in prompts(n)]
    G.generate(lm.model, lm.tokenizer, texts[:8], max_new_tokens=4)       # warm-up (kernels, handles)
    hf_generate(lm.model, lm.tokenizer, texts[:4], 4, 4)
    peak_reset(dev)
    t_ours, ours = timed(dev, lambda: G.generate(lm.model, lm.tokenizer, texts, max_new_tokens=new))
    run = dict(G.LAST_RUN)
    p_ours = peak_gib(dev)
    peak_reset(dev)
    t_hf, hf = timed(dev, lambda: hf_generate(lm.model, lm.tokenizer, texts, new, 64))
    same = sum(a.text == b for a, b in zip(ours, hf)) / len(hf)
    return {"prompts": n, "new_tokens": new, "ours_s": t_ours, "hf_batch64_s": t_hf, "speedup": t_hf / t_ours,
            "peak_gib_ours": p_ours, "peak_gib_hf": peak_gib(dev), "same_text_share": same,
            "loop": run.get("loop"), "batches": run.get("batches"), "cuda_graphs": run.get("graphs"),
            "steps": run.get("steps"), "prefill_ms": run.get("prefill_ms"), "decode_ms": run.get("decode_ms"),
            "graph_error": run.get("graph_error")}


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
        with torch.no_grad():   # same weights: the same per-tensor update on the copy
            edit = point_edit(m, d, (alpha,), ("linear",))
            for nm, p in perturbed_params(m, ("linear",)):
                edit.apply_to(nm, p.data)
        texts = hf_generate(m, lm.tokenizer, harmful.prompts(), new, 4)
        del m
        return sum(not judge.is_refusal(t) for t in texts) / len(texts)

    peak_reset(dev)
    t_plain, asr_plain = timed(dev, lambda: plain(0.1))
    return {"prompts": n, "new_tokens": new, "ours_s": times, "plain_s": t_plain,
            "speedup": t_plain / times[0], "asr_ours": results[0].asr, "asr_plain": asr_plain,
            "asr_identical": results[0].asr == asr_plain, "peak_gib_ours": p_ours, "peak_gib_plain": peak_gib(dev)}


def _calibration(lm, n: int):
    from analysis.data.organism.provider import OrganismData
    from analysis.methods.critical_regions.calibration import batches

    data = OrganismData()
    return (batches(lm.tokenizer, data.attack_data("harmful", n), 16) +
            batches(lm.tokenizer, data.attack_data("benign", n), 16))


def step_attribution(ctx) -> dict:
    from analysis.methods.critical_regions.snip import _per_sample, snip_scores
    from analysis.methods.critical_regions.wanda import wanda_scores

    lm, dev = ctx["aligned"], ctx["dev"]
    model = lm.model
    b = [x.to(dev) for x in _calibration(lm, ctx["n_cal"])]
    params = [r.param for r in lm.adapter.linears.values()]

    def bare_forward():
        with torch.no_grad():
            for x in b:
                model(input_ids=x.input_ids, attention_mask=x.attention_mask)

    def bare_backward():
        for ids, labels in _per_sample(b):
            logits = model(input_ids=ids).logits[:, :-1].float()
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                     ignore_index=-100)
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
    return {"samples": 2 * ctx["n_cal"], "wanda_s": t_wanda, "forward_s": t_fwd, "wanda_ratio": t_wanda / t_fwd,
            "snip_s": t_snip, "forward_backward_s": t_bwd, "snip_ratio": t_snip / t_bwd,
            "peak_gib_wanda": p_wanda, "peak_gib_snip": peak_gib(dev)}


def step_spectra(ctx) -> dict:
    from analysis.core.cache import Cache
    from analysis.methods.spectra import delta, singular_values, spectra

    a, b, dev = ctx["aligned"], ctx["base"], ctx["dev"]
    names = list(a.adapter.linears)
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
    return {"weights": len(names), "ours_s": t_ours, "method": "gram" if dev.type != "cpu" else "svd",
            "full_svd_s": t_svd * scale, "full_svd_extrapolated": scale != 1, "speedup": t_svd * scale / t_ours,
            "max_sigma_err_rel_sigma1": err, "peak_gib": p_ours}


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
        runs = {"svdvals_fp32": lambda: torch.linalg.svdvals(M),
                "gram_eigvalsh_fp64": lambda: torch.linalg.eigvalsh(G64),
                "gram_eigvalsh_fp32": lambda: torch.linalg.eigvalsh(G64.float())}
        if dev.type == "cuda":
            runs["svdvals_gesvdj_fp32"] = lambda: torch.linalg.svdvals(M, driver="gesvdj")
            runs["gram_eigvalsh_fp64_batch4_per_matrix"] = lambda: torch.linalg.eigvalsh(G64.expand(4, side, side).clone())
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
    out["accuracy_vs_fp64_svd"] = {"weight": name, **{
        k: float((singular_values(d, k).double() - ref).abs().max() / ref[0]) for k in ("gram", "svd")}}
    return out


def step_lox(ctx) -> dict:
    from analysis.core.cache import Cache
    from analysis.methods.lox import alignment_factors

    a, b, dev = ctx["aligned"], ctx["base"], ctx["dev"]
    peak_reset(dev)
    with tempfile.TemporaryDirectory() as tmp:
        # the decoder weights, as the spectra step and the target ("LoX factors for all of them")
        t, f = timed(dev, lambda: alignment_factors(a, b, 8, cache=Cache(tmp), scope="decoder"))
    fell_back = sum(x.method != "randomized" for x in f.values())
    return {"weights": len(f), "k": 8, "seconds": t, "full_svd_fallbacks": fell_back, "peak_gib": peak_gib(dev)}


def step_attack(ctx) -> dict:
    from analysis.data.organism.provider import OrganismData
    from analysis.methods.attacks.finetune import AttackSettings, Variant, fine_tune_copy

    attack_set = OrganismData().attack_data

    lm, dev = ctx["aligned"], ctx["dev"]
    out = {}
    for method in ("full", "lora"):
        peak_reset(dev)
        s = AttackSettings(method=method, steps=1, batch_size=20, n_examples=20)
        try:
            t, m = timed(dev, lambda: fine_tune_copy(lm, Variant(method), s, attack_set("harmful", 20)))
            del m
            out[method] = {"seconds_with_copy": t, "peak_gib": peak_gib(dev)}
        except ValueError as e:   # the memory check said no before anything was copied
            out[method] = {"refused": str(e)}
        peak_reset(dev)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="tiny")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of " + ",".join(STEPS))
    ap.add_argument("--step-limit", type=int, default=150, help="seconds per step before it is skipped")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--small", action="store_true", help="fewer prompts/tokens (smoke test)")
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
    aligned, base = build_pair(args.size, dev)
    n_params = sum(p.numel() for p in aligned.model.parameters())
    info = {"size": args.size, "device": str(dev), "params": n_params, "vocab": len(aligned.tokenizer),
            "dtype": aligned.dtype, "build_s": time.perf_counter() - t0,
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "torch": torch.__version__}
    import transformers
    info["transformers"] = transformers.__version__
    print(json.dumps(info), flush=True)
    small = args.small
    ctx = {"aligned": aligned, "base": base, "dev": dev, "size": args.size,
           "n_gen": 24 if small else 240, "gen_tokens": 8 if small else 64,
           "n_land": 8 if small else 80, "land_tokens": 8 if small else 32, "n_cal": 8 if small else 64}
    results = {"info": info}
    fns = {"generation": step_generation, "landscape": step_landscape, "attribution": step_attribution,
           "linalg": step_linalg, "spectra": step_spectra, "lox": step_lox, "attack": step_attack}
    signal.signal(signal.SIGALRM, _alarm)
    for s in steps:
        signal.alarm(args.step_limit)
        t = time.perf_counter()
        try:
            r = fns[s](ctx)
        except StepTimeout:
            r = {"skipped": f"over the {args.step_limit} s step limit"}
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
