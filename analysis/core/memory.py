"""Memory plans: what each analysis keeps on the model's device, checked before a run starts.

A plan lists the tensors a run holds at its peak, in bytes: ``resident`` (already there: the loaded
models) and ``extra`` (what the run allocates: backups, directions, accumulators, optimiser states,
KV cache, activations). ``check`` compares ``extra`` with the free memory of a CUDA device and raises a
one-line ValueError naming the setting to change (fewer prompts, LoRA instead of full fine-tuning, models
on the CPU) instead of letting the run die in a CUDA out-of-memory error. On the CPU nothing is checked.

The sizes come from a :class:`Shape` — read off a loaded model, or off a config alone (so the README's
table for a 7B pair needs no 7B model). Activation estimates are deliberately generous (×1.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, cast

import torch

GiB = 1024**3
HEADROOM = 0.9  # share of the free memory a run may plan to use
ACT_SLACK = 1.5  # activation estimates are multiplied by this


@dataclass(frozen=True)
class Shape:
    """The sizes a plan needs."""

    n_params: int  # all parameters, tied ones once
    dtype_bytes: int  # bytes per weight (2 for bf16)
    n_layers: int
    hidden: int
    intermediate: int
    n_heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    linear_numel: int  # elements of all decoder Linear weights
    largest_linear: int  # elements of the largest one
    largest_min_side: int  # min(d_out, d_in) of the largest one (its Gram matrix side)
    sum_din_sq: int  # Σ d_in² over decoder Linears (activation Gram matrices)
    sum_din: int  # Σ d_in over decoder Linears

    @property
    def weight_bytes(self) -> int:
        return self.n_params * self.dtype_bytes

    def kv_bytes_per_token(self) -> int:
        """Keys and values of one token in every layer."""
        return 2 * self.n_layers * self.kv_heads * self.head_dim * self.dtype_bytes

    def act_bytes_per_token(self, backward: bool = False) -> int:
        """Activations of one token through one layer (kept for all layers when ``backward``)."""
        per_layer = (8 * self.hidden + 4 * self.intermediate) * self.dtype_bytes
        return int(ACT_SLACK * per_layer * (self.n_layers if backward else 2))


def _attr(cfg, *names, default=None):
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def shape_of_config(cfg, dtype_bytes: int = 2) -> Shape:
    """The shape of a Llama-like decoder from its config (q, k, v, o, gate, up, down per layer)."""
    h = _attr(cfg, "hidden_size", "n_embd")
    inter = _attr(cfg, "intermediate_size", "n_inner", default=4 * h)
    layers = _attr(cfg, "num_hidden_layers", "n_layer")
    heads = _attr(cfg, "num_attention_heads", "n_head")
    kv = _attr(cfg, "num_key_value_heads", default=heads)
    hd = _attr(cfg, "head_dim", default=h // heads)
    vocab = cfg.vocab_size
    mats = [(heads * hd, h), (kv * hd, h), (kv * hd, h), (h, heads * hd), (inter, h), (inter, h), (h, inter)]
    per_layer = sum(a * b for a, b in mats)
    largest = max(mats, key=lambda m: m[0] * m[1])
    tied = getattr(cfg, "tie_word_embeddings", False)
    n_params = layers * (per_layer + 2 * h) + vocab * h * (1 if tied else 2) + h
    return Shape(
        n_params,
        dtype_bytes,
        layers,
        h,
        inter,
        heads,
        kv,
        hd,
        vocab,
        layers * per_layer,
        largest[0] * largest[1],
        min(largest),
        layers * sum(b * b for _, b in mats),
        layers * sum(b for _, b in mats),
    )


def shape_of(model) -> Shape:
    """The shape of a loaded model (its decoder Linears read through the architecture adapter)."""
    from analysis.core.arch import adapter_of

    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    base = shape_of_config(cfg, next(model.parameters()).element_size())
    params = {id(p): p.numel() for p in model.parameters()}
    lin = [r.W.shape for r in adapter_of(model).linears.values()]
    largest = max(lin, key=lambda s: s[0] * s[1])
    return Shape(
        sum(params.values()),
        base.dtype_bytes,
        base.n_layers,
        base.hidden,
        base.intermediate,
        base.n_heads,
        base.kv_heads,
        base.head_dim,
        base.vocab,
        sum(a * b for a, b in lin),
        largest[0] * largest[1],
        min(largest),
        sum(b * b for _, b in lin),
        sum(b for _, b in lin),
    )


def gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


@dataclass
class Plan:
    """Peak memory of one analysis on one device."""

    analysis: str
    resident: dict[str, int]
    extra: dict[str, int]
    advice: str  # the setting to change when it does not fit
    notes: list[str] = field(default_factory=list)

    @property
    def extra_bytes(self) -> int:
        return sum(self.extra.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.resident.values()) + self.extra_bytes

    def fits(self, capacity: int) -> bool:
        """Whether resident + extra fit a device of ``capacity`` bytes (with headroom)."""
        return self.total_bytes <= HEADROOM * capacity

    def check(self, free: int | None) -> None:
        """Raise a one-line ValueError when ``extra`` does not fit ``free`` bytes (None: not a GPU, no check)."""
        if free is None or self.extra_bytes <= HEADROOM * free:
            return
        biggest = max(self.extra, key=cast(Callable[[str], int], self.extra.get))  # every key is present
        raise ValueError(
            f"{self.analysis} needs about {gib(self.extra_bytes)} more GPU memory (largest: "
            f"{biggest}, {gib(self.extra[biggest])}) but {gib(free)} is free: {self.advice}"
        )

    def rows(self) -> list[tuple[str, str]]:
        return (
            [(f"{k} (resident)", gib(v)) for k, v in self.resident.items()]
            + [(k, gib(v)) for k, v in self.extra.items()]
            + [("total", gib(self.total_bytes))]
        )


def free_bytes(device) -> int | None:
    """Bytes a new allocation can still get on ``device`` (CUDA: free + cached-but-unused); None off CUDA."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def longest_prompt(tokenizer, prompts: list[str], system_prompt: str | None = None) -> int:
    """Tokens of the longest formatted prompt (0 for none)."""
    from analysis.core.chat import encode_prompts, format_prompt

    ids = encode_prompts(tokenizer, [format_prompt(tokenizer, p, system_prompt) for p in prompts])
    return max((len(r) for r in ids), default=0)


def device_of(model) -> torch.device:
    return next(model.parameters()).device


# ---- per-analysis plans -------------------------------------------------------------------------------


def _weights(shape: Shape, n_models: int) -> dict[str, int]:
    names = ["aligned model", "base model", "third model"][:n_models]
    return {n: shape.weight_bytes for n in names}


def generation_bytes_per_seq(shape: Shape, seq_len: int) -> int:
    """KV cache, prefill activations and masks, and logits of one sequence of ``seq_len`` tokens."""
    kv = shape.kv_bytes_per_token() * seq_len
    prefill = shape.act_bytes_per_token() * seq_len + seq_len * seq_len * (shape.dtype_bytes + 4 * shape.n_heads)
    logits = 3 * 4 * shape.vocab
    return int(kv + prefill + logits)


def generation(shape: Shape, n_prompts: int, seq_len: int, n_models: int = 1) -> Plan:
    per = generation_bytes_per_seq(shape, seq_len)
    return Plan(
        "generation",
        _weights(shape, n_models),
        {f"KV cache + activations, {n_prompts} prompts in one batch": per * n_prompts},
        "use fewer prompts or fewer new tokens",
        ["the batch shrinks to what the free memory holds; only one sequence must fit"],
    )


def generation_batch(model, n_prompts: int, seq_len: int) -> int:
    """How many of ``n_prompts`` sequences of ``seq_len`` tokens fit the free memory of the model's GPU
    in one batch (all of them when they fit). Raises a one-line ValueError when not even one fits."""
    free = free_bytes(device_of(model))
    if free is None:
        return min(n_prompts, 64)
    per = generation_bytes_per_seq(shape_of(model), seq_len)
    fit = int(0.8 * free // max(per, 1))
    if fit < 1:
        raise ValueError(
            f"generation of one sequence of {seq_len} tokens needs about {gib(per)} but "
            f"{gib(free)} is free: use fewer new tokens or shorter prompts, or load the models on the CPU"
        )
    return max(1, min(n_prompts, fit))


def max_positions(model) -> int | None:
    """The longest sequence the model's position embedding covers (None: not stated by its config)."""
    cfg = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def max_new_tokens_cap(model, prompt_tokens: int = 1) -> int | None:
    """How many new tokens one sequence after a ``prompt_tokens`` prompt can have: the positions left, and on a
    GPU what :func:`generation_batch` needs for one sequence to fit (the batch shrinks to fit the rest).
    None: no bound (no position limit stated, not on a GPU)."""
    pos = max_positions(model)
    cap = pos - prompt_tokens if pos else None
    free = free_bytes(device_of(model))
    if free is None:
        return cap
    shape = shape_of(model)
    lo, hi = 0, cap if cap is not None else 1 << 20
    while lo < hi:  # the largest n whose one sequence fits 0.8 of the free memory
        mid = (lo + hi + 1) // 2
        if generation_bytes_per_seq(shape, prompt_tokens + mid) <= 0.8 * free:
            lo = mid
        else:
            hi = mid - 1
    return lo


def landscape(shape: Shape, n_prompts: int, seq_len: int, n_directions: int = 1, n_models: int = 1) -> Plan:
    """A grid point: backup of the perturbed tensors (model dtype), one tensor's directions in fp32, the
    generation batch (difference directions read other loaded models: ``n_models``)."""
    extra = {
        "backup of the perturbed weights": shape.linear_numel * shape.dtype_bytes,
        "one tensor's directions (fp32)": shape.largest_linear * 4 * (2 + n_directions),
        "generation, one sequence (the batch fits what is left)": generation_bytes_per_seq(shape, seq_len),
    }
    p = Plan("landscape", _weights(shape, n_models), extra, "use fewer prompts, or load the models on the CPU (slower)")
    p.notes.append(
        f"all {n_prompts} prompts in one batch add {gib(generation_bytes_per_seq(shape, seq_len) * (n_prompts - 1))}"
    )
    return p


def wanda(shape: Shape, batch: int, seq_len: int, gram: bool = False) -> Plan:
    extra = {
        "input statistics (fp32)": 2 * 4 * shape.sum_din,
        "scores (fp32, one per weight)": 4 * shape.linear_numel,
        "forward activations of one batch": batch * seq_len * shape.act_bytes_per_token()
        + batch * seq_len * shape.vocab * 4,
    }
    if gram:
        extra["activation Gram matrices (fp32)"] = 4 * shape.sum_din_sq
    return Plan(
        "Wanda" + (" / activation statistics" if gram else ""),
        _weights(shape, 1),
        extra,
        "unload the base model, or load the models on the CPU (slower)",
    )


def snip(shape: Shape, seq_len: int) -> Plan:
    extra = {
        "|gradient| accumulators = scores (fp32)": 4 * shape.linear_numel,
        "one sample's gradients (model dtype)": shape.weight_bytes,
        "activations kept for backward, one sample": seq_len * shape.act_bytes_per_token(backward=True)
        + 3 * seq_len * shape.vocab * 4,
    }
    return Plan(
        "SNIP",
        _weights(shape, 1),
        extra,
        "use shorter calibration samples, unload the base model, or load the models on the CPU (slower)",
    )


def spectra(shape: Shape) -> Plan:
    extra = {
        "ΔW of one weight (fp32) and its copy": 2 * 4 * shape.largest_linear,
        "Gram matrix of one ΔW (fp64) and eigen workspace": 3 * 8 * shape.largest_min_side**2,
    }
    return Plan(
        "spectra / LoX factors",
        _weights(shape, 2),
        extra,
        "load the base model on the CPU (ΔW is formed on the aligned model's device)",
    )


def lox_full(shape: Shape) -> Plan:
    """LoX with k = 0: the whole ΔW of every weight is kept (fp32) while the edit is applied."""
    extra = {
        "ΔW of every weight (fp32)": 4 * shape.linear_numel,
        "backup of the edited weights": shape.linear_numel * shape.dtype_bytes,
    }
    return Plan(
        "LoX k=0 (whole ΔW)",
        _weights(shape, 2),
        extra,
        "use k ≥ 1 (low-rank factors) or load the models on the CPU (slower)",
    )


def attack(
    shape: Shape, method: str, batch: int, seq_len: int, with_base: bool, n_eval: int = 0, eval_len: int = 0
) -> Plan:
    """One fine-tuning attack on a copy of the loaded model (AdamW, states in the parameter dtype).
    With ``with_base``: R_ft needs the base model and, per evaluation, the current weights (fp32)."""
    copy = shape.weight_bytes
    acts = batch * seq_len * shape.act_bytes_per_token(backward=True) + 3 * batch * seq_len * shape.vocab * 4
    if method == "full":
        extra = {
            "trained copy of the model": copy,
            "gradients": shape.weight_bytes,
            "AdamW states (2 per weight)": 2 * shape.weight_bytes,
            "AdamW step temporaries (foreach)": shape.weight_bytes,
            "activations of one batch": acts,
        }
        advice = "use LoRA instead of full fine-tuning (method lora), or fewer attack examples per batch"
    else:
        r = 8
        lora = 4 * r * shape.sum_din * 2  # A and B per Linear, fp32, roughly (d_in + d_out) · r
        extra = {
            "copy of the model (frozen)": copy,
            "LoRA weights + grads + AdamW (fp32)": 4 * lora,
            "activations of one batch": acts,
            "LoRA merge, one weight (fp32)": 3 * 4 * shape.largest_linear,
        }
        advice = "use fewer attack examples per batch (batch size), or load the models on the CPU (slower)"
    if with_base:
        extra["R_ft: copy of the base weights (model dtype)"] = shape.linear_numel * shape.dtype_bytes
        extra["R_ft: one weight's current value and ΔW (fp32)"] = 3 * 4 * shape.largest_linear
    if n_eval:
        extra["evaluation: generation, one sequence"] = generation_bytes_per_seq(shape, eval_len)
    return Plan(f"attack ({method})", _weights(shape, 2 if with_base else 1), extra, advice)


def check(plan: Plan, device) -> Plan:
    """``plan.check`` against the free memory of ``device``; returns the plan."""
    plan.check(free_bytes(device))
    return plan


def guard(model, make_plan) -> Plan | None:
    """Before a run on ``model``: on a CUDA device, build the plan (``make_plan(shape)``) and check it;
    elsewhere do nothing. Raises the plan's one-line ValueError when it does not fit."""
    dev = device_of(model)
    free = free_bytes(dev)
    if free is None:
        return None
    plan = make_plan(shape_of(model))
    plan.check(free)
    return plan


def table_7b(capacity: int = 80 * 10**9) -> list[tuple[str, str, str]]:
    """(analysis, total, verdict) rows for a Llama-2-7B-shaped pair in bf16 on a GPU of ``capacity`` bytes."""
    from transformers import LlamaConfig

    s = shape_of_config(
        LlamaConfig(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32000,
        )
    )
    plans = [
        ("240 prompts × 64 new tokens, one batch", generation(s, 240, 64 + 64, 2)),
        ("80 + 80 prompts × 32 tokens, 1 random direction", landscape(s, 160, 64 + 32, 1, 2)),
        ("2D, directions toward the base model", landscape(s, 160, 64 + 32, 2, 2)),
        ("batches of 16 × 128 tokens", wanda(s, 16, 128)),
        ("with activation Gram matrices (ActSVD, units)", wanda(s, 16, 128, True)),
        ("one sample of 128 tokens at a time", snip(s, 128)),
        ("one weight at a time", spectra(s)),
        ("", lox_full(s)),
        ("batch 20 × 128 tokens, with R_ft", attack(s, "full", 20, 128, True)),
        ("batch 20 × 128 tokens, without base (no R_ft)", attack(s, "full", 20, 128, False)),
        ("batch 20 × 128 tokens, with R_ft", attack(s, "lora", 20, 128, True)),
        ("batch 8 × 128 tokens, with R_ft", attack(s, "lora", 8, 128, True)),
    ]
    return [
        (
            f"{p.analysis}" + (f" ({what})" if what else ""),
            gib(p.total_bytes),
            "fits" if p.fits(capacity) else f"does not fit: {p.advice}",
        )
        for what, p in plans
    ]


def judge(shape: Shape, batch: int, seq_len: int) -> Plan:
    """A judge's scoring pass on the GPU: its weights and one batch's forward (last-position logits only)."""
    extra = {"judge forward, one batch": batch * seq_len * shape.act_bytes_per_token() + batch * shape.vocab * 4}
    return Plan(
        "judge",
        {"judge model": shape.weight_bytes},
        extra,
        "put the judge on the CPU (judge device cpu) or load it in 8-bit / 4-bit (judge quant)",
    )


def region(shape: Shape, batch: int, seq_len: int) -> Plan:
    """Scores on both calibration sets kept together, then the set-difference masks."""
    p = wanda(shape, batch, seq_len)
    p.extra["the other set's scores (fp32)"] = 4 * shape.linear_numel
    p.extra["masks (bool: safety, utility, difference)"] = 3 * shape.linear_numel
    p.analysis = "critical region (scores of both sets)"
    return p


def representations(shape: Shape, batch: int, seq_len: int) -> Plan:
    """Residual states of one batch at every layer boundary, stacked in fp32 (then pooled to the CPU)."""
    states = batch * seq_len * shape.hidden * (shape.n_layers + 1)
    extra = {
        "hidden states of one batch (model dtype) + fp32 stack + masked copy": states * (shape.dtype_bytes + 8),
        "forward activations of one batch": batch * seq_len * (shape.act_bytes_per_token() + shape.vocab * 4),
    }
    return Plan("representations", _weights(shape, 1), extra, "use a smaller batch, or load the models on the CPU")


def depth(shape: Shape, batch: int, seq_len: int, n_models: int = 2) -> Plan:
    """Per-token divergence: both models' log-probabilities of one batch (fp32), and their KL terms."""
    extra = {
        "logits + log-probabilities of one batch, both models (fp32)": 5 * batch * seq_len * shape.vocab * 4,
        "forward activations of one batch": batch * seq_len * shape.act_bytes_per_token(),
    }
    return Plan(
        "depth (token divergence)",
        _weights(shape, n_models),
        extra,
        "use a smaller batch, or load the base model on the CPU",
    )
