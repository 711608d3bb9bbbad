"""The greedy decoding loop over one or more models' next-token distributions.

:mod:`analysis.core.generation` runs its CPU loop through :func:`decode_batch`, and the decoding-time attacks of
:mod:`analysis.methods.depth` use it directly: batched, left padding with explicit position ids, one KV cache per model,
early stop by EOS or a ``stop`` decision, finished rows dropped from the batch and from every cache; plus

- ``combine``: the next-token scores from the last-position logits of several models (e.g. the emulated
  disalignment contrast of base and aligned); greedy picks the arg-max of the scores;
- rows are token ids, so a caller can place a prefix after the assistant tag (the prefilling attack).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

Progress = Callable[[float, str], None]
Combine = Callable[[list[torch.Tensor]], torch.Tensor]  # per-model (B, V) logits -> (B, V) scores
StopTokens = Callable[[list[list[int]]], list[bool]]  # generated token rows -> decided?


@dataclass
class Decoded:
    tokens: list[int]  # generated ids (EOS excluded)
    stopped_by: str  # "eos", "decided" or "length"


def left_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, position_ids) of token rows padded on the left (last token at -1)."""
    B, T = len(rows), max(len(r) for r in rows)
    input_ids = torch.full((B, T), pad, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, T - len(r) :] = torch.tensor(r)
        mask[i, T - len(r) :] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _dev(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def contrast(alpha: float) -> Combine:
    """Emulated disalignment (Zhou et al. 2024): log-softmax of (1 + α) log p_base − α log p_aligned, for
    ``models = [base, aligned]``. α = 0 is the base; α = −1 the aligned model."""

    def combine(logits: list[torch.Tensor]) -> torch.Tensor:
        base, aligned = (torch.log_softmax(x.to(torch.promote_types(x.dtype, torch.float32)), -1) for x in logits)
        return torch.log_softmax((1 + alpha) * base - alpha * aligned.to(base.device), -1)

    return combine


@torch.no_grad()
def greedy_tokens(
    models: Sequence[nn.Module],
    rows: list[list[int]],
    max_new_tokens: int,
    eos: int | None,
    pad: int,
    combine: Combine | None = None,
    stop: StopTokens | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> list[Decoded]:
    """Greedy continuations of token ``rows`` under ``combine`` of ``models``' logits (the first model's
    logits when ``combine`` is None)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not models:
        raise ValueError("decoding needs at least one model")
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))  # similar lengths share a batch
    out: list[Decoded | None] = [None] * len(rows)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        for i, d in zip(idx, decode_batch(models, [rows[i] for i in idx], max_new_tokens, eos, pad, combine, stop)):
            out[i] = d
        if progress:
            progress(min(1.0, (start + len(idx)) / len(order)), f"decoded {start + len(idx)}/{len(order)}")
    return out  # type: ignore[return-value]


def decode_batch(
    models: Sequence[nn.Module],
    rows: list[list[int]],
    max_new: int,
    eos: int | None,
    pad: int,
    combine: Combine | None = None,
    stop: StopTokens | None = None,
) -> list[Decoded]:
    """One batch of :func:`greedy_tokens` (also the CPU generation loop of :mod:`analysis.core.generation`)."""
    B = len(rows)
    ids, mask0, pos0 = left_padded(rows, pad)
    devs = [_dev(m) for m in models]
    masks = [mask0.to(d) for d in devs]
    next_pos = [pos0[:, -1:].to(d) + 1 for d in devs]
    outs = [
        m(input_ids=ids.to(d), attention_mask=mk, position_ids=pos0.to(d), use_cache=True)
        for m, d, mk in zip(models, devs, masks)
    ]
    pasts = [o.past_key_values for o in outs]
    can_compact = all(hasattr(p, "batch_select_indices") for p in pasts)
    tokens = torch.empty((B, max_new), dtype=torch.long)
    n_new = torch.zeros(B, dtype=torch.long)
    reason = [""] * B
    active = torch.ones(B, dtype=torch.bool)
    live_rows = torch.arange(B)  # which sequences the batch rows hold (finished rows are dropped)
    for step in range(max_new):
        last = [o.logits[:, -1, :] for o in outs]
        scores = combine(last) if combine is not None else last[0]
        nxt = scores.argmax(-1).cpu()
        live = active[live_rows]
        if eos is not None:
            hit = live & (nxt == eos)
            for i in live_rows[hit].tolist():
                reason[i] = "eos"
            active[live_rows[hit]] = False
        tokens[live_rows, step] = nxt
        n_new[live_rows] += active[live_rows].long()
        if stop is not None and active.any():
            idx = live_rows[active[live_rows]].tolist()
            for i, decided in zip(idx, stop([tokens[i, : n_new[i]].tolist() for i in idx])):
                if decided:
                    active[i], reason[i] = False, "decided"
        if not active.any() or step == max_new - 1:
            break
        live = active[live_rows]
        if can_compact and int(live.sum()) < 0.75 * len(live_rows):
            keep = live.nonzero().flatten()
            for p, d in zip(pasts, devs):
                p.batch_select_indices(keep.to(d))
            masks = [mk[keep.to(d)] for mk, d in zip(masks, devs)]
            next_pos = [np_[keep.to(d)] for np_, d in zip(next_pos, devs)]
            nxt, live_rows, live = nxt[keep], live_rows[keep], live[keep]
        feed = torch.where(live, nxt, torch.full_like(nxt, pad))
        masks = [
            torch.cat([mk, torch.ones((len(live_rows), 1), dtype=mk.dtype, device=d)], 1) for mk, d in zip(masks, devs)
        ]
        outs = [
            m(input_ids=feed[:, None].to(d), attention_mask=mk, position_ids=np_, past_key_values=p, use_cache=True)
            for m, d, mk, np_, p in zip(models, devs, masks, next_pos, pasts)
        ]
        pasts = [o.past_key_values for o in outs]
        next_pos = [np_ + 1 for np_ in next_pos]
    return [Decoded(tokens[i, : n_new[i]].tolist(), reason[i] or "length") for i in range(B)]


def pad_id(tokenizer) -> int:
    """The padding id :mod:`analysis.core.generation` uses."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def text_stop(tokenizer, stop: Callable[[str], bool] | None) -> StopTokens | None:
    """A token-level stop decision from a text-level one (``stop(decoded text)``)."""
    if stop is None:
        return None

    def decide(rows: list[list[int]]) -> list[bool]:
        return [stop(t) for t in tokenizer.batch_decode(rows, skip_special_tokens=True)]

    return decide
