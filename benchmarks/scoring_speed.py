"""Scoring cost (Wanda + SNIP on the safety and utility sets) as a ratio to the bare passes over the same
calibration data, measured in one run on the demo pair. Goal: ratio <= 1.5.

Bare passes: Wanda's baseline is one forward per batch (no hooks); SNIP's is one forward+backward per
sample (plain loss.backward(), no accumulation).
Also counts the tensor operations each pass dispatches (a GPU launches one kernel per operation: the
overhead that dominates when a GPU forward pass is short).
Usage: python benchmarks/scoring_speed.py [--threads 2] [--n 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _reference import best_of  # noqa: E402

from analysis.core.cache import Cache  # noqa: E402
from analysis.core.chat import IGNORE  # noqa: E402
from analysis.core.models import load_pair  # noqa: E402
from analysis.methods.critical_regions.calibration import batches as calibration_batches  # noqa: E402
from analysis.methods.critical_regions.scoring import default_calibration  # noqa: E402
from analysis.methods.critical_regions.snip import snip_scores  # noqa: E402
from analysis.methods.critical_regions.wanda import wanda_scores  # noqa: E402


def bare_forward(model, batches):
    with torch.no_grad():
        for b in batches:
            model(input_ids=b.input_ids, attention_mask=b.attention_mask)


def per_sample(batches):
    """Each sample of each batch alone, without its padding (what SNIP's per-sample gradients need)."""
    for b in batches:
        for i in range(b.input_ids.shape[0]):
            keep = b.attention_mask[i].bool()
            yield b.input_ids[i][keep][None], b.labels[i][keep][None]


def bare_forward_backward(model, batches):
    for ids, labels in per_sample(batches):
        logits = model(input_ids=ids).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE
        )
        loss.backward()
        model.zero_grad(set_to_none=True)


def op_counts(fn) -> tuple[int, dict[str, int]]:
    """Tensor operations that compute (on a GPU: launch a kernel) while ``fn`` runs, and the most frequent;
    views and bare allocations are not counted."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    seen: Counter = Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ret = func._schema.returns[0].alias_info if func._schema.returns else None
            name = str(func.overloadpacket.__name__)
            if (ret is None or ret.is_write) and not name.startswith("empty"):
                seen[name] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return sum(seen.values()), dict(seen.most_common(6))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BRITTLE_THREADS", 2)))
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import tempfile

    lm = load_pair("demo", "", device="cpu").aligned
    cal = default_calibration(lm, args.n, cache=Cache(tempfile.mkdtemp()))
    sets = {w: calibration_batches(lm.tokenizer, cal.get(w), 16, cal.system_prompt) for w in ("safety", "utility")}
    m = lm.model
    t_wanda = sum(best_of(lambda: wanda_scores(m, b), args.repeats)[0] for b in sets.values())
    t_fwd = sum(best_of(lambda: bare_forward(m, b), args.repeats)[0] for b in sets.values())
    t_snip = sum(best_of(lambda: snip_scores(m, b), args.repeats)[0] for b in sets.values())
    t_fb = sum(best_of(lambda: bare_forward_backward(m, b), args.repeats)[0] for b in sets.values())
    print(
        f"demo aligned, {len(cal.safety)} safety + {len(cal.utility)} utility samples, {args.threads} threads, "
        f"best of {args.repeats}"
    )
    print(f"Wanda  {t_wanda:.3f}s vs bare forward          {t_fwd:.3f}s  ratio {t_wanda / t_fwd:.2f}")
    print(f"SNIP   {t_snip:.3f}s vs bare forward+backward {t_fb:.3f}s  ratio {t_snip / t_fb:.2f}")
    b = sets["safety"]
    n_w, top_w = op_counts(lambda: wanda_scores(m, b))
    n_f, top_f = op_counts(lambda: bare_forward(m, b))
    print(
        f"tensor ops (kernel launches on a GPU), safety set: Wanda {n_w} vs bare forward {n_f} "
        f"(+{n_w - n_f}, {n_w / n_f:.2f}x); Wanda's most frequent: {top_w}; forward's: {top_f}"
    )
    print(
        f"total  {t_wanda + t_snip:.3f}s vs bare {t_fwd + t_fb:.3f}s  ratio {(t_wanda + t_snip) / (t_fwd + t_fb):.2f}"
        f"  (goal <= 1.5)"
    )


if __name__ == "__main__":
    main()
