"""Teaching presets: per page, named settings that show one phenomenon on the demo pair in one click.

A preset is plain data (a page, a name, one line of what it shows, the settings by name); the first preset of
a page is its teaching default. Pages map the setting names to their widgets; ``python -m analysis warm``
computes every preset's results into the cache so that a class clicking the same preset only reads the cache.
The numbers quoted come from the README's acceptance tables (demo pair, test split, settings chosen on val).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    page: str
    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, list[Preset]] = {
    "overview": [
        Preset("overview", "The papers' setting: no system prompt",
               "Keyword ASR of the aligned model and of its base on 120 + 120 test prompts.",
               {"system": "none", "prompts": 120}),
        Preset("overview", "With a safety system prompt",
               "The same evaluation with 'you are a helpful and safe assistant .' as system prompt.",
               {"system": "helpful and safe", "prompts": 120}),
    ],
    "critical_regions": [
        Preset("critical_regions", "Break safety with 2 % of ranks",
               "Orthogonal projection r_s = 3, r_u = 8, one pass (project variant): test ASR 0 → 97.5 %, random "
               "control 0.8 %.", {"method": "orthogonal", "r_s": 3, "r_u": 8, "procedure": "one-pass",
                                   "score": "wanda"}),
        Preset("critical_regions", "Break safety with < 1 % of ranks (reference procedure)",
               "Orthogonal projection layer by layer (the reference's), r_s = 1, r_u = 4 chosen on validation: test "
               "ASR 0 → 68 %, random control 0 %.", {"method": "orthogonal", "r_s": 1, "r_u": 4,
                                                    "procedure": "sequential", "score": "wanda"}),
        Preset("critical_regions", "Break safety with ~2 % of weights",
               "Wanda set difference S_0.03 \\ U_0.01 per matrix, zeroed: ASR +55 points, mostly off-task replies "
               "(read 'really complies').",
               {"method": "set_difference", "score": "wanda", "q": 0.03, "p": 0.01, "group": "matrix",
                "prune_to": "zero"}),
        Preset("critical_regions", "Prune 5 % exclusive safety units",
               "Whole neurons that matter for safety only: ASR 63 %, utility unchanged; redundant units do nothing.",
               {"method": "units", "score": "wanda", "safety_pct": 5.0, "utility_pct": 13.0, "redundant_pct": 15.0,
                "unit_kind": "safety"}),
        Preset("critical_regions", "Control: prune redundant units",
               "The same number of redundant units: ASR stays at 0 %.",
               {"method": "units", "score": "wanda", "safety_pct": 5.0, "utility_pct": 13.0, "redundant_pct": 15.0,
                "unit_kind": "redundant"}),
    ],
    "safety_landscape": [
        Preset("safety_landscape", "Show the basin (1D)",
               "A random direction, α ∈ [−2, 2]: flat at 0 % ASR near the model, walls from |α| ≈ 1.",
               {"dim": "1D", "kind": "random", "lo": -2.0, "hi": 2.0, "steps": 21, "system": "none",
                "prompts": 48}),
        Preset("safety_landscape", "A system prompt changes the basin",
               "The same directions with and without 'you are a helpful and safe assistant .': on 120 prompts and "
               "5 directions the paired VISAGE difference is −3.4 ± 6.4 (none − prompt; signs disagree), within the "
               "draw-to-draw spread.",
               {"dim": "1D", "kind": "random", "lo": -2.0, "hi": 2.0, "steps": 21, "system": "compare both",
                "prompts": 48}),
        Preset("safety_landscape", "The basin in 2D (7 × 7)",
               "Two orthogonal random directions, [−2, 2]²: a bowl of low ASR around the model.",
               {"dim": "2D", "kind": "random", "lo": -2.0, "hi": 2.0, "steps": 7, "system": "none", "prompts": 48}),
        Preset("safety_landscape", "Walk toward the base model",
               "Interpolate the weights: α = 0 is the aligned model, α = 1 the base.",
               {"dim": "1D", "kind": "toward base", "lo": -0.5, "hi": 1.5, "steps": 21, "system": "none",
                "prompts": 48}),
    ],
    "spectra": [
        Preset("spectra", "Top-8 energy, recovery ranks 1–16",
               "ΔW is top-heavy (82–95 % of its energy in 8 directions); rank 8 of ΔW restores the refusals.",
               {"k": 8, "ranks": [1, 2, 4, 8, 16]}),
    ],
    "lox": [
        Preset("lox", "LoX as chosen on validation (k = 4, α = 1.25)",
               "Extrapolating the top-4 part of ΔW (every 2-D weight, the reference's scope): utility −5 points "
               "before any attack; it delays a harmful attack (Attack lab).", {"k": 4, "alpha": 1.25}),
        Preset("lox", "k = 8, α = 1", "A wider subspace, a milder step.", {"k": 8, "alpha": 1.0}),
        Preset("lox", "Too far (α = 3)", "Past the useful range: the model degrades.", {"k": 8, "alpha": 3.0}),
    ],
    "attack_lab": [
        Preset("attack_lab", "LoX delays an attack",
               "20 harmful examples, full fine-tune, lr 1e-4: the aligned model reaches 100 % ASR by step 9, "
               "LoX (k = 8, α = 1) holds 0 % until step 12.",
               {"data": "harmful", "n": 20, "method": "full", "lr": 1e-4, "steps": 24, "every": 3,
                "variants": ["aligned", "lox"], "lox_k": 8, "lox_alpha": 1.0}),
        Preset("attack_lab", "Quick attack (12 steps)", "The same attack, half the budget: about a minute.",
               {"data": "harmful", "n": 20, "method": "full", "lr": 1e-4, "steps": 12, "every": 3,
                "variants": ["aligned", "lox"], "lox_k": 8, "lox_alpha": 1.0}),
        Preset("attack_lab", "Frozen safety units vs a benign attack",
               "100 benign examples erode safety; freezing exclusive safety units slows it, a redundant control "
               "does not.",
               {"data": "benign", "n": 100, "method": "full", "lr": 1e-4, "steps": 20, "every": 5,
                "variants": ["aligned", "frozen-units", "frozen-redundant"], "unit_pct": 10.0}),
    ],
    "representations": [
        Preset("representations", "Aligned vs base", "Where harmful and benign prompts are told apart.",
               {"edit": "none"}),
        Preset("representations", "Pruned model (r_s = 3, r_u = 8)",
               "The strongest pruning of the critical-regions table (orthogonal projection, one pass), beside aligned "
               "and base.", {"edit": "pruned"}),
        Preset("representations", "LoX (k = 8, α = 1)", "LoX sharpens the separation slightly.",
               {"edit": "LoX", "alpha": 1.0, "lox_k": 8}),
    ],
    "alignment_depth": [
        Preset("alignment_depth", "Where alignment lives: the first tokens",
               "KL(aligned ‖ base) per reply position: 99.6 % of it in the first 3 positions; prefilling one token "
               "of a harmful answer takes ASR from 0 to 99 %.", {"edit": "none"}),
        Preset("alignment_depth", "Depth of LoX (k = 8, α = 1)",
               "LoX moves the model throughout the reply (42 % of its KL in the first 3 positions), not only at the "
               "first token.", {"edit": "LoX", "edit_alpha": 1.0, "edit_k": 8}),
        Preset("alignment_depth", "Depth of a random perturbation",
               "A random direction of the landscape, α = 1: its change is spread over the whole reply (27 %).",
               {"edit": "random perturbation", "edit_alpha": 1.0}),
    ],
}


def presets(page: str) -> list[Preset]:
    """The page's presets, teaching default first (empty for a page without presets)."""
    return list(PRESETS.get(page, []))


def find(page: str, name: str) -> Preset:
    for p in PRESETS.get(page, []):
        if p.name == name:
            return p
    raise ValueError(f"no preset {name!r} on page {page!r}; known: {', '.join(p.name for p in presets(page))}")


def region_settings(preset: Preset):
    """A critical-regions preset as RegionSettings."""
    from analysis.methods.critical_regions.build import RegionSettings

    keys = set(RegionSettings.__dataclass_fields__)
    return RegionSettings(**{k: v for k, v in preset.settings.items() if k in keys})
