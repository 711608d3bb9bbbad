"""BASE-recipe experiments: build a whole pair (a new BASE, then the shipped alignment recipe) from a variant of the
organism's BASE recipe, save it, print its test targets. Then score it with ``across_builds.py --pairs OUT`` (the
README's "Seeds" section).

    python benchmarks/base_variants.py --seed 1 --out exp/wd-seed1 --set weight_decay=0.1
    python benchmarks/base_variants.py --seed 2 --out exp/long-seed2 --set steps=3200 --mix safety_question=0.2
    python benchmarks/base_variants.py --seed 1 --out exp/wide-seed1 --shape hidden=192 intermediate=768 heads=6

Variants (combinable): ``--set FIELD=V`` overrides a number of the BASE's training recipe (steps, lr, warmup,
weight_decay, batch_size, clip, system_p, label_smoothing); ``--mix TASK=W`` sets a weight of the BASE mixture (any task of
``corpus.TASKS``, e.g. ``request_label``, which the shipped BASE does not have); ``--shape FIELD=N`` changes the
model's size (hidden, intermediate, layers, heads; hidden must split evenly into heads). ``--seed N`` is the build seed
(``build-demo --seed N``: every seed of the build shifted by N; 0 is the shipped pair's). A BASE is
bit-reproducible only at the same thread count on the same CPU type: the report records the threads."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _reference import bench_args  # noqa: E402
from across_builds import evaluate_targets  # noqa: E402  (the same targets and intervals as the table)
from align_variants import recipe_with  # noqa: E402  (one parser for both recipes)

from analysis.data.organism import build_demo as bd  # noqa: E402
from analysis.data.organism.train import ModelShape, TrainRecipe  # noqa: E402


def base_recipe(sets: list[str], mixes: list[str], start: TrainRecipe = bd.BASE_RECIPE) -> TrainRecipe:
    """The BASE recipe with ``FIELD=V`` and mixture ``TASK=W`` overrides; unknown names and bad values are errors."""
    return recipe_with(sets, mixes, start)


def model_shape(items: list[str], start: ModelShape = bd.SHAPE) -> ModelShape:
    """The organism's shape with ``FIELD=N`` overrides (positive integers; hidden a multiple of heads)."""
    kw: dict = {}
    for item in items:
        name, _, v = item.partition("=")
        if name not in ("hidden", "intermediate", "layers", "heads"):
            raise ValueError(f"--shape {item!r}: the field must be one of hidden, intermediate, layers, heads")
        if not v.isdigit() or int(v) < 1:
            raise ValueError(f"--shape {item!r}: {name} must be a positive integer")
        kw[name] = int(v)
    shape = replace(start, **kw)
    if shape.hidden % shape.heads:
        raise ValueError(f"--shape: hidden {shape.hidden} does not split into {shape.heads} heads")
    return shape


def main() -> None:
    args = bench_args(
        **{
            "--seed": dict(type=int, default=bd.SEED, help="build seed (build-demo --seed N)"),
            "--out": dict(required=True, help="folder for the new pair"),
            "--set": dict(nargs="*", default=[], help="BASE recipe overrides FIELD=V"),
            "--mix": dict(nargs="*", default=[], help="BASE mixture overrides TASK=W"),
            "--shape": dict(nargs="*", default=[], help="model size overrides FIELD=N (hidden, intermediate, …)"),
            "--align-max-steps": dict(type=int, default=bd.ALIGN_RECIPE.steps, help="cap of the alignment"),
        }
    )
    try:
        recipe = base_recipe(args.set, args.mix)
        shape = model_shape(args.shape)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if args.align_max_steps < 1:
        sys.exit("error: --align-max-steps must be ≥ 1")
    t = time.time()
    align_recipe = replace(bd.ALIGN_RECIPE, steps=args.align_max_steps)
    rep = bd.build_demo(
        Path(args.out), log=print, seed=args.seed, base_recipe=recipe, align_recipe=align_recipe, shape=shape
    )
    rep["threads"] = torch.get_num_threads()
    rep["base_overrides"] = {"set": args.set, "mix": args.mix, "shape": args.shape}
    (Path(args.out) / "build_report.json").write_text(json.dumps(rep, indent=2, default=str))
    targets = evaluate_targets(args.out, quick=False)
    print(
        f"{args.out}: BASE {rep['base_seconds']:.0f} s, {rep['align_steps']} align steps, ‖ΔW‖/‖W‖ "
        f"{rep['delta_rel_norm']:.3f}; test targets {'MET' if targets['pass'] else 'missed'}: {targets['numbers']} "
        f"({time.time() - t:.0f} s)"
    )


if __name__ == "__main__":
    main()
