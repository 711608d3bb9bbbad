"""Representations: where the model tells harmful from benign (Li & Kim 2024's binary choice; Wei et al.'s
probes), for the aligned model, its base and an edited model, and what removing the refusal direction does."""

import numpy as np
import pandas as pd
import streamlit as st

from analysis import experiments as ex
from analysis.app_support.formatting import (
    PAIRED_METRICS,
    comparison_sentences,
    rate_cell,
    rate_rows,
)
from analysis.core.evaluation import evaluate
from analysis.core.stats import PairedDifference, Rate
from analysis.methods import representations as rep
from pages._export import figure, record
from pages._plots import boundary_label, per_layer_lines, scatter_2d
from pages._widgets import (
    edited_model_or_stop,
    edited_model_widgets,
    eval_spec_picker,
    page_start,
    progress_bar,
    rate_metric,
    reply_table,
    spec_or_stop,
)

pair = page_start("representations")
lm, base = pair.aligned, pair.base

with st.expander("Data and edited model", expanded=False):
    spec = eval_spec_picker("rp", default_n=ex.PAGE_PROMPTS["representations"])
    edit_choice = edited_model_widgets(
        {"edit": "rp_edit", "alpha": "rp_alpha", "k": "rp_k", "seed": "rp_seed"},
        ["none", "random perturbation", "pruned"] + (["LoX"] if base else []),
    )
spec = spec_or_stop(spec)
harmful, benign, system_prompt = spec.harmful, spec.benign, spec.system_prompt
if len(harmful) < 5 or len(benign) < 5:
    st.error("Probes need at least 5 harmful and 5 benign prompts.")
    st.stop()
edited = edited_model_or_stop(*edit_choice, system_prompt)
edit, edit_label = edited.edit, edited.label
if edit_choice[0] == "random perturbation":
    st.caption(
        f"The random perturbation is one draw ({edit_label}): what it does to the states and probes below is an "
        "anecdote of that direction; change the seed to see another (on Alignment depth its depth is given "
        "over three seeds)."
    )

models = (
    {"aligned": (lm, None)}
    | ({"base": (base, None)} if base else {})
    | ({f"edited ({edit_label})": (lm, edit)} if edit is not None else {})
)
# an edit is applied only when its states are not cached yet
update, bar = progress_bar("Hidden states")
states = {}
for i, (label, (m, e)) in enumerate(models.items()):
    states[label] = (rep.states_cached(m, harmful, system_prompt, e), rep.states_cached(m, benign, system_prompt, e))
    update((i + 1) / len(models), label)
bar.empty()
n_layers = states["aligned"][0].n_layers

# --- 2D views -------------------------------------------------------------------------------------
st.subheader("Harmful vs benign, one layer at a time")
c = st.columns(4)
layer = c[0].select_slider(
    "Residual stream",
    list(range(n_layers)),
    n_layers - 1,
    format_func=boundary_label,
    key="rp_layer",
    help="after decoder layer i, 0-based as on the heatmaps; emb. = embeddings",
)
pool = c[1].radio(
    "Token", ["last", "mean"], horizontal=True, key="rp_pool", help="last prompt token, or the mean over the prompt"
)
method = c[2].radio("Projection", ["pca", "umap"], horizontal=True, key="rp_proj")
colour = c[3].radio("Colour by", ["harmful / benign", "refused"], horizontal=True, key="rp_colour")
judge = spec.judge
ev = evaluate(lm, spec)
if colour == "refused":
    groups = [("harmful, refused" if judge.is_refusal(g.text) else "harmful, complied") for g in ev.harmful] + [
        ("benign, refused" if judge.is_refusal(g.text) else "benign") for g in ev.benign
    ]
    st.caption("Refused / complied as judged on the aligned model's own replies.")
else:
    groups = ["harmful"] * len(harmful) + ["benign"] * len(benign)
hover = harmful.prompts() + benign.prompts()
cols = st.columns(len(states))
for col, (label, (m, e)) in zip(cols, models.items()):
    with st.spinner(
        f"{method.upper()} of {label}" + (" (the first UMAP compiles numba code: ~30 s)" if method == "umap" else "")
    ):
        xy = rep.projection_cached(m, harmful, benign, layer, pool, method, system_prompt, e)
    figure(
        scatter_2d(
            xy, groups, hover, f"{label}: residual stream {boundary_label(layer)}, {method.upper()}", method.upper()
        ),
        f"rp_scatter_{label}",
        col,
    )

# --- probes ---------------------------------------------------------------------------------------
st.subheader("Linear probes")
accs, correct = {}, {}
for label, (m, e) in models.items():  # from the states cached above; reruns cost no refits
    cv = rep.probe_cv_cached(m, harmful, benign, system_prompt, e, pool)
    accs[label], correct[label] = cv["accuracy"], cv["correct"]
versus = {  # each model − aligned at the last layer, on the same prompts' held-out predictions
    label: PairedDifference.of(correct["aligned"][-1], c[-1], "aligned", label)
    for label, c in correct.items()
    if label != "aligned"
}
n_probe = len(harmful) + len(benign)  # each prompt is predicted once, by the fold that held it out
figure(
    per_layer_lines(
        accs,
        f"Probe accuracy, harmful vs benign (5-fold CV, {pool} token)",
        "probe accuracy (%)",
        n={label: n_probe for label in accs},
    ),
    "rp_probes",
)
record(
    summary=[
        (
            f"Probe accuracy at the last layer, {label}",
            Rate.of_share(a[-1], n_probe).format(),
            f"5-fold CV on {len(harmful)} + {len(benign)} prompts, {pool} token; 50 % is chance"
            + ("; one random direction (one draw)" if "random seed" in label else ""),
        )
        for label, a in accs.items()
    ]
)
st.caption(
    "Logistic regression on standardised states, 5-fold stratified cross-validation. 50 % is chance. Error bars: "
    f"95 % Wilson interval over the {n_probe} held-out predictions (each prompt is predicted once). Last layer: "
    + "; ".join(f"{label} {Rate.of_share(a[-1], n_probe).format()}" for label, a in accs.items())
    + "."
    + (
        " Paired with the aligned model on the same prompts (Newcombe interval, exact McNemar), last layer: "
        + "; ".join(f"{label} − aligned {d.format()}" for label, d in versus.items())
        + "."
        if versus
        else ""
    )
)
record(
    numbers={f"probe accuracy at the last layer, {label} − aligned (paired)": d.format() for label, d in versus.items()}
)

# --- refusal direction ----------------------------------------------------------------------------
st.subheader("The refusal direction")
try:  # directions from the provider's training prompts when it has them (held out from the prompts above)
    src_h, src_b = lm.data.calibration_sets(120)
    source = (
        f"the model's {len(src_h)} + {len(src_b)} calibration (train-split) prompts, held out from the prompts above"
    )
except ValueError:
    src_h, src_b = harmful, benign
    source = "the prompts above themselves (this model's data has no calibration split): optimistic"
st.caption(
    f"Per layer: r = mean(harmful) − mean(benign) of last-token states, unit length, from {source}. Ablating r "
    "projects it out of every write into the residual stream (embeddings, attention and MLP outputs) with hooks "
    "removed afterwards."
)
dirs = rep.refusal_directions_for(lm, src_h, src_b, system_prompt)
if st.button("Ablate each layer's direction and measure ASR", key="rp_ablate"):
    st.session_state["rp_scan_for"] = (harmful.name, len(harmful), len(benign), system_prompt)
if st.session_state.get("rp_scan_for") == (harmful.name, len(harmful), len(benign), system_prompt):
    update, bar = progress_bar("Direction ablation")
    chosen = rep.val_chosen_layer(lm, dirs, spec, layers=list(range(1, n_layers)), progress=update)
    scan = rep.ablation_scan(lm, dirs, spec, layers=list(range(1, n_layers)), progress=update)
    bar.empty()
    best = chosen[0] if chosen is not None else scan.best_layer
    i = scan.layers.index(best)
    how = (
        "chosen on the validation prompts (highest ASR with it ablated), reported on the prompts above"
        if chosen is not None
        else "chosen on the prompts above themselves (this model's data has no validation split): optimistic"
    )
    c = st.columns(4)
    c[0].metric("Chosen direction", boundary_label(best), help=f"taken from the residual stream at this point; {how}")
    rate_metric(c[1], "ASR with r ablated", scan.baseline, scan.results[i], "asr")
    if scan.asr_positive[i] is not None:
        rate_metric(c[2], "Really complies", scan.baseline, scan.results[i], "asr_positive")
    rate_metric(c[3], "Utility", scan.baseline, scan.results[i], "utility", lower_is_better=False)
    st.caption(f"The direction's layer is {how}.")
    exact = scan.utility_kind == "exact"
    figure(
        per_layer_lines(
            {"ASR": [np.nan] + scan.asr, **({"utility": [np.nan] + scan.utility} if exact else {})},
            "Ablating the refusal direction taken at each layer",
            "rate (%)",
            n={"ASR": len(spec.harmful), **({"utility": len(spec.benign)} if exact else {})},
        ),
        "rp_scan",
    )
    if scan.utility_kind == "loss":  # nats, not a rate: its own chart, with each point's bootstrap interval
        bounds = [r.rate("utility") for r in scan.results] or [None] * len(scan.utility)  # none kept: no bars
        figure(
            per_layer_lines(
                {"benign loss": [np.nan] + scan.utility},
                "Benign loss with the refusal direction of each layer ablated (lower is better)",
                "loss (nats)",
                percent=False,
                intervals={
                    "benign loss": (
                        [np.nan] + [np.nan if b is None else b.lo for b in bounds],
                        [np.nan] + [np.nan if b is None else b.hi for b in bounds],
                    )
                },
            ),
            "rp_scan_loss",
        )
    states = {"unedited": scan.baseline, f"ablated {boundary_label(best)}": scan.results[i]}
    st.dataframe(pd.DataFrame(rate_rows(states)).set_index("model"), width="stretch", key="rp_ablation_rates")
    st.caption(
        "Error bars and intervals: 95 % Wilson over the evaluated prompts (a loss utility: bootstrap). Ablated vs "
        "unedited on the same prompts (Newcombe interval, exact McNemar test): "
        + "; ".join(comparison_sentences(states, ((f"ablated {boundary_label(best)}", "unedited"),), PAIRED_METRICS))
    )
    record(
        summary=[
            (
                "ASR with the refusal direction ablated",
                f"{rate_cell(scan.baseline, 'asr')} → {rate_cell(scan.results[i], 'asr')}",
                f"direction from the residual stream {boundary_label(best)}; really complies "
                f"{rate_cell(scan.results[i], 'asr_positive')}; utility {rate_cell(scan.results[i], 'utility')}",
            )
        ]
    )
    record(
        numbers={
            "refusal direction: best layer": boundary_label(best),
            "ASR with it ablated": f"{rate_cell(scan.baseline, 'asr')} → {rate_cell(scan.results[i], 'asr')}",
        },
        table=(
            "Direction ablation: sample replies",
            [
                {"prompt": p, "aligned": g.text, "ablated": a}
                for p, g, a in list(zip(harmful.prompts(), ev.harmful, scan.replies[i]))[:6]
            ],
        ),
    )
    reply_table(
        {
            "harmful prompt": harmful.prompts(),
            "aligned": [g.text for g in ev.harmful],
            f"replies with r ablated (r from {boundary_label(best)})": scan.replies[i],
        },
        key="rp_replies",
    )
