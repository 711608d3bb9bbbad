"""Calibration data and cached importance scores for a loaded model (what pages and the CLI call).
Each function holds the model's lock while it reads the weights (only on a cache miss).

Scores are cached as safetensors, keyed by (model fingerprint, method, the exact calibration pairs,
system prompt), so a slider move after the first computation costs no scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from analysis.core.cache import Cache
from analysis.core.edits import locked
from analysis.data.prompts import PromptItem, PromptSet
from analysis.judging.refusal import Judge
from analysis.methods.critical_regions.activations import ActivationStats, collect
from analysis.methods.critical_regions.actsvd import Subspaces, sequential_subspaces, subspaces_from_gram
from analysis.methods.critical_regions.calibration import batches, safety_set, utility_set
from analysis.methods.critical_regions.snip import snip_scores
from analysis.methods.critical_regions.unit_types import flap_importance
from analysis.methods.critical_regions.wanda import wanda_from_stats

if TYPE_CHECKING:
    from analysis.core.models import LoadedModel

METHODS = ("wanda", "snip")
SETS = ("safety", "utility")
MAX_RANK = 64  # directions kept per weight for ActSVD (ranks above it are clipped and reported)
DEFAULT_CALIBRATION_N = 128  # samples per set (methods.md)


@dataclass
class Calibration:
    safety: PromptSet  # harmful prompt + the aligned model's own refusal
    utility: PromptSet  # benign prompt + answer
    system_prompt: str | None = None
    eos: bool = False  # count the end-of-sequence token as a response token (project variant; reference: no)

    def get(self, which: str) -> PromptSet:
        if which not in SETS:
            raise ValueError(f"set must be one of {SETS}, got {which!r}")
        return self.safety if which == "safety" else self.utility

    def key(self, which: str) -> dict:
        return {"pairs": [[it.prompt, it.response] for it in self.get(which).items], "eos": self.eos}


def calibration(
    lm: "LoadedModel",
    harmful: PromptSet,
    benign: PromptSet,
    n: int = DEFAULT_CALIBRATION_N,
    system_prompt: str | None = None,
    cache: Cache | None = None,
    judge: Judge | None = None,
) -> Calibration:
    """The safety set (the first ``n`` harmful prompts with the aligned model's own refusals, as ``judge``
    decides) and the utility set (the first ``n`` benign (prompt, response) pairs). The refusals are generated
    once and cached."""
    if n < 1:
        raise ValueError(f"the calibration set needs at least 1 sample, got n={n}")
    judge = judge or Judge()
    harmful, benign = harmful.head(n), benign.head(n)
    parts = {"kind": "safety-set", "model": lm.fingerprint, "prompts": harmful.prompts(), "system": system_prompt}
    if judge != Judge():
        parts["keywords"] = list(judge.keywords)

    def compute():
        with locked(lm.model):
            s = safety_set(lm.model, lm.tokenizer, harmful, system_prompt, judge=judge)
        return [[it.prompt, it.response] for it in s.items]

    rows = (cache or Cache()).get_or_compute(parts, compute, "json")
    safety = PromptSet(f"safety({harmful.name})", [PromptItem(p, "harmful", r) for p, r in rows])
    return Calibration(safety, utility_set(benign), system_prompt)


def default_calibration(
    lm: "LoadedModel",
    n: int = DEFAULT_CALIBRATION_N,
    system_prompt: str | None = None,
    cache: Cache | None = None,
    judge: Judge | None = None,
) -> Calibration:
    """:func:`calibration` on the model's own provider's calibration sets (the organism's train split for the
    demo; the real sets' val split for any other model)."""
    return calibration(lm, *lm.data.calibration_sets(n), n=n, system_prompt=system_prompt, cache=cache, judge=judge)


def _batches(lm: "LoadedModel", cal: Calibration, which: str, batch_size: int = 16):
    return batches(lm.tokenizer, cal.get(which), batch_size, cal.system_prompt, eos=cal.eos)


def _memory_guard(lm: "LoadedModel", method: str, batches) -> None:
    """Check the scoring run's memory plan on a GPU before it starts."""
    from analysis.core import memory

    if not batches:
        return
    size = max(b.input_ids.shape[0] for b in batches)
    length = max(b.input_ids.shape[1] for b in batches)
    memory.guard(
        lm.model,
        lambda shape: (
            memory.snip(shape, length)
            if method == "snip"
            else memory.wanda(shape, size, length, gram=method == "wanda-gram")
        ),
    )


def scores(
    lm: "LoadedModel",
    method: str,
    which: str,
    cal: Calibration,
    cache: Cache | None = None,
    progress=None,
    ray_address: str | None = None,
    positions: str = "response",
) -> dict[str, torch.Tensor]:
    """Wanda or SNIP importance of every decoder Linear weight on the safety or utility set.
    With ``ray_address`` the calibration batches are scored in shards on Ray (same result, same cache).
    ``positions``: Wanda's token mask (see :func:`analysis.methods.critical_regions.calibration.response_positions`; SNIP's loss is over
    the response tokens either way)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    parts = {
        "kind": f"scores-{method}",
        "model": lm.fingerprint,
        "set": which,
        "data": cal.key(which),
        "system": cal.system_prompt,
    }
    if method == "wanda":
        parts["positions"], parts["scale"] = positions, "mean over samples"

    def compute():
        b = _batches(lm, cal, which)
        _memory_guard(lm, method, b)
        if ray_address:
            from analysis.methods.critical_regions.sharded import scores_sharded

            return scores_sharded(ray_address, lm, method, b, positions=positions)
        with locked(lm.model):
            if method == "snip":
                return snip_scores(lm.model, b, progress)
            return wanda_from_stats(lm.model, collect(lm.model, b, progress=progress, positions=positions, sums=False))

    return (cache or Cache()).get_or_compute(parts, compute, "safetensors")


def activation_stats(
    lm: "LoadedModel",
    which: str,
    cal: Calibration,
    cache: Cache | None = None,
    progress=None,
    positions: str = "response",
) -> tuple[ActivationStats, Subspaces]:
    """Input statistics (for units) and top output directions (for ActSVD), cached together."""
    parts = {
        "kind": "activations",
        "model": lm.fingerprint,
        "set": which,
        "data": cal.key(which),
        "system": cal.system_prompt,
        "max_rank": MAX_RANK,
        "positions": positions,
    }

    def compute():
        b = _batches(lm, cal, which)
        _memory_guard(lm, "wanda-gram", b)
        with locked(lm.model):
            st = collect(lm.model, b, gram=True, progress=progress, positions=positions)
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


def layerwise_subspaces(
    lm: "LoadedModel",
    cal: Calibration,
    r_s: int,
    r_u: int | None = None,
    cache: Cache | None = None,
    progress=None,
    positions: str = "response",
    decomposition: str = "exact",
    seed: int = 0,
) -> tuple[Subspaces, Subspaces | None]:
    """The reference's layer-by-layer subspaces (ActSVD when ``r_u`` is None, else the orthogonal projection),
    each layer recorded on the model edited up to the layer before; cached by model, calibration and ranks
    (and, for the reference's ``svd_lowrank`` decomposition, its seed)."""
    parts = {
        "kind": "subspaces-sequential",
        "model": lm.fingerprint,
        "safety": cal.key("safety"),
        "utility": cal.key("utility") if r_u is not None else None,
        "system": cal.system_prompt,
        "r_s": r_s,
        "r_u": r_u,
        "positions": positions,
    }
    if decomposition != "exact":
        parts["decomposition"], parts["seed"] = decomposition, seed

    def compute():
        bs = _batches(lm, cal, "safety")
        bu = _batches(lm, cal, "utility") if r_u is not None else None
        _memory_guard(lm, "wanda-gram", bs)
        with locked(lm.model):
            sub_s, sub_u = sequential_subspaces(
                lm.model, bs, bu, r_s, r_u or 0, progress, positions, decomposition, seed
            )
        out = {"n_tokens": torch.tensor([sub_s.n_tokens, sub_u.n_tokens if sub_u else 0])}
        out.update({f"S/{n}": v.contiguous() for n, v in sub_s.vectors.items()})
        if sub_u is not None:
            out.update({f"U/{n}": v.contiguous() for n, v in sub_u.vectors.items()})
        return out

    d = (cache or Cache()).get_or_compute(parts, compute, "safetensors")
    n_s, n_u = (int(x) for x in d["n_tokens"])
    sub_s = Subspaces({k[2:]: v for k, v in d.items() if k.startswith("S/")}, n_s)
    sub_u = Subspaces({k[2:]: v for k, v in d.items() if k.startswith("U/")}, n_u) if r_u is not None else None
    return sub_s, sub_u


def unit_importance(
    lm: "LoadedModel", cal: Calibration, cache: Cache | None = None, progress=None, positions: str = "response"
):
    """FLAP importance on both sets: (I_S, I_U)."""
    s, _ = activation_stats(lm, "safety", cal, cache, progress, positions)
    u, _ = activation_stats(lm, "utility", cal, cache, progress, positions)
    with locked(lm.model):
        return flap_importance(lm.model, s), flap_importance(lm.model, u)
