"""LoX (Perin et al. 2025): add α·(top-k of ΔW) back to the aligned model and see what it does to safety and
utility, with a live side-by-side."""

import pandas as pd
import streamlit as st

from analysis import experiments as ex
from analysis.app_support.formatting import (
    PAIRED_METRICS,
    comparison_rows,
    comparison_sentences,
    rate_cell,
    rate_rows,
)
from analysis.core.evaluation import EvalSpec
from analysis.core.generation import replies
from analysis.core.options import slider_args
from analysis.methods.lox import LoX, save_edited
from pages._export import record
from pages._runtime import estimate, timed
from pages._widgets import config, eval_spec_picker, page_start, progress_bar, rate_metric, reply_table, spec_or_stop


def lox_settings(lm) -> LoX:
    """k, α, layers, modules and scope."""
    c = st.columns(5)
    k = c[0].slider("k (top singular directions; 0 = all of ΔW)", **slider_args(LoX, "k"), key="lox_k")
    alpha = c[1].slider("α (extrapolation)", **slider_args(LoX, "alpha"), key="lox_alpha")
    layers = c[2].multiselect("Layers (empty = all)", list(range(lm.adapter.n_layers)), key="lox_layers")
    modules = c[3].multiselect("Modules (empty = all)", lm.adapter.modules, key="lox_modules")
    scopes = ["all-2d", "decoder"]
    scope = c[4].selectbox(
        "Scope",
        scopes,
        scopes.index(LoX.scope),
        key="lox_scope",
        help="all-2d: the reference's (every weight with more than one dimension, embeddings and "
        "lm_head; applies when no layer/module filter is set); decoder: project variant",
    )
    return LoX(k, alpha, layers or None, modules or None, scope=scope)


def extrapolation(pair, settings: LoX, spec: EvalSpec) -> ex.Extrapolation:
    """The aligned model against its LoX version on ``spec``."""
    n_units = 2 * (len(spec.harmful) + len(spec.benign))
    st.caption(
        f"Evaluated on {spec.describe()} ({ex.default_prompts('lox', config())} per set by default: see "
        f"Evaluation data; the Overview uses "
        f"{ex.default_prompts('overview', config())}). " + estimate("evaluate", n_units)
    )
    update, bar = progress_bar(settings.label)
    try:
        with timed("evaluate", n_units):
            out = ex.extrapolate(pair, settings, spec, progress=update)
    except ValueError as e:
        st.error(f"Cannot build this LoX model: {e}")
        st.stop()
    bar.empty()
    return out


def metrics(out: ex.Extrapolation, spec: EvalSpec) -> None:
    """ASR, utility, over-refusal and degenerate replies, aligned → LoX, and the report's rows."""
    before, after, lox = out.before, out.after, out.lox
    for note in lox.notes:
        st.caption(f"Note: {note}")
    c = st.columns(4)
    rate_metric(c[0], "ASR (aligned → LoX)", before, after, "asr")
    if after.utility is not None:
        rate_metric(c[1], "Utility", before, after, "utility", lower_is_better=after.utility_kind != "exact")
    rate_metric(c[2], "Over-refusal", before, after, "over_refusal")
    rate_metric(c[3], "Degenerate replies", before, after, "degenerate_rate")
    st.caption(f"convention: {lox.convention}; ΔW in fp32 (the reference forms it in bf16)")
    res = {"aligned": before, "LoX": after}
    st.dataframe(pd.DataFrame(rate_rows(res)).set_index("model"), width="stretch", key="lox_rates")
    st.caption(
        "95 % intervals (Wilson; a loss utility: bootstrap). LoX vs aligned on the same prompts (Newcombe "
        "interval, exact McNemar test): " + "; ".join(comparison_sentences(res, (("LoX", "aligned"),), PAIRED_METRICS))
    )
    utility = f"{rate_cell(before, 'utility')} → {rate_cell(after, 'utility')}"
    record(
        numbers={
            f"{lox.label}: ASR": f"{rate_cell(before, 'asr')} → {rate_cell(after, 'asr')}",
            f"{lox.label}: utility": utility,
        },
        table=("LoX vs aligned, paired on the same prompts", comparison_rows(res, (("LoX", "aligned"),))),
        settings={"LoX": lox.label, "evaluation": spec.describe(), "LoX convention": lox.convention},
        summary=[
            (
                f"{lox.label} before any attack: ASR (keyword)",
                f"{rate_cell(before, 'asr')} → {rate_cell(after, 'asr')}",
                f"utility {utility}; LoX's claim is about a later attack: test it in the Attack lab",
            )
        ],
    )


def side_by_side(lm, out: ex.Extrapolation, spec: EvalSpec) -> None:
    """A typed prompt answered by both models, and the evaluation's harmful replies side by side."""
    prompt = st.text_input(
        "Prompt for a live side-by-side",
        spec.harmful.items[0].prompt,
        key="lox_prompt",
        max_chars=config().max_prompt_chars,
    )
    if st.button("Generate side by side", key="lox_live") and prompt.strip():  # generation takes the model's lock
        g0 = replies(lm, [prompt], spec.system_prompt, spec.max_new_tokens)[0]
        g1 = replies(lm, [prompt], spec.system_prompt, spec.max_new_tokens, out.edit)[0]
        c = st.columns(2)
        c[0].markdown("**aligned**")
        c[0].code(g0.text or "(empty)", language=None)
        c[1].markdown(f"**{out.lox.label}**")
        c[1].code(g1.text or "(empty)", language=None)
    reply_table(
        {
            "harmful prompt": spec.harmful.prompts(),
            "aligned": [g.text for g in out.before.harmful],
            "LoX": [g.text for g in out.after.harmful],
        },
        key="lox_table",
    )


def save_form(lm, out: ex.Extrapolation) -> None:
    """Save the LoX model as a new folder (only where the launch config allows writing)."""
    if not (config().allow_custom_paths and config().allow_writes):
        return
    with st.form("lox_save"):
        folder = st.text_input("Save this LoX model as a new folder", key="lox_out")
        if st.form_submit_button("Save model"):
            try:
                st.success(f"Saved to {save_edited(lm, out.edit, folder.strip())}") if folder.strip() else st.warning(
                    "Give a folder path first."
                )
            except (ValueError, OSError) as e:
                st.error(f"Could not save: {e}")


pair = page_start("lox")
with st.expander("Evaluation data", expanded=False):
    picked = eval_spec_picker("lox", default_n=ex.PAGE_PROMPTS["lox"])
spec = spec_or_stop(picked)
result = extrapolation(pair, lox_settings(pair.aligned), spec)
metrics(result, spec)
side_by_side(pair.aligned, result, spec)
save_form(pair.aligned, result)
