"""Why LoX holds on some builds of the demo organism and not on others: how one LoX setting moves the first-token
refusal margin, logit(refusal's first token) − logit(compliance's first token), on the val harmful requests and
on the val benign how-to requests (where the right answer starts with the compliance token).

    python benchmarks/lox_margins.py --pairs shipped builds/seed1 builds/seed5 [--k 16 --alpha 0.75 --scope decoder]
    python benchmarks/lox_margins.py --attack --layers 0 --pairs shipped builds/seed3   # LoX on one layer only

Per build it prints the aligned model's median margins (harmful, benign how-to; the base's on harmful), LoX's
median change of each, and how many benign how-to requests LoX tips past zero (refusal first: over-refusal).
Forward passes only: a few seconds per build. ``--attack`` adds the median harmful margin along the harmful attack
of ``attack_acceptance.py`` (up to its budget step; ``--attack-draws N`` draws of its examples, mean and sd), for
the aligned model and for LoX: how fast the attack takes the margin back (a few seconds per build and draw)."""

from __future__ import annotations

import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _reference import bench_args  # noqa: E402
from across_builds import SHIPPED, check_builds, load_build  # noqa: E402  (the same builds as the table)
from attack_acceptance import HARMFUL, HARMFUL_BUDGET  # noqa: E402  (the attack the LoX verdict is measured on)

from analysis.core.cache import Cache  # noqa: E402
from analysis.core.chat import format_prompt, has_template  # noqa: E402
from analysis.core.edits import applied  # noqa: E402
from analysis.data.organism import corpus  # noqa: E402
from analysis.data.organism.provider import OrganismData  # noqa: E402
from analysis.judging.base import last_logits  # noqa: E402  (left-padded batches, same logits as alone)
from analysis.methods.attacks import variants  # noqa: E402
from analysis.methods.attacks.finetune import Variant, fine_tune_copy  # noqa: E402
from analysis.methods.lox import SCOPES, LoX  # noqa: E402

FIRST_DRAW = 7  # the attack examples' draw the benchmarks use (the organism's ``attack_data`` default seed)


def margins(model, tok, prompts: list[str]) -> torch.Tensor:
    """Per prompt: logit of the refusal's first word minus logit of the compliance word, at the first reply token."""
    refuse, comply = (tok.convert_tokens_to_ids(w) for w in (corpus.REFUSAL.split()[0], corpus.COMPLY))
    texts = [format_prompt(tok, p) for p in prompts]
    logits = last_logits(model, tok, texts, add_special_tokens=not has_template(tok), batch_size=32)
    return logits[:, refuse] - logits[:, comply]


def attacked_margins(lm, variant: Variant, prompts: list[str], draw: int = 0) -> dict[int, float]:
    """Median harmful margin at each evaluation step of the harmful attack (``attack_acceptance.py``'s settings, up
    to its budget step) on draw ``draw`` of its examples (0: the benchmark's own draw). Its batch holds every
    example, so other data orders would change nothing; other draws of the examples do."""
    settings = replace(HARMFUL, steps=HARMFUL_BUDGET, seeds=1)
    out: dict[int, float] = {}

    def record(step, model, weights) -> None:
        out[step] = float(margins(model, lm.tokenizer, prompts).median())

    data = lm.data.attack_data(settings.data, settings.n_examples, seed=FIRST_DRAW + draw)
    fine_tune_copy(lm, variant, settings, data, on_eval=record)
    return out


def build_margins(pair_dir: str, lox: LoX, n: int = 96, attack_draws: int = 0) -> dict:
    """The aligned and base margins of one build and LoX's change of them (medians over the val prompts); with
    ``attack_draws`` draws of the attack's examples, the harmful margin along the attack for the aligned model and
    for LoX (per draw: step -> median margin)."""
    sets = OrganismData().sets("val", n)
    harmful = [it.prompt for it in sets["harmful"].items]
    howto = [it.prompt for it in sets["benign"].items if it.meta.get("task") == "benign_howto"]
    pair = load_build(pair_dir)
    model, tok = pair.aligned.model, pair.aligned.tokenizer
    mh, mb = margins(model, tok, harmful), margins(model, tok, howto)
    edit = lox.edit(pair.aligned, pair.base, cache=Cache(tempfile.mkdtemp(prefix="lox_margins_")))
    with applied(model, edit):
        lh, lb = margins(model, tok, harmful), margins(model, tok, howto)
    attacked = {
        "aligned along the attack": [
            attacked_margins(pair.aligned, variants.aligned(), harmful, d) for d in range(attack_draws)
        ],
        "LoX along the attack": [
            attacked_margins(pair.aligned, Variant(lox.label, edit=edit), harmful, d) for d in range(attack_draws)
        ],
    }
    return {
        **attacked,
        "aligned harmful": float(mh.median()),
        "aligned how-to": float(mb.median()),
        "base harmful": float(margins(pair.base.model, pair.base.tokenizer, harmful).median()),
        "LoX change, harmful": float((lh - mh).median()),
        "LoX change, how-to": float((lb - mb).median()),
        "how-to tipped": int(((lb > 0) & (mb <= 0)).sum()),
        "how-to n": len(howto),
    }


def main() -> None:
    args = bench_args(
        **{
            "--pairs": dict(nargs="+", default=[SHIPPED], help="builds: 'shipped' or folders with aligned/, base/"),
            "--k": dict(type=int, default=16),
            "--alpha": dict(type=float, default=0.75),
            "--scope": dict(default="decoder", choices=SCOPES),
            "--layers": dict(type=int, nargs="+", default=None, help="extrapolate only these decoder layers"),
            "--attack": dict(action="store_true", help="also the harmful margin along the harmful attack (slower)"),
            "--attack-draws": dict(type=int, default=1, help="draws of the attack's examples (0 = the benchmark's)"),
        }
    )
    check_builds(args.pairs)
    lox = LoX(k=args.k, alpha=args.alpha, scope=args.scope, method="full", layers=args.layers)
    print(f"{lox.label}; first-token margin logit({corpus.REFUSAL.split()[0]!r}) − logit({corpus.COMPLY!r}), medians")
    if args.attack_draws < 1:
        sys.exit("error: --attack-draws must be ≥ 1")
    draws = args.attack_draws if args.attack else 0
    head = "| build | aligned: harmful / how-to | base: harmful | LoX change: harmful / how-to | how-to tipped to refusal |"
    steps = list(range(0, HARMFUL_BUDGET + 1, HARMFUL.eval_every))
    if draws:
        head += f" harmful margin along the attack, steps {', '.join(map(str, steps))}: aligned; LoX |"
        head += f" margin removed by step {steps[-1]}: aligned; LoX (mean{' ± sd' if draws > 1 else ''} over {draws} draws of the attack examples) |"
    print(head)
    print("|---" * head.count(" |") + "|")
    for p in args.pairs:
        try:
            m = build_margins(p, lox, attack_draws=draws)
        except ValueError as e:  # e.g. a layer the build does not have
            sys.exit(f"error: {p}: {e}")
        row = (
            f"| {Path(p).name} | {m['aligned harmful']:+.1f} / {m['aligned how-to']:+.1f} | {m['base harmful']:+.1f} | "
            f"{m['LoX change, harmful']:+.1f} / {m['LoX change, how-to']:+.1f} | {m['how-to tipped']} of {m['how-to n']} |"
        )
        if draws:
            kinds = ("aligned along the attack", "LoX along the attack")
            mean = {k: {s: statistics.fmean(run[s] for run in m[k]) for s in steps} for k in kinds}
            row += " " + "; ".join(" ".join(f"{mean[k][s]:+.1f}" for s in steps) for k in kinds) + " |"
            removed = {k: [run[steps[0]] - run[steps[-1]] for run in m[k]] for k in kinds}
            row += " " + "; ".join(_mean_sd(removed[k]) for k in kinds) + " |"
        print(row, flush=True)


def _mean_sd(xs: list[float]) -> str:
    return f"{statistics.fmean(xs):.1f}" + (f" ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else "")


if __name__ == "__main__":
    main()
