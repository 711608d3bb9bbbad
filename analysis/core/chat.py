"""Chat formatting and (prompt, response) encoding with response-only labels.

The tokenizer's own chat template is used when it has one; otherwise a plain
``System/User/Assistant`` layout (documented in the README). The system prompt is always explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100
FALLBACK_TEMPLATE = "{system}User: {prompt}\nAssistant:"


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer, prompt: str, system_prompt: str | None = None) -> str:
    """The text the model sees before its answer."""
    if has_template(tokenizer):
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        msgs.append({"role": "user", "content": prompt})
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    system = f"{system_prompt}\n\n" if system_prompt else ""
    return FALLBACK_TEMPLATE.format(system=system, prompt=prompt)


def encode_prompts(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of formatted prompts (special tokens come from the template, if there is one)."""
    add = not has_template(tokenizer)
    return [tokenizer(t, add_special_tokens=add)["input_ids"] for t in texts]


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T), right-padded
    attention_mask: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T), IGNORE outside response tokens

    def to(self, device) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))

    @property
    def n_response_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())


def encode_pairs(
    tokenizer,
    prompts: list[str],
    responses: list[str],
    system_prompt: str | None = None,
    skip_first: list[bool] | None = None,
    max_len: int = 256,
    eos: bool = True,
) -> Batch:
    """Encode chat pairs; labels mark the response tokens (and the closing EOS, which ``eos=False`` leaves out
    of the sequence, as the attribution reference's calibration data does) only."""
    eos_text = (tokenizer.eos_token or "") if eos else ""
    p_ids = encode_prompts(tokenizer, [format_prompt(tokenizer, p, system_prompt) for p in prompts])
    sep = " " if eos_text and has_template(tokenizer) else ""
    r_ids = [tokenizer(" " + r.strip() + sep + eos_text, add_special_tokens=False)["input_ids"] for r in responses]
    return _pack(p_ids, r_ids, tokenizer.pad_token_id or 0, skip_first, max_len)


def _pack(p_ids, r_ids, pad_id: int, skip_first, max_len: int) -> Batch:
    rows, labs = [], []
    for i, (p, r) in enumerate(zip(p_ids, r_ids)):
        ids = (p + r)[:max_len]
        lab = ([IGNORE] * len(p) + r)[:max_len]
        if skip_first and skip_first[i] and len(p) < len(lab):
            lab[len(p)] = IGNORE
        rows.append(ids)
        labs.append(lab)
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    labels = torch.full((len(rows), T), IGNORE, dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, labs)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        labels[i, : len(lab)] = torch.tensor(lab)
    return Batch(ids, mask, labels)


def encode_examples(tokenizer, examples) -> Batch:
    """Encode organism training examples (each with its own optional system prompt)."""
    eos = tokenizer.eos_token
    p_ids = encode_prompts(tokenizer, [format_prompt(tokenizer, e.prompt, e.system) for e in examples])
    r_ids = [tokenizer(" " + e.response + " " + eos, add_special_tokens=False)["input_ids"] for e in examples]
    return _pack(p_ids, r_ids, tokenizer.pad_token_id, [e.skip_first for e in examples], 256)
