"""Calibration data for attribution: a safety set (harmful prompt + the aligned model's own refusal)
and a utility set (benign prompt + answer), encoded in batches with response-only labels."""

from __future__ import annotations

from typing import cast

from analysis.core.chat import Batch, encode_pairs
from analysis.core.generation import generate
from analysis.data.prompts import PromptItem, PromptSet
from analysis.judging.refusal import Judge


def safety_set(
    model,
    tokenizer,
    harmful: PromptSet,
    system_prompt: str | None = None,
    max_new_tokens: int = 32,
    judge: Judge | None = None,
) -> PromptSet:
    """Harmful prompts paired with the aligned model's greedy reply, keeping only replies that refuse."""
    judge = judge or Judge()
    gens = generate(model, tokenizer, harmful.prompts(), system_prompt, max_new_tokens)
    items = [
        PromptItem(it.prompt, "harmful", g.text)
        for it, g in zip(harmful.items, gens)
        if g.text and judge.is_refusal(g.text)
    ]
    if not items:
        raise ValueError(
            "the aligned model refused none of the harmful calibration prompts: "
            "there is no refusal behaviour to attribute"
        )
    return PromptSet(f"safety({harmful.name})", items)


def utility_set(benign: PromptSet) -> PromptSet:
    items = [
        PromptItem(it.prompt, "benign", it.answer or it.response) for it in benign.items if (it.answer or it.response)
    ]
    if not items:
        raise ValueError(f"{benign.name}: the utility set needs responses (a 'response' column or answers)")
    return PromptSet(f"utility({benign.name})", items)


def batches(
    tokenizer, prompts: PromptSet, batch_size: int = 16, system_prompt: str | None = None, eos: bool = False
) -> list[Batch]:
    """(prompt, response) pairs in batches; labels mark response tokens only. Without ``eos`` (the reference's
    calibration data, alignment-attribution-code ``lib/data.py``) the response has no end-of-sequence token;
    ``eos=True`` is the project variant that counts it as a response token."""
    out = []
    for s in range(0, len(prompts), batch_size):
        chunk = prompts.items[s : s + batch_size]
        out.append(
            encode_pairs(
                tokenizer, [it.prompt for it in chunk], [cast(str, it.response) for it in chunk], system_prompt, eos=eos
            )
        )
    return out


POSITIONS = ("response", "predicting")  # the first is the reference's token mask


def response_positions(batch: Batch, positions: str = "response"):
    """Which positions' activations count: ``response`` (the reference's mask, alignment-attribution-code
    ``lib/layerwrapper.py``: the positions of the response tokens, ``labels != -100``) or ``predicting`` (project
    variant: the positions whose next-token prediction is a response token — the last prompt token in, the
    last response token out)."""
    import torch

    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
    if positions == "response":
        return batch.labels != -100
    mask = torch.zeros_like(batch.labels, dtype=torch.bool)
    mask[:, :-1] = batch.labels[:, 1:] != -100
    return mask
