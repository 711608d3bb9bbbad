"""Critical regions (Wei et al. 2024; Li & Kim 2024): which weights, ranks and units carry safety, and
what happens when they are pruned."""
import pandas as pd
import streamlit as st

from analysis.app_support.formatting import comparison_rows, comparison_sentences, rate_rows
from analysis.methods.critical_regions.build import RegionSettings
from analysis.core.evaluation import compare
from analysis.core.options import slider_args
from analysis.methods.critical_regions.masks import jaccard_overlap, score_mass
from analysis.methods.critical_regions.scoring import DEFAULT_CALIBRATION_N, default_calibration, scores
from pages._plots import layer_module_heatmap, score_histogram, unit_type_bars
from pages._export import built, figure, record
from pages._runtime import estimate, timed
from pages._widgets import (calibration_key, config, eval_spec_picker, kept, page_start, progress_bar,
                            region_cached, reply_table, spec_or_stop, unit_types_cached)

pair = page_start("critical_regions")
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
score_key = (lm.fingerprint, score, calibration_key(cal))
_scores: list = []


def safety_utility_scores():
    """The safety and utility scores (from the cache, or computed), read only when a result below is not kept
    for this server yet: a rerun on a known setting reads neither the scores nor recomputes the masks."""
    if not _scores:
        update, bar = progress_bar(f"Scoring ({score})")
        _scores.extend(scores(lm, score, which, cal, progress=update, ray_address=config().ray_address or None)
                       for which in ("safety", "utility"))
        bar.empty()
    return _scores


values = kept(("cr_values", *score_key, top_p, view),
              lambda: jaccard_overlap(*safety_utility_scores(), top_p) if view == "Jaccard overlap"
              else score_mass(safety_utility_scores()[0]))
with c2:
    figure(built(layer_module_heatmap, values, lm.adapter, f"Jaccard overlap of the top-p weights: safety vs utility "
                                                    f"({score}, p = {top_p:.2f})" if view == "Jaccard overlap" else
                                f"Safety score mass per weight ({score})", ".2f",
                                colorbar_title="Jaccard overlap (0–1)" if view == "Jaccard overlap"
                                else "share of safety score", key=lm.fingerprint), "cr_heat")
    st.caption("convention: reference (top p per matrix, sizes rounded down; activations at the response tokens)")  # #16
c1, c2 = st.columns([1, 3])
with c1:
    layer = st.selectbox("Layer", list(range(lm.adapter.n_layers)), key="cr_cell_layer")
    module = st.selectbox("Module", lm.adapter.modules, key="cr_cell_module")
name = next(n for n in lm.adapter.names([layer], [module]))
with c2:
    figure(kept(("cr_hist", *score_key, name),
                lambda: built(score_histogram, *(v[name] for v in safety_utility_scores()),
                              f"{name}: score distribution")), "cr_hist")

# --- prune a region -----------------------------------------------------------------------------------
st.subheader("Prune a region")
labels = {"set_difference": "set difference S_q \\ U_p (neurons)", "actsvd": "ActSVD: top safety ranks",
          "orthogonal": "orthogonal projection (ranks)", "units": "units (Li & Kim)"}
method = st.selectbox("Method", list(labels), format_func=labels.get, key="cr_method")
cols = st.columns(4)
s = RegionSettings(method=method, score=score)
D = RegionSettings
if method == "set_difference":
    s.q = cols[0].slider("q (top safety)", **slider_args(D, "q"), key="cr_q", format="%.3f")
    s.p = cols[1].slider("p (top utility protected)", **slider_args(D, "p"), key="cr_p", format="%.3f")
    groups = ["matrix", "row", "layer"]
    s.group = cols[2].selectbox("Group", groups, groups.index(D.group), key="cr_group",   # conventions (#16)
                                help="matrix: the reference's (alignment-attribution-code), sizes rounded down; "
                                     "row: project variant (Wanda's pruning unit), sizes rounded up; layer: variant")
    options = ["zero", "base"] if pair.base else ["zero"]
    s.prune_to = cols[3].selectbox("Prune to", options, key="cr_prune_to",
                                   help="zero the weights, or restore them to the base model's values")
elif method in ("actsvd", "orthogonal"):
    s.r_s = cols[0].slider("r_s (safety ranks removed)", **slider_args(D, "r_s"), key="cr_rs")
    if method == "orthogonal":
        s.r_u = cols[1].slider("r_u (utility ranks protected)", **slider_args(D, "r_u"), key="cr_ru")
    procedures = ["sequential", "one-pass"]   # conventions (#16)
    s.procedure = cols[2].selectbox("Procedure", procedures, procedures.index(D.procedure), key="cr_procedure",
                                    help="sequential: the reference's, layer by layer on the progressively edited "
                                         "model; one-pass: project variant, every layer from the unedited model")
else:
    s.safety_pct = cols[0].slider("exclusive safety %", **slider_args(D, "safety_pct"), key="cr_spct")
    s.utility_pct = cols[1].slider("exclusive utility %", **slider_args(D, "utility_pct"), key="cr_upct")
    s.redundant_pct = cols[2].slider("redundant %", **slider_args(D, "redundant_pct"), key="cr_rpct")
    s.unit_kind = cols[3].selectbox("Prune units of type", ["safety", "utility", "complex", "redundant"], key="cr_kind")

if not (method == "set_difference" and s.score == "snip"):   # conventions (#16)
    positions = ["response", "predicting"]
    s.positions = st.radio("Activation positions", positions, positions.index(D.positions), horizontal=True,
                           key="cr_positions", help="response: the reference's mask (the response tokens); "
                           "predicting: project variant (the positions whose next token is a response token)")
st.caption(f"Evaluated on {spec.describe()} (48 per set by default: see Evaluation data; the Overview uses 120). "
           + estimate("evaluate", 3 * (len(spec.harmful) + len(spec.benign))) + " (aligned, pruned and control)")
go_prune = st.button("Prune region and compare", type="primary", key="cr_go")
if go_prune:
    try:
        update, bar = progress_bar("Building region")
        region = region_cached(lm, s, cal, pair.base)
        with timed("evaluate", 3 * (len(spec.harmful) + len(spec.benign))):
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
        st.session_state["cr_ci"] = (rate_rows(results), comparison_rows(results), comparison_sentences(results))
    except ValueError as e:
        st.error(f"Cannot build this region: {e}")

if "cr_result" in st.session_state:
    desc, frac, unit, notes, rows, show, gens, convention = st.session_state["cr_result"]
    st.markdown(f"**{desc}** — removed **{100 * frac:.2f} %** of {unit}")
    st.caption(f"convention: {convention}")   # #16
    for note in notes:
        st.warning(note)
    ci_rows, pair_rows, sentences = st.session_state["cr_ci"]
    st.dataframe(pd.DataFrame(ci_rows).set_index("model"), width="stretch", key="cr_table")
    st.caption("95 % intervals (Wilson). Paired on the same prompts (Newcombe interval, exact McNemar test): "
               + "; ".join(sentences) + ". A difference marked not significant is within the noise of this set.")
    reply_table({"prompt": show, **{f"{k} reply": v for k, v in gens.items()}}, key="cr_gens", n_full=8)
    st.caption("Harmful replies stop once the judge has decided (a refusal is cut after its first words).")
    def _p(v) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    pr, ct, al = rows["pruned"], rows["control"], rows["aligned"]
    record(summary=[(f"ASR (keyword) after pruning: {desc}", f"{_p(al['ASR (keyword)'])} → {_p(pr['ASR (keyword)'])}",
                     f"removed {100 * frac:.2f} % of {unit}; really complies {_p(pr['ASR (really complies)'])}; "
                     f"utility {_p(al['utility'])} → {_p(pr['utility'])}; random control ASR {_p(ct['ASR (keyword)'])}")],
           settings={"region": desc, "evaluation": spec.describe(), "convention": convention})
    record(numbers={"region": desc, "removed": f"{100 * frac:.2f} % of {unit}"},
           table=("Pruning: aligned vs pruned vs control", ci_rows))
    record(table=("Pruning: paired differences on the same prompts", pair_rows))
    record(table=("Pruning: sample replies", [{"prompt": p, **{k: v[i] for k, v in gens.items()}}
                                              for i, p in enumerate(show)]))

# --- units ---------------------------------------------------------------------------------------------
st.subheader("Unit types per layer")
update, bar = progress_bar("Unit importance")
try:
    types = unit_types_cached(lm, s, cal)
except ValueError as e:
    st.error(f"Cannot type the units: {e}")
    st.stop()
bar.empty()
figure(built(unit_type_bars, types.shares_by_layer(lm.adapter)), "cr_units")
record(convention="Critical regions: set difference S_q \\ U_p as in Wei et al. (2024), per row / matrix / layer as "
                  "chosen; unit types by percentile of I_S − I_U per matrix (this project's thresholds).")
st.caption(f"Percentile thresholds: exclusive safety {s.safety_pct:g} %, exclusive utility {s.utility_pct:g} %, "
           f"redundant {s.redundant_pct:g} % per matrix (the paper gives none; Llama-2-7B-chat shares were about "
           "1.3 % / 13 % / 15 %).")
