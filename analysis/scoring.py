"""Calibration data and cached importance scores for a loaded model (what pages and the CLI call).

Scores are cached as safetensors, keyed by (model fingerprint, method, the exact calibration pairs,
system prompt), so a slider move after the first computation costs no scoring.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .attribution.activations import ActivationStats, collect
from .attribution.actsvd import Subspaces, subspaces_from_gram
from .attribution.snip import snip_scores
from .attribution.units import flap_importance
from .attribution.wanda import wanda_from_stats
from .cache import Cache
from .calibration import batches, safety_set, utility_set
from .prompts import PromptSet

METHODS = ("wanda", "snip")
SETS = ("safety", "utility")
MAX_RANK = 64  # directions kept per weight for ActSVD (ranks above it are clipped and reported)


@dataclass
class Calibration:
    safety: PromptSet     # harmful prompt + the aligned model's own refusal
    utility: PromptSet    # benign prompt + answer
    system_prompt: str | None = None

    def get(self, which: str) -> PromptSet:
        if which not in SETS:
            raise ValueError(f"set must be one of {SETS}, got {which!r}")
        return self.safety if which == "safety" else self.utility

    def key(self, which: str) -> list:
        return [[it.prompt, it.response] for it in self.get(which).items]


def calibration(lm, n: int = 128, harmful: PromptSet | None = None, benign: PromptSet | None = None,
                system_prompt: str | None = None, cache: Cache | None = None) -> Calibration:
    """Default data: the organism's *train* split (evaluation uses the held-out test split)."""
    from .organism import corpus

    if n < 1:
        raise ValueError(f"the calibration set needs at least 1 sample, got n={n}")
    harmful = (harmful or PromptSet("harmful-train", corpus.harmful_items("train", max(n, 1)))).head(n)
    benign = (benign or PromptSet("benign-train", corpus.benign_items("train", max(n, 1)))).head(n)
    parts = {"kind": "safety-set", "model": lm.fingerprint, "prompts": harmful.prompts(), "system": system_prompt}
    cache = cache or Cache()

    def compute():
        s = safety_set(lm.model, lm.tokenizer, harmful, system_prompt)
        return [[it.prompt, it.response] for it in s.items]

    from .prompts import PromptItem

    rows = cache.get_or_compute(parts, compute, "json")
    safety = PromptSet(f"safety({harmful.name})", [PromptItem(p, "harmful", r) for p, r in rows])
    return Calibration(safety, utility_set(benign), system_prompt)


def _batches(lm, cal: Calibration, which: str, batch_size: int = 16):
    return batches(lm.tokenizer, cal.get(which), batch_size, cal.system_prompt)


def _memory_guard(lm, method: str, batches) -> None:
    """Issue #15: check the scoring run's memory plan on a GPU before it starts."""
    from . import memory

    if not batches:
        return
    size = max(b.input_ids.shape[0] for b in batches)
    length = max(b.input_ids.shape[1] for b in batches)
    memory.guard(lm.model, lambda shape: memory.snip(shape, length) if method == "snip"
                 else memory.wanda(shape, size, length, gram=method == "wanda-gram"))


def scores(lm, method: str, which: str, cal: Calibration, cache: Cache | None = None,
           progress=None, ray_address: str | None = None) -> dict[str, torch.Tensor]:
    """Wanda or SNIP importance of every decoder Linear weight on the safety or utility set.
    With ``ray_address`` the calibration batches are scored in shards on Ray (same result, same cache)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    parts = {"kind": f"scores-{method}", "model": lm.fingerprint, "set": which, "data": cal.key(which),
             "system": cal.system_prompt}

    def compute():
        b = _batches(lm, cal, which)
        _memory_guard(lm, method, b)
        if ray_address:
            from .distributed import scores_sharded

            return scores_sharded(ray_address, lm, method, b)
        if method == "snip":
            return snip_scores(lm.model, b, progress)
        return wanda_from_stats(lm.model, collect(lm.model, b, progress=progress))

    return (cache or Cache()).get_or_compute(parts, compute, "safetensors")


def activation_stats(lm, which: str, cal: Calibration, cache: Cache | None = None,
                     progress=None) -> tuple[ActivationStats, Subspaces]:
    """Input statistics (for units) and top output directions (for ActSVD), cached together."""
    parts = {"kind": "activations", "model": lm.fingerprint, "set": which, "data": cal.key(which),
             "system": cal.system_prompt, "max_rank": MAX_RANK}

    def compute():
        b = _batches(lm, cal, which)
        _memory_guard(lm, "wanda-gram", b)
        st = collect(lm.model, b, gram=True, progress=progress)
        sub = subspaces_from_gram(st.gram, st.n_tokens, MAX_RANK)
        out = {"n_tokens": torch.tensor([st.n_tokens])}
        for n in st.sq:
            out[f"sq/{n}"], out[f"sum/{n}"], out[f"V/{n}"] = st.sq[n], st.sum[n], sub.vectors[n]
        return out

    d = (cache or Cache()).get_or_compute(parts, compute, "safetensors")
    n_tok = int(d["n_tokens"][0])
    names = [k[3:] for k in d if k.startswith("sq/")]
    stats = ActivationStats(n_tok, {n: d[f"sq/{n}"] for n in names}, {n: d[f"sum/{n}"] for n in names})
    return stats, Subspaces({n: d[f"V/{n}"] for n in names}, n_tok)


def unit_importance(lm, cal: Calibration, cache: Cache | None = None, progress=None):
    """FLAP importance on both sets: (I_S, I_U)."""
    s, _ = activation_stats(lm, "safety", cal, cache, progress)
    u, _ = activation_stats(lm, "utility", cal, cache, progress)
    return flap_importance(lm.model, s), flap_importance(lm.model, u)
