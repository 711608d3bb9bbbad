"""The argument parser of ``python -m analysis``: one sub-command per analysis."""
from __future__ import annotations

import argparse

from analysis.cli import checks as V
from analysis.cli.commands import (cmd_attack, cmd_build_demo, cmd_cache, cmd_datasets, cmd_depth, cmd_disalign,
                                   cmd_evaluate, cmd_generate, cmd_landscape, cmd_lox, cmd_prefill, cmd_recovery,
                                   cmd_regions, cmd_spectra, cmd_warm)


def _model_args(p: argparse.ArgumentParser) -> None:
    from analysis.core.evaluation import DEFAULT_MAX_NEW_TOKENS

    p.add_argument("--model", default="demo", help="'demo', a local folder or a hub id (the aligned model)")
    p.add_argument("--base", default=None, help="base model ('' for none; default: the demo base for --model demo)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="run the model repository's own Python code (off by default; only for sources you trust)")
    p.add_argument("--system-prompt", default=None)
    p.add_argument("--max-new-tokens", type=V.positive_int, default=DEFAULT_MAX_NEW_TOKENS)


def _prompt_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="built-in prompt split")
    p.add_argument("--harmful", help="harmful prompts: a built-in set (advbench, harmbench, demo; see `datasets`) "
                                     "or a file: AdvBench CSV, .txt lines, CSV/JSONL prompt[,response]")
    p.add_argument("--benign", help="benign prompts: a built-in set (instruct, xsafe, demo) or a file "
                                    "(CSV/JSONL prompt,response)")
    p.add_argument("--n", type=V.positive_int, default=None, help="use the first N prompts of each set")


def _calibration_args(p: argparse.ArgumentParser) -> None:
    from analysis.methods.critical_regions.scoring import DEFAULT_CALIBRATION_N

    p.add_argument("--calibration-n", type=V.positive_int, default=DEFAULT_CALIBRATION_N)
    p.add_argument("--cal-harmful", default=None, help="calibration harmful prompts (default: the demo's train split)")
    p.add_argument("--cal-benign", default=None, help="calibration benign prompt,response pairs")


def parser() -> argparse.ArgumentParser:
    from analysis.methods.critical_regions.build import RegionSettings
    from analysis.methods.attacks.finetune import AttackSettings
    from analysis.methods.landscape.grid import LandscapeSettings
    from analysis.methods.lox import DEFAULT_RECOVERY_RANKS, DEFAULT_RECOVERY_TOLERANCE, LoX
    from analysis.methods.spectra import DEFAULT_ENERGY_K
    from analysis.methods.attacks.variants import DEFAULT_UNIT_PCT

    R, A, L, X = RegionSettings, AttackSettings, LandscapeSettings, LoX
    ap = V.OneLineParser(prog="python -m analysis", description="Brittleness of safety alignment: batch CLI")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("evaluate", help="ASR / utility / over-refusal table for a model pair")
    _model_args(p)
    _prompt_args(p)
    p.add_argument("--show", type=V.nonneg_int, default=2, help="raw generations to print per set")
    p.add_argument("--json", action="store_true")
    p.add_argument("--judge", default=None,
                   help="comma list of judges applied to the harmful replies: keyword, KIND:FOLDER or FOLDER "
                        "(KIND: llama-guard, harmbench, wildguard, refusal-clf); prints each ASR and the disagreement")
    p.add_argument("--judge-kind", default=None, help="judge kind for bare FOLDERs (default: detected)")
    p.add_argument("--judge-refusal-label", default=None, help="refusal classifier: the label meaning refusal")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("datasets", help="list the built-in prompt sets: size, licence, source, splits")
    p.set_defaults(func=cmd_datasets)
    p = sub.add_parser("generate", help="answer one prompt with aligned and base")
    _model_args(p)
    p.add_argument("--prompt", required=True, type=V.nonempty_text)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("regions", help="critical regions: score, prune, compare with a random control")
    _model_args(p)
    p.add_argument("--method", default="all", choices=["all", "set_difference", "actsvd", "orthogonal", "units"])
    p.add_argument("--score", default=R.score, choices=["snip", "wanda"])
    p.add_argument("--p", type=V.fraction, default=R.p, help="top utility fraction protected")
    p.add_argument("--q", type=V.finite_float, default=R.q, help="top safety fraction selected")
    p.add_argument("--group", default=R.group, choices=["matrix", "row", "layer"],
                   help="set-difference group: matrix (reference, sizes rounded down) | row (project variant, rounded "
                        "up; Wanda's pruning unit) | layer")
    p.add_argument("--procedure", default=R.procedure, choices=["sequential", "one-pass"],
                   help="ActSVD / orthogonal: sequential (reference: layer by layer on the progressively edited "
                        "model) | one-pass (project variant: every layer from the unedited model)")
    p.add_argument("--prune-to", default=R.prune_to, choices=["zero", "base"])
    p.add_argument("--positions", default=R.positions, choices=["response", "predicting"],
                   help="activation token mask (Wanda, ActSVD, units): response (reference: the response tokens) | "
                        "predicting (project variant: the positions whose next token is a response token)")
    p.add_argument("--r-s", type=V.nonneg_int, default=R.r_s, help="safety ranks removed")
    p.add_argument("--r-u", type=V.nonneg_int, default=R.r_u, help="utility ranks protected (orthogonal projection)")
    p.add_argument("--safety-pct", type=V.percent, default=R.safety_pct, help="units: exclusive-safety percentile")
    _calibration_args(p)
    _prompt_args(p)
    p.set_defaults(func=cmd_regions)
    p = sub.add_parser("landscape", help="1D safety landscape (random or toward the base) and VISAGE")
    _model_args(p)
    p.add_argument("--direction", default="random", choices=["random", "base"])
    p.add_argument("--seed", type=V.seed, default=L.seed, help="direction seed (llm-landscape's own default is 123)")
    p.add_argument("--draw", default=L.draw, choices=["per-tensor", "reference"],
                   help="reference (default): llm-landscape's global-seed CPU stream in state-dict order (reproduces a "
                        "published run) | per-tensor: the project's seeded per-tensor draws")
    p.add_argument("--directions", type=V.positive_int, default=L.directions,
                   help="random directions (seeds seed, seed + 1, …); VISAGE as mean ± sd over them (1 allowed)")
    p.add_argument("--norm", default=L.norm, choices=["layer", "filter"])
    p.add_argument("--groups", default=",".join(L.groups),
                   help="comma list of linear,norm,embed,lm_head,other (default: the reference's, every tensor except "
                        "norm weights; 'linear' alone is the project's decoder-only variant)")
    p.add_argument("--visage", default=L.visage, choices=["reference", "span"],
                   help="VISAGE 1D rule: reference (llm-landscape safety_avg) | span (project variant: first to last "
                        "non-saturated point)")
    p.add_argument("--lo", type=V.finite_float, default=L.lo)
    p.add_argument("--hi", type=V.finite_float, default=L.hi)
    p.add_argument("--steps", type=V.axis_steps, default=L.steps)
    p.add_argument("--ray", default=None, help="run grid points as Ray tasks: 'local', 'auto' or a cluster address")
    _prompt_args(p)
    p.set_defaults(func=cmd_landscape)
    p = sub.add_parser("spectra", help="singular values / effective rank of ΔW = W_aligned − W_base")
    _model_args(p)
    p.add_argument("--k", type=V.positive_int, default=DEFAULT_ENERGY_K, help="report the energy captured by the top k")
    p.set_defaults(func=cmd_spectra)
    p = sub.add_parser("lox", help="LoX: W_aligned + α·top-k(ΔW); ASR/utility before and after; --save a folder")
    _model_args(p)
    p.add_argument("--k", type=V.nonneg_int, default=X.k, help="top-k singular directions of ΔW (0 = all of ΔW)")
    p.add_argument("--alpha", type=V.finite_float, default=X.alpha)
    p.add_argument("--layers", default=None, help="comma list of layer indices (default: all)")
    p.add_argument("--modules", default=None, help="comma list, e.g. q_proj,down_proj (default: all)")
    p.add_argument("--scope", default=X.scope, choices=["all-2d", "decoder"],
                   help="all-2d (reference: every weight with more than one dimension, embeddings and lm_head) | "
                        "decoder (project variant: decoder Linears only)")
    p.add_argument("--save", default=None, help="write the LoX model to this new folder")
    _prompt_args(p)
    p.set_defaults(func=cmd_lox)
    p = sub.add_parser("attack", help="fine-tuning attack on copies of model variants; ASR/utility/R_ft curves")
    _model_args(p)
    p.add_argument("--variants", type=V.variant_list, default="aligned,lox",
                   help="comma list: aligned, lox, frozen-units, frozen-redundant, frozen-weights")
    p.add_argument("--data", default=A.data, choices=["harmful", "benign"])
    p.add_argument("--attack-data", default=None, help="a built-in set (advbench, instruct) or a CSV/JSONL "
                                                        "prompt,response file (default: the model's provider's)")
    p.add_argument("--n-examples", type=V.positive_int, default=A.n_examples)
    p.add_argument("--method", default=A.method, choices=["full", "lora"])
    p.add_argument("--lr", type=V.finite_float, default=A.lr)
    p.add_argument("--steps", type=V.positive_int, default=A.steps)
    p.add_argument("--batch-size", type=V.positive_int, default=A.batch_size)
    p.add_argument("--eval-every", type=V.positive_int, default=A.eval_every)
    p.add_argument("--lora-rank", type=V.positive_int, default=A.lora_rank)
    p.add_argument("--k", type=V.nonneg_int, default=X.k, help="LoX k and the safety subspace rank for R_ft")
    p.add_argument("--alpha", type=V.finite_float, default=X.alpha, help="LoX α")
    p.add_argument("--scope", default=X.scope, choices=["all-2d", "decoder"], help="LoX scope (all-2d: reference)")
    p.add_argument("--r-metric", default=A.r_metric, choices=["mean", "pooled"],
                   help="R_ft: mean of per-weight ratios, lm_head included (reference) | pooled over decoder weights")
    p.add_argument("--unit-pct", type=V.percent, default=DEFAULT_UNIT_PCT,
                   help="frozen units: exclusive-safety percentile")
    _calibration_args(p)
    _prompt_args(p)
    p.set_defaults(func=cmd_attack)
    p = sub.add_parser("recovery", help="smallest r with W_base + rank-r(ΔW) refusing like the aligned model")
    _model_args(p)
    p.add_argument("--ranks", type=V.rank_list, default=",".join(map(str, DEFAULT_RECOVERY_RANKS)),
                   help="comma list of ranks to try")
    p.add_argument("--tolerance", type=V.fraction, default=DEFAULT_RECOVERY_TOLERANCE,
                   help="allowed ASR above the aligned model's")
    _prompt_args(p)
    p.set_defaults(func=cmd_recovery)
    # ----- alignment depth (issue #18) -----
    from analysis.methods.depth import DEFAULT_UTILITY_TOLERANCE, DISALIGN_ALPHAS, PREFILL_KS

    def _pair_files(p: argparse.ArgumentParser) -> None:
        p.add_argument("--pairs", default=None, help="harmful prompt,response pairs (CSV/JSONL; AdvBench goal,target); "
                                                      "default: the demo's attack data (train split)")
        p.add_argument("--benign-pairs", default=None, help="benign prompt,response pairs (control)")
        p.add_argument("--n-pairs", type=V.positive_int, default=120, help="pairs taken from the provider's attack data")
        p.add_argument("--show", type=V.nonneg_int, default=2, help="sample replies to print")

    p = sub.add_parser("depth", help="per-token KL(aligned || base) on harmful and benign (prompt, response) pairs")
    _model_args(p)
    _pair_files(p)
    p.add_argument("--positions", type=V.positive_int, default=12, help="response positions to print")
    p.set_defaults(func=cmd_depth)
    p = sub.add_parser("prefill", help="prefilling attack: ASR against the number k of prefilled response tokens")
    _model_args(p)
    _pair_files(p)
    p.add_argument("--ks", type=V.count_list, default=",".join(map(str, PREFILL_KS)), help="comma list of k")
    p.set_defaults(func=cmd_prefill)
    p = sub.add_parser("disalign", help="emulated disalignment: ASR / utility against α (contrast decoding)")
    _model_args(p)
    _prompt_args(p)
    p.add_argument("--alphas", type=V.float_list, default=",".join(f"{a:g}" for a in DISALIGN_ALPHAS),
                   help="comma list of α")
    p.add_argument("--tolerance", type=V.fraction, default=DEFAULT_UTILITY_TOLERANCE,
                   help="α choice: utility may fall this far below the aligned model's (fraction or nats)")
    p.add_argument("--show", type=V.nonneg_int, default=2)
    p.set_defaults(func=cmd_disalign)
    # ----- end alignment depth -----
    p = sub.add_parser("build-demo", help="train the demo organism pair and save it")
    p.add_argument("--out", default=None, help="output folder (default: the shipped weights folder)")
    p.add_argument("--seed", type=V.seed, default=0, help="shift every seed of the build (0: the shipped pair's)")
    p.set_defaults(func=cmd_build_demo)
    p = sub.add_parser("cache", help="show or clear the results cache")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--root", default=None)
    p.set_defaults(func=cmd_cache)
    # --- warm (issue #17) ---
    p = sub.add_parser("warm", help="precompute every teaching preset's results into the cache (a class hits the cache)")
    _model_args(p)
    p.add_argument("--presets", nargs="+", default=["all"], help="'all', or preset names or page names (quoted)")
    p.add_argument("--config", default=None, help="the app's launch config (its caps decide the prompt counts); "
                                                  "default: $BRITTLE_CONFIG")
    p.set_defaults(func=cmd_warm)
    # --- end warm ---
    return ap
