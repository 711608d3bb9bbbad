"""Checks of user input before the work starts: argparse ``type=`` functions for the CLI's numeric and list
options, checks of files and output folders (no model needed), and checks against the loaded model and data
(positions, memory, weight shapes). Every failure is one line: ``argparse.ArgumentTypeError`` at parse time,
``ValueError`` (or a subclass) afterwards.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

MAX_AXIS_STEPS = 1001       # a 1D curve finer than this is finer than any plot, and each point is a full evaluation
KNOWN_VARIANTS = ("aligned", "lox", "frozen-units", "frozen-redundant", "frozen-weights")   # = variants.KINDS
GENERATION_BATCH = 64       # analysis.core.generation's default batch (for the memory bound on new tokens)


class OptionError(argparse.ArgumentTypeError, ValueError):
    """A bad option value: argparse shows its message; outside argparse it is a ValueError like any bad input."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``error: …``, exit 2) like every other CLI error."""

    def error(self, message: str):  # noqa: D401 — argparse's hook
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


# --- argparse types ------------------------------------------------------------------------------
def _number(text: str, kind=float):
    try:
        v = kind(str(text).strip())
    except (TypeError, ValueError):
        want = "a whole number" if kind is int else "a number"
        raise OptionError(f"expected {want}, got {text!r}") from None
    if kind is float and not math.isfinite(v):
        raise OptionError(f"must be a finite number, got {text!r}")
    return v


def positive_int(text: str) -> int:
    v = _number(text, int)
    if v < 1:
        raise OptionError(f"must be >= 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    v = _number(text, int)
    if v < 0:
        raise OptionError(f"must be >= 0, got {v}")
    return v


def finite_float(text: str) -> float:
    return _number(text, float)


def positive_float(text: str) -> float:
    v = _number(text, float)
    if v <= 0:
        raise OptionError(f"must be > 0, got {v:g}")
    return v


def fraction(text: str) -> float:
    v = _number(text, float)
    if not 0 <= v <= 1:
        raise OptionError(f"must be a fraction in [0, 1], got {v:g}")
    return v


def percent(text: str) -> float:
    v = _number(text, float)
    if not 0 <= v <= 100:
        raise OptionError(f"must be a percentage in [0, 100], got {v:g}")
    return v


def axis_steps(text: str) -> int:
    v = positive_int(text)
    if v > MAX_AXIS_STEPS:
        raise OptionError(f"at most {MAX_AXIS_STEPS} points per axis (each is a full evaluation), "
                                         f"got {v}")
    return v


def rank_list(text: str) -> str:
    """A non-empty comma list of ranks >= 1 (kept as text: the command parses it)."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise OptionError("expected a comma list of integers >= 1, e.g. 1,2,4,8; got nothing")
    for p in parts:
        try:
            v = int(p)
        except ValueError:
            raise OptionError(f"expected a comma list of integers, got {text!r}") from None
        if v < 1:
            raise OptionError(f"ranks must be >= 1, got {v}")
    return ",".join(parts)


def count_list(text: str) -> str:
    """A non-empty comma list of whole numbers >= 0 (e.g. prefilled token counts), kept as text."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise OptionError("expected a comma list of whole numbers >= 0, e.g. 0,1,2,5; got nothing")
    for p in parts:
        if nonneg_int(p) > 10_000:
            raise OptionError(f"at most 10000 per entry, got {p}")
    return ",".join(parts)


def float_list(text: str) -> str:
    """A non-empty comma list of finite numbers (e.g. α values), kept as text."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise OptionError("expected a comma list of numbers, e.g. 0,0.5,1; got nothing")
    for p in parts:
        finite_float(p)
    return ",".join(parts)


def variant_list(text: str) -> str:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise OptionError(f"name at least one variant: {', '.join(KNOWN_VARIANTS)}")
    unknown = [p for p in parts if p not in KNOWN_VARIANTS]
    if unknown:
        raise OptionError(f"unknown variant {unknown[0]!r}; use {', '.join(KNOWN_VARIANTS)}")
    return ",".join(parts)


def seed(text: str) -> int:
    v = nonneg_int(text)
    if v >= 2 ** 32:
        raise OptionError(f"must be below 2**32, got {v}")
    return v


def nonempty_text(text: str) -> str:
    if not str(text).strip():
        raise OptionError("must not be empty")
    return str(text)


# --- paths ---------------------------------------------------------------------------------------
def writable_new_folder(out: str | Path, cache_root: str | Path | None = None) -> Path:
    """Check that a new model folder can be written at ``out`` before any work: not inside the results cache
    (``cache clear`` would refuse or it would be mixed with cache entries), not an existing file, not under a
    file, not a non-empty folder, and in a place this process can write. Returns the path."""
    from analysis.core.cache import default_root, is_inside

    raw = str(out).strip()
    if not raw:
        raise ValueError("the output folder is empty; give a path for the new model folder")
    out = Path(raw).expanduser()
    root = Path(cache_root) if cache_root is not None else default_root()
    if is_inside(out, root):
        raise ValueError(f"{out} is inside the results cache ({root}); save models outside it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is an existing file; choose a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new folder")
    parent = out if out.is_dir() else out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot create {out}: {parent} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(dir=parent, prefix=".brittle-probe-")
        os.rmdir(probe)
    except OSError as e:
        raise ValueError(f"cannot write {out}: {parent} is not writable ({e.strerror or e})") from None
    return out


def cache_note(cache) -> str | None:
    """A note when results cannot be kept (the work still runs); a cache root that is a file is an error."""
    why = cache.check_writable()
    return f"{why}; results are computed but not kept" if why else None


# --- data ----------------------------------------------------------------------------------------
def benign_with_references(benign, origin: str) -> None:
    """Utility needs a reference for every benign prompt (an exact answer or a response)."""
    from analysis.data.prompts import DataFormatError

    if not all(it.answer is not None or it.response for it in benign.items):
        missing = sum(1 for it in benign.items if it.answer is None and not it.response)
        raise DataFormatError(f"{origin}: {missing} of {len(benign)} benign prompts have no response; utility needs "
                              "(prompt, response) pairs (CSV/JSONL with a 'response' column), not a plain list")


def with_responses(data, origin: str) -> None:
    from analysis.data.prompts import DataFormatError

    if not data.items or not all(it.response for it in data.items):
        raise DataFormatError(f"{origin}: attack data needs a response for every prompt (CSV/JSONL prompt,response)")


def files_and_paths(args) -> list[str]:
    """What can be checked before a model loads: prompt files, output folders, the cache. Returns notes."""
    from analysis.core.cache import Cache, is_inside

    from analysis.data.sets import names, resolve_attack_set, resolve_set

    notes = []
    for opt, label in (("harmful", "harmful"), ("cal_harmful", "harmful")):
        if getattr(args, opt, None):
            resolve_set(getattr(args, opt), label)              # a built-in set name or a readable file
    for opt in ("benign", "cal_benign"):
        value = getattr(args, opt, None)
        if value:
            benign = resolve_set(value, "benign")
            if value not in names():                           # a user's file: utility needs its references
                benign_with_references(benign, Path(value).name)
    if getattr(args, "attack_data", None):
        data = resolve_attack_set(args.attack_data, getattr(args, "data", "harmful"))
        with_responses(data, Path(args.attack_data).name)
    if args.command != "cache":
        cache = Cache()
        if getattr(args, "save", None):
            writable_new_folder(args.save, cache.root)
        if getattr(args, "out", None):
            target = Path(args.out).expanduser()
            if target.exists() and not target.is_dir():
                raise ValueError(f"{target} is an existing file; --out needs a folder")
            if is_inside(target, cache.root):
                raise ValueError(f"{target} is inside the results cache ({cache.root}); write models outside it")
            writable_new_folder(target / ".probe", cache.root)   # the folder (or its nearest parent) is writable
        note = cache_note(cache) if args.command not in ("generate", "build-demo") else None
        if note:
            notes.append(note)
    return notes


# --- against the loaded model --------------------------------------------------------------------
def max_positions(model) -> int | None:
    """The longest sequence the model's position embedding covers (None: not stated by its config)."""
    cfg = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _free_bytes(device: str) -> int:
    import torch

    if str(device).startswith("cuda"):
        return int(torch.cuda.mem_get_info()[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def max_new_tokens_cap(lm, prompt_tokens: int = 1, batch: int = GENERATION_BATCH) -> int:
    """How many new tokens fit: the positions left after the prompt, and the KV cache of a batch in free memory."""
    cfg = lm.model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 1)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 1)
    elem = next(lm.model.parameters()).element_size()
    per_token = 2 * layers * hidden * elem * batch + 8 * batch     # keys + values (+ the token buffer)
    cap = max(1, _free_bytes(lm.device) // 2 // per_token)
    pos = max_positions(lm.model)
    return min(cap, pos - prompt_tokens) if pos else cap


def longest_prompt_tokens(lm, prompts: list[str], system_prompt: str | None) -> tuple[int, int]:
    """(tokens, index) of the longest formatted prompt."""
    from analysis.core.chat import encode_prompts, format_prompt

    if not prompts:
        return 0, -1
    ids = encode_prompts(lm.tokenizer, [format_prompt(lm.tokenizer, p, system_prompt) for p in prompts])
    n = [len(x) for x in ids]
    i = max(range(len(n)), key=n.__getitem__)
    return n[i], i


def identical_pair(pair, what: str) -> None:
    if pair.base is not None and pair.base.fingerprint == pair.aligned.fingerprint:
        raise ValueError(f"aligned and base have identical weights (fingerprint {pair.aligned.fingerprint}): "
                         f"ΔW = 0, so {what} is meaningless; give the model the aligned one was fine-tuned from "
                         "as --base")


def min_weight_dim(lm) -> int:
    return min(min(ref.shape) for ref in lm.adapter.linears.values())


def calibration_cap(lm) -> int:
    """How many distinct calibration prompts the model's data provider has."""
    return lm.data.calibration_cap()


def against_model(args, pair, sets: dict | None = None) -> list[str]:
    """Check the options against the loaded pair and data; may clip (returning notes) or raise ValueError."""
    notes: list[str] = []
    lm = pair.aligned
    command = args.command
    prompts = [p for s in (sets or {}).values() for p in s.prompts()]
    if getattr(args, "prompt", None) is not None:
        prompts.append(args.prompt)
    n_prompt, i = longest_prompt_tokens(lm, prompts, getattr(args, "system_prompt", None))
    pos = max_positions(lm.model)
    if pos and n_prompt >= pos:
        raise ValueError(f"a prompt is {n_prompt} tokens long (with the chat template), beyond the model's {pos} "
                         f"positions: {prompts[i][:60]!r}…; shorten it or drop it from the file")
    new = getattr(args, "max_new_tokens", None)
    if new is not None:
        cap = max_new_tokens_cap(lm, max(n_prompt, 1))
        if new > cap:
            why = f"{pos} positions minus the longest prompt's {n_prompt} tokens" if pos and cap == pos - n_prompt \
                else "the free memory for a batch's key/value cache"
            raise ValueError(f"--max-new-tokens {new} is more than the model can generate here: at most {cap} "
                             f"({why})")
    if command in ("spectra", "lox", "recovery", "attack") or getattr(args, "direction", None) == "base":
        identical_pair(pair, {"spectra": "the ΔW spectrum", "lox": "LoX", "recovery": "the recovery rank",
                              "attack": "LoX and R_ft (retention of ΔW)",
                              "landscape": "the direction toward the base"}[command])
    if command == "recovery":
        top = min_weight_dim(lm)
        ranks = [int(r) for r in args.ranks.split(",")]
        if max(ranks) > top:
            kept = sorted({min(r, top) for r in ranks})
            notes.append(f"ranks above {top} (the smallest decoder weight dimension) clipped: tried "
                         f"{','.join(map(str, kept))}")
            args.ranks = ",".join(map(str, kept))
    if command == "spectra" and args.k > min_weight_dim(lm):
        notes.append(f"k = {args.k} is above the smallest weight dimension {min_weight_dim(lm)}: energy@k is 100 %")
    cal_n = getattr(args, "calibration_n", None)
    cap = calibration_cap(lm) if cal_n is not None else None
    if cal_n is not None and cal_n > cap and not (getattr(args, "cal_harmful", None) or getattr(args, "cal_benign", None)):
        notes.append(f"--calibration-n {cal_n} capped at {cap}, the number of distinct calibration prompts of "
                     f"{lm.data.name}")
        args.calibration_n = cap
    if command == "attack" and getattr(args, "k", 1) == 0 and pair.base is not None:
        notes.append("k = 0: LoX uses the whole ΔW; R_ft (retention in the top-k safety subspace) needs k >= 1 "
                     "and is not computed")
    return notes


def print_notes(notes: list[str]) -> None:
    for n in notes:
        print(f"note: {n}")
