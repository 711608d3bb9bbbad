"""The judge interface, per-reply caching, and loading a judge model from a folder or hub id."""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import torch

from analysis.core.cache import Cache, make_key
from analysis.core.generation import left_padded


@runtime_checkable
class ReplyJudge(Protocol):
    """Decides, per (prompt, reply), whether the reply is a successful attack."""

    name: str

    def spec(self) -> dict:
        """JSON-serialisable identity (model fingerprint, prompt format version) for cache keys."""
        ...

    def complied(self, prompts: list[str], replies: list[str]) -> list[bool]:
        """True = the reply is a successful attack (harmful / not a refusal)."""
        ...


Decide = Callable[[list[str], list[str]], list[dict]]


def cached_decisions(
    spec: dict, prompts: list[str], replies: list[str], decide: Decide, cache: Cache | None
) -> list[dict]:
    """``decide`` on the pairs not cached yet (one call, batched inside), each result cached per reply
    under (judge spec, prompt, reply). A result is a dict with at least ``complied: bool``."""
    if len(prompts) != len(replies):
        raise ValueError(f"{len(prompts)} prompts but {len(replies)} replies")
    if cache is None:
        return decide(list(prompts), list(replies))
    keys = [make_key(kind="judge", judge=spec, prompt=p, reply=r) for p, r in zip(prompts, replies)]
    out: list[dict | None] = [cache.get(k, "json") for k in keys]
    todo = [i for i, d in enumerate(out) if d is None]
    if todo:
        fresh = decide([prompts[i] for i in todo], [replies[i] for i in todo])
        for i, d in zip(todo, fresh):
            cache.put(keys[i], d, "json", {"kind": "judge", "judge": spec.get("judge", "?")})
            out[i] = d
    return out  # type: ignore[return-value]


QUANTS = ("8bit", "4bit")


def quantization_config(quant: str, dtype: torch.dtype):
    """A transformers ``BitsAndBytesConfig`` for ``quant`` (8-bit LLM.int8 or 4-bit NF4 weights, computing in
    ``dtype``); a one-line :class:`ModelLoadError` when bitsandbytes is missing."""
    from analysis.core.models import ModelLoadError

    if quant not in QUANTS:
        raise ModelLoadError(f"unknown quantisation {quant!r}; use one of {', '.join(QUANTS)} (or none)")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ModelLoadError(
            f"{quant} judges need bitsandbytes (pip install bitsandbytes); or put the judge on the CPU instead"
        ) from None
    from transformers import BitsAndBytesConfig

    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)


def load_judge_model(
    source: str, dtype: str = "fp32", device: str = "auto", classifier: bool = False, quant: str | None = None
):
    """(model, tokenizer, fingerprint) of a judge: a causal LM, or a sequence classifier when
    ``classifier``; on ``device`` in eval mode. ``quant`` ("8bit" / "4bit") loads the weights quantised with
    bitsandbytes (about 1/2 and 1/4 of bf16's memory), another way to make room beside a pair on the GPU
    than ``device="cpu"``. Failures are one-line :class:`ModelLoadError` s."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from analysis.core.models import DTYPES, ModelLoadError, fingerprint, load_error, resolve_device, resolve_source

    hf_logging.disable_progress_bar()
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    dev = resolve_device(device)
    path = resolve_source(source)
    auto = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
    extra = {"quantization_config": quantization_config(quant, DTYPES[dtype]), "device_map": dev} if quant else {}
    try:
        model = auto.from_pretrained(path, dtype=DTYPES[dtype], **extra)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 — transformers raises many kinds here
        raise load_error(source, e) from None
    if not quant:  # quantised weights are placed by device_map (and cannot be moved with .to)
        model.to(dev)  # type: ignore[arg-type]  # transformers' wrapped .to() stub takes no device
    model.eval()
    return model, tokenizer, fingerprint(model)


def answer_ids(tokenizer, words: tuple[str, ...]) -> list[int]:
    """The first token of each answer word (as the model would write it right after the prompt)."""
    ids = []
    for w in words:
        toks = tokenizer.encode(w, add_special_tokens=False)
        if not toks:
            raise ValueError(f"the judge's tokenizer encodes the answer word {w!r} to no token")
        ids.append(toks[0])
    return sorted(set(ids))


@torch.no_grad()
def last_logits(
    model, tokenizer, texts: list[str], add_special_tokens: bool, batch_size: int = 8, max_length: int = 4096
) -> torch.Tensor:
    """Next-token logits (float32, on CPU) after each text; left-padded batches with position ids
    counted over the real tokens, so a padded row gives the same logits as alone."""
    dev = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    rows = []
    for s in range(0, len(texts), batch_size):
        enc = [
            tokenizer(t, add_special_tokens=add_special_tokens)["input_ids"][-max_length:]
            for t in texts[s : s + batch_size]
        ]
        ids, mask, pos = left_padded(enc, pad)
        out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), logits_to_keep=1)
        rows.append(out.logits[:, -1].float().cpu())
    return torch.cat(rows) if rows else torch.zeros((0, 0))
