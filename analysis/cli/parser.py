"""The argument parser of ``python -m analysis``: one sub-command per analysis. The options of the settings
dataclasses are generated from their declarations (:mod:`analysis.core.options`): flag, default, choices, help
and a ``type=`` that checks the range at parse time; model paths and files are hand-written here."""

from __future__ import annotations

import argparse

from analysis.cli import checks as V
from analysis.cli.commands_depth import cmd_depth, cmd_disalign, cmd_prefill
from analysis.cli.commands_evaluation import cmd_datasets, cmd_evaluate, cmd_generate
from analysis.cli.commands_landscape import cmd_landscape
from analysis.cli.commands_rank import cmd_attack, cmd_lox, cmd_recovery, cmd_spectra
from analysis.cli.commands_regions import cmd_regions
from analysis.cli.commands_upkeep import cmd_build_demo, cmd_cache, cmd_warm
from analysis.core.options import add_arguments, ranged


def _model_args(p: argparse.ArgumentParser) -> None:
    from analysis.core.evaluation import EvalOptions

    p.add_argument("--model", default="demo", help="'demo', a local folder or a hub id (the aligned model)")
    p.add_argument("--base", default=None, help="base model ('' for none; default: the demo base for --model demo)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model repository's own Python code (off by default; only for sources you trust)",
    )
    add_arguments(p, EvalOptions, ["system_prompt", "max_new_tokens"])


def _prompt_args(p: argparse.ArgumentParser) -> None:
    from analysis.core.evaluation import EvalOptions

    add_arguments(p, EvalOptions, ["split"])
    p.add_argument(
        "--harmful",
        help="harmful prompts: a built-in set (advbench, harmbench, demo; see `datasets`) "
        "or a file: AdvBench CSV, .txt lines, CSV/JSONL prompt[,response]",
    )
    p.add_argument(
        "--benign", help="benign prompts: a built-in set (instruct, xsafe, demo) or a file (CSV/JSONL prompt,response)"
    )
    add_arguments(p, EvalOptions, ["n"])


def _calibration_args(p: argparse.ArgumentParser) -> None:
    from analysis.methods.critical_regions.scoring import DEFAULT_CALIBRATION_N

    p.add_argument(
        "--calibration-n",
        type=ranged(int, (1, None)),
        default=DEFAULT_CALIBRATION_N,
        help="calibration samples per set (>= 1)",
    )
    p.add_argument("--cal-harmful", default=None, help="calibration harmful prompts (default: the demo's train split)")
    p.add_argument("--cal-benign", default=None, help="calibration benign prompt,response pairs")


COUNT = ranged(int, (0, None))  # raw generations to print and the like


def parser() -> argparse.ArgumentParser:
    from analysis.methods.attacks.finetune import AttackSettings
    from analysis.methods.attacks.variants import DEFAULT_UNIT_PCT, KINDS
    from analysis.methods.critical_regions.build import METHODS, RegionSettings
    from analysis.methods.depth import DepthOptions
    from analysis.methods.landscape.grid import LandscapeSettings
    from analysis.methods.lox import LoX, RecoverySettings
    from analysis.methods.spectra import DEFAULT_ENERGY_K

    ap = V.OneLineParser(prog="python -m analysis", description="Brittleness of safety alignment: batch CLI")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("evaluate", help="ASR / utility / over-refusal table for a model pair")
    _model_args(p)
    _prompt_args(p)
    p.add_argument("--show", type=COUNT, default=2, help="raw generations to print per set")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--judge",
        default=None,
        help="comma list of judges applied to the harmful replies: keyword, KIND:FOLDER or FOLDER "
        "(KIND: llama-guard, harmbench, wildguard, refusal-clf); prints each ASR and the disagreement",
    )
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
    p.add_argument("--method", default="all", choices=["all", *METHODS])
    add_arguments(
        p,
        RegionSettings,
        [
            "score",
            "p",
            "q",
            "group",
            "procedure",
            "prune_to",
            "positions",
            "r_s",
            "r_u",
            "safety_pct",
            "decomposition",
            "lowrank_seed",
        ],
    )
    _calibration_args(p)
    _prompt_args(p)
    p.set_defaults(func=cmd_regions)
    p = sub.add_parser("landscape", help="1D or 2D safety landscape (random or toward the base) and VISAGE")
    _model_args(p)
    p.add_argument("--direction", default="random", choices=["random", "base"])
    p.add_argument(
        "--dim",
        default="1D",
        choices=["1D", "2D"],
        help="1D: a line per random direction; 2D: a plane per random draw (--directions planes; plane k from "
        "seeds seed + 2k, seed + 2k + 1), or one plane whose first axis points to the base (--direction base)",
    )
    add_arguments(p, LandscapeSettings)
    p.add_argument("--ray", default=None, help="run grid points as Ray tasks: 'local', 'auto' or a cluster address")
    p.add_argument(
        "--compare-model",
        default=None,
        help="also the landscape of another model along the same random directions (same seeds), and VISAGE "
        "paired direction by direction: 'base' (the pair's base) or a model source (folder or hub id)",
    )
    p.add_argument(
        "--compare-groups",
        default=None,
        help="also the landscape with another perturbed scope (comma list, e.g. 'linear': decoder Linears only) "
        "along the same seeds, and VISAGE paired direction by direction",
    )
    _prompt_args(p)
    p.set_defaults(func=cmd_landscape)
    p = sub.add_parser("spectra", help="singular values / effective rank of ΔW = W_aligned − W_base")
    _model_args(p)
    p.add_argument(
        "--k",
        type=ranged(int, (1, None)),
        default=DEFAULT_ENERGY_K,
        help="report the energy captured by the top k (>= 1)",
    )
    p.set_defaults(func=cmd_spectra)
    p = sub.add_parser("lox", help="LoX: W_aligned + α·top-k(ΔW); ASR/utility before and after; --save a folder")
    _model_args(p)
    add_arguments(p, LoX, ["k", "alpha"])
    p.add_argument(
        "--layers",
        type=ranged(int, (0, None), many=True),
        default=None,
        help="comma list of layer indices (default: all)",
    )
    p.add_argument("--modules", default=None, help="comma list, e.g. q_proj,down_proj (default: all)")
    add_arguments(p, LoX, ["scope"])
    p.add_argument("--save", default=None, help="write the LoX model to this new folder")
    _prompt_args(p)
    p.set_defaults(func=cmd_lox)
    p = sub.add_parser("attack", help="fine-tuning attack on copies of model variants; ASR/utility/R_ft curves")
    _model_args(p)
    p.add_argument(
        "--variants",
        type=ranged(str, choices=KINDS, many=True),
        default="aligned,lox",
        help=f"comma list: {', '.join(KINDS)}",
    )
    add_arguments(p, AttackSettings, ["data"])
    p.add_argument(
        "--attack-data",
        default=None,
        help="a built-in set (advbench, instruct) or a CSV/JSONL "
        "prompt,response file (default: the model's provider's)",
    )
    add_arguments(
        p,
        AttackSettings,
        ["n_examples", "method", "lr", "steps", "batch_size", "eval_every", "lora_rank", "seeds", "examples"],
    )
    add_arguments(p, LoX, ["k", "alpha", "scope"])  # LoX's k is also the R_ft subspace rank
    add_arguments(p, AttackSettings, ["r_metric"])
    p.add_argument(
        "--unit-pct",
        type=ranged(float, (0, 100)),
        default=DEFAULT_UNIT_PCT,
        help="frozen units: exclusive-safety percentile (0 to 100)",
    )
    _calibration_args(p)
    _prompt_args(p)
    p.set_defaults(func=cmd_attack)
    p = sub.add_parser("recovery", help="smallest r with W_base + rank-r(ΔW) refusing like the aligned model")
    _model_args(p)
    add_arguments(p, RecoverySettings)
    _prompt_args(p)
    p.set_defaults(func=cmd_recovery)
    # ----- alignment depth -----

    def _pair_files(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--pairs",
            default=None,
            help="harmful prompt,response pairs (CSV/JSONL; AdvBench goal,target); "
            "default: the demo's attack data (train split)",
        )
        p.add_argument("--benign-pairs", default=None, help="benign prompt,response pairs (control)")
        add_arguments(p, DepthOptions, ["n_pairs"])
        p.add_argument("--show", type=COUNT, default=2, help="sample replies to print")

    p = sub.add_parser("depth", help="per-token KL(aligned || base) on harmful and benign (prompt, response) pairs")
    _model_args(p)
    _pair_files(p)
    add_arguments(p, DepthOptions, ["positions"])
    p.set_defaults(func=cmd_depth)
    p = sub.add_parser("prefill", help="prefilling attack: ASR against the number k of prefilled response tokens")
    _model_args(p)
    _pair_files(p)
    add_arguments(p, DepthOptions, ["ks"])
    p.set_defaults(func=cmd_prefill)
    p = sub.add_parser("disalign", help="emulated disalignment: ASR / utility against α (contrast decoding)")
    _model_args(p)
    _prompt_args(p)
    add_arguments(p, DepthOptions, ["alphas", "tolerance"])
    p.add_argument("--show", type=COUNT, default=2)
    p.set_defaults(func=cmd_disalign)
    # ----- end alignment depth -----
    p = sub.add_parser("build-demo", help="train the demo organism pair and save it")
    p.add_argument("--out", default=None, help="output folder (default: the shipped weights folder)")
    p.add_argument(
        "--seed",
        type=ranged(int, (0, 2**32 - 1)),
        default=0,
        help="shift every seed of the build (0: the shipped pair's)",
    )
    p.add_argument(
        "--base-from",
        default=None,
        help="reuse the BASE of an earlier build (a folder with base/, e.g. the shipped weights folder) and only "
        "align: about 1 min instead of 8",
    )
    p.set_defaults(func=cmd_build_demo)
    p = sub.add_parser("cache", help="show or clear the results cache")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--root", default=None)
    p.set_defaults(func=cmd_cache)
    # --- warm ---
    p = sub.add_parser(
        "warm", help="precompute every teaching preset's results into the cache (a class hits the cache)"
    )
    _model_args(p)
    p.add_argument("--presets", nargs="+", default=["all"], help="'all', or preset names or page names (quoted)")
    p.add_argument(
        "--config",
        default=None,
        help="the app's launch config (its caps decide the prompt counts); default: $BRITTLE_CONFIG",
    )
    p.set_defaults(func=cmd_warm)
    # --- end warm ---
    return ap
