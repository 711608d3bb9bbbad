"""Generation throughput (prompts/s) on the demo pair, measured in one run, with ratios.

Compares, on the same 240 held-out prompts (120 harmful + 120 benign), greedy, 24 new tokens:
  1. the project's batched KV-cache loop with the judge's early stop,
  2. the same loop without early stop,
  3. Hugging Face ``model.generate`` (greedy, same batch, left padding) as the reference.
Usage: python benchmarks/generation_throughput.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _reference import best_of, hf_generate  # noqa: E402

from analysis.core.generation import generate  # noqa: E402
from analysis.core.models import load_pair  # noqa: E402
from analysis.judging.refusal import Judge  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BRITTLE_THREADS", 2)))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pair = load_pair("demo", device="cpu")
    sets = pair.aligned.data.sets("test")
    prompts = sets["harmful"].prompts() + sets["benign"].prompts()
    judge = Judge()
    print(
        f"demo pair, {len(prompts)} prompts, greedy, 24 new tokens, batch {args.batch_size}, "
        f"{args.threads} threads, best of {args.repeats}"
    )
    for role, lm in pair.models().items():
        m, tok = lm.model, lm.tokenizer
        t_stop, g_stop = best_of(
            lambda: generate(m, tok, prompts, None, 24, args.batch_size, stop=judge.is_refusal), args.repeats
        )
        t_full, g_full = best_of(lambda: generate(m, tok, prompts, None, 24, args.batch_size), args.repeats)
        t_hf, hf = best_of(lambda: hf_generate(m, tok, prompts, 24, args.batch_size), args.repeats)
        same = sum(a.text == " ".join(b.split()) for a, b in zip(g_full, hf))
        tokens = sum(g.n_tokens for g in g_stop)
        print(
            f"{role:8s} early-stop {len(prompts) / t_stop:7.1f} prompts/s ({tokens / len(prompts):.1f} tok/reply) | "
            f"no early stop {len(prompts) / t_full:7.1f} prompts/s | HF generate {len(prompts) / t_hf:7.1f} prompts/s | "
            f"speed-up vs HF {t_hf / t_stop:4.1f}x | identical texts vs HF {same}/{len(prompts)}"
        )


if __name__ == "__main__":
    main()
