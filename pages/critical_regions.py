"""Critical regions (Wei et al. 2024; Li & Kim 2024): which weights, ranks and units carry safety, and
what happens when they are pruned."""
import pandas as pd
import streamlit as st

from analysis.critical_regions import RegionSettings, build, unit_types
from analysis.evaluate import compare
from analysis.regions import jaccard_overlap, score_mass
from analysis.scoring import DEFAULT_CALIBRATION_N, default_calibration, scores
from pages._plots import layer_module_heatmap, score_histogram, unit_type_bars
from pages._export import figure, record
from pages._widgets import config, eval_spec_picker, page_start, progress_bar, spec_or_stop

pair = page_start("Critical regions",
                  "Importance of every decoder weight on a safety set (harmful prompt + the aligned model's own refusal) "
           "and a utility set (benign prompt + answer), response tokens only. Regions that matter for safety but not "
           "for utility are pruned reversibly; a same-size random region is the control.",
                  "Critical regions")
lm = pair.aligned

with st.expander("Data", expanded=False):
    n_cal = st.slider("Calibration samples per set", 8, 128, DEFAULT_CALIBRATION_N, step=8, key="cr_n")
    spec = eval_spec_picker("cr", default_n=48)
spec = spec_or_stop(spec)
try:
    cal = default_calibration(lm, n_cal, spec.system_prompt)
except ValueError as e:
    st.error(str(e))
    st.stop()
st.caption(f"{len(cal.safety)} safety pairs (harmful prompts the aligned model refused), {len(cal.utility)} utility pairs.")

# --- where safety and utility importance overlap ---------------------------------------------------
st.subheader("Where safety and utility overlap")
c1, c2 = st.columns([1, 3])
with c1:
    score = st.radio("Score", ["snip", "wanda"], horizontal=True, key="cr_score")
    top_p = st.slider("Top fraction p", 0.01, 0.5, 0.05, step=0.01, key="cr_overlap_p")
    view = st.radio("Heatmap", ["Jaccard overlap", "safety score mass"], key="cr_view")
update, bar = progress_bar(f"Scoring ({score})")
ss = scores(lm, score, "safety", cal, progress=update, ray_address=config().ray_address or None)
us = scores(lm, score, "utility", cal, progress=update, ray_address=config().ray_address or None)
bar.empty()
values = jaccard_overlap(ss, us, top_p) if view == "Jaccard overlap" else score_mass(ss)
with c2:
    figure(layer_module_heatmap(values, lm.adapter, f"{view} ({score}, p = {top_p:.2f})"), "cr_heat")
    st.caption("convention: reference (top p per matrix, sizes rounded down; activations at the response tokens)")  # #16
c1, c2 = st.columns([1, 3])
with c1:
    layer = st.selectbox("Layer", list(range(lm.adapter.n_layers)), key="cr_cell_layer")
    module = st.selectbox("Module", lm.adapter.modules, key="cr_cell_module")
name = next(n for n in lm.adapter.names([layer], [module]))
with c2:
    figure(score_histogram(ss[name], us[name], f"{name}: score distribution"), "cr_hist")

# --- prune a region -----------------------------------------------------------------------------------
st.subheader("Prune a region")
labels = {"set_difference": "set difference S_q \\ U_p (neurons)", "actsvd": "ActSVD: top safety ranks",
          "orthogonal": "orthogonal projection (ranks)", "units": "units (Li & Kim)"}
method = st.selectbox("Method", list(labels), format_func=labels.get, key="cr_method")
cols = st.columns(4)
s = RegionSettings(method=method, score=score)
D = RegionSettings
if method == "set_difference":
    s.q = cols[0].slider("q (top safety)", 0.0, 0.2, D.q, step=0.005, key="cr_q", format="%.3f")
    s.p = cols[1].slider("p (top utility protected)", 0.0, 0.2, D.p, step=0.005, key="cr_p", format="%.3f")
    groups = ["matrix", "row", "layer"]
    s.group = cols[2].selectbox("Group", groups, groups.index(D.group), key="cr_group",   # conventions (#16)
                                help="matrix: the reference's (alignment-attribution-code), sizes rounded down; "
                                     "row: project variant (Wanda's pruning unit), sizes rounded up; layer: variant")
    options = ["zero", "base"] if pair.base else ["zero"]
    s.prune_to = cols[3].selectbox("Prune to", options, key="cr_prune_to",
                                   help="zero the weights, or restore them to the base model's values")
elif method in ("actsvd", "orthogonal"):
    s.r_s = cols[0].slider("r_s (safety ranks removed)", 0, 16, D.r_s, key="cr_rs")
    if method == "orthogonal":
        s.r_u = cols[1].slider("r_u (utility ranks protected)", 0, 32, D.r_u, key="cr_ru")
    procedures = ["sequential", "one-pass"]   # conventions (#16)
    s.procedure = cols[2].selectbox("Procedure", procedures, procedures.index(D.procedure), key="cr_procedure",
                                    help="sequential: the reference's, layer by layer on the progressively edited "
                                         "model; one-pass: project variant, every layer from the unedited model")
else:
    s.safety_pct = cols[0].slider("exclusive safety %", 0.0, 20.0, D.safety_pct, step=0.5, key="cr_spct")
    s.utility_pct = cols[1].slider("exclusive utility %", 0.0, 40.0, D.utility_pct, step=0.5, key="cr_upct")
    s.redundant_pct = cols[2].slider("redundant %", 0.0, 40.0, D.redundant_pct, step=0.5, key="cr_rpct")
    s.unit_kind = cols[3].selectbox("Prune units of type", ["safety", "utility", "complex", "redundant"], key="cr_kind")

if not (method == "set_difference" and s.score == "snip"):   # conventions (#16)
    positions = ["response", "predicting"]
    s.positions = st.radio("Activation positions", positions, positions.index(D.positions), horizontal=True,
                           key="cr_positions", help="response: the reference's mask (the response tokens); "
                           "predicting: project variant (the positions whose next token is a response token)")
go_prune = st.button("Prune region and compare", type="primary", key="cr_go")
if go_prune:
    try:
        update, bar = progress_bar("Building region")
        region = build(lm, s, cal, pair.base, progress=update)
        results = compare(lm, spec, {"aligned": None, "pruned": region.edit, "control": region.control},
                          progress=update)
        bar.empty()
        show = spec.harmful.prompts()[:4] + spec.benign.prompts()[:4]
        gens = {label: [g.text for g in r.harmful[:4] + r.benign[:4]] for label, r in results.items()}
        rows = {label: {"ASR (keyword)": r.asr, "ASR (really complies)": r.asr_positive, "utility": r.utility,
                        "over-refusal": r.over_refusal, "degenerate": r.degenerate_rate}
                for label, r in results.items()}
        st.session_state["cr_result"] = (region.description, region.removed_fraction, region.unit, region.notes,
                                         rows, show, gens, s.convention())
    except ValueError as e:
        st.error(f"Cannot build this region: {e}")

if "cr_result" in st.session_state:
    desc, frac, unit, notes, rows, show, gens, convention = st.session_state["cr_result"]
    st.markdown(f"**{desc}** — removed **{100 * frac:.2f} %** of {unit}")
    st.caption(f"convention: {convention}")   # #16
    for note in notes:
        st.warning(note)
    df = pd.DataFrame(rows).T
    st.dataframe(df.style.format("{:.1%}", na_rep="–"), width="stretch", key="cr_table")
    st.dataframe(pd.DataFrame({"prompt": show, **{f"{k} reply": v for k, v in gens.items()}}), width="stretch",
                 hide_index=True, key="cr_gens")
    st.caption("Harmful replies stop once the judge has decided (a refusal is cut after its first words).")
    record(numbers={"region": desc, "removed": f"{100 * frac:.2f} % of {unit}"}, settings={"convention": convention},
           table=("Pruning: aligned vs pruned vs control", [{"model": k, **{m: "–" if v is None else f"{100 * v:.1f} %"
                                                                       for m, v in row.items()}}
                                                            for k, row in rows.items()]))
    record(table=("Pruning: sample replies", [{"prompt": p, **{k: v[i] for k, v in gens.items()}}
                                              for i, p in enumerate(show)]))

# --- units ---------------------------------------------------------------------------------------------
st.subheader("Unit types per layer")
update, bar = progress_bar("Unit importance")
try:
    types = unit_types(lm, s, cal, progress=update)
except ValueError as e:
    st.error(f"Cannot type the units: {e}")
    st.stop()
bar.empty()
figure(unit_type_bars(types.shares_by_layer(lm.adapter)), "cr_units")
st.caption(f"Percentile thresholds: exclusive safety {s.safety_pct:g} %, exclusive utility {s.utility_pct:g} %, "
           f"redundant {s.redundant_pct:g} % per matrix (the paper gives none; Llama-2-7B-chat shares were about "
           "1.3 % / 13 % / 15 %).")
