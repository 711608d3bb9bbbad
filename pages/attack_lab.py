"""Attack lab (Perin et al. 2025; Wei et al. 2024; Li & Kim 2024): fine-tune copies of model variants — the
aligned model, LoX, frozen safety units or weights — and see how much safety survives."""

import streamlit as st

from analysis import experiments as ex
from analysis.core.options import limits, slider_args
from analysis.core.stats import Rate
from analysis.data.prompts import DataFormatError
from analysis.methods.attacks import variants
from analysis.methods.attacks.finetune import EXAMPLES, POOL_PER_EXAMPLE, AttackSettings
from analysis.methods.attacks.seeds import describe_over_seeds, paired_over_seeds
from analysis.methods.lox import LoX
from pages._export import figure, record
from pages._plots import attack_bands
from pages._runtime import estimate, timed
from pages._widgets import (
    config,
    eval_spec_picker,
    page_start,
    progress_bar,
    reply_table,
    run_gate,
    spec_or_stop,
    uploaded_prompts,
)

PAGE_SEEDS = 1  # each seed is a whole fine-tune: one on the page (shared server), AttackSettings.seeds elsewhere
pair = page_start("attack_lab")
lm, base = pair.aligned, pair.base
with st.expander("Evaluation data", expanded=False):
    spec = eval_spec_picker("at", default_n=ex.PAGE_PROMPTS["attack_lab"])
spec = spec_or_stop(spec)

A = AttackSettings
c = st.columns(4)
data_kind = c[0].radio("Attack data", ["harmful", "benign"], horizontal=True, key="at_data")
n_ex = c[0].slider(
    "Examples N", **slider_args(A, "n_examples", A.n_examples if data_kind == "harmful" else 100), key="at_n"
)
method = c[1].radio("Fine-tuning", ["full", "lora"], horizontal=True, key="at_method")
lr = c[1].select_slider(
    "Learning rate", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3], A.lr if method == "full" else 1e-3, key="at_lr"
)
top = max(2, min(60, config().max_attack_steps))
steps = c[2].slider("Steps", 2, top, min(A.steps, top), key="at_steps")
every = c[2].slider("Evaluate every", **slider_args(A, "eval_every"), key="at_every")
lora_rank = c[3].slider("LoRA rank", **slider_args(A, "lora_rank"), key="at_lora_rank", disabled=method != "lora")
n_seeds = c[3].slider(
    "Data-order seeds",
    **slider_args(A, "seeds", PAGE_SEEDS),
    key="at_seeds",
    help=f"runs per variant (seeds 0, 1, …), drawn as a band (min–max) around the mean; the CLI and "
    f"the benchmark use {A.seeds}. With a batch holding every example the order changes nothing: draw the "
    "examples per seed (below) for a band that means something",
)
examples = c[3].radio(
    "Examples per seed",
    list(EXAMPLES),
    horizontal=True,
    key="at_examples",
    help="first: every seed trains on the same first N examples (the reference's fixed set; a full fine-tune with a batch holding "
    "them all, the seeds then agree) | drawn: each seed draws its N examples from a pool of "
    f"{POOL_PER_EXAMPLE} × N, so the band spans draws of the examples",
)
upload = (
    c[3].file_uploader("Attack data (CSV/JSONL prompt,response)", type=["csv", "jsonl", "json"], key="at_file")
    if config().allow_uploads
    else None
)
labels = {
    "aligned": "aligned",
    "lox": "LoX",
    "frozen-units": "frozen exclusive safety units",
    "frozen-redundant": "frozen redundant units (control)",
    "frozen-weights": "frozen safety-critical weights (SNIP)",
}
choices = [v for v in variants.KINDS if v != "lox" or base is not None]
chosen = st.multiselect("Variants", choices, choices[:2], format_func=labels.get, key="at_variants")
c = st.columns(5)
lox_k = c[0].slider("LoX k (and the R_ft subspace rank)", 1, limits(LoX, "k")[1], LoX.k, key="at_lox_k")
lox_alpha = c[1].slider("LoX α", **slider_args(LoX, "alpha"), key="at_lox_alpha")
unit_pct = c[2].slider(
    "Exclusive-safety unit percentile (frozen units)", 1.0, 30.0, variants.DEFAULT_UNIT_PCT, step=1.0, key="at_pct"
)
lox_scope = c[3].selectbox(
    "LoX scope",
    ["all-2d", "decoder"],
    ["all-2d", "decoder"].index(LoX.scope),
    key="at_lox_scope",
    help="all-2d: the reference's (every >1-D weight); decoder: variant",
)
r_metric = c[4].selectbox(
    "R_ft",
    ["mean", "pooled"],
    ["mean", "pooled"].index(A.r_metric),
    key="at_r_metric",
    help="mean: the reference's mean of per-weight ratios, lm_head included; pooled: project "
    "variant, one ratio pooled over the decoder weights",
)
settings_at = AttackSettings(
    data_kind,
    n_ex,
    method,
    lr,
    steps,
    min(A.batch_size, n_ex),
    every,
    lora_rank,
    seeds=n_seeds,
    examples=examples,
    subspace_k=lox_k,
    r_metric=r_metric,
)
st.caption(
    f"{settings_at.epochs:.1f} epochs over {n_ex} examples, batch {settings_at.batch_size}; "
    f"evaluated on {spec.describe()}."
)
try:
    if upload is not None:
        data = uploaded_prompts(upload, data_kind)
    else:
        data = lm.data.attack_data(data_kind, settings_at.pool)  # a pool to draw from when examples are drawn
except (DataFormatError, ValueError) as e:
    st.info(f"{e}")
    st.stop()
n_evals = n_seeds * len(chosen) * (steps // every + 1) * (len(spec.harmful) + len(spec.benign))
st.caption(
    estimate("attack", n_evals + n_seeds * len(chosen) * steps * 25) + " (evaluations plus about 25 prompt-costs per "
    "training step)"
)
run_key = (settings_at, tuple(chosen), unit_pct, lox_alpha, lox_scope, data.name, len(data), str(spec.key())[:2000])
if not run_gate("at_run", run_key, "Run attacks", "at_go"):
    st.info("Choose variants and an attack, then press Run attacks (finished runs come from the cache).")
    st.stop()
if not chosen:
    st.info("Pick at least one variant.")
    st.stop()
update, bar = progress_bar("Fine-tuning attacks")
try:  # each attack trains its own copy: other sessions keep working meanwhile
    with timed("attack", n_evals + n_seeds * len(chosen) * steps * 25):
        bands = ex.attack(
            pair, settings_at, chosen, LoX(lox_k, lox_alpha, scope=lox_scope), data, spec, unit_pct, progress=update
        )
    curves = [b.curves[0] for b in bands]  # the first seed's runs: their replies and numbers below
except ValueError as e:
    st.error(f"Cannot run this attack: {e}")
    st.stop()
bar.empty()
c1, c2 = st.columns(2)
exact = curves[0].utility_kind == "exact"
figure(attack_bands(bands, "asr", "ASR during the attack", n=len(spec.harmful)), "at_asr", c1)
figure(
    attack_bands(
        bands,
        "utility",
        "Utility during the attack",
        percent=exact,
        y_title=None if exact else "utility (response loss, nats)",
        n=len(spec.benign) if exact else None,
    ),
    "at_util",
    c2,
)
st.caption(
    f"Error bars: 95 % Wilson interval of each point's rate over the evaluated prompts (ASR over "
    f"{len(spec.harmful)} harmful prompts"
    + (
        f", utility over {len(spec.benign)} benign ones"
        if exact
        else f"; the loss utility: 95 % bootstrap interval over the {len(spec.benign)} benign items"
    )
    + (
        f"); with {n_seeds} seeds, of the seeds' mean taken as one run's (n = prompts): the sampling noise "
        "of the evaluation set. Shaded bands: min–max over the seeds — their data order"
        + (" and each seed's draw of the examples" if examples == "drawn" else "")
        + " (the noise of the attack itself)"
        + (
            f". Here the batch ({settings_at.batch_size}) holds all {n_ex} examples, so the seeds are one run and the "
            "band has no width: draw the examples per seed for a real band."
            if settings_at.seeds_are_one_run()
            else "."
        )
        if n_seeds > 1
        else "): the sampling noise of the evaluation set. One data-order seed, so no seed band (raise Data-order seeds for it)."
    )
)
if base is not None:
    figure(
        attack_bands(bands, "r_ft", "R_ft: share of ‖W − W_base‖ in the top-k safety subspace", percent=False), "at_rft"
    )
    st.caption(
        "convention: "
        + (
            "reference R_ft (mean of per-weight ratios, lm_head included)"
            if r_metric == "mean"
            else "project variant: R_ft pooled over the decoder weights"
        )
        + f"; LoX scope: {LoX(scope=lox_scope).convention}"
    )
if n_seeds > 1:
    st.caption(
        f"Bands: min–max over data-order seeds {bands[0].seeds}; lines: their mean. At the last step, ASR "
        + "; ".join(f"{b.variant} {100 * b.at(steps)[0]:.0f} ± {100 * b.at(steps)[1]:.0f} %" for b in bands)
        + " (mean ± sd). The numbers and replies below are the first seed's run."
    )
n_h = len(spec.harmful)


def _asr(v: float) -> str:
    """One run's ASR with its 95 % Wilson interval over the harmful prompts."""
    return Rate.of_share(v, n_h).format()


def _seed_spread(b) -> str:
    """'; over 3 seeds at step 24: 41.7 ± 5.2 % (mean ± sd)' — nothing with one seed."""
    if len(b.curves) < 2:
        return ""
    return f"; over {len(b.curves)} seeds at step {b.steps[-1]}: {100 * b.mean()[-1]:.1f} ± {100 * b.sd()[-1]:.1f} %"


ref = next((c for c in curves if c.variant == "aligned"), None)
paired = []
if ref is not None and len(curves) > 1:
    try:
        paired = [(c.variant, ref.paired_asr(c, steps)) for c in curves if c is not ref]
    except ValueError:  # runs without per-prompt outcomes
        paired = []
if paired:
    ref_band = next(b for b in bands if b.variant == "aligned")
    over_seeds = (
        {b.variant: describe_over_seeds(paired_over_seeds(ref_band, b, steps)) for b in bands if b is not ref_band}
        if n_seeds > 1
        else {}
    )
    st.caption(
        f"At step {ref.at(steps)['step']}, each variant vs aligned on the same {n_h} harmful prompts (keyword ASR; "
        "Newcombe interval, exact McNemar test"
        + (
            "; the first seed's runs"
            if n_seeds > 1
            else "; one data-order seed: raise Data-order seeds to see the spread"
        )
        + "): "
        + "; ".join(f"{v}: {d.format()}" for v, d in paired)
        + (
            ". Seed by seed (each variant against the aligned run of the same data order): "
            + "; ".join(f"{v}: {text}" for v, text in over_seeds.items())
            if over_seeds
            else ""
        )
    )
    record(numbers={f"ASR at step {steps}, {v} − aligned (paired)": d.format() for v, d in paired})
    record(numbers={f"ASR at step {steps}, {v} − aligned, seed by seed": t for v, t in over_seeds.items()})
    others = []  # the other rates at the same step, paired the same way (runs that kept their outcomes)
    for c in curves:
        if c is ref:
            continue
        for m, name in (("asr_positive", "really complies"), ("utility", "utility"), ("over_refusal", "over-refusal")):
            try:
                others.append((c.variant, name, ref.paired(c, steps, m)))  # a loss utility: in nats
            except ValueError:
                pass
    if others:
        st.caption(
            f"The other rates at step {ref.at(steps)['step']}, each variant vs aligned on the same prompts (Newcombe "
            "interval, exact McNemar): " + "; ".join(f"{v}, {name}: {d.format()}" for v, name, d in others)
        )
        record(numbers={f"{name} at step {steps}, {v} − aligned (paired)": d.format() for v, name, d in others})


def _change(c) -> str:
    """'; paired, last step − step 0: +95.8 points [...], McNemar p < 0.001 (significant)' (nothing without
    per-prompt outcomes)."""
    try:
        return f"; paired, last step − step 0: {c.change(steps).format()}"
    except ValueError:
        return ""


record(
    summary=[
        (
            f"ASR after a {data_kind} fine-tuning attack ({steps} steps): {c.variant}",
            f"{_asr(c.asr[0])} → {_asr(c.asr[-1])}",
            "by step: "
            + ", ".join(f"{s}: {Rate.of_share(a, n_h).format()}" for s, a in zip(c.steps, c.asr))
            + f" (of {n_h} prompts; the first seed's run)"
            + _change(c)
            + (_seed_spread(b) or "; one data-order seed (an anecdote of the attack's noise)")
            + "; read whole curves: an end point hides a delay",
        )
        for b, c in zip(bands, curves)
    ],
    convention="Attack lab: each variant is a fine-tuned copy; the loaded models never change. R_ft is the share "
    "of ‖W − W_base‖ in the top-k subspace of ΔW (Perin et al. 2025).",
)
record(
    settings={
        "attack": f"{data_kind}, N = {n_ex}, {method}, lr {lr:g}, {steps} steps",
        "R_ft convention": r_metric,
        "LoX convention": LoX(scope=lox_scope).convention,
    },
    table=(
        "Attack: ASR by step" + (" (the first seed's run)" if n_seeds > 1 else ""),
        [{"variant": c.variant, **{f"step {s}": _asr(a) for s, a in zip(c.steps, c.asr)}} for c in curves],
    ),
)
step = st.select_slider("Generations at step", curves[0].steps, curves[0].steps[-1], key="at_gen_step")
i = curves[0].steps.index(step)
reply_table(
    {"prompt": spec.harmful.prompts()[: len(curves[0].samples[i])], **{c.variant: c.samples[i] for c in curves}},
    key="at_samples",
)
