"""Batched greedy generation with a KV cache and early stop.

A sequence stops at EOS or once ``stop`` (e.g. "the judge has decided") says so for its text; the
batch stops when every sequence has stopped. Each result records how many tokens were generated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .chat import encode_prompts, format_prompt

Progress = Callable[[float, str], None]


@dataclass
class Generation:
    prompt: str
    text: str
    n_tokens: int
    stopped_by: str  # "eos", "decided" or "length"


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], system_prompt: str | None = None,
             max_new_tokens: int = 32, batch_size: int = 64,
             stop: Callable[[str], bool] | None = None,
             progress: Progress | None = None) -> list[Generation]:
    """Greedy answers to ``prompts``; ``stop(text)`` ends a sequence early once it returns True."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    texts = [format_prompt(tokenizer, p, system_prompt) for p in prompts]
    ids = encode_prompts(tokenizer, texts)
    _check_length(model, ids, prompts, max_new_tokens)
    # longest first: batches of similar length waste less padding
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    out: list[Generation | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        for i, g in zip(idx, _generate_batch(model, tokenizer, [ids[i] for i in idx], max_new_tokens, stop)):
            g.prompt = prompts[i]
            out[i] = g
        if progress:
            progress(min(1.0, (start + len(idx)) / len(order)), f"generated {start + len(idx)}/{len(order)}")
    return out  # type: ignore[return-value]


def _check_length(model, ids: list[list[int]], prompts: list[str], max_new_tokens: int) -> None:
    """Refuse (one line) prompts that, with the new tokens, run past the model's position embedding."""
    from .validate import max_positions

    pos = max_positions(model)
    if pos is None or not ids:
        return
    i = max(range(len(ids)), key=lambda j: len(ids[j]))
    if len(ids[i]) + max_new_tokens > pos:
        raise ValueError(f"prompt {i + 1} is {len(ids[i])} tokens long (with the chat template); with "
                         f"max_new_tokens {max_new_tokens} that exceeds the model's {pos} positions: "
                         f"{prompts[i][:50]!r}…; shorten it or lower max_new_tokens")


def left_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, position_ids) of token rows padded on the left (last token at -1)."""
    B, T = len(rows), max(len(r) for r in rows)
    input_ids = torch.full((B, T), pad, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, T - len(r):] = torch.tensor(r)
        mask[i, T - len(r):] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _generate_batch(model, tokenizer, rows: list[list[int]], max_new: int, stop) -> list[Generation]:
    dev = _device(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    eos = tokenizer.eos_token_id
    B = len(rows)
    input_ids, mask, pos = (t.to(dev) for t in left_padded(rows, pad))
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=True)
    past = out.past_key_values
    next_pos = pos[:, -1:] + 1
    tokens = torch.empty((B, max_new), dtype=torch.long)
    n_new = torch.zeros(B, dtype=torch.long)
    reason = [""] * B
    active = torch.ones(B, dtype=torch.bool)
    rows = torch.arange(B)  # which sequences the live batch rows hold (finished rows are dropped)
    can_compact = hasattr(past, "batch_select_indices")
    for step in range(max_new):
        nxt = out.logits[:, -1, :].argmax(-1).cpu()
        live = active[rows]
        if eos is not None:
            hit = live & (nxt == eos)
            for i in rows[hit].tolist():
                reason[i] = "eos"
            active[rows[hit]] = False
        tokens[rows, step] = nxt
        n_new[rows] += active[rows].long()
        if stop is not None and active.any():
            idx = rows[active[rows]].tolist()
            texts = tokenizer.batch_decode([tokens[i, :n_new[i]].tolist() for i in idx], skip_special_tokens=True)
            for i, text in zip(idx, texts):
                if stop(text):
                    active[i], reason[i] = False, "decided"
        if not active.any() or step == max_new - 1:
            break
        live = active[rows]
        if can_compact and int(live.sum()) < 0.75 * len(rows):
            keep = live.nonzero().flatten()
            past.batch_select_indices(keep.to(dev))
            mask, next_pos, nxt, rows, live = mask[keep.to(dev)], next_pos[keep.to(dev)], nxt[keep], rows[keep], live[keep]
        feed = torch.where(live, nxt, torch.full_like(nxt, pad)).to(dev)
        mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=mask.dtype, device=dev)], dim=1)
        out = model(input_ids=feed[:, None], attention_mask=mask, position_ids=next_pos,
                    past_key_values=past, use_cache=True)
        past = out.past_key_values
        next_pos = next_pos + 1
    new_tokens = [tokens[i, :n_new[i]].tolist() for i in range(B)]
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [Generation("", t.strip(), len(ids), reason[i] or "length")
            for i, (t, ids) in enumerate(zip(texts, new_tokens))]
