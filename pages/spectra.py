"""Rank spectra (Perin et al. 2025): how low-rank the alignment update ΔW = W_aligned − W_base is, and the
smallest rank of ΔW that turns the base model into a refusing one."""

import pandas as pd
import streamlit as st

from analysis import experiments as ex
from analysis.core.options import limits
from analysis.methods.lox import DEFAULT_RECOVERY_RANKS, DEFAULT_RECOVERY_TOLERANCE, RecoverySettings
from analysis.methods.spectra import DEFAULT_ENERGY_K, spectra
from pages._export import figure, record
from pages._plots import layer_module_heatmap, spectra_lines
from pages._widgets import eval_spec_picker, page_start, progress_bar, spec_or_stop

pair = page_start("spectra")
lm, base = pair.aligned, pair.base

update, bar = progress_bar("SVD of ΔW")
specs = spectra(lm, base, progress=update)
bar.empty()
c1, c2 = st.columns([1, 3])
k_energy = c1.slider("k (energy captured)", 1, 64, DEFAULT_ENERGY_K, key="sp_k")
modules = c1.multiselect("Modules", lm.adapter.modules, lm.adapter.modules[:1], key="sp_modules")
layers = c1.multiselect("Layers", list(range(lm.adapter.n_layers)), list(range(lm.adapter.n_layers)), key="sp_layers")
shown = {n: s.values.numpy() for n, s in specs.items() if s.layer in layers and s.module in modules}
figure(spectra_lines(shown, "Singular values of the alignment update ΔW"), "sp_lines", c2)
c1, c2 = st.columns(2)
figure(
    layer_module_heatmap(
        {n: s.effective_rank for n, s in specs.items()},
        lm.adapter,
        "Effective rank of ΔW (exp entropy of σ/Σσ)",
        ".1f",
        colorbar_title="effective rank",
    ),
    "sp_erank",
    c1,
)
figure(
    layer_module_heatmap(
        {n: 100 * s.energy_at(k_energy) for n, s in specs.items()},
        lm.adapter,
        f"Energy of ΔW in its top {k_energy} directions",
        ".0f",
        colorbar_title="% of ‖ΔW‖²",
    ),
    "sp_energy",
    c2,
)
mean_ratio = sum(s.norm_ratio for s in specs.values()) / len(specs)
record(numbers={"mean ‖ΔW‖/‖W_base‖": f"{mean_ratio:.3f}"})
st.caption(
    f"Mean ‖ΔW‖/‖W_base‖ over decoder weights: {mean_ratio:.3f} (a small edit reads as a 'superficial' alignment)."
)

st.subheader("Recovery rank")
st.caption(
    "The smallest r such that W_base + rank-r(ΔW) (decoder Linears only) refuses like the aligned "
    "model: ASR at most the aligned model's plus a tolerance."
)
with st.expander("Evaluation data", expanded=False):
    spec = eval_spec_picker("sp", default_n=ex.PAGE_PROMPTS["spectra"])
spec = spec_or_stop(spec)
c = st.columns(3)
ranks = c[0].multiselect(
    "Ranks to try", [1, 2, 4, 8, 16, 32, 64, 128], list(DEFAULT_RECOVERY_RANKS[:6]), key="sp_ranks"
)
tol = (
    c[1].slider(
        "Tolerance (ASR points)",
        *(round(100 * v) for v in limits(RecoverySettings, "tolerance")[:2]),
        round(100 * DEFAULT_RECOVERY_TOLERANCE),
        key="sp_tol",
    )
    / 100
)
if c[2].button("Compute recovery rank", key="sp_recover") and ranks:
    update, bar = progress_bar("Recovery rank")
    st.session_state["sp_recovery"] = ex.recovery(pair, spec, ranks, tol, progress=update)
    bar.empty()
rec = st.session_state.get("sp_recovery")
if rec is not None:
    st.metric(
        "Recovery rank",
        rec.rank if rec.rank is not None else f"> {max(rec.ranks)}",
        help=f"target ASR ≤ {100 * rec.target_asr:.1f} %",
    )
    st.dataframe(
        pd.DataFrame(
            {
                "rank r": rec.ranks,
                "ASR %": [round(100 * a, 1) for a in rec.asr],
                "95 % interval": [r.interval() for r in rec.asr_rates()],
                "− aligned, same prompts": [
                    f"{100 * d.diff:+.1f} [{100 * d.lo:.1f}, {100 * d.hi:.1f}]" for d in rec.vs_aligned
                ],
                "McNemar": [d.p_text() + ("" if d.significant else " (n.s.)") for d in rec.vs_aligned],
            }
        ),
        hide_index=True,
        key="sp_rec_table",
    )
    st.caption(
        f"The recovery rank is the smallest rank within the tolerance of the aligned model's ASR (a point "
        f"comparison); each rank's difference from the aligned model on the same {rec.n_harmful} prompts is paired "
        "(Newcombe interval, exact McNemar): n.s. = not distinguishable from the aligned model on these prompts. "
        + (rec.found_vs_aligned() + "." if rec.rank is not None else "")
    )
    record(
        numbers={"recovery rank": rec.rank if rec.rank is not None else f"> {max(rec.ranks)}"},
        summary=[
            (
                "Recovery rank: smallest r with W_base + rank-r(ΔW) refusing like the aligned model",
                str(rec.rank if rec.rank is not None else f"> {max(rec.ranks)}"),
                f"target ASR ≤ {100 * rec.target_asr:.1f} %; ASR by rank: "
                + ", ".join(f"r={r}: {a.format()}" for r, a in zip(rec.ranks, rec.asr_rates()))
                + "; decoder Linears only"
                + (f"; {rec.found_vs_aligned()}" if rec.rank is not None else ""),
            )
        ],
    )
