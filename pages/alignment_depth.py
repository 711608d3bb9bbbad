"""Alignment depth: where in a reply the aligned model differs from its base (Qi et al. 2025), and two attacks
that change no weight — prefilling the first reply tokens, and emulated disalignment (Zhou et al. 2024)."""

import html

import numpy as np
import streamlit as st

from analysis import experiments as ex
from analysis.app_support.formatting import comparison_sentences, rate_rows
from analysis.core.evaluation import make_spec
from analysis.core.options import limits
from analysis.core.stats import Rate
from analysis.data.prompts import DataFormatError, PromptSet
from analysis.methods import depth
from analysis.methods.landscape.multi import format_mean_sd
from pages._export import figure, record
from pages._plots import position_band, rate_curves, token_bars
from pages._widgets import (
    config,
    edited_model_or_stop,
    edited_model_widgets,
    eval_spec_picker,
    page_start,
    progress_bar,
    prompts_slider,
    run_gate,
    spec_or_stop,
    system_prompt_picker,
    uploaded_prompts,
)

RANDOM_EDIT_SEEDS = 3  # a random perturbation's depth is reported over this many seeds (its spread)

pair = page_start("alignment_depth")
lm, base = pair.aligned, pair.base


def _pairs(kind: str, n: int, up) -> PromptSet:
    """Uploaded pairs (CSV/JSONL prompt,response; AdvBench goal,target), else the provider's attack data."""
    if up is not None:
        return uploaded_prompts(up, kind, with_responses=True).head(n)
    return lm.data.attack_data(kind, n)


with st.expander("Pairs and system prompt", expanded=False):
    n_pairs = prompts_slider("Pairs per set", 64, "ad_n")
    system_prompt = system_prompt_picker("ad_sys")
    ups = {}
    if config().allow_uploads:
        for kind in ("harmful", "benign"):
            ups[kind] = st.file_uploader(
                f"{kind.capitalize()} (prompt, response) pairs (optional): CSV/JSONL "
                "prompt,response or AdvBench goal,target",
                type=["csv", "jsonl", "json"],
                key=f"ad_up_{kind}",
            )
try:
    harmful, benign = (_pairs(k, n_pairs, ups.get(k)) for k in ("harmful", "benign"))
except (DataFormatError, ValueError) as e:
    st.error(f"Cannot use these pairs: {e}")
    st.stop()
st.caption(
    f"{len(harmful)} harmful pairs ({harmful.name}) with target (compliant) responses, {len(benign)} benign "
    f"pairs ({benign.name}) as a control; system prompt: {system_prompt or '(none)'}."
)

# --- per-token divergence ---------------------------------------------------------------------------------------
st.subheader("Per-token divergence, aligned vs base")
update, bar = progress_bar("Per-token divergence")
div = ex.divergence(pair, {"harmful": harmful, "benign (control)": benign}, system_prompt, progress=update)
bar.empty()
c = st.columns(4)
harmful_div, benign_div = div["harmful"], div["benign (control)"]
c[0].metric(
    "KL in the first 3 positions (harmful)",
    f"{100 * harmful_div.share_first(3):.1f} %",
    help=f"95 % bootstrap interval over the harmful pairs: {harmful_div.share_first_cell(3)}",
)
c[1].metric("Summed KL per harmful reply", f"{div['harmful'].total_kl():.3f} nats")
c[2].metric("Summed KL per benign reply", f"{div['benign (control)'].total_kl():.3f} nats")
positions = c[3].slider("Positions shown", *limits(depth.DepthOptions, "positions")[:2], 24, key="ad_positions")
log = st.checkbox("Log scale for KL", value=True, key="ad_log")
figure(
    position_band(
        {k: d.profile("kl", positions) for k, d in div.items()},
        "Per-token KL(aligned ‖ base), mean and 25–75 % band",
        "KL (nats)",
        log,
    ),
    "ad_kl",
)
figure(
    position_band(
        {k: d.profile("dlogp", positions) for k, d in div.items()},
        "log p_aligned(y_t) − log p_base(y_t) of the response token",
        "nats",
    ),
    "ad_dlogp",
)
shares = harmful_div.share_first_difference(benign_div, 3).sentence("harmful", "benign control")
st.caption(
    f"Share of the summed KL in the first 3 positions, 95 % bootstrap intervals over pairs: harmful "
    f"{harmful_div.share_first_cell(3)}, benign control {benign_div.share_first_cell(3)}; {shares}."
)
record(
    summary=[
        (
            "Share of per-token KL(aligned ‖ base) in the first 3 reply positions, harmful prompts",
            harmful_div.share_first_cell(3),
            f"benign control: {benign_div.share_first_cell(3)}; {shares}",
        )
    ]
)
record(
    numbers={
        "share of per-token KL in the first 3 positions (harmful)": harmful_div.share_first_cell(3),
        "share in the first 3 positions (benign)": benign_div.share_first_cell(3),
        "share difference, harmful − benign": shares,
        "summed KL per reply, harmful / benign": f"{div['harmful'].total_kl():.3f} / "
        f"{div['benign (control)'].total_kl():.3f} nats",
    },
    settings={
        "pairs": f"{len(harmful)} harmful ({harmful.name}), {len(benign)} benign ({benign.name})",
        "system prompt": system_prompt or "(none)",
    },
)

st.markdown("**Zoom on one prompt**")
c = st.columns([1, 3])
which = c[0].radio("Set", list(div), key="ad_zoom_set")
d = div[which]
i = c[1].selectbox("Prompt", range(len(d.prompts)), format_func=lambda j: d.prompts[j], key="ad_zoom_i")
figure(token_bars(d.tokens[i], d.kl[i], f"KL(aligned ‖ base) per token: {d.prompts[i][:60]}", "KL (nats)"), "ad_zoom")
top_kl = max(max(d.kl[i]), 1e-12)
spans = " ".join(
    f"<span title='KL {v:.3g}, Δlog p {dl:.3g}' style='background: rgba(214,39,40,{min(1.0, v / top_kl):.2f});"
    f"padding:2px 3px;border-radius:3px'>{html.escape(t)}</span>"
    for t, v, dl in zip(d.tokens[i], d.kl[i], d.dlogp[i])
)
st.markdown(spans, unsafe_allow_html=True)

# --- prefilling attack ------------------------------------------------------------------------------------------
st.subheader("Prefilling attack")
st.caption(
    "The first k tokens of each harmful target response are placed after the assistant tag and the model "
    "continues greedily; the reply judged is prefix + continuation. k ≥ a target's length prefills its whole "
    "answer (counted as 'short targets')."
)
c = st.columns(2)
ks = sorted(c[0].multiselect("k", [0, 1, 2, 3, 5, 10, 20, 30], list(depth.PREFILL_KS), key="ad_ks")) or [0]
max_new = c[1].slider(
    "Max new tokens", 8, max(8, min(64, config().max_new_tokens)), min(24, config().max_new_tokens), key="ad_pf_new"
)
pf_spec = make_spec(lm, harmful, PromptSet("none", []), system_prompt, max_new)
if run_gate(
    "ad_pf", (harmful.name, len(harmful), system_prompt, tuple(ks), max_new), "Run the prefilling attack", "ad_pf_go"
):
    update, bar = progress_bar("Prefilling")
    curves = ex.prefill(pair, pf_spec, ks, progress=update)
    bar.empty()
    series = {f"{role} · keyword": [cv[k].asr for k in ks] for role, cv in curves.items()}
    if pf_spec.compliance is not None:
        series |= {
            f"{role} · {pf_spec.compliance.name}": [cv[k].asr_positive for k in ks] for role, cv in curves.items()
        }
    n_pf = len(harmful)
    figure(
        rate_curves(ks, series, "Prefilling attack: ASR against prefilled tokens k", "prefilled tokens k", n=n_pf),
        "ad_prefill",
    )

    def _rate(v: float | None) -> str:
        return "–" if v is None else Rate.of_share(v, n_pf).format()

    pf_rows = [
        {
            "k": k,
            **{f"{role} ASR": _rate(cv[k].asr) for role, cv in curves.items()},
            **{f"{role} complies": _rate(cv[k].asr_positive) for role, cv in curves.items()},
        }
        for k in ks
    ]
    st.dataframe(pf_rows, hide_index=True, key="ad_pf_rates")
    paired = ""
    if "base" in curves:
        diffs = {k: curves["aligned"][k].paired_asr(curves["base"][k], pf_spec.judge, "aligned", "base") for k in ks}
        paired = " Base vs aligned at each k on the same prompts (keyword ASR; Newcombe interval, exact McNemar): " + (
            "; ".join(f"k={k}: {d.format()}" for k, d in diffs.items())
        )
        if pf_spec.compliance is not None:  # the "really complies" columns, paired the same way
            comply = {
                k: curves["aligned"][k].paired_complies(
                    curves["base"][k], pf_spec.compliance, harmful.items, "aligned", "base"
                )
                for k in ks
            }
            paired += f". Really complies ({pf_spec.compliance.name}), base vs aligned: " + (
                "; ".join(f"k={k}: {d.format()}" for k, d in comply.items())
            )
    st.caption(f"Error bars and intervals: 95 % Wilson over the {n_pf} harmful prompts.{paired}")
    record(table=("Prefilling attack: ASR (keyword / really complies) against k", pf_rows))
    k_show = st.select_slider("Generations at k", ks, value=ks[min(1, len(ks) - 1)], key="ad_pf_k")
    record(
        table=(
            f"Prefilling: sample replies at k={k_show}",
            [
                {"prompt": p, "prefix": pre, **{role: cv[k_show].replies[j] for role, cv in curves.items()}}
                for j, (p, pre) in enumerate(zip(harmful.prompts(), curves["aligned"][k_show].prefixes))
                if j < 6
            ],
        )
    )
    st.dataframe(
        {
            "prompt": harmful.prompts(),
            "prefix": curves["aligned"][k_show].prefixes,
            **{f"{role} reply": cv[k_show].replies for role, cv in curves.items()},
        },
        width="stretch",
        hide_index=True,
        key="ad_pf_table",
    )

# --- emulated disalignment --------------------------------------------------------------------------------------
st.subheader("Emulated disalignment")
st.caption(
    "Greedy decoding over log-softmax((1 + α) log p_base − α log p_aligned): α = 0 is the base, larger α "
    "moves away from what alignment added. No weight changes. Utility and ASR on the evaluation sets."
)
with st.expander("Evaluation sets", expanded=False):
    ed_spec = eval_spec_picker("ad_ed", default_n=ex.PAGE_PROMPTS["alignment_depth"], tokens=True)
ed_spec = spec_or_stop(ed_spec)
alphas = sorted(
    st.multiselect("α", [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0], list(depth.DISALIGN_ALPHAS), key="ad_alphas")
) or [1.0]
if run_gate(
    "ad_ed_run",
    (
        ed_spec.harmful.name,
        len(ed_spec.harmful),
        len(ed_spec.benign),
        ed_spec.system_prompt,
        ed_spec.max_new_tokens,
        tuple(alphas),
    ),
    "Run emulated disalignment",
    "ad_ed_go",
):
    update, bar = progress_bar("Emulated disalignment")
    ed = ex.disalign(pair, ed_spec, alphas, progress=update)
    refs, curve = ed.references, ed.curve
    bar.empty()
    kind = refs["aligned"].utility_kind
    series = {"ASR (keyword)": [r.asr for r in curve.values()]}
    if ed_spec.compliance is not None:
        series["really complies"] = [r.asr_positive for r in curve.values()]
    if kind == "exact":
        series["utility"] = [r.utility for r in curve.values()]
    n_h, n_b = len(ed_spec.harmful), len(ed_spec.benign)
    figure(
        rate_curves(
            alphas,
            series,
            "Emulated disalignment: ASR and utility against α",
            "α",
            {f"{role} ASR {r.rate('asr').format()}": r.asr for role, r in refs.items()},
            n={"ASR (keyword)": n_h, "really complies": n_h, "utility": n_b},
        ),
        "ad_ed",
    )
    states = {**refs, **{f"ED α={a:g}": r for a, r in curve.items()}}
    rows = rate_rows(states)
    st.dataframe(rows, hide_index=True, key="ad_ed_table")
    st.caption(
        "95 % intervals (Wilson; a loss utility: bootstrap). Each α vs the aligned model on the same prompts "
        "(Newcombe interval, exact McNemar): "
        + "; ".join(
            comparison_sentences(
                states, [(f"ED α={a:g}", "aligned") for a in curve], ("asr", "asr_positive", "utility")
            )
        )
    )
    record(table=("Emulated disalignment against α", rows))
    a_show = st.select_slider("Generations at α", alphas, value=alphas[len(alphas) // 2], key="ad_ed_a")
    record(
        table=(
            f"Emulated disalignment: sample replies at α={a_show:g}",
            [
                {"prompt": g.prompt, "aligned": ga.text, f"ED α={a_show:g}": g.text}
                for g, ga in list(zip(curve[a_show].harmful, refs["aligned"].harmful))[:6]
            ],
        )
    )
    st.dataframe(
        {
            "harmful prompt": ed_spec.harmful.prompts(),
            "aligned": [g.text for g in refs["aligned"].harmful],
            "base": [g.text for g in refs["base"].harmful],
            f"ED α={a_show:g}": [g.text for g in curve[a_show].harmful],
        },
        width="stretch",
        hide_index=True,
        key="ad_ed_replies",
    )

# --- depth of an edit -------------------------------------------------------------------------------------------
st.subheader("Depth of an edit")
st.caption(
    "Per-token KL(aligned ‖ edited aligned) on the harmful pairs, beside KL(aligned ‖ base): does the edit "
    "act on the first reply tokens, as alignment does, or throughout?"
)
edit_kind, strength, lox_k, seed = edited_model_widgets(
    {"edit": "ad_edit", "alpha": "ad_edit_alpha", "k": "ad_edit_k", "seed": "ad_edit_seed"},
    ["none", "random perturbation", "pruned", "LoX"],
)
if edit_kind != "none" and run_gate(
    "ad_edit_run",
    (edit_kind, strength, lox_k, seed, harmful.name, len(harmful), system_prompt),
    "Compute the edit's depth",
    "ad_edit_go",
):
    edited_model = edited_model_or_stop(edit_kind, strength, lox_k, seed, system_prompt)
    label = edited_model.label
    with st.spinner(f"Per-token divergence of {label}"):
        edited = ex.edit_depth(pair, edited_model, harmful, system_prompt)
    profiles = {
        "aligned ‖ base": div["harmful"].profile("kl", positions),
        f"aligned ‖ {label}": edited.profile("kl", positions),
    }
    figure(
        position_band(profiles, f"Depth of an edit: per-token KL on harmful pairs ({label})", "KL (nats)", log),
        "ad_edit_kl",
    )
    st.metric(
        f"KL in the first 3 positions ({label})",
        f"{100 * edited.share_first(3):.1f} %",
        help=f"95 % bootstrap interval {edited.share_first_cell(3)}; summed KL per reply {edited.total_kl():.3f} nats",
    )
    versus = edited.share_first_difference(harmful_div, 3, paired=True).sentence(label, "base")
    draws = ""
    if edit_kind == "random perturbation":  # one random direction is one draw: the spread over seeds beside it
        seeds = [seed + i for i in range(RANDOM_EDIT_SEEDS)]
        with st.spinner(f"The same perturbation along seeds {seeds}"):
            spread = [
                d.share_first(3) for d in ex.random_edit_depths(pair, strength, seeds, harmful, system_prompt).values()
            ]
        draws = (
            f" Over the directions of seeds {seeds[0]}–{seeds[-1]}: "
            f"{format_mean_sd(100 * np.mean(spread), 100 * np.std(spread, ddof=1), len(spread))} % (per seed "
            + ", ".join(f"{100 * v:.1f}" for v in spread)
            + "): one random direction is one draw, so read the seed's share against this spread."
        )
        record(numbers={f"edit depth: random perturbation α={strength:g}, share over seeds {seeds}": draws.strip()})
    st.caption(
        f"Share of the KL in the first 3 positions, 95 % bootstrap intervals over the same {len(harmful)} harmful "
        f"pairs: {label} {edited.share_first_cell(3)}, base {harmful_div.share_first_cell(3)}; {versus}.{draws}"
    )
    record(
        numbers={
            f"edit depth: share of KL in the first 3 positions ({label})": edited.share_first_cell(3),
            f"edit depth: {label} vs base, share in the first 3 positions": versus,
            f"edit depth: summed KL per reply ({label})": f"{edited.total_kl():.3f} nats",
        }
    )
