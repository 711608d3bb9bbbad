"""Speed and memory, each measured within one run.

Speed: a 21-point 1D random landscape (α ∈ [-0.5, 0.5], seed 0, layer normalisation, decoder Linears) over
80 harmful prompts of the demo pair, two ways —
  plain:   deep-copy the model per point, add α·d, HF ``generate`` with batch 4 and 32 new tokens, keyword judge;
  project: ``evaluate_grid`` (in-place exact point, batched KV-cache loop with early stop, 32 new tokens) —
with identical ASR values required; prints the ratio (goal >= 10x).
Memory: in fresh subprocesses, the extra peak RSS a grid adds over one plain evaluation of the same prompts,
against one direction's size (goal: <= one direction + 20 %), on a 25 M-parameter random Llama where the
model is large next to the Python runtime; the deep-copy way is shown for contrast.
``--quick`` shrinks it (5 points x 16 prompts for speed; 3-point grids on 8 + 8 prompts for memory) to
smoke-test the script; its numbers mean nothing.
Usage: python benchmarks/landscape_speed_memory.py [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _reference import hf_generate  # noqa: E402

from analysis.core.cache import Cache  # noqa: E402
from analysis.core.evaluation import EvalSpec, evaluate_model, make_spec  # noqa: E402
from analysis.core.models import load_model  # noqa: E402
from analysis.data.organism.provider import OrganismData  # noqa: E402
from analysis.data.prompts import PromptSet  # noqa: E402
from analysis.judging.refusal import Judge  # noqa: E402
from analysis.methods.landscape.directions import RandomDirection, perturbed_params  # noqa: E402
from analysis.methods.landscape.grid import axis, evaluate_grid  # noqa: E402


def plain_landscape(lm, prompts, ax, direction, max_new=32, batch=4):
    judge = Judge()
    asr = []
    for a in ax:
        m = copy.deepcopy(lm.model)
        with torch.no_grad():
            for name, p in perturbed_params(m):
                p.add_(a * direction.tensor(name, p))
        outs = hf_generate(m, lm.tokenizer, prompts, max_new, batch)
        asr.append(sum(not judge.is_refusal(t) for t in outs) / len(outs))
        del m
    return asr


def speed(threads: int, quick: bool = False) -> None:
    torch.set_num_threads(threads)
    lm = load_model("demo", device="cpu")
    n_prompts, n_points = (16, 5) if quick else (80, 21)
    harmful = lm.data.sets("test")["harmful"].head(n_prompts)
    ax, d = axis(-0.5, 0.5, n_points), RandomDirection(0)
    t = time.perf_counter()
    plain = plain_landscape(lm, harmful.prompts(), ax, d)
    t_plain = time.perf_counter() - t
    t = time.perf_counter()
    spec = make_spec(lm, harmful, PromptSet("none", []), max_new_tokens=32)
    land = evaluate_grid(lm, [d], [ax], spec, cache=Cache(tempfile.mkdtemp()))
    t_proj = time.perf_counter() - t
    same = [round(a, 6) for a in plain] == [round(float(a), 6) for a in land.asr]
    print(f"speed: {n_points} points x {n_prompts} harmful prompts, demo pair, {threads} threads")
    print(f"  plain (deep copy + HF generate, batch 4, 32 tokens) {t_plain:7.2f}s")
    print(
        f"  project (in place + batched early-stop loop)         {t_proj:7.2f}s   ratio {t_plain / t_proj:.1f}x "
        f"(goal >= 10x); identical ASR values: {same}"
    )
    print("  ASR along α:", " ".join(f"{100 * a:.0f}" for a in land.asr))


def _child(mode: str, quick: bool = False) -> None:
    """Runs in a fresh process: load a 25 M random Llama, evaluate or walk a grid, print peak RSS."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from analysis.core.arch import Adapter
    from analysis.core.models import LoadedModel, fingerprint
    from analysis.data.organism.tokenizer import build_tokenizer

    torch.set_num_threads(2)
    tok = build_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=128,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
    )
    model = LlamaForCausalLM(cfg).eval()
    lm = LoadedModel(model, tok, "random-25M", "fp32", "cpu", fingerprint(model), Adapter(model))
    n_prompts, n_points = (8, 3) if quick else (32, 5)
    organism = OrganismData()
    sets = organism.sets("test")
    h, b = sets["harmful"].head(n_prompts), sets["benign"].head(n_prompts)
    spec = EvalSpec(h, b, max_new_tokens=8, compliance=organism.compliance_judge(h))
    evaluate_model(model, tok, spec)
    d = RandomDirection(0)
    if mode == "grid":
        evaluate_grid(lm, [d], [axis(-0.5, 0.5, n_points)], spec, cache=Cache(tempfile.mkdtemp()))
    elif mode == "deepcopy":
        for a in axis(-0.5, 0.5, n_points):
            m = copy.deepcopy(model)
            with torch.no_grad():
                for name, p in perturbed_params(m):
                    p.add_(a * d.tensor(name, p))
            evaluate_model(m, tok, spec)
            del m
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    dir_bytes = sum(p.numel() * 4 for _, p in perturbed_params(model))
    print(
        json.dumps(
            {
                "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "model_bytes": model_bytes,
                "direction_bytes": dir_bytes,
            }
        )
    )


def memory(quick: bool = False) -> None:
    res = {}
    n_points = 3 if quick else 5
    for mode in ("eval", "grid", "deepcopy"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, *(["--quick"] if quick else [])],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    mb = 1 / 1024
    model_mb, dir_mb = res["eval"]["model_bytes"] / 2**20, res["eval"]["direction_bytes"] / 2**20
    extra = (res["grid"]["peak_kb"] - res["eval"]["peak_kb"]) * mb
    extra_copy = (res["deepcopy"]["peak_kb"] - res["eval"]["peak_kb"]) * mb
    print(f"memory: 25 M random Llama ({model_mb:.0f} MB), one direction over decoder Linears = {dir_mb:.0f} MB")
    print(f"  peak RSS, one plain evaluation: {res['eval']['peak_kb'] * mb:.0f} MB")
    print(
        f"  extra peak for a {n_points}-point grid (project): {extra:.0f} MB = {extra / dir_mb:.2f} directions "
        f"(goal <= 1.20)"
    )
    print(f"  extra peak for the deep-copy way: {extra_copy:.0f} MB = {extra_copy / dir_mb:.2f} directions")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BRITTLE_THREADS", 2)))
    ap.add_argument("--child", default=None)
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny grids and sets (numbers mean nothing)")
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.quick)
        return
    if args.quick:
        print("QUICK smoke test: tiny grids and sets, the numbers mean nothing")
    speed(args.threads, args.quick)
    memory(args.quick)


if __name__ == "__main__":
    main()
