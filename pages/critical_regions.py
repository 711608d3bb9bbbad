"""Critical regions (Wei et al. 2024; Li & Kim 2024): which weights, ranks and units carry safety, and
what happens when they are pruned."""

import pandas as pd
import streamlit as st

from analysis import experiments as ex
from analysis.app_support.formatting import (
    comparison_rows,
    comparison_sentences,
    control_sentence,
    rate_cell,
    rate_rows,
    spread_cell,
    spread_row,
)
from analysis.core.evaluation import EvalSpec
from analysis.core.options import slider_args
from analysis.methods.critical_regions.actsvd import DECOMPOSITIONS
from analysis.methods.critical_regions.build import N_CONTROLS, RegionSettings
from analysis.methods.critical_regions.masks import jaccard_overlap, score_mass
from analysis.methods.critical_regions.scoring import DEFAULT_CALIBRATION_N, Calibration
from pages._export import built, figure, record
from pages._plots import layer_module_heatmap, score_histogram, unit_type_bars
from pages._runtime import estimate, timed
from pages._widgets import (
    calibration_key,
    config,
    eval_spec_picker,
    kept,
    page_start,
    progress_bar,
    reply_table,
    spec_or_stop,
)

METHOD_LABELS = {
    "set_difference": "set difference S_q \\ U_p (neurons)",
    "actsvd": "ActSVD: top safety ranks",
    "orthogonal": "orthogonal projection (ranks)",
    "units": "units (Li & Kim)",
}


def data_section(lm) -> tuple[EvalSpec, Calibration]:
    """Calibration samples and the evaluation spec."""
    with st.expander("Data", expanded=False):
        n_cal = st.slider("Calibration samples per set", 8, 128, DEFAULT_CALIBRATION_N, step=8, key="cr_n")
        spec = eval_spec_picker("cr", default_n=ex.PAGE_PROMPTS["critical_regions"])
    spec = spec_or_stop(spec)
    try:
        cal = ex.calibration(lm, n_cal, spec.system_prompt)
    except ValueError as e:
        st.error(str(e))
        st.stop()
    st.caption(
        f"{len(cal.safety)} safety pairs (harmful prompts the aligned model refused), {len(cal.utility)} utility pairs."
    )
    return spec, cal


def overlap_section(lm, cal: Calibration) -> str:
    """Where safety and utility importance overlap: heatmap and one weight's score histogram. Returns the score."""
    st.subheader("Where safety and utility overlap")
    c1, c2 = st.columns([1, 3])
    with c1:
        score = st.radio("Score", ["snip", "wanda"], horizontal=True, key="cr_score")
        top_p = st.slider("Top fraction p", 0.01, 0.5, 0.05, step=0.01, key="cr_overlap_p")
        view = st.radio("Heatmap", ["Jaccard overlap", "safety score mass"], key="cr_view")
    score_key = (lm.fingerprint, score, calibration_key(cal))
    found: list = []

    def importance() -> ex.Importance:
        """The scores (from the cache, or computed), read only when a result below is not kept for this server
        yet: a rerun on a known setting neither reads the scores back nor recomputes the masks."""
        if not found:
            update, bar = progress_bar(f"Scoring ({score})")
            found.append(ex.importance(lm, score, cal, progress=update, ray_address=config().ray_address or None))
            bar.empty()
        return found[0]

    jaccard = view == "Jaccard overlap"
    values = kept(
        ("cr_values", *score_key, top_p, view),
        lambda: (
            jaccard_overlap(importance().safety, importance().utility, top_p)
            if jaccard
            else score_mass(importance().safety)
        ),
    )
    title = (
        f"Jaccard overlap of the top-p weights: safety vs utility ({score}, p = {top_p:.2f})"
        if jaccard
        else f"Safety score mass per weight ({score})"
    )
    with c2:
        figure(
            built(
                layer_module_heatmap,
                values,
                lm.adapter,
                title,
                ".2f",
                colorbar_title="Jaccard overlap (0–1)" if jaccard else "share of safety score",
                key=lm.fingerprint,
            ),
            "cr_heat",
        )
        st.caption("convention: reference (top p per matrix, sizes rounded down; activations at the response tokens)")
    c1, c2 = st.columns([1, 3])
    with c1:
        layer = st.selectbox("Layer", list(range(lm.adapter.n_layers)), key="cr_cell_layer")
        module = st.selectbox("Module", lm.adapter.modules, key="cr_cell_module")
    name = next(n for n in lm.adapter.names([layer], [module]))
    with c2:
        figure(
            kept(
                ("cr_hist", *score_key, name),
                lambda: built(
                    score_histogram,
                    importance().safety[name],
                    importance().utility[name],
                    f"{name}: score distribution",
                ),
            ),
            "cr_hist",
        )
    return score


def region_settings_widgets(score: str, has_base: bool) -> RegionSettings:
    """The region's method and its parameters."""
    method = st.selectbox("Method", list(METHOD_LABELS), format_func=METHOD_LABELS.get, key="cr_method")
    cols = st.columns(4)
    s, D = RegionSettings(method=method, score=score), RegionSettings
    if method == "set_difference":
        s.q = cols[0].slider("q (top safety)", **slider_args(D, "q"), key="cr_q", format="%.3f")
        s.p = cols[1].slider("p (top utility protected)", **slider_args(D, "p"), key="cr_p", format="%.3f")
        groups = ["matrix", "row", "layer"]
        s.group = cols[2].selectbox(
            "Group",
            groups,
            groups.index(D.group),
            key="cr_group",
            help="matrix: the reference's (alignment-attribution-code), sizes rounded down; "
            "row: project variant (Wanda's pruning unit), sizes rounded up; layer: variant",
        )
        s.prune_to = cols[3].selectbox(
            "Prune to",
            ["zero", "base"] if has_base else ["zero"],
            key="cr_prune_to",
            help="zero the weights, or restore them to the base model's values",
        )
    elif method in ("actsvd", "orthogonal"):
        s.r_s = cols[0].slider("r_s (safety ranks removed)", **slider_args(D, "r_s"), key="cr_rs")
        if method == "orthogonal":
            s.r_u = cols[1].slider("r_u (utility ranks protected)", **slider_args(D, "r_u"), key="cr_ru")
        procedures = ["sequential", "one-pass"]
        s.procedure = cols[2].selectbox(
            "Procedure",
            procedures,
            procedures.index(D.procedure),
            key="cr_procedure",
            help="sequential: the reference's, layer by layer on the progressively "
            "edited model; one-pass: project variant, every layer from the unedited "
            "model",
        )
        s.decomposition = cols[3].selectbox(
            "Decomposition",
            list(DECOMPOSITIONS),
            DECOMPOSITIONS.index(D.decomposition),
            key="cr_decomposition",
            help="exact: the eigendecomposition (default, deterministic); lowrank: the reference's "
            "svd_lowrank (q = r, niter = 20), whose answer depends on its seed (sequential procedure only)",
        )
        if s.decomposition == "lowrank":
            s.lowrank_seed = int(
                cols[3].number_input("svd_lowrank seed", **slider_args(D, "lowrank_seed"), key="cr_lowrank_seed")
            )
    else:
        s.safety_pct = cols[0].slider("exclusive safety %", **slider_args(D, "safety_pct"), key="cr_spct")
        s.utility_pct = cols[1].slider("exclusive utility %", **slider_args(D, "utility_pct"), key="cr_upct")
        s.redundant_pct = cols[2].slider("redundant %", **slider_args(D, "redundant_pct"), key="cr_rpct")
        s.unit_kind = cols[3].selectbox(
            "Prune units of type", ["safety", "utility", "complex", "redundant"], key="cr_kind"
        )
    if not (method == "set_difference" and s.score == "snip"):
        positions = ["response", "predicting"]
        s.positions = st.radio(
            "Activation positions",
            positions,
            positions.index(D.positions),
            horizontal=True,
            key="cr_positions",
            help="response: the reference's mask (the response tokens); "
            "predicting: project variant (the positions whose next token is a response token)",
        )
    return s


def prune_section(pair, s: RegionSettings, spec: EvalSpec, cal: Calibration) -> None:
    """Prune the region on a click; the last result stays shown."""
    n_units = (2 + N_CONTROLS) * (len(spec.harmful) + len(spec.benign))
    st.caption(
        f"Evaluated on {spec.describe()} ({ex.default_prompts('critical_regions', config())} per set by default: see "
        f"Evaluation data; the Overview uses "
        f"{ex.default_prompts('overview', config())}). "
        + estimate("evaluate", n_units)
        + f" (aligned, pruned and {N_CONTROLS} seeded controls; finished ones come from the cache)"
    )
    if st.button("Prune region and compare", type="primary", key="cr_go"):
        try:
            update, bar = progress_bar("Building region")
            with timed("evaluate", n_units):
                out = ex.prune_and_compare(pair, s, spec, cal, progress=update)
            bar.empty()
            st.session_state["cr_result"] = (
                out,
                spec.harmful.prompts()[:4] + spec.benign.prompts()[:4],
                spec.describe(),
            )
        except ValueError as e:
            st.error(f"Cannot build this region: {e}")
    if "cr_result" in st.session_state:
        show_comparison(*st.session_state["cr_result"])


def show_comparison(out: ex.PruneComparison, show: list[str], evaluation: str) -> None:
    """The aligned / pruned / controls table, sample replies, and the report's rows."""
    r = out.region
    gens = {label: [g.text for g in res.harmful[:4] + res.benign[:4]] for label, res in out.results.items()}
    st.markdown(f"**{r.description}** — removed **{100 * r.removed_fraction:.2f} %** of {r.unit}")
    st.caption(f"convention: {out.convention}")
    for note in r.notes:
        st.warning(note)
    ci_rows = comparison_table(out)
    st.dataframe(pd.DataFrame(ci_rows).set_index("model"), width="stretch", key="cr_table")
    pruned, controls = out.results["pruned"], out.control_results()
    util = ["utility"] if "utility" in pruned.metrics() and pruned.utility_kind == "exact" else []
    st.caption(
        "95 % intervals (Wilson); the controls' row: "
        + (
            f"mean ± sd over the {out.controls.n} same-size random controls' seeds. "
            if out.controls.n > 1
            else "the one control there is (every redundant unit: no random draw). "
        )
        + "Paired on the same prompts (Newcombe interval, exact McNemar test): "
        + "; ".join(comparison_sentences(out.results, (("pruned", "aligned"),), ("asr", *util)))
        + "; "
        + "; ".join(control_sentence(pruned, controls, m) for m in ["asr", *util])
        + ". A difference marked not significant is within the noise of this set."
    )
    with st.expander("Pruned vs aligned and vs the control on every rate (paired)", expanded=False):
        st.dataframe(
            pd.DataFrame(comparison_rows(out.results, (("pruned", "aligned"), ("pruned", "control")))),
            width="stretch",
            hide_index=True,
            key="cr_paired_all",
        )
        st.caption(
            "Every rate of the table, paired on the same prompts (Newcombe interval, exact McNemar test; the "
            "control here is seed 0's). 'no (within noise)': not significant on this set."
        )
    with st.expander(f"Each control seed ({out.controls.n})", expanded=False):
        st.dataframe(pd.DataFrame(rate_rows(controls)).set_index("model"), width="stretch", key="cr_control_table")
        st.dataframe(
            pd.DataFrame(comparison_rows({"pruned": pruned, **controls}, [("pruned", c) for c in controls])),
            width="stretch",
            key="cr_control_paired",
        )
    reply_table({"prompt": show, **{f"{k} reply": v for k, v in gens.items()}}, key="cr_gens", n_full=8)
    st.caption("Harmful replies stop once the judge has decided (a refusal is cut after its first words).")
    pr, al = out.results["pruned"], out.results["aligned"]
    removed = f"{100 * r.removed_fraction:.2f} % of {r.unit}"
    record(
        summary=[
            (
                f"ASR (keyword) after pruning: {r.description}",
                f"{rate_cell(al, 'asr')} → {rate_cell(pr, 'asr')}",
                f"removed {removed}; really complies {rate_cell(pr, 'asr_positive')}; "
                f"utility {rate_cell(al, 'utility')} → {rate_cell(pr, 'utility')}; random controls ASR "
                f"{spread_cell(out.controls, 'asr')}, utility {spread_cell(out.controls, 'utility')} "
                + (f"(mean ± sd of {out.controls.n})" if out.controls.n > 1 else "(one deterministic control)"),
            )
        ],
        settings={"region": r.description, "evaluation": evaluation, "convention": out.convention},
    )
    record(
        numbers={"region": r.description, "removed": removed}, table=("Pruning: aligned vs pruned vs controls", ci_rows)
    )
    record(
        table=(
            "Pruning: paired differences on the same prompts",
            comparison_rows({**out.results, **controls}, [("pruned", "aligned"), *(("pruned", c) for c in controls)]),
        )
    )
    record(table=("Pruning: each control seed", rate_rows(controls)))
    record(
        table=(
            "Pruning: sample replies",
            [{"prompt": p, **{k: v[i] for k, v in gens.items()}} for i, p in enumerate(show)],
        )
    )


def comparison_table(out: ex.PruneComparison) -> list[dict]:
    """Aligned and pruned with their 95 % intervals, then the controls' mean ± sd over seeds."""
    ci_rows = rate_rows({k: v for k, v in out.results.items() if k != "control"})
    metrics = out.results["aligned"].metrics()
    return ci_rows + [spread_row(out.controls, metrics)] if out.controls.n else ci_rows


def units_section(lm, s: RegionSettings, cal: Calibration) -> None:
    """Each layer's shares of safety / utility / complex / redundant units."""
    st.subheader("Unit types per layer")
    update, bar = progress_bar("Unit importance")
    try:
        types = ex.unit_types(lm, s, cal, progress=update)
    except ValueError as e:
        st.error(f"Cannot type the units: {e}")
        st.stop()
    bar.empty()
    figure(built(unit_type_bars, types.shares_by_layer(lm.adapter)), "cr_units")
    record(
        convention="Critical regions: set difference S_q \\ U_p as in Wei et al. (2024), per row / matrix / "
        "layer as chosen; unit types by percentile of I_S − I_U per matrix (this project's thresholds)."
    )
    st.caption(
        f"Percentile thresholds: exclusive safety {s.safety_pct:g} %, exclusive utility {s.utility_pct:g} %, "
        f"redundant {s.redundant_pct:g} % per matrix (the paper gives none; Llama-2-7B-chat shares were about "
        "1.3 % / 13 % / 15 %)."
    )


pair = page_start("critical_regions")
spec, cal = data_section(pair.aligned)
score = overlap_section(pair.aligned, cal)
st.subheader("Prune a region")
settings = region_settings_widgets(score, pair.base is not None)
prune_section(pair, settings, spec, cal)
units_section(pair.aligned, settings, cal)
