"""Overview / playground: the pair's ASR, utility and over-refusal, and live side-by-side answers."""
import pandas as pd
import streamlit as st

from analysis.edits import locked
from analysis.evaluate import evaluate_cached
from analysis.generate import generate
from analysis.prompts import builtin_sets
from pages._export import record, section
from pages._widgets import config, progress_bar, prompt_sets_picker, require_pair, system_prompt_picker

st.title("Overview")
st.caption("How safe is the aligned model, how useful is it, and what does its base do with the same prompts? "
           "ASR counts replies without a refusal phrase; read the raw generations beside every number.")
pair = require_pair()
section("Overview")

with st.expander("Evaluation settings", expanded=False):
    system_prompt = system_prompt_picker("overview")
    sets = prompt_sets_picker("overview")
    top = max(8, min(64, config().max_new_tokens))
    max_new = st.slider("Max new tokens", 8, top, min(24, top), key="overview_max_new")
if isinstance(sets, str):
    st.error(sets)
    st.stop()

st.subheader("Safety and utility")
rows, results = [], {}
for role, lm in pair.models().items():
    update, bar = progress_bar(f"Evaluating {role}")
    with locked(lm.model):
        r = evaluate_cached(lm, sets["harmful"], sets["benign"], system_prompt, max_new, progress=update)
    bar.empty()
    results[role] = r
    rows.append({"model": role, "ASR (keyword)": r.asr, "ASR (really complies)": r.asr_positive,
                 "utility": r.utility, "utility metric": "exact answer" if r.utility_kind == "exact" else "response loss",
                 "over-refusal": r.over_refusal, "degenerate": r.degenerate_rate, "tokens / reply": r.mean_tokens})
table = pd.DataFrame(rows).set_index("model")
st.dataframe(table.style.format({c: "{:.1%}" for c in ("ASR (keyword)", "ASR (really complies)", "over-refusal",
                                                         "degenerate")} | {"tokens / reply": "{:.1f}",
                                                                           "utility": "{:.3f}"}, na_rep="–"),
             width="stretch")
record(table=("Safety and utility", [{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in r.items()}
                                     for r in rows]),
       settings={"prompts": f"{len(sets['harmful'])} harmful ({sets['harmful'].name}), {len(sets['benign'])} benign",
                 "system prompt": repr(system_prompt), "max new tokens": max_new})
record(table=("Sample generations", [{"model": role, "set": which, "prompt": g.prompt, "reply": g.text}
                                     for role, r in results.items() for which in ("harmful", "benign")
                                     for g in getattr(r, which)[:4]]))
st.caption(f"{len(sets['harmful'])} harmful prompts ({sets['harmful'].name}), {len(sets['benign'])} benign "
           f"({sets['benign'].name}); greedy decoding, early stop once the judge has decided.")

with st.expander("Raw generations"):
    role = st.radio("Model", list(results), horizontal=True, key="overview_gen_role")
    which = st.radio("Set", ["harmful", "benign"], horizontal=True, key="overview_gen_set")
    gens = getattr(results[role], which)
    st.dataframe(pd.DataFrame([{"prompt": g.prompt, "reply": g.text, "tokens": g.n_tokens, "stop": g.stopped_by}
                               for g in gens]), width="stretch", hide_index=True)

st.subheader("Playground")
examples = [it.prompt for it in builtin_sets("test")["harmful"].items[:6]] + \
           [it.prompt for it in builtin_sets("test")["benign"].items[:6]]
picked = st.selectbox("Pick a built-in prompt", examples, key="play_pick")
prompt = st.text_input("…or write your own", value=picked, key="play_text", max_chars=config().max_prompt_chars)
if st.button("Generate", type="primary", key="play_go") and prompt.strip():
    cols = st.columns(len(pair.models()))
    for col, (role, lm) in zip(cols, pair.models().items()):
        with locked(lm.model):
            g = generate(lm.model, lm.tokenizer, [prompt.strip()], system_prompt, max_new)[0]
        with col:
            st.markdown(f"**{role}**")
            st.code(g.text or "(empty reply)", language=None, wrap_lines=True)
            st.caption(f"{g.n_tokens} tokens, stopped by {g.stopped_by}")
