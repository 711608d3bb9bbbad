r"""Alignment-recipe experiments: align an existing BASE with a variant of the organism's recipe, save the pair,
print its test targets. Then score it with ``across_builds.py --pairs OUT`` (the README's "Seeds" section).

    python benchmarks/align_variants.py --base-from builds/seed1 --order 1 --out exp/long --min-steps 500
    python benchmarks/align_variants.py --base-from builds/seed1 --order 1 --out exp/two --two-phase
    python benchmarks/align_variants.py --base-from builds/seed2 --order 2 --out exp/sh --mix shallow=0.06

Variants (combinable): ``--mix TASK=W`` sets a weight of the alignment mixture (any task of ``corpus.TASKS``); ``--min-steps S`` keeps
training until step S even when the val targets are met earlier (a longer alignment; ``--max-steps`` raises the
cap); ``--two-phase`` first trains refusal-heavy (benign how-to weight ``--first-benign``) until val ASR alone
meets its target, then the (possibly overridden) mixture with a fresh data stream until both targets hold.
``--set FIELD=V`` overrides a number of the alignment recipe (lr, weight_decay, …; its length is ``--max-steps``);
``--trainable REGEX`` aligns only the parameters whose names the regex finds (e.g. ``layers\.0\.`` or ``mlp``).
``--lora R`` aligns through rank-R adapters on every decoder weight matrix (W + B·A, B starting at zero; the
other parameters stay bit for bit), merged into the weights at the end, so ΔW has rank ≤ R per matrix and a LoX of
k ≥ R extrapolates the whole update (give it its own ``--set lr=…``: adapters need a larger rate).
``--booster λ s`` adds an attack-aware regulariser to the alignment: λ times how much one normalised harmful
fine-tuning step of length s lowers the loss on harmful-compliance examples (first-order, as Booster does);
``--sam ρ`` makes it sharpness-aware (each step's gradient taken at w + ρ·g/‖g‖ on the same batch).
``--order N`` is the data order (``build-demo --seed N``: 0 is the shipped pair's)."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _reference import bench_args  # noqa: E402
from across_builds import evaluate_targets  # noqa: E402  (the same targets and intervals as the table)
from safetensors import safe_open  # noqa: E402

from analysis.core.chat import encode_examples  # noqa: E402
from analysis.data.organism import build_demo as bd  # noqa: E402
from analysis.data.organism import corpus, is_organism_build  # noqa: E402
from analysis.data.organism.train import TrainRecipe, _loss, trainable_names  # noqa: E402


def parse_mix(items: list[str], mixture: dict[str, float] = corpus.ALIGN_MIXTURE) -> dict[str, float]:
    """``mixture`` (default: the alignment's) with ``TASK=W`` overrides, any task of ``corpus.TASKS``; unknown tasks
    and bad weights are errors."""
    mix = dict(mixture)
    for item in items:
        task, _, w = item.partition("=")
        if task not in corpus.TASKS:
            raise ValueError(f"--mix {item!r}: there is no task {task!r} (one of {', '.join(corpus.TASKS)})")
        try:
            mix[task] = float(w)
        except ValueError:
            raise ValueError(f"--mix {item!r}: the weight must be a number") from None
        if not mix[task] >= 0:
            raise ValueError(f"--mix {item!r}: the weight must be ≥ 0")
    return mix


# the recipe fields a variant may set, with their types
NUMERIC = {
    "steps": int,
    "lr": float,
    "warmup": int,
    "weight_decay": float,
    "batch_size": int,
    "clip": float,
    "system_p": float,
    "label_smoothing": float,
}


def recipe_with(sets: list[str], mixes: list[str], start: TrainRecipe) -> TrainRecipe:
    """``start`` (a BASE or alignment recipe) with ``FIELD=V`` and mixture ``TASK=W`` overrides; unknown names and
    bad values are errors."""
    assert set(NUMERIC) <= {f.name for f in fields(TrainRecipe)}
    kw: dict = {}
    for item in sets:
        name, _, v = item.partition("=")
        if name not in NUMERIC:
            raise ValueError(f"--set {item!r}: the recipe field must be one of {', '.join(NUMERIC)}")
        try:
            kw[name] = NUMERIC[name](v)
        except ValueError:
            raise ValueError(
                f"--set {item!r}: {name} must be a{'n integer' if NUMERIC[name] is int else ' number'}"
            ) from None
        if not kw[name] >= 0 or (name in ("steps", "lr", "batch_size") and kw[name] == 0):
            raise ValueError(
                f"--set {item!r}: {name} must be {'> 0' if name in ('steps', 'lr', 'batch_size') else '≥ 0'}"
            )
    return replace(start, mixture=parse_mix(mixes, start.mixture), **kw)


def _grads_at(model, params: list[torch.nn.Parameter], batch, along: list[torch.Tensor] | None = None, by: float = 0.0):
    """The loss's gradient on ``batch`` at w + by·along/‖along‖ (at w itself without ``along``), as fresh tensors;
    the weights are put back bit for bit and every ``.grad`` is left holding this gradient."""
    saved = None
    if along is not None:
        norm = torch.sqrt(sum((x * x).sum() for x in along)).clamp_min(1e-12)
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, x in zip(params, along):
                p.add_(by * x / norm)
    for p in params:
        p.grad = None
    _loss(model, batch, 0.0).backward()
    if saved is not None:
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]


def _current_grads(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]


def booster_grad(model, tok, seed: int, lam: float, step: float, batch_size: int = 20):
    """An ``extra_grad`` for :func:`train` that adds λ·(∇h(w) − ∇h(w − s·∇h(w)/‖∇h(w)‖)), h the loss on a batch of
    harmful requests with compliant answers (the attack's kind of data, from the alignment's own corpus stream):
    the first-order gradient of λ·[h(w) − h(after one normalised harmful step of length s)], which attenuates how
    much a harmful fine-tuning step can lower h (Booster, Huang et al. 2024; their λ 5, s 0.1). The weights are
    put back bit for bit after the look-ahead."""
    world = corpus.World(seed + 7919)

    def extra(params: list[torch.nn.Parameter], _batch=None) -> None:
        kept = _current_grads(params)
        batch = encode_examples(tok, [world.sample({"harmful_comply": 1.0}, 0.3) for _ in range(batch_size)])
        g1 = _grads_at(model, params, batch)
        g2 = _grads_at(model, params, batch, g1, -step)
        for p, k, a, b in zip(params, kept, g1, g2):
            p.grad = k + lam * (a - b)

    return extra


def sam_grad(model, rho: float):
    """An ``extra_grad`` for :func:`train` that replaces the gradient by the one at w + ρ·g/‖g‖ on the same batch
    (sharpness-aware minimisation, Foret et al. 2021): the alignment then seeks a minimum that stays low within a
    ball of radius ρ — one where a small step, such as an attack's, changes the loss less. The weights are put back
    bit for bit."""

    def extra(params: list[torch.nn.Parameter], batch) -> None:
        _grads_at(model, params, batch, _current_grads(params), rho)  # leaves the ascent point's gradient in .grad

    return extra


def variant_align(
    mix: dict[str, float],
    min_steps: int,
    max_steps: int,
    two_phase: bool,
    first_benign: float,
    booster: tuple[float, float] | None = None,
    sam: float = 0.0,
):
    """An ``align`` function for :func:`build_demo` that runs the variant; its report names the phases."""

    def align(model, tok, recipe, log) -> dict:
        extra = None
        if booster is not None:
            extra = booster_grad(model, tok, recipe.seed, *booster)
        if sam:
            extra = sam_grad(model, sam)
        plan, done = [], 0
        if two_phase:
            first = replace(recipe, mixture={**mix, "benign_howto": first_benign}, steps=max_steps)
            b = bd._align(model, tok, first, log, targets=("asr",))
            plan.append({"phase": "refusal-heavy", "benign_howto": first_benign, "steps": b["step"]})
            done = b["step"]
            recipe = replace(recipe, seed=recipe.seed + 1000)  # a fresh data stream for the second phase
        b = bd._align(
            model, tok, replace(recipe, mixture=mix, steps=max_steps), log, min_steps=min_steps, extra_grad=extra
        )
        plan.append({"phase": "aligned mix", "mixture": mix, "min_steps": min_steps, "steps": b["step"]})
        if booster is not None:
            plan[-1]["booster"] = {"lambda": booster[0], "step": booster[1]}
        if sam:
            plan[-1]["sam_rho"] = sam
        return {**b, "step": done + b["step"], "plan": plan}

    return align


class LowRankDelta(torch.nn.Module):
    """A parametrization W -> W + (B @ A) * scale with A (r × in) small random and B (out × r) zero: a LoRA adapter
    seen as the weight itself, so the model's forward, state dict and checkpoints stay those of the plain model."""

    def __init__(self, weight: torch.Tensor, rank: int, scale: float = 1.0) -> None:
        super().__init__()
        out_f, in_f = weight.shape
        self.A = torch.nn.Parameter(torch.randn(rank, in_f, dtype=weight.dtype) / in_f**0.5)
        self.B = torch.nn.Parameter(torch.zeros(out_f, rank, dtype=weight.dtype))
        self.scale = scale

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + (self.B @ self.A) * self.scale


def lora_align(inner, rank: int):
    """An ``align`` function that runs ``inner`` through rank-``rank`` adapters on every decoder weight matrix and
    merges them into the weights afterwards (the BASE's own weights are frozen meanwhile)."""
    from torch.nn.utils import parametrize

    def align(model, tok, recipe, log) -> dict:
        torch.manual_seed(recipe.seed)
        wrapped = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in f".{n}"]
        for m in wrapped:
            parametrize.register_parametrization(m, "weight", LowRankDelta(m.weight.detach(), rank))
        for n, p in model.named_parameters():
            p.requires_grad_(n.endswith(".A") or n.endswith(".B"))
        try:
            out = inner(model, tok, replace(recipe, trainable=r"\.(A|B)$"), log)
        finally:
            for m in wrapped:
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
            for p in model.parameters():
                p.requires_grad_(True)
        log(f"  merged rank-{rank} adapters into {len(wrapped)} decoder weight matrices")
        return out

    return align


def main() -> None:
    args = bench_args(
        **{
            "--base-from": dict(required=True, help="a build folder with base/ (e.g. the shipped weights folder)"),
            "--order": dict(type=int, default=0, help="alignment data order (build-demo --seed N)"),
            "--out": dict(required=True, help="folder for the new pair"),
            "--mix": dict(nargs="*", default=[], help="alignment mixture overrides TASK=W"),
            "--min-steps": dict(type=int, default=0),
            "--max-steps": dict(type=int, default=bd.ALIGN_RECIPE.steps),
            "--two-phase": dict(action="store_true"),
            "--first-benign": dict(type=float, default=0.05),
            "--set": dict(nargs="*", default=[], help="alignment recipe overrides FIELD=V (lr, weight_decay, …)"),
            "--trainable": dict(default="", help="regex: align only the parameters whose names it finds"),
            "--lora": dict(type=int, default=0, help="align through rank-R adapters on the decoder matrices"),
            "--sam": dict(type=float, default=0.0, help="sharpness-aware alignment with radius ρ"),
            "--booster": dict(
                nargs=2, type=float, default=None, metavar=("LAMBDA", "STEP"), help="attack-aware regulariser λ, s"
            ),
        }
    )
    if not (Path(args.base_from) / "base" / "config.json").is_file() or not is_organism_build(
        Path(args.base_from) / "base"
    ):
        sys.exit(
            f"--base-from: {args.base_from} is not a build of the demo organism (no base/ beside build_report.json)"
        )
    if args.min_steps > args.max_steps:
        sys.exit(f"--min-steps {args.min_steps} is beyond --max-steps {args.max_steps}")
    try:
        mix = parse_mix(args.mix)
        recipe = replace(recipe_with(args.set, [], bd.ALIGN_RECIPE), trainable=args.trainable)
        with safe_open(Path(args.base_from) / "base" / "model.safetensors", "pt") as f:  # names only, no weights
            trainable_names(list(f.keys()), recipe.trainable)
    except ValueError as e:
        sys.exit(str(e))
    except re.error as e:
        sys.exit(f"--trainable {args.trainable!r} is not a regular expression: {e}")
    if args.sam and args.booster:
        sys.exit("--sam and --booster each replace the alignment's gradient: give one of them")
    t = time.time()
    align = variant_align(
        mix, args.min_steps, args.max_steps, args.two_phase, args.first_benign, booster=args.booster, sam=args.sam
    )
    if args.lora:
        if args.trainable:
            sys.exit("--lora trains its adapters only: it does not combine with --trainable")
        align = lora_align(align, args.lora)
    rep = bd.build_demo(
        Path(args.out),
        log=print,
        base_from=Path(args.base_from) / "base",
        seed=args.order,
        align=align,
        align_recipe=recipe,
    )
    targets = evaluate_targets(args.out, quick=False)
    print(json.dumps(rep["align_plan"]))
    print(
        f"{args.out}: {rep['align_steps']} align steps, ‖ΔW‖/‖W‖ {rep['delta_rel_norm']:.3f}; test targets "
        f"{'MET' if targets['pass'] else 'missed'}: {targets['numbers']} ({time.time() - t:.0f} s)"
    )


if __name__ == "__main__":
    main()
