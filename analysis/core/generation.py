"""Batched greedy generation with a KV cache and early stop.

A sequence stops at EOS or once ``stop`` (e.g. "the judge has decided") says so for its text; the
batch stops when every sequence has stopped. Each result records how many tokens were generated.

Two loops give the same tokens:
- ``dynamic`` (the CPU default): a growing KV cache, finished rows dropped from the batch, the host
  checks every step.
- ``static`` (the default for a model on a CUDA GPU whose architecture supports a static cache): the
  whole batch — every prompt of a set when it fits the free GPU memory — in a preallocated KV cache with
  explicit 4D masks, each decode step replayed as one CUDA graph; the host looks at the tokens every
  ``CHECK_EVERY`` steps (EOS and ``stop`` are then resolved exactly, token by token, assuming that once
  ``stop`` says True for a text it says True for every continuation of it — true of keyword judges).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch

from analysis.core.chat import encode_prompts, format_prompt
from analysis.core.decoding import Progress, decode_batch, left_padded, pad_id, text_stop  # noqa: F401 (re-exported)


@dataclass
class Generation:
    prompt: str
    text: str
    n_tokens: int
    stopped_by: str  # "eos", "decided" or "length"


LOOPS = ("dynamic", "static")
CPU_BATCH = 64  # the batch size on the CPU (and the cap of the dynamic loop when none is given)
CHECK_EVERY = 4  # static loop: decode steps between two looks at the tokens on the host
LAST_RUN: dict = {}  # how the last call ran: loop, batch sizes, CUDA graphs used (for benchmarks)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def static_supported(model) -> bool:
    """A static KV cache with explicit 4D masks works for this architecture (no sliding window)."""
    cfg = model.config
    if not getattr(model, "_can_compile_fullgraph", False):
        return False
    if getattr(cfg, "sliding_window", None) is not None and getattr(cfg, "use_sliding_window", True):
        return False
    return all(t == "full_attention" for t in (getattr(cfg, "layer_types", None) or ["full_attention"]))


def _choose_loop(model, loop: str | None) -> str:
    if loop is None:
        return "static" if _device(model).type == "cuda" and static_supported(model) else "dynamic"
    if loop not in LOOPS:
        raise ValueError(f"generation loop must be one of {LOOPS}, got {loop!r}")
    if loop == "static" and not static_supported(model):
        raise ValueError(f"{type(model).__name__} does not support a static KV cache: use loop='dynamic'")
    return loop


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    system_prompt: str | None = None,
    max_new_tokens: int = 32,
    batch_size: int | None = None,
    stop: Callable[[str], bool] | None = None,
    progress: Progress | None = None,
    loop: str | None = None,
    cuda_graphs: bool = True,
) -> list[Generation]:
    """Greedy answers to ``prompts``; ``stop(text)`` ends a sequence early once it returns True.

    ``batch_size`` None: 64 on the CPU; on a GPU as many prompts as the free memory holds (all of them when
    they fit). ``loop`` None picks ``static`` on a CUDA GPU when the architecture allows it, else ``dynamic``."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    loop = _choose_loop(model, loop)
    texts = [format_prompt(tokenizer, p, system_prompt) for p in prompts]
    ids = encode_prompts(tokenizer, texts)
    _check_length(model, ids, prompts, max_new_tokens)
    # longest first: batches of similar length waste less padding
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    out: list[Generation | None] = [None] * len(prompts)
    if batch_size is None:
        if _device(model).type == "cuda" and order:
            from analysis.core.memory import generation_batch

            batch_size = generation_batch(model, len(order), len(ids[order[0]]) + max_new_tokens)
        else:
            batch_size = CPU_BATCH
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    LAST_RUN.clear()
    LAST_RUN.update(loop=loop, batches=[], graphs=[])
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        rows = [ids[i] for i in idx]
        LAST_RUN["batches"].append(len(rows))
        gens = (
            _generate_static(model, tokenizer, rows, max_new_tokens, stop, cuda_graphs)
            if loop == "static"
            else _generate_batch(model, tokenizer, rows, max_new_tokens, stop)
        )
        for i, g in zip(idx, gens):
            g.prompt = prompts[i]
            out[i] = g
        if progress:
            progress(min(1.0, (start + len(idx)) / len(order)), f"{start + len(idx)} of {len(order)} replies generated")
    return out  # type: ignore[return-value]


def _check_length(model, ids: list[list[int]], prompts: list[str], max_new_tokens: int) -> None:
    """Refuse (one line) prompts that, with the new tokens, run past the model's position embedding."""
    from analysis.core.memory import max_positions

    pos = max_positions(model)
    if pos is None or not ids:
        return
    i = max(range(len(ids)), key=lambda j: len(ids[j]))
    if len(ids[i]) + max_new_tokens > pos:
        raise ValueError(
            f"prompt {i + 1} is {len(ids[i])} tokens long (with the chat template); with "
            f"max_new_tokens {max_new_tokens} that exceeds the model's {pos} positions: "
            f"{prompts[i][:50]!r}…; shorten it or lower max_new_tokens"
        )


def _generate_batch(model, tokenizer, rows: list[list[int]], max_new: int, stop) -> list[Generation]:
    """The dynamic loop (:func:`analysis.core.decoding.greedy_tokens` with one model): a growing KV cache, finished
    rows dropped from the batch, the judge's text-level ``stop`` checked every step."""
    done = decode_batch(
        [model], rows, max_new, tokenizer.eos_token_id, pad_id(tokenizer), None, text_stop(tokenizer, stop)
    )
    texts = tokenizer.batch_decode([d.tokens for d in done], skip_special_tokens=True)
    return [Generation("", t.strip(), len(d.tokens), d.stopped_by) for t, d in zip(texts, done)]


def _model_dtype(model) -> torch.dtype:
    return model.get_input_embeddings().weight.dtype


def _resolve(tokenizer, row: list[int], lo: int, hi: int, eos, stop) -> tuple[int, str] | None:
    """Where a sequence ended among steps lo..hi (inclusive) of its tokens ``row``: (n_tokens, reason), or None.

    Same rule as the dynamic loop: an EOS ends it (not counted); else the first step whose text makes
    ``stop`` say True ends it (counted). ``stop`` is asked at the last candidate step first and, only when
    that says True, step by step from ``lo`` (monotone stop rule)."""
    e = next((s for s in range(lo, hi + 1) if row[s] == eos), None) if eos is not None else None
    last = hi if e is None else e - 1
    if stop is not None and last >= lo:
        if stop(tokenizer.decode(row[: last + 1], skip_special_tokens=True)):
            for s in range(lo, last + 1):
                if s == last or stop(tokenizer.decode(row[: s + 1], skip_special_tokens=True)):
                    return s + 1, "decided"
    if e is not None:
        return e, "eos"
    return None


def _generate_static(
    model, tokenizer, rows: list[list[int]], max_new: int, stop, cuda_graphs: bool
) -> list[Generation]:
    """One batch in a preallocated KV cache; decode steps as CUDA graph replays on a CUDA device."""
    from transformers import StaticCache

    dev, dtype = _device(model), _model_dtype(model)
    pad, eos = pad_id(tokenizer), tokenizer.eos_token_id
    B = len(rows)
    input_ids, mask2, pos = (t.to(dev) for t in left_padded(rows, pad))
    T = input_ids.shape[1]
    L = T + max_new
    neg = torch.finfo(dtype).min
    cache = StaticCache(config=model.config, max_cache_len=L)
    key_real = torch.zeros((B, L), dtype=torch.bool, device=dev)
    key_real[:, :T] = mask2.bool()
    causal = torch.arange(T, device=dev)[:, None] >= torch.arange(L, device=dev)[None, :]
    prefill_mask = torch.zeros((B, 1, T, L), dtype=dtype, device=dev).masked_fill_(
        ~(key_real[:, None, None, :] & causal[None, None]), neg
    )
    events = [torch.cuda.Event(enable_timing=True) for _ in range(3)] if dev.type == "cuda" else None
    if events:
        events[0].record()
    out = model(
        input_ids=input_ids,
        attention_mask=prefill_mask,
        position_ids=pos,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    if events:
        events[1].record()
    del prefill_mask
    nxt = out.logits[:, -1, :].argmax(-1)
    del out
    # static inputs of one decode step (the graph reads them in place)
    tok = torch.empty((B, 1), dtype=torch.long, device=dev)
    step_pos = pos[:, -1:].clone()
    step_mask = torch.zeros((B, 1, 1, L), dtype=dtype, device=dev).masked_fill_(~key_real[:, None, None, :], neg)
    tokens = torch.empty((B, max_new), dtype=torch.long, device=dev)

    def forward() -> torch.Tensor:
        o = model(input_ids=tok, attention_mask=step_mask, position_ids=step_pos, past_key_values=cache, use_cache=True)
        return o.logits[:, -1, :].argmax(-1)

    graph: tuple[torch.cuda.CUDAGraph, torch.Tensor] | Literal[False] | None  # False: capture failed
    graph_out: torch.Tensor | None
    graph, graph_out, used_graph = None, None, False
    use_graphs = dev.type == "cuda" and cuda_graphs
    side = torch.cuda.Stream(dev) if use_graphs else None  # warm-up and capture on one side stream
    done = [False] * B
    result: list[tuple[int, str]] = [(max_new, "length")] * B
    checked = 0
    host_rows: list[list[int]] = [[] for _ in range(B)]
    for step in range(max_new):
        tokens[:, step] = nxt
        last = step == max_new - 1
        if last or (step + 1) % CHECK_EVERY == 0:
            fresh = tokens[:, checked : step + 1].tolist()
            for i in range(B):
                host_rows[i].extend(fresh[i])
                if not done[i]:
                    r = _resolve(tokenizer, host_rows[i], checked, step, eos, stop)
                    if r is not None:
                        done[i], result[i] = True, r
            checked = step + 1
            if all(done):
                break
        if last:
            break
        # feed nxt at cache slot T + step
        tok.copy_(nxt[:, None])
        step_mask[:, :, :, T + step] = 0
        step_pos.add_(1)
        if use_graphs and graph is None and step >= 1:
            graph = _capture(forward, side) or False  # False: capture failed, stay eager
            graph_out = graph[1] if graph else None
        if use_graphs and step == 0:  # the first step runs eagerly on the capture stream (warm-up)
            assert side is not None  # made above whenever use_graphs
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side):
                nxt = forward()
            torch.cuda.current_stream(dev).wait_stream(side)
        elif graph:
            graph[0].replay()
            assert graph_out is not None  # set with graph
            nxt = graph_out.clone()
            used_graph = True
        else:
            nxt = forward()
    LAST_RUN.setdefault("graphs", []).append(used_graph)
    LAST_RUN.setdefault("steps", []).append(step + 1)
    if events:  # GPU time of the prefill and of the decode steps (read once, at the end)
        events[2].record()
        events[2].synchronize()
        LAST_RUN.setdefault("prefill_ms", []).append(round(events[0].elapsed_time(events[1]), 1))
        LAST_RUN.setdefault("decode_ms", []).append(round(events[1].elapsed_time(events[2]), 1))
    texts = tokenizer.batch_decode([host_rows[i][: result[i][0]] for i in range(B)], skip_special_tokens=True)
    return [Generation("", t.strip(), result[i][0], result[i][1]) for i, t in enumerate(texts)]


def _capture(forward, stream) -> tuple[torch.cuda.CUDAGraph, torch.Tensor] | None:
    """(graph, output) of one decode step, or None when this model's forward cannot be captured (the
    step then runs eagerly). Nothing runs while capturing, so the cache is untouched."""
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            out = forward()
        return graph, out
    except Exception as exc:  # noqa: BLE001 - any capture failure falls back to eager steps
        LAST_RUN["graph_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        torch.cuda.synchronize()
        return None


def replies(
    lm, prompts: list[str], system_prompt: str | None = None, max_new_tokens: int = 32, edit=None
) -> list[Generation]:
    """Greedy answers of a loaded model (with ``edit`` applied, if given), under the model's lock — what the
    playground and live side-by-sides call."""
    from analysis.core.edits import applied

    with applied(lm.model, *([edit] if edit is not None else [])):
        return generate(lm.model, lm.tokenizer, prompts, system_prompt, max_new_tokens)
