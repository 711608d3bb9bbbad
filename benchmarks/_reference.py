"""Shared by benchmarks: the command-line preamble (threads, --quick), the limit comparisons of the verdicts, the
plain reference way to generate (HF ``model.generate``, greedy, left padding) and a best-of-N timer."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from analysis.core.chat import format_prompt

# a rate is k of n prompts, so a difference can sit exactly on a limit (12 of 120 = 10 points) and float rounding
# must not decide which side: 115/120 − 103/120 is 0.10000000000000009
LIMIT_TOLERANCE = 1e-9


def within(x: float, limit: float) -> bool:
    """``x <= limit``, with a difference of rates that lands exactly on the limit counted as within it."""
    return x <= limit + LIMIT_TOLERANCE


def reaches(x: float, goal: float) -> bool:
    """``x >= goal``, with a difference of rates that lands exactly on the goal counted as reaching it."""
    return x >= goal - LIMIT_TOLERANCE


def bench_args(quick: str | None = None, pair: bool = False, **extra) -> argparse.Namespace:
    """Parse ``--threads`` (default $BRITTLE_THREADS, else 2); with ``pair``, ``--pair`` (another build of the demo
    pair) and ``--verdict`` (a JSON file for the verdict, read by ``across_builds.py``); when ``quick`` names what
    it shrinks, ``--quick``; ``extra`` adds options (name -> add_argument keywords). Sets torch's thread count."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BRITTLE_THREADS", 2)))
    if pair:
        ap.add_argument(
            "--pair",
            default=None,
            help="a demo pair built with `build-demo --seed N --out DIR` (a folder with aligned/ and base/; "
            "default: the shipped pair)",
        )
        ap.add_argument("--verdict", default=None, help="write the verdict (pass and its numbers) to this JSON file")
    if quick:
        ap.add_argument("--quick", action="store_true", help=f"smoke test: {quick} (numbers mean nothing)")
    for flag, kw in extra.items():
        ap.add_argument(flag, **kw)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    return args


def bench_pair(args: argparse.Namespace):
    """The pair a benchmark measures: ``--pair DIR`` (DIR/aligned + DIR/base) or the shipped demo pair."""
    from analysis.core.models import load_pair

    if args.pair:
        for role in ("aligned", "base"):
            if not (Path(args.pair) / role / "config.json").is_file():
                raise SystemExit(f"error: {args.pair} has no {role}/ model (build one with build-demo --out)")
        return load_pair(f"{args.pair}/aligned", f"{args.pair}/base", device="cpu")
    return load_pair("demo", device="cpu")


def write_verdict(args: argparse.Namespace, phenomenon: str, ok: bool, numbers: str) -> None:
    """Record one phenomenon's verdict for ``across_builds.py`` (when ``--verdict`` is given)."""
    if args.verdict:
        Path(args.verdict).write_text(json.dumps({"phenomenon": phenomenon, "pass": bool(ok), "numbers": numbers}))


def hf_generate(model, tok, prompts: list[str], max_new: int, batch_size: int) -> list[str]:
    texts = [format_prompt(tok, p) for p in prompts]
    outs = []
    for s in range(0, len(texts), batch_size):
        enc = tok(texts[s : s + batch_size], add_special_tokens=False, padding=True, return_tensors="pt")
        with torch.no_grad():
            o = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        outs += tok.batch_decode(o[:, enc.input_ids.shape[1] :], skip_special_tokens=True)
    return outs


def best_of(fn, repeats: int):
    """(fastest wall time of ``repeats`` calls, the last result)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out
