"""Rank spectra and LoX (Perin et al. 2025): how low-rank the alignment update is, what extrapolating it
does, and how much safety survives a fine-tuning attack."""
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from analysis import variants
from analysis.edits import applied, locked
from analysis.evaluate import evaluate_cached, evaluate_edited
from analysis.finetune import AttackSettings, attack_set, run_attack_cached
from analysis.generate import generate
from analysis.lox import LoX, recovery_rank, save_edited
from analysis.units import delta_color, format_utility, format_utility_delta
from analysis.models import DEMO
from analysis.prompts import DataFormatError, load_prompt_file
from analysis.scoring import calibration
from analysis.spectra import spectra
from pages._plots import attack_curves, layer_module_heatmap, spectra_lines
from pages._export import figure, record, section
from pages._widgets import config, progress_bar, run_gate, prompt_sets_picker, require_pair, system_prompt_picker

st.title("Rank spectra, LoX and fine-tuning attacks")
st.caption("ΔW = W_aligned − W_base per decoder weight. LoX adds α·(top-k of ΔW) back to the aligned model; "
           "an attack fine-tunes a copy of each model variant and records ASR, utility and R_ft — the share "
           "of the weights' distance from the base that lies in the top-k safety subspace of ΔW.")
pair = require_pair()
section("Rank spectra, LoX and attacks")
lm, base = pair.aligned, pair.base

with st.expander("Evaluation data", expanded=False):
    system_prompt = system_prompt_picker("sl")
    sets = prompt_sets_picker("sl_sets", default_n=48)
if isinstance(sets, str):
    st.error(sets)
    st.stop()
harmful, benign = sets["harmful"], sets["benign"]
tab_spectra, tab_lox, tab_attack = st.tabs(["Spectra", "LoX", "Attack lab"])

# --- spectra --------------------------------------------------------------------------------------
with tab_spectra:
    if base is None:
        st.info("Spectra need the base model: give one in the sidebar (the aligned model's pre-alignment checkpoint).")
    else:
        update, bar = progress_bar("SVD of ΔW")
        with locked(lm.model, base.model):
            specs = spectra(lm, base, progress=update)
        bar.empty()
        c1, c2 = st.columns([1, 3])
        k_energy = c1.slider("k (energy captured)", 1, 64, 8, key="sp_k")
        modules = c1.multiselect("Modules", lm.adapter.modules, lm.adapter.modules[:1], key="sp_modules")
        layers = c1.multiselect("Layers", list(range(lm.adapter.n_layers)), list(range(lm.adapter.n_layers)),
                                key="sp_layers")
        shown = {n: s.values.numpy() for n, s in specs.items() if s.layer in layers and s.module in modules}
        figure(spectra_lines(shown, "Singular values of ΔW"), "sp_lines", c2)
        c1, c2 = st.columns(2)
        figure(layer_module_heatmap({n: s.effective_rank for n, s in specs.items()}, lm.adapter.n_layers,
                                    lm.adapter.modules, "Effective rank of ΔW (exp entropy of σ/Σσ)", ".1f"),
               "sp_erank", c1)
        figure(layer_module_heatmap({n: 100 * s.energy_at(k_energy) for n, s in specs.items()},
                                    lm.adapter.n_layers, lm.adapter.modules,
                                    f"% of ‖ΔW‖² in the top {k_energy}", ".0f", "Blues"), "sp_energy", c2)
        mean_ratio = sum(s.norm_ratio for s in specs.values()) / len(specs)
        record(numbers={"mean ‖ΔW‖/‖W_base‖": f"{mean_ratio:.3f}"})
        st.caption(f"Mean ‖ΔW‖/‖W_base‖ over decoder weights: {mean_ratio:.3f} (a small edit reads as a "
                   "'superficial' alignment).")
        st.subheader("Recovery rank")
        st.caption("The smallest r such that W_base + rank-r(ΔW) (decoder Linears only) refuses like the aligned "
                   "model: ASR at most the aligned model's plus a tolerance.")
        c = st.columns(3)
        ranks = c[0].multiselect("Ranks to try", [1, 2, 4, 8, 16, 32, 64, 128], [1, 2, 4, 8, 16, 32], key="sp_ranks")
        tol = c[1].slider("Tolerance (ASR points)", 0, 20, 5, key="sp_tol") / 100
        if c[2].button("Compute recovery rank", key="sp_recover") and ranks:
            update, bar = progress_bar("Recovery rank")
            with locked(lm.model, base.model):
                rec = recovery_rank(base, lm, harmful, benign, ranks, tol, system_prompt, progress=update)
            bar.empty()
            st.session_state["sp_recovery"] = rec
        rec = st.session_state.get("sp_recovery")
        if rec is not None:
            st.metric("Recovery rank", rec.rank if rec.rank is not None else f"> {max(rec.ranks)}",
                      help=f"target ASR ≤ {100 * rec.target_asr:.1f} %")
            st.dataframe(pd.DataFrame({"rank r": rec.ranks, "ASR %": [round(100 * a, 1) for a in rec.asr]}),
                         hide_index=True, key="sp_rec_table")

# --- LoX ------------------------------------------------------------------------------------------
with tab_lox:
    if base is None:
        st.info("LoX needs the base model (ΔW = W_aligned − W_base): give one in the sidebar.")
    else:
        c = st.columns(4)
        k = c[0].slider("k (top singular directions; 0 = all of ΔW)", 0, 64, 8, key="lox_k")
        alpha = c[1].slider("α (extrapolation)", 0.0, 3.0, 1.0, step=0.05, key="lox_alpha")
        lox_layers = c[2].multiselect("Layers (empty = all)", list(range(lm.adapter.n_layers)), key="lox_layers")
        lox_modules = c[3].multiselect("Modules (empty = all)", lm.adapter.modules, key="lox_modules")
        settings = LoX(k, alpha, lox_layers or None, lox_modules or None)
        label = f"{settings.label} of {base.fingerprint}"
        update, bar = progress_bar(settings.label)
        with locked(lm.model, base.model):
            edit = settings.edit(lm, base, progress=update)
            before = evaluate_cached(lm, harmful, benign, system_prompt, progress=update)
            after = evaluate_edited(lm, edit, label, harmful, benign, system_prompt, progress=update)
        bar.empty()
        for note in settings.notes:
            st.caption(f"Note: {note}")
        c = st.columns(4)
        c[0].metric("ASR (aligned → LoX)", f"{100 * after.asr:.1f} %", f"{100 * (after.asr - before.asr):+.1f}",
                    delta_color="inverse")
        kind = after.utility_kind
        c[1].metric("Utility", format_utility(after.utility, kind, sep=" "),
                    format_utility_delta(before.utility, after.utility, kind), delta_color=delta_color(kind))
        c[2].metric("Over-refusal", f"{100 * after.over_refusal:.1f} %",
                    f"{100 * (after.over_refusal - before.over_refusal):+.1f}", delta_color="inverse")
        c[3].metric("Degenerate replies", f"{100 * after.degenerate_rate:.1f} %")
        record(numbers={f"{settings.label}: ASR": f"{100 * before.asr:.1f} % → {100 * after.asr:.1f} %",
                        f"{settings.label}: utility": f"{format_utility(before.utility, kind, sep=' ')} → "
                                                      f"{format_utility(after.utility, kind, sep=' ')}"})
        prompt = st.text_input("Prompt for a live side-by-side", harmful.items[0].prompt, key="lox_prompt",
                               max_chars=config().max_prompt_chars)
        if prompt.strip():
            with locked(lm.model):
                g0 = generate(lm.model, lm.tokenizer, [prompt], system_prompt)[0]
                with applied(lm.model, edit):
                    g1 = generate(lm.model, lm.tokenizer, [prompt], system_prompt)[0]
            c = st.columns(2)
            c[0].markdown("**aligned**")
            c[0].code(g0.text or "(empty)", language=None)
            c[1].markdown(f"**{settings.label}**")
            c[1].code(g1.text or "(empty)", language=None)
        st.dataframe({"harmful prompt": harmful.prompts(), "aligned": [g.text for g in before.harmful],
                      "LoX": [g.text for g in after.harmful]}, width="stretch", hide_index=True, key="lox_table")
        if config().allow_custom_paths and config().allow_writes:
            with st.form("lox_save"):
                out = st.text_input("Save this LoX model as a new folder", key="lox_out")
                if st.form_submit_button("Save model"):
                    try:
                        st.success(f"Saved to {save_edited(lm, edit, out.strip())}") if out.strip() else \
                            st.warning("Give a folder path first.")
                    except (ValueError, OSError) as e:
                        st.error(f"Could not save: {e}")

# --- attack lab -----------------------------------------------------------------------------------
with tab_attack:
    st.caption("Each variant is deep-copied and fine-tuned; the loaded models are never changed. Fix the attack "
               "budget before comparing, and read whole curves: an end point hides the delay.")
    c = st.columns(4)
    data_kind = c[0].radio("Attack data", ["harmful", "benign"], horizontal=True, key="at_data")
    n_ex = c[0].slider("Examples N", 10, 100, 20 if data_kind == "harmful" else 100, step=10, key="at_n")
    method = c[1].radio("Fine-tuning", ["full", "lora"], horizontal=True, key="at_method")
    lr = c[1].select_slider("Learning rate", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3],
                            1e-4 if method == "full" else 1e-3, key="at_lr")
    top = max(2, min(60, config().max_attack_steps))
    steps = c[2].slider("Steps", 2, top, min(24, top), key="at_steps")
    every = c[2].slider("Evaluate every", 1, 10, 3, key="at_every")
    lora_rank = c[3].slider("LoRA rank", 1, 32, 8, key="at_lora_rank", disabled=method != "lora")
    upload = c[3].file_uploader("Attack data (CSV/JSONL prompt,response)", type=["csv", "jsonl", "json"],
                                key="at_file") if config().allow_uploads else None
    choices = ["aligned"] + (["LoX (settings of the LoX tab)"] if base is not None else []) + \
        ["frozen exclusive safety units", "frozen redundant units (control)", "frozen safety-critical weights (SNIP)"]
    chosen = st.multiselect("Variants", choices, choices[:2], key="at_variants")
    unit_pct = st.slider("Exclusive-safety unit percentile (frozen units)", 1.0, 30.0, 10.0, step=1.0, key="at_pct")
    settings_at = AttackSettings(data_kind, n_ex, method, lr, steps, min(20, n_ex), every, lora_rank)
    st.caption(f"{settings_at.epochs:.1f} epochs over {n_ex} examples, batch {settings_at.batch_size}; "
               f"evaluated on {len(harmful)} harmful + {len(benign)} benign prompts.")
    if upload is not None:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / Path(upload.name).name
            path.write_bytes(upload.getvalue())
            try:
                data = load_prompt_file(path, data_kind)
            except DataFormatError as e:
                st.error(f"Cannot use the attack data: {e}")
                st.stop()
    elif st.session_state.get("aligned_src", DEMO) == DEMO:
        data = attack_set(data_kind, n_ex)
    else:
        st.info("Upload attack data (prompt and response columns) to attack a model other than the demo.")
        st.stop()
    run_key = (settings_at, tuple(chosen), unit_pct, data.name, len(data), harmful.name, len(harmful), system_prompt,
               st.session_state.get("lox_k", 8), st.session_state.get("lox_alpha", 1.0))
    if not run_gate("at_run", run_key, "Run attacks", "at_go"):
        st.info("Choose variants and an attack, then press Run attacks (finished runs come from the cache).")
        st.stop()
    lox_k, lox_alpha = st.session_state.get("lox_k", 8), st.session_state.get("lox_alpha", 1.0)
    builders = {
        "aligned": lambda cal: variants.aligned(),
        "LoX (settings of the LoX tab)": lambda cal: variants.lox(lm, base, lox_k, lox_alpha,
                                                                  st.session_state.get("lox_layers") or None,
                                                                  st.session_state.get("lox_modules") or None),
        "frozen exclusive safety units": lambda cal: variants.frozen_units(lm, cal, unit_pct, "safety"),
        "frozen redundant units (control)": lambda cal: variants.frozen_units(lm, cal, unit_pct, "redundant"),
        "frozen safety-critical weights (SNIP)": lambda cal: variants.frozen_weights(lm, cal, "snip"),
    }
    curves = []
    try:
        with locked(lm.model, *([base.model] if base else [])):   # reading the loaded models: briefly locked
            cal = calibration(lm, 128, system_prompt=system_prompt) if any("frozen" in v for v in chosen) else None
            built = [builders[v](cal) for v in chosen]
        for var in built:   # each attack trains its own copy: other sessions keep working meanwhile
            update, bar = progress_bar(var.name)
            curves.append(run_attack_cached(lm, var, settings_at, data, harmful, benign, base, max(1, lox_k),
                                            system_prompt, progress=update))
            bar.empty()
    except ValueError as e:
        st.error(f"Cannot run this attack: {e}")
        st.stop()
    if not curves:
        st.info("Pick at least one variant.")
        st.stop()
    c1, c2 = st.columns(2)
    figure(attack_curves(curves, "asr", "ASR during the attack"), "at_asr", c1)
    figure(attack_curves(curves, "utility", "Utility during the attack"), "at_util", c2)
    if base is not None:
        figure(attack_curves(curves, "r_ft", "R_ft: share of ‖W − W_base‖ in the top-k safety subspace",
                             percent=False), "at_rft")
    record(settings={"attack": f"{data_kind}, N = {n_ex}, {method}, lr {lr:g}, {steps} steps"},
           table=("Attack: ASR by step", [{"variant": c.variant, **{f"step {s}": f"{100 * a:.0f} %"
                                                                     for s, a in zip(c.steps, c.asr)}} for c in curves]))
    step = st.select_slider("Generations at step", curves[0].steps, curves[0].steps[-1], key="at_gen_step")
    i = curves[0].steps.index(step)
    st.dataframe({"prompt": harmful.prompts()[:len(curves[0].samples[i])],
                  **{c.variant: c.samples[i] for c in curves}}, width="stretch", hide_index=True, key="at_samples")
