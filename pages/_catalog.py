"""What each page is: its title, the caption under it, its section in the findings report, whether it needs
the pair's base model, which widgets its teaching presets set (``analysis/app_support/presets.py`` holds the presets),
and which of the demo organism's headline phenomena it shows (how often each held on other builds is said under the
title on the shipped pair: ``analysis/data/organism/robustness.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PageInfo:
    title: str
    caption: str
    section: str  # the findings report's section
    needs_base: str | None = None  # shown (and the page stopped) without a base model
    preset_widgets: dict[str, str] = field(default_factory=dict)  # preset setting -> widget key
    phenomenon: str | None = None  # the across-builds record's name of what the page shows on the demo


PAGES: dict[str, PageInfo] = {
    "alignment_depth": PageInfo(
        "Alignment depth",
        "Per-token divergence between the aligned model and its base on (prompt, response) pairs: "
        "KL(p_aligned ‖ p_base) at each reply position, given the same prefix. Shallow alignment puts nearly "
        "all of it in the first tokens — then prefilling a few tokens of a harmful answer is enough. Emulated "
        "disalignment decodes from (1 + α) log p_base − α log p_aligned and changes no weight.",
        "Alignment depth",
        needs_base="This page compares the aligned model with its base: load a pair with a base model.",
        preset_widgets={"edit": "ad_edit", "edit_alpha": "ad_edit_alpha", "edit_k": "ad_edit_k"},
    ),
    "attack_lab": PageInfo(
        "Fine-tuning attacks",
        "Each variant is deep-copied and fine-tuned; the loaded models are never changed. ASR, utility and "
        "R_ft — the share of the weights' distance from the base that lies in the top-k safety subspace of ΔW "
        "— are recorded along the attack. Fix the attack budget before comparing, and read whole curves: an "
        "end point hides the delay.",
        "Attack lab",
        phenomenon="LoX vs a harmful attack",
        preset_widgets={
            "data": "at_data",
            "n": "at_n",
            "method": "at_method",
            "lr": "at_lr",
            "steps": "at_steps",
            "every": "at_every",
            "variants": "at_variants",
            "lox_k": "at_lox_k",
            "lox_alpha": "at_lox_alpha",
            "lox_scope": "at_lox_scope",
            "unit_pct": "at_pct",
            "seeds": "at_seeds",
        },
    ),
    "critical_regions": PageInfo(
        "Critical regions",
        "Importance of every decoder weight on a safety set (harmful prompt + the aligned model's own "
        "refusal) and a utility set (benign prompt + answer), response tokens only. Regions that matter for "
        "safety but not for utility are pruned reversibly; a same-size random region is the control.",
        "Critical regions",
        phenomenon="critical regions",
        preset_widgets={
            "method": "cr_method",
            "score": "cr_score",
            "q": "cr_q",
            "p": "cr_p",
            "group": "cr_group",
            "prune_to": "cr_prune_to",
            "r_s": "cr_rs",
            "r_u": "cr_ru",
            "safety_pct": "cr_spct",
            "utility_pct": "cr_upct",
            "redundant_pct": "cr_rpct",
            "unit_kind": "cr_kind",
            "procedure": "cr_procedure",
        },
    ),
    "lox": PageInfo(
        "LoX: low-rank extrapolation",
        "W_LoX = W_aligned + α·M_k, where M_k is the top-k part of ΔW = W_aligned − W_base (k = 0: all of "
        "ΔW). The edit is applied in place and removed exactly after each measurement.",
        "LoX",
        needs_base="LoX needs the base model (ΔW = W_aligned − W_base): give one in the sidebar.",
        phenomenon="LoX vs a harmful attack",
        preset_widgets={"k": "lox_k", "alpha": "lox_alpha", "scope": "lox_scope"},
    ),
    "overview": PageInfo(
        "Overview",
        "How safe is the aligned model, how useful is it, and what does its base do with the same prompts? "
        "ASR counts replies without a refusal phrase; read the raw generations beside every number.",
        "Overview",
        phenomenon="evaluate targets",
        preset_widgets={"system": "overview_choice", "prompts": "overview_sets_n"},
    ),
    "representations": PageInfo(
        "Representations",
        "The residual stream at every layer boundary (0 = embeddings, l = after decoder layer l), at the last "
        "prompt token or averaged over the prompt, for harmful and benign prompts. A linear probe's accuracy "
        "says where the two are told apart; the difference of their means is the 'refusal direction'.",
        "Representations",
        phenomenon="refusal-direction ablation",
        preset_widgets={"edit": "rp_edit", "alpha": "rp_alpha", "lox_k": "rp_k"},
    ),
    "safety_landscape": PageInfo(
        "Safety landscape",
        "Perturb every perturbed weight tensor W to W + α·d (+ β·d₂) and measure ASR and utility at each grid "
        "point. A flat region of low ASR around the model is its safety basin; VISAGE scores it (0–100, "
        "higher = safer). Directions are regenerated from seeds; each point is applied in place and removed "
        "exactly.",
        "Safety landscape",
        phenomenon="basin with walls",
        preset_widgets={
            "dim": "ls_dim",
            "kind": "ls_kind",
            "range": "ls_range",
            "steps": "ls_steps",
            "system": "ls_sys",
            "compare": "ls_compare",
            "prompts": "ls_sets_n",
        },
    ),
    "spectra": PageInfo(
        "Rank spectra of the alignment update",
        "ΔW = W_aligned − W_base per decoder weight: its singular values, effective rank and the share of its "
        "energy in the top k directions. A low-rank, small ΔW reads as a 'superficial' alignment.",
        "Rank spectra",
        needs_base="Spectra need the base model: give one in the sidebar (the aligned model's pre-alignment "
        "checkpoint).",
        preset_widgets={"k": "sp_k", "ranks": "sp_ranks"},
    ),
}
