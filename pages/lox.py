"""LoX (Perin et al. 2025): add α·(top-k of ΔW) back to the aligned model and see what it does to safety and
utility, with a live side-by-side."""
import streamlit as st

from analysis.core.evaluation import compare
from analysis.core.generation import replies
from analysis.core.options import slider_args
from analysis.methods.lox import LoX, save_edited
from analysis.app_support.formatting import comparison_rows, comparison_sentences, format_utility, rate_cell
from pages._export import record
from pages._runtime import estimate, timed
from pages._widgets import config, eval_spec_picker, metric_change, page_start, progress_bar, reply_table, spec_or_stop

pair = page_start("lox")
lm, base = pair.aligned, pair.base
with st.expander("Evaluation data", expanded=False):
    spec = eval_spec_picker("lox", default_n=48)
spec = spec_or_stop(spec)

c = st.columns(5)
k = c[0].slider("k (top singular directions; 0 = all of ΔW)", **slider_args(LoX, "k"), key="lox_k")
alpha = c[1].slider("α (extrapolation)", **slider_args(LoX, "alpha"), key="lox_alpha")
lox_layers = c[2].multiselect("Layers (empty = all)", list(range(lm.adapter.n_layers)), key="lox_layers")
lox_modules = c[3].multiselect("Modules (empty = all)", lm.adapter.modules, key="lox_modules")
scopes = ["all-2d", "decoder"]   # conventions (#16)
scope = c[4].selectbox("Scope", scopes, scopes.index(LoX.scope), key="lox_scope",
                       help="all-2d: the reference's (every weight with more than one dimension, embeddings and "
                            "lm_head; applies when no layer/module filter is set); decoder: project variant")
settings = LoX(k, alpha, lox_layers or None, lox_modules or None, scope=scope)
update, bar = progress_bar(settings.label)
try:
    edit = settings.edit(lm, base, progress=update)
except ValueError as e:
    st.error(f"Cannot build this LoX model: {e}")
    st.stop()
n_units = 2 * (len(spec.harmful) + len(spec.benign))
st.caption(f"Evaluated on {spec.describe()} (48 per set by default: see Evaluation data; the Overview uses 120). "
           + estimate("evaluate", n_units))
with timed("evaluate", n_units):
    res = compare(lm, spec, {"aligned": None, "LoX": edit}, progress=update)
before, after = res["aligned"], res["LoX"]
bar.empty()
for note in settings.notes:
    st.caption(f"Note: {note}")
c = st.columns(4)
metric_change(c[0], "ASR (aligned → LoX)", f"{100 * after.asr:.1f} %", 100 * (after.asr - before.asr))
if after.utility is not None:
    scale = 100 if after.utility_kind == "exact" else 1
    metric_change(c[1], "Utility", format_utility(after.utility, after.utility_kind, sep=" "),
                  scale * (after.utility - before.utility), " pts" if after.utility_kind == "exact" else " nats",
                  lower_is_better=after.utility_kind != "exact")
metric_change(c[2], "Over-refusal", f"{100 * after.over_refusal:.1f} %",
              100 * (after.over_refusal - before.over_refusal))
c[3].metric("Degenerate replies", f"{100 * after.degenerate_rate:.1f} %")
st.caption(f"convention: {settings.convention}; ΔW in fp32 (the reference forms it in bf16)")   # #16
st.caption("ASR with 95 % intervals (Wilson): " + "; ".join(f"{k} {rate_cell(r, 'asr')}" for k, r in res.items())
           + ". LoX vs aligned on the same prompts (Newcombe interval, exact McNemar test): "
           + "; ".join(comparison_sentences(res, (("LoX", "aligned"),), ("asr", "utility", "over_refusal"))))
record(numbers={f"{settings.label}: ASR": f"{100 * before.asr:.1f} % → {100 * after.asr:.1f} %",
                f"{settings.label}: utility": f"{format_utility(before.utility, before.utility_kind, sep=' ')} → "
                                              f"{format_utility(after.utility, after.utility_kind, sep=' ')}"},
       table=("LoX vs aligned, paired on the same prompts", comparison_rows(res, (("LoX", "aligned"),))),
       settings={"LoX": settings.label, "evaluation": spec.describe(), "LoX convention": settings.convention},
       summary=[(f"{settings.label} before any attack: ASR (keyword)",
                 f"{100 * before.asr:.1f} % → {100 * after.asr:.1f} %",
                 f"utility {format_utility(before.utility, before.utility_kind, sep=' ')} → "
                 f"{format_utility(after.utility, after.utility_kind, sep=' ')}; LoX's benefit shows under attack (Attack lab)")])
prompt = st.text_input("Prompt for a live side-by-side", spec.harmful.items[0].prompt, key="lox_prompt",
                       max_chars=config().max_prompt_chars)
if st.button("Generate side by side", key="lox_live") and prompt.strip():   # generation takes the model's lock
    g0 = replies(lm, [prompt], spec.system_prompt, spec.max_new_tokens)[0]
    g1 = replies(lm, [prompt], spec.system_prompt, spec.max_new_tokens, edit)[0]
    c = st.columns(2)
    c[0].markdown("**aligned**")
    c[0].code(g0.text or "(empty)", language=None)
    c[1].markdown(f"**{settings.label}**")
    c[1].code(g1.text or "(empty)", language=None)
reply_table({"harmful prompt": spec.harmful.prompts(), "aligned": [g.text for g in before.harmful],
             "LoX": [g.text for g in after.harmful]}, key="lox_table")
if config().allow_custom_paths and config().allow_writes:
    with st.form("lox_save"):
        out = st.text_input("Save this LoX model as a new folder", key="lox_out")
        if st.form_submit_button("Save model"):
            try:
                st.success(f"Saved to {save_edited(lm, edit, out.strip())}") if out.strip() else \
                    st.warning("Give a folder path first.")
            except (ValueError, OSError) as e:
                st.error(f"Could not save: {e}")
