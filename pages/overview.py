"""Overview / playground: the pair's ASR, utility and over-refusal, and live side-by-side answers."""

import pandas as pd
import streamlit as st

from analysis import experiments as ex
from analysis.app_support.formatting import comparison_rows, comparison_sentences, rate_cell, rate_rows
from analysis.core.generation import replies
from analysis.core.stats import Rate
from pages._catalog import PAGES
from pages._export import record
from pages._widgets import config, eval_spec_picker, page_start, progress_bar, spec_or_stop


def other_pages_prompts() -> str:
    """The other pages' default prompts per set under this launch's cap, grouped: "Critical regions, LoX, …: 48; …"."""
    by_n: dict[int, list[str]] = {}
    for page in ex.PAGE_PROMPTS:
        if page != "overview":
            by_n.setdefault(ex.default_prompts(page, config()), []).append(PAGES[page].section)
    return "; ".join(f"{', '.join(names)}: {n}" for n, names in sorted(by_n.items()))


pair = page_start("overview")

with st.expander("Evaluation settings", expanded=False):
    picked = eval_spec_picker("overview", default_n=ex.PAGE_PROMPTS["overview"], tokens=True, judges=True)
spec = spec_or_stop(picked)

st.subheader("Safety and utility")
update, bar = progress_bar("Evaluating")
results = ex.overview(pair, spec, progress=update)
bar.empty()
rows = [
    {
        "model": role,
        "utility metric": "exact answer" if r.utility_kind == "exact" else "response loss",
        "tokens / reply": r.mean_tokens,
    }
    for role, r in results.items()
]
st.dataframe(pd.DataFrame(rate_rows(results)).set_index("model"), width="stretch")
st.caption(
    "95 % intervals (Wilson; a loss utility: bootstrap). Base vs aligned on the same prompts (Newcombe "
    "interval, exact McNemar test): " + "; ".join(comparison_sentences(results, (("base", "aligned"),)))
)
paired_rows = comparison_rows(results, (("base", "aligned"),))
if paired_rows:
    with st.expander("Base vs aligned on every rate (paired on the same prompts)", expanded=False):
        st.dataframe(pd.DataFrame(paired_rows), width="stretch", hide_index=True, key="ov_paired")
        st.caption("A difference marked 'no (within noise)' is not significant on this set of prompts.")
record(
    table=(
        "Safety and utility",
        [
            {**row, "utility metric": rows[i]["utility metric"], "tokens / reply": f"{rows[i]['tokens / reply']:.1f}"}
            for i, row in enumerate(rate_rows(results))
        ],
    ),
    settings={"prompts": spec.describe()},
    summary=[
        (
            f"ASR (keyword), {role}",
            rate_cell(r, "asr"),
            (f"really complies {rate_cell(r, 'asr_positive')}; " if r.asr_positive is not None else "")
            + f"utility {rate_cell(r, 'utility')}; over-refusal {rate_cell(r, 'over_refusal')}; "
            f"{len(spec.harmful)} + {len(spec.benign)} prompts",
        )
        for role, r in results.items()
    ],
)
record(
    table=(
        "Sample generations",
        [
            {"model": role, "set": which, "prompt": g.prompt, "reply": g.text}
            for role, r in results.items()
            for which in ("harmful", "benign")
            for g in getattr(r, which)[:4]
        ],
    )
)
st.caption(
    f"{spec.describe()}; early stop once the judge has decided. Prompts per set the other pages evaluate by "
    f"default: {other_pages_prompts()} (fewer prompts recompute faster); on fewer prompts a rate moves in bigger steps "
    "(1 of 48 = 2.1 points), so the same model's rate can differ between pages by a few points: compare rates by "
    "their intervals, not their point values."
)

if spec.judges:
    st.subheader("Judges side by side")
    st.caption(
        "ASR of the harmful replies as each judge decides: the keyword judge (the papers' measure) and the "
        "classifier judges chosen in the settings. Keyword lists miss late refusals and count gibberish as "
        "attacks; classifiers have their own traps (Llama Guard calls refusals that name the topic unsafe)."
    )
    judge_rows = []
    for role, r in results.items():
        _, idx = r.disagreement(spec.judge)
        judge_rows.append(
            {
                "model": role,
                "keyword": rate_cell(r, "asr"),
                **{name: rate_cell(r, f"judge:{name}") for name in r.judge_decisions},
                "judges disagree on": Rate.of(len(idx), len(r.harmful)).format(),
            }
        )
    st.dataframe(pd.DataFrame(judge_rows).set_index("model"), width="stretch", key="overview_judges")
    st.caption("95 % intervals (Wilson) over the harmful prompts.")
    record(table=("Judges side by side", judge_rows))
    with st.expander("Replies the judges disagree on"):
        role = st.radio("Model", list(results), horizontal=True, key="overview_dis_role")
        r = results[role]
        _, idx = r.disagreement(spec.judge)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "prompt": r.harmful[i].prompt,
                        "reply": r.harmful[i].text,
                        "keyword": "attack" if not spec.judge.is_refusal(r.harmful[i].text) else "safe",
                        **{name: "attack" if d[i] else "safe" for name, d in r.judge_decisions.items()},
                    }
                    for i in idx
                ]
            ),
            width="stretch",
            hide_index=True,
            key="overview_dis_table",
        )

with st.expander("Raw generations"):
    role = st.radio("Model", list(results), horizontal=True, key="overview_gen_role")
    which = st.radio("Set", ["harmful", "benign"], horizontal=True, key="overview_gen_set")
    gens = getattr(results[role], which)
    st.dataframe(
        pd.DataFrame([{"prompt": g.prompt, "reply": g.text, "tokens": g.n_tokens, "stop": g.stopped_by} for g in gens]),
        width="stretch",
        hide_index=True,
        column_config={"reply": st.column_config.TextColumn("reply", width="large")},
    )

st.subheader("Playground")
examples = pair.aligned.data.example_prompts() or spec.harmful.prompts()[:6] + spec.benign.prompts()[:6]


def _use_picked() -> None:  # picking a built-in prompt replaces the text box's content
    st.session_state["play_text"] = st.session_state["play_pick"]


picked = st.selectbox("Pick a built-in prompt", examples, key="play_pick", on_change=_use_picked)
st.session_state.setdefault("play_text", picked)
prompt = st.text_input("…or write your own", key="play_text", max_chars=config().max_prompt_chars)
if st.button("Generate", type="primary", key="play_go") and prompt.strip():
    cols = st.columns(len(pair.models()))
    for col, (role, lm) in zip(cols, pair.models().items()):
        g = replies(lm, [prompt.strip()], spec.system_prompt, spec.max_new_tokens)[0]
        with col:
            st.markdown(f"**{role}**")
            st.code(g.text or "(empty reply)", language=None, wrap_lines=True)
            st.caption(f"{g.n_tokens} tokens, stopped by {g.stopped_by}")
