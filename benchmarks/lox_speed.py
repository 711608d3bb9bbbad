"""LoX top-k: checked randomised SVD vs full SVD on the same ≥ 1024-wide matrices.

A one-layer Llama with a 1B-class layer shape (hidden 2048, intermediate 5632: seven matrices 2048 × 2048 and
5632 × 2048 / 2048 × 5632) is the base; the "aligned" model adds to every decoder weight a ΔW of norm 3 % of
‖W‖ with a power-law spectrum σ_i ∝ i^-decay (full rank, like a real fine-tuning update). Both paths run
through :func:`analysis.methods.lox.alignment_factors` (no cache), and the resulting LoX weights
W_aligned + α·M_k are compared. Prints the time ratio (goal ≥ 20×) and the relative differences of M_k and of
the weights (goal ≤ 1e-3).
Usage: python benchmarks/lox_speed.py [--threads 2] [--k 6] [--decay 0.7]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from analysis.core.arch import adapter_of  # noqa: E402
from analysis.core.cache import Cache  # noqa: E402
from analysis.core.models import LoadedModel, fingerprint  # noqa: E402
from analysis.methods.lox import alignment_factors  # noqa: E402


def loaded(model) -> LoadedModel:
    return LoadedModel(model, None, "bench", "fp32", "cpu", fingerprint(model), adapter_of(model))


def make_pair(decay: float, seed: int = 0) -> tuple[LoadedModel, LoadedModel]:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=32,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=1,
        num_attention_heads=16,
        num_key_value_heads=16,
    )
    base = LlamaForCausalLM(cfg).eval()
    aligned = LlamaForCausalLM(cfg).eval()
    aligned.load_state_dict(base.state_dict())
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for ref in adapter_of(aligned).linears.values():
            m, n = ref.shape
            r = min(m, n)
            U = torch.linalg.qr(torch.randn(m, r, generator=g))[0]
            V = torch.linalg.qr(torch.randn(n, r, generator=g))[0]
            s = torch.arange(1, r + 1, dtype=torch.float32) ** -decay
            d = (U * s) @ V.T
            ref.W.add_(d * (0.03 * ref.W.norm() / d.norm()))
    return loaded(aligned), loaded(base)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BRITTLE_THREADS", 2)))
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--alpha", type=float, default=1.25)
    ap.add_argument("--decay", type=float, default=0.7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    aligned, base = make_pair(args.decay)
    shapes = sorted({r.shape for r in aligned.adapter.linears.values()})
    print(
        f"{len(aligned.adapter.linears)} matrices, shapes {shapes}; k = {args.k}, α = {args.alpha}, "
        f"σ_i ∝ i^-{args.decay}; {args.threads} threads"
    )
    times, factors = {}, {}
    for method in ("randomized", "full"):
        t = time.perf_counter()
        factors[method] = alignment_factors(aligned, base, args.k, method=method, cache=_NoCache())
        times[method] = time.perf_counter() - t
        print(f"  {method:10s} {times[method]:7.2f} s")
    worst_m = worst_w = 0.0
    for n, ref in aligned.adapter.linears.items():
        r, f = factors["randomized"][n], factors["full"][n]
        Mr, Mf = r.A @ r.B, f.A @ f.B
        worst_m = max(worst_m, float((Mr - Mf).norm() / Mf.norm()))
        Wr, Wf = ref.W + args.alpha * Mr, ref.W + args.alpha * Mf
        worst_w = max(worst_w, float((Wr - Wf).norm() / Wf.norm()))
    fell_back = sum(t.method == "full" for t in factors["randomized"].values())
    ratio = times["full"] / times["randomized"]
    ok = ratio >= 20 and worst_w <= 1e-3
    print(
        f"speed-up {ratio:.1f}× (goal ≥ 20×); worst relative difference: M_k {worst_m:.2e}, LoX weights "
        f"{worst_w:.2e} (goal ≤ 1e-3); randomised fell back to full SVD on {fell_back} matrices  "
        f"{'PASS' if ok else 'FAIL'}"
    )


class _NoCache(Cache):
    """Always compute (the benchmark times the SVDs, not the disk)."""

    def __init__(self):
        pass

    def get_or_compute(self, parts, compute, fmt="json"):
        return compute()


if __name__ == "__main__":
    main()
