"""Training loop for the organism: response-only loss, AdamW, warm-up + cosine or constant lr.

Deterministic on CPU for a fixed seed: examples come from a seeded :class:`corpus.World`, and the
model's initialisation from ``torch.manual_seed``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from analysis.core.chat import encode_examples
from analysis.data.organism import corpus


@dataclass(frozen=True)
class ModelShape:
    hidden: int = 128
    intermediate: int = 512
    layers: int = 4
    heads: int = 4
    max_positions: int = 128


@dataclass(frozen=True)
class TrainRecipe:
    steps: int
    lr: float
    mixture: dict
    batch_size: int = 64
    warmup: int = 0
    schedule: str = "constant"  # "constant" or "cosine"
    weight_decay: float = 0.0
    clip: float = 1.0
    system_p: float = 0.3
    seed: int = 0
    label_smoothing: float = 0.0  # 0: plain cross-entropy (the shipped recipes); > 0 caps the model's confidence
    trainable: str = ""  # a regex over parameter names: only those it finds are trained ("": every parameter)


def new_model(vocab_size: int, shape: ModelShape, tokenizer, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=shape.max_positions,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        hidden_act="silu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg)


def lr_at(step: int, r: TrainRecipe) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    if r.schedule == "cosine":
        t = (step - r.warmup) / max(1, r.steps - r.warmup)
        return r.lr * 0.5 * (1 + math.cos(math.pi * t))
    return r.lr


def _loss(model, batch, label_smoothing: float) -> torch.Tensor:
    """Next-token cross-entropy on the labelled tokens (the model's own loss when there is no smoothing)."""
    if not label_smoothing:
        return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        batch.labels[:, 1:].reshape(-1),
        ignore_index=-100,
        label_smoothing=label_smoothing,
    )


def trainable_names(names: list[str], pattern: str) -> list[str]:
    """The parameter names a recipe trains: all of them, or those ``pattern`` finds (``re.search``); a pattern that
    finds none is an error (ValueError; a malformed pattern raises ``re.error``)."""
    chosen = [n for n in names if re.search(pattern, n)] if pattern else list(names)
    if not chosen:
        raise ValueError(f"trainable {pattern!r} matches no parameter of the model")
    return chosen


def trainable_parameters(model, pattern: str) -> list[torch.nn.Parameter]:
    """The parameters a recipe trains (see :func:`trainable_names`)."""
    if not pattern:
        return list(model.parameters())
    params = dict(model.named_parameters())
    return [params[n] for n in trainable_names(list(params), pattern)]


def train(
    model,
    tokenizer,
    recipe: TrainRecipe,
    on_step: Callable[[int, float], bool] | None = None,
    extra_grad: Callable[[list[torch.nn.Parameter], object], None] | None = None,
) -> list[float]:
    """Train in place; ``on_step(step, loss)`` may return True to stop early. Returns the loss curve.
    ``extra_grad(params, batch)``, if given, runs after each backward pass and may change the parameters' gradients
    (a regulariser with its own forward passes; the alignment experiments in ``benchmarks/align_variants.py``)."""
    world = corpus.World(recipe.seed)
    params = trainable_parameters(model, recipe.trainable)
    opt = torch.optim.AdamW(params, lr=recipe.lr, betas=(0.9, 0.98), weight_decay=recipe.weight_decay)
    model.train()
    losses = []
    t0 = time.time()
    for step in range(recipe.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, recipe)
        batch = encode_examples(
            tokenizer, [world.sample(recipe.mixture, recipe.system_p) for _ in range(recipe.batch_size)]
        )
        loss = _loss(model, batch, recipe.label_smoothing)
        model.zero_grad(set_to_none=True)  # the frozen parameters too (their gradients are never used)
        loss.backward()
        if extra_grad is not None:
            extra_grad(params, batch)
        torch.nn.utils.clip_grad_norm_(params, recipe.clip)
        opt.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0:
            print(f"  step {step:5d}  loss {losses[-1]:.4f}  {time.time() - t0:6.1f}s", flush=True)
        if on_step is not None and on_step(step + 1, losses[-1]):
            break
    model.eval()
    return losses
