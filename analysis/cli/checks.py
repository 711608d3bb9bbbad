"""Checks of user input before the work starts and against the loaded model. Ranges and choices of every
settings option are checked at parse time (their argparse ``type=`` comes from :mod:`analysis.core.options`);
:func:`before_load` does every check that needs no model (settings across options, prompt sets and files,
output folders, the cache); :func:`against_model` what needs the loaded model (positions, memory, weight
shapes). Every failure is one line: argparse's at parse time, ``ValueError`` (or a subclass) afterwards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.core.options import OptionError, from_args
from analysis.core.paths import writable_new_folder


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``error: …``, exit 2) like every other CLI error."""

    def error(self, message: str):  # noqa: D401 — argparse's hook
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def nonempty_text(text: str) -> str:
    """argparse ``type=`` for a text that must say something (a prompt)."""
    if not str(text).strip():
        raise OptionError("must not be empty")
    return str(text)


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
        raise DataFormatError(
            f"{origin}: {missing} of {len(benign)} benign prompts have no response; utility needs "
            "(prompt, response) pairs (CSV/JSONL with a 'response' column), not a plain list"
        )


def with_responses(data, origin: str) -> None:
    from analysis.data.prompts import DataFormatError

    if not data.items or not all(it.response for it in data.items):
        raise DataFormatError(f"{origin}: attack data needs a response for every prompt (CSV/JSONL prompt,response)")


def files_and_paths(args) -> list[str]:
    """What can be checked before a model loads: prompt sets and files, output folders, the cache. The
    evaluation sets are resolved here, once, with ``--split`` (kept in ``args.sets``). Returns notes."""
    from analysis.core.cache import Cache, is_inside
    from analysis.data.prompts import load_prompt_file
    from analysis.data.sets import names, resolve_attack_set, resolve_set

    args.sets = {}
    for opt, label in (
        ("harmful", "harmful"),
        ("benign", "benign"),
        ("cal_harmful", "harmful"),
        ("cal_benign", "benign"),
    ):
        value = getattr(args, opt, None)
        if not value:
            continue
        if opt.startswith("cal_"):  # calibration data is a file (see common.calibration_data)
            data = load_prompt_file(value, label)
        else:  # a built-in set name (of --split) or a readable file
            data = args.sets[opt] = resolve_set(value, label, getattr(args, "split", "test"))
        if label == "benign" and value not in names():  # a user's file: utility needs its references
            benign_with_references(data, Path(value).name)
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
            writable_new_folder(target / ".probe", cache.root)  # the folder (or its nearest parent) is writable
        note = cache_note(cache) if args.command not in ("generate", "build-demo") else None
        return [note] if note else []
    return []


def settings(args) -> None:
    """The settings a command builds, built and validated from the parsed options (checks across options:
    lo <= hi, a reference draw with layer norms, both calibration files or none, a seed needs --out)."""
    command = args.command
    if command == "regions":
        from analysis.methods.critical_regions.build import RegionSettings

        RegionSettings(**from_args(RegionSettings, args, method="set_difference")).validate()
    if command == "landscape":
        from analysis.methods.landscape.grid import LandscapeSettings

        LandscapeSettings(**from_args(LandscapeSettings, args)).validate()
    if command in ("lox", "attack"):
        from analysis.methods.lox import LoX

        LoX(k=args.k, alpha=args.alpha, scope=args.scope).validate()
    if command == "attack":
        from analysis.methods.attacks.finetune import AttackSettings

        AttackSettings(**from_args(AttackSettings, args, subspace_k=args.k)).validate()
    if command in ("regions", "attack") and bool(args.cal_harmful) != bool(args.cal_benign):
        raise ValueError("give both --cal-harmful and --cal-benign (benign with responses)")
    if command == "build-demo" and args.seed != 0 and not args.out:
        raise ValueError("--seed other than 0 builds a different pair: give --out FOLDER (the shipped pair is seed 0)")
    if command == "build-demo" and args.base_from and not (Path(args.base_from) / "base" / "config.json").is_file():
        raise ValueError(f"--base-from: {args.base_from} has no base/ model (a folder written by build-demo)")


def before_load(args) -> list[str]:
    """Every check that needs no model, run before any model loads. Returns notes."""
    settings(args)
    return files_and_paths(args)


# --- against the loaded model --------------------------------------------------------------------
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
        raise ValueError(
            f"aligned and base have identical weights (fingerprint {pair.aligned.fingerprint}): "
            f"ΔW = 0, so {what} is meaningless; give the model the aligned one was fine-tuned from "
            "as --base"
        )


def min_weight_dim(lm) -> int:
    return min(min(ref.shape) for ref in lm.adapter.linears.values())


def calibration_cap(lm) -> int:
    """How many distinct calibration prompts the model's data provider has."""
    return lm.data.calibration_cap()


def against_model(args, pair, sets: dict | None = None) -> list[str]:
    """Check the options against the loaded pair and data; may clip (returning notes) or raise ValueError."""
    from analysis.core import memory

    notes: list[str] = []
    lm = pair.aligned
    command = args.command
    prompts = [p for s in (sets or {}).values() for p in s.prompts()]
    if getattr(args, "prompt", None) is not None:
        prompts.append(args.prompt)
    n_prompt, i = longest_prompt_tokens(lm, prompts, getattr(args, "system_prompt", None))
    pos = memory.max_positions(lm.model)
    if pos and n_prompt >= pos:
        raise ValueError(
            f"a prompt is {n_prompt} tokens long (with the chat template), beyond the model's {pos} "
            f"positions: {prompts[i][:60]!r}…; shorten it or drop it from the file"
        )
    new = getattr(args, "max_new_tokens", None)
    if new is not None:
        cap = memory.max_new_tokens_cap(lm.model, max(n_prompt, 1))
        if cap is not None and new > cap:
            why = (
                f"{pos} positions minus the longest prompt's {n_prompt} tokens"
                if pos and cap == pos - n_prompt
                else "the free GPU memory for one sequence's key/value cache and activations"
            )
            raise ValueError(f"--max-new-tokens {new} is more than the model can generate here: at most {cap} ({why})")
    if command in ("spectra", "lox", "recovery", "attack") or getattr(args, "direction", None) == "base":
        identical_pair(
            pair,
            {
                "spectra": "the ΔW spectrum",
                "lox": "LoX",
                "recovery": "the recovery rank",
                "attack": "LoX and R_ft (retention of ΔW)",
                "landscape": "the direction toward the base",
            }[command],
        )
    if command == "recovery":
        top = min_weight_dim(lm)
        ranks = [int(r) for r in args.ranks.split(",")]
        if max(ranks) > top:
            kept = sorted({min(r, top) for r in ranks})
            notes.append(
                f"ranks above {top} (the smallest decoder weight dimension) clipped: tried {','.join(map(str, kept))}"
            )
            args.ranks = ",".join(map(str, kept))
    if command == "spectra" and args.k > min_weight_dim(lm):
        notes.append(f"k = {args.k} is above the smallest weight dimension {min_weight_dim(lm)}: energy@k is 100 %")
    cal_n = getattr(args, "calibration_n", None)
    cap = calibration_cap(lm) if cal_n is not None else None
    if (
        cal_n is not None
        and cal_n > cap
        and not (getattr(args, "cal_harmful", None) or getattr(args, "cal_benign", None))
    ):
        notes.append(
            f"--calibration-n {cal_n} capped at {cap}, the number of distinct calibration prompts of {lm.data.name}"
        )
        args.calibration_n = cap
    if command == "attack" and getattr(args, "k", 1) == 0 and pair.base is not None:
        notes.append(
            "k = 0: LoX uses the whole ΔW; R_ft (retention in the top-k safety subspace) needs k >= 1 "
            "and is not computed"
        )
    return notes


def print_notes(notes: list[str]) -> None:
    for n in notes:
        print(f"note: {n}")
