"""What several pages share: the model-pair picker, progress bars, prompt-set picker."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import streamlit as st
import torch

from analysis.app_support.config import AppConfig, ConfigError, load_config
from analysis.core.cache import Cache
from analysis.core.evaluation import DEFAULT_MAX_NEW_TOKENS, EvalSpec
from analysis.core.models import DEMO, ModelLoadError, ModelPair, load_pair
from analysis.data.prompts import DataFormatError, PromptSet, load_prompt_file
from analysis.experiments import SYSTEM_PROMPTS, Memo, default_tokens, prompt_cap, spec_on, token_cap

torch.set_num_threads(int(os.environ.get("BRITTLE_THREADS", min(2, os.cpu_count() or 1))))

DEFAULTS = {"aligned_src": DEMO, "base_src": f"{DEMO}:base", "dtype": "fp32", "device": "auto", "remote_code": False}
SYSTEM_PROMPT_CHOICES = ("none", "helpful and safe", "custom")


@st.cache_resource(show_spinner="Loading models…", max_entries=4)
def _load_pair(aligned: str, base: str, dtype: str, device: str, remote_code: bool = False) -> ModelPair:
    return load_pair(aligned, base or "", dtype, device, remote_code)


@st.cache_resource(show_spinner=False)
def _config(path: str) -> AppConfig:
    return load_config(path or None)


def config() -> AppConfig:
    """The launch config ($BRITTLE_CONFIG) as served on Streamlit's address (beyond localhost: locked down);
    a bad file stops the app with its message."""
    try:
        return _config(os.environ.get("BRITTLE_CONFIG", "")).for_address(st.get_option("server.address"))
    except ConfigError as e:
        st.error(f"Cannot start with this launch config: {e}")
        st.stop()


def sidebar() -> None:
    cfg = config()
    for k, v in DEFAULTS.items():
        st.session_state.setdefault(k, v)
        st.session_state.setdefault(f"{k}_input", v)  # form widgets keep their own keys: stable identity
    with st.sidebar:
        if cfg.demo_mode:
            st.caption(f"Demo mode ({Path(cfg.source).name}): models and compute are limited.")
        if cfg.exposed:
            st.caption(
                "Served beyond this machine: typed model paths, remote code and saving folders are off "
                "unless the launch config turns them on."
            )
        st.header("Model pair")
        with st.form("pair"):
            if cfg.allow_custom_paths:
                st.text_input(
                    "Aligned model", key="aligned_src_input", help="'demo', a local folder, or a Hugging Face hub id"
                )
                st.text_input(
                    "Base model (optional)",
                    key="base_src_input",
                    help="the model the aligned one was fine-tuned from; empty for none",
                )
            else:
                models = list(cfg.allowed_models)
                for k in ("aligned_src_input", "base_src_input"):
                    if st.session_state[k] not in models + [f"{DEMO}:base", ""]:
                        st.session_state[k] = models[0]
                st.selectbox("Aligned model", models, key="aligned_src_input")
                st.selectbox(
                    "Base model",
                    list(dict.fromkeys([f"{DEMO}:base"] * (DEMO in models) + models + [""])),
                    key="base_src_input",
                    format_func=lambda x: x or "(none)",
                )
            devices, dtypes = device_choices()
            for k, options in (("device_input", devices), ("dtype_input", dtypes)):
                if st.session_state[k] not in options:
                    st.session_state[k] = options[0]
            st.selectbox(
                "dtype",
                dtypes,
                key="dtype_input",
                help="fp16 is offered only with a GPU (half precision on a CPU is slow and inexact)",
            )
            st.selectbox("device", devices, key="device_input", help="only the devices this machine has")
            if cfg.allow_remote_code:
                st.checkbox(
                    "Trust remote code",
                    key="remote_code_input",
                    help="run the model repository's own Python code; off unless you trust the source",
                )
            if st.form_submit_button("Load pair"):
                st.session_state.update(
                    {
                        k: (
                            str(st.session_state[f"{k}_input"]).strip()
                            if isinstance(v, str)
                            else bool(st.session_state[f"{k}_input"])
                        )
                        for k, v in DEFAULTS.items()
                    }
                )
        pair = current_pair(show_errors=False)
        if pair is not None:
            for role, lm in pair.models().items():
                st.caption(
                    f"**{role}**: {lm.family}, {lm.n_params / 1e6:.2f} M params, {lm.dtype} on {lm.device} "
                    f"· `{lm.fingerprint}`"
                )
        if pair is not None:  # the report describes the last pair that loaded (app.py draws its button)
            st.session_state["_report_meta"] = (
                {
                    role: f"{lm.source} ({lm.family}, {lm.n_params / 1e6:.2f} M params, {lm.dtype}, "
                    f"fingerprint {lm.fingerprint})"
                    for role, lm in pair.models().items()
                },
                {"device": str(pair.aligned.device), "launch config": cfg.source or "(defaults)"},
            )
        st.header("Cache")
        info = _cache_info(str(Cache().root))
        st.caption(f"{info.entries} results, {info.bytes / 1e6:.2f} MB in `{info.root.name}/`")
        if (why := Cache().check_writable()) is not None:
            st.warning(f"{why}: new results are computed but not kept.")
        if (
            cfg.allow_writes
            and not cfg.demo_mode
            and st.button("Clear cache", help="the cache is shared by every session")
        ):
            try:
                st.toast(f"removed {Cache().clear()} cached results")
                _cache_info.clear()
            except ValueError as e:
                st.error(str(e))


@st.cache_resource(ttl=10, show_spinner=False)
def _cache_info(root: str):
    """The sidebar's cache summary, read at most every 10 s per server: :meth:`Cache.info` reads every entry's
    metadata file, ~10 % of the server's time when a class reruns at once."""
    return Cache(root).info()


def device_choices() -> tuple[list[str], list[str]]:
    """The devices this machine has ("cuda" only with a GPU) and the dtypes that make sense on them."""
    has_gpu = torch.cuda.is_available()
    return (["auto", "cpu"] + (["cuda"] if has_gpu else []), ["fp32", "bf16"] + (["fp16"] if has_gpu else []))


def current_pair(show_errors: bool = True) -> ModelPair | None:
    """The pair chosen in the sidebar, loaded once and shared by every session (edits are locked)."""
    s = st.session_state
    cfg = config()
    if not cfg.allow_custom_paths:
        allowed = set(cfg.allowed_models) | ({f"{DEMO}:base"} if DEMO in cfg.allowed_models else set()) | {""}
        bad = [x for x in (s.get("aligned_src", DEMO), s.get("base_src", "")) if x not in allowed]
        if bad:
            if show_errors:
                st.error(f"Model {bad[0]!r} is not allowed in demo mode; pick one of {', '.join(cfg.allowed_models)}.")
            return None
    try:
        return _load_pair(
            s.get("aligned_src", DEMO),
            s.get("base_src", f"{DEMO}:base"),
            s.get("dtype", "fp32"),
            s.get("device", "auto"),
            bool(s.get("remote_code", False)) and cfg.allow_remote_code,
        )
    except ModelLoadError as e:
        if show_errors:
            st.error(f"Could not load the model pair: {e}")
        return None


def require_pair() -> ModelPair:
    pair = current_pair()
    if pair is None:
        st.info("Fix the model pair in the sidebar to continue.")
        st.stop()
    return pair


def page_start(page: str) -> ModelPair:
    """The page's title and caption (from :mod:`pages._catalog`), the loaded pair, its findings section, the base
    check, and its presets picker (the first visit applies the teaching default)."""
    from pages._catalog import PAGES
    from pages._export import section

    info = PAGES[page]
    st.title(info.title)
    st.caption(info.caption)
    show_model_waits()
    pair = require_pair()
    caveat = organism_caveat(pair, info.phenomenon) if info.phenomenon else ""
    section(info.section).caveat = caveat.replace("**", "")  # the findings report shows it under the page's heading
    if info.needs_base and pair.base is None:
        st.info(info.needs_base)
        st.stop()
    if info.preset_widgets:
        preset_picker(page, info.preset_widgets)
    return pair


def show_model_waits() -> None:
    """While this run waits for a model another session is computing on, say so here (the wait's reports are
    also where Streamlit stops or reruns it, e.g. when the user changes a widget meanwhile)."""
    from analysis.core.edits import on_lock_wait

    slot = st.empty()

    def report(waited: float | None) -> None:
        try:
            if waited is None:
                slot.empty()
            else:
                slot.info(
                    f"Another session is computing on this model: this page waits its turn ({waited:.0f} s). "
                    "Every session shares the loaded model, and only one edits or reads it at a time."
                )
        except Exception:  # a placeholder of a finished run: nothing to show. Stop / rerun (BaseException) pass.
            pass

    on_lock_wait(report)


def organism_caveat(pair: ModelPair, phenomenon: str) -> str:
    """On the shipped demo pair: show how often the page's phenomenon held on other builds of the organism, and
    return that text ("" for any other pair)."""
    from analysis.data.organism.robustness import caveat, is_shipped

    if not is_shipped(pair.aligned.path):
        return ""
    try:
        text = caveat(phenomenon)
    except ValueError as e:  # a damaged record: say so, the page still works
        st.caption(f"The across-builds record cannot be read: {e}")
        return ""
    if text:
        st.info(text)
    return text


def run_gate(state_key: str, settings, start_label: str, button_key: str) -> bool:
    """A start button and, once started, a cancel button. True while ``settings`` are the started ones.

    Clicking Cancel during a computation makes Streamlit interrupt the run at its next progress update;
    every edit is a context that restores the weights on the way out, and a point or result that was not
    finished is not cached."""
    if st.button(start_label, type="primary", key=button_key):
        st.session_state[state_key] = settings
    if st.session_state.get(state_key) != settings:
        return False
    if st.button(
        "Cancel / clear",
        key=f"{button_key}_cancel",
        help="stop the computation (finished parts stay cached) or clear its result",
    ):
        st.session_state.pop(state_key, None)
        st.warning("Cancelled. The model's weights were restored; finished parts stay in the cache.")
        return False
    return True


PROGRESS_EVERY_S = 0.2  # at most five progress messages a second per bar (each one is a message to the browser)


def progress_bar(label: str):
    """A progress callback for the backend, drawing a Streamlit progress bar with the time left."""
    from analysis.app_support.runtime import Remaining
    from pages._runtime import left

    bar = st.progress(0.0, text=label)
    pace = Remaining(None)
    drawn = [float("-inf")]  # when the bar was last drawn

    def update(frac: float, msg: str) -> None:
        now = time.monotonic()
        if frac < 1.0 and now - drawn[0] < PROGRESS_EVERY_S:  # a cached run reports each point within a millisecond
            return
        drawn[0] = now
        bar.progress(min(max(frac, 0.0), 1.0), text=f"{label}: {msg}{left(frac, pace)}")

    return update, bar


def system_prompt_picker(key: str = "sys") -> str | None:
    choice = st.radio(
        "System prompt",
        SYSTEM_PROMPT_CHOICES,
        horizontal=True,
        key=f"{key}_choice",
        help="the safety landscape depends on it; shown explicitly",
    )
    if choice in SYSTEM_PROMPTS:
        return SYSTEM_PROMPTS[choice]
    if choice == "custom":
        return st.text_input("Custom system prompt", key=f"{key}_text", max_chars=config().max_prompt_chars) or None
    return None


def uploaded_prompts(up, kind: str, with_responses: bool = False) -> PromptSet:
    """An uploaded prompt file (read through a temporary file, as the CLI reads a path); ``with_responses``:
    every row must carry a response."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / Path(up.name).name
        path.write_bytes(up.getvalue())
        prompts = load_prompt_file(path, kind)
    if with_responses and not all(it.response for it in prompts.items):
        raise DataFormatError(f"{up.name}: every row needs a response (prompt,response or goal,target)")
    return prompts


def prompts_slider(label: str, default_n: int, key: str) -> int:
    """How many prompts per set, 8 to the launch config's cap in steps of 8 (no slider when the cap is 8)."""
    top = prompt_cap(config())
    if top <= 8:
        st.caption(f"{label}: 8 (the launch config's limit)")
        return 8
    return st.slider(label, 8, top, min(default_n, top), step=8, key=key)


def prompt_sets_picker(key: str = "sets", default_n: int = 120) -> dict[str, PromptSet] | str:
    """The model's default sets (the organism's for the demo, AdvBench + instruct for a real model), a built-in
    set by name, or a user's file (AdvBench CSV, .txt, CSV/JSONL) — the same names and files the CLI takes.
    Returns the sets (test split), or the message saying why they cannot be used."""
    from analysis.data.sets import names, resolve_set

    cfg = config()
    pair = require_pair()
    n = prompts_slider("Prompts per set", default_n, f"{key}_n")
    default = "(the model's default)"
    sets: dict[str, PromptSet] = {}
    cols = st.columns(2)
    for col, label, what in zip(
        cols,
        ("harmful", "benign"),
        ("AdvBench CSV, .txt lines, CSV/JSONL with 'prompt'", "CSV/JSONL with 'prompt' and 'response' (for utility)"),
    ):
        with col:
            choice = st.selectbox(
                f"{label.capitalize()} prompts",
                [default, *names(label)],
                key=f"{key}_{label}_set",
                help="built-in sets (see `python -m analysis datasets`): test split",
            )
            up = (
                st.file_uploader(
                    f"…or upload {label} prompts: {what}",
                    type=["csv", "txt", "jsonl", "json"],
                    key=f"{key}_file" if label == "harmful" else f"{key}_file_{label}",
                )
                if cfg.allow_uploads
                else None
            )
            try:
                if up is not None:
                    sets[label] = uploaded_prompts(up, label)
                elif choice != default:
                    sets[label] = resolve_set(choice, label, "test")
            except (DataFormatError, ValueError) as e:
                return f"Cannot use the {label} prompts: {e}"
    if len(sets) < 2:
        try:
            sets = {**pair.aligned.data.sets("test"), **sets}
        except ValueError as e:
            return str(e)
    return {k: v.head(n) for k, v in sets.items()}


@st.cache_resource(show_spinner="Loading the judges…", max_entries=4)
def _load_judges(specs: str, device: str, dtype: str) -> tuple:
    from analysis.judging import make_judges

    return tuple(j for j in make_judges(specs, device, dtype) if j.name != "keyword")


def judges_picker(key: str) -> tuple | str:
    """Classifier judges shown beside the keyword judge (folders or hub ids), or the message why not."""
    if not config().allow_custom_paths:
        return ()
    text = st.text_input(
        "Classifier judges (optional, comma-separated: FOLDER, hub id or KIND:SOURCE with KIND "
        "llama-guard, harmbench, wildguard, refusal-clf)",
        key=f"{key}_judges",
        help="each judge's ASR is shown beside the keyword ASR, with the replies they disagree on; "
        "a harm classifier also gives a real model's 'really complies'",
    )
    if not text.strip():
        return ()
    pair = require_pair()
    try:
        return _load_judges(text.strip(), pair.aligned.device, pair.aligned.dtype)
    except (ModelLoadError, ValueError) as e:
        return f"Cannot use the judges: {e}"


def eval_spec_picker(key: str, default_n: int = 120, tokens: bool = False, judges: bool = False) -> EvalSpec | str:
    """System prompt, prompt sets (and the token budget, and extra judges) in one evaluation spec, or the
    message why not."""
    system_prompt = system_prompt_picker(key)
    sets = prompt_sets_picker(f"{key}_sets", default_n)
    max_new = DEFAULT_MAX_NEW_TOKENS
    if tokens:
        max_new = st.slider("Max new tokens", 8, token_cap(config()), default_tokens(config()), key=f"{key}_max_new")
    extra = judges_picker(key) if judges else ()
    if isinstance(sets, str):
        return sets
    if isinstance(extra, str):
        return extra
    return spec_on(require_pair().aligned, sets, len(sets["harmful"]), system_prompt, max_new, judges=extra)


def spec_or_stop(spec: EvalSpec | str) -> EvalSpec:
    if isinstance(spec, str):
        st.error(spec)
        st.stop()
    return spec


# --- presets, reply tables, metrics -------------------------------------------------------------
def _limits() -> dict[str, int]:
    cfg = config()
    return {"prompts": prompt_cap(cfg), "steps": max(2, min(60, cfg.max_attack_steps))}


def _apply_preset(page: str, keys: dict[str, str], name: str) -> None:
    """Set the widgets named in ``keys`` to the preset's settings, within this launch config's caps."""
    from analysis.app_support.presets import find

    settings, limits = find(page, name).settings, _limits()
    for field, value in settings.items():
        if field == "lo" and "range" in keys:
            st.session_state[keys["range"]] = (value, settings.get("hi", value))
        elif field in keys:
            if field == "prompts" or (field == "steps" and page == "attack_lab"):
                value = min(value, limits[field])
            st.session_state[keys[field]] = value


def preset_picker(page: str, keys: dict[str, str]) -> None:
    """A 'Presets' selectbox that sets the page's widgets in one click (the first preset is applied on the first
    visit: the teaching default). ``keys`` maps a preset's setting names to the page's widget keys
    ('range' takes the lo/hi pair)."""
    from analysis.app_support.presets import presets

    options = presets(page)
    if not options:
        return
    names = [p.name for p in options]
    state = f"{page}_preset"
    if state not in st.session_state:
        st.session_state[state] = names[0]
        _apply_preset(page, keys, names[0])
    c1, c2 = st.columns([2, 3])
    c1.selectbox(
        "Presets",
        names,
        key=state,
        on_change=lambda: _apply_preset(page, keys, st.session_state[state]),
        help="set the controls below to a setting that shows one effect on the demo pair",
    )
    c2.caption(preset_caption(next(p for p in options if p.name == st.session_state[state])))


def preset_caption(preset) -> str:
    """The preset's caption, its quoted numbers read from its cached result (kept per server once found)."""
    from analysis.app_support.presets import caption
    from analysis.app_support.warm import cached_numbers

    pair = current_pair(show_errors=False)
    if pair is None or not preset.quote:
        return caption(preset, None)
    # the same for every session: kept per server once found (a class's first visits read the cache once)
    key = ("preset_numbers", preset.page, preset.name, pair.aligned.fingerprint, str(config()), str(Cache().root))
    numbers = _KEPT.get(key, lambda: cached_numbers(pair, preset, config()), keep=lambda v: v is not None)
    return caption(preset, numbers)


def reply_table(columns: dict[str, list], key: str, n_full: int = 6) -> None:
    """Replies side by side: the first ``n_full`` rows in full (wrapped, every column on screen), all rows in a
    scrollable table below."""
    n = min(len(v) for v in columns.values()) if columns else 0
    if not n:
        return
    head = {k: [str(x) for x in v[:n_full]] for k, v in columns.items()}
    st.table(head)
    if n > n_full:
        with st.expander(f"All {n} rows"):
            st.dataframe(
                {k: list(v[:n]) for k, v in columns.items()},
                width="stretch",
                hide_index=True,
                key=key,
                column_config={k: st.column_config.TextColumn(k, width="large") for k in columns},
            )


def metric_change(
    where,
    label: str,
    value: str,
    change: float | None,
    unit: str = " pts",
    lower_is_better: bool = True,
    help: str | None = None,
    within_noise: bool = False,
    digits: int = 1,
) -> None:
    """A metric whose change is grey and arrow-less when it is zero at ``digits`` decimals (never a red
    '↑ +0.0'), and grey with 'n.s.' when a paired test finds it within the noise (``within_noise``)."""
    if change is None:
        where.metric(label, value, help=help)
        return
    if abs(change) < 0.5 * 10**-digits:
        where.metric(label, value, "no change", delta_color="off", delta_arrow="off", help=help)
        return
    if within_noise:
        where.metric(label, value, f"{change:+.{digits}f}{unit}, n.s.", delta_color="off", help=help)
        return
    where.metric(
        label,
        value,
        f"{change:+.{digits}f}{unit}",
        delta_color="inverse" if lower_is_better else "normal",
        help=help,
    )


def rate_metric(where, label: str, before, after, metric: str, lower_is_better: bool = True) -> None:
    """One rate of ``after`` (an EvalResult) as a metric card: its change from ``before`` on the same prompts as
    the delta ('n.s.' when the exact McNemar test finds no difference), the 95 % interval and the paired test in
    its help."""
    from analysis.app_support.formatting import format_utility, rate_cell

    value = getattr(after, metric)
    if value is None:
        where.metric(label, "–")
        return
    loss = metric == "utility" and after.utility_kind == "loss"
    shown = format_utility(value, after.utility_kind, sep=" ") if metric == "utility" else f"{100 * value:.1f} %"
    help_text = f"95 % interval {rate_cell(after, metric)}; before {rate_cell(before, metric)}"
    unit, noise = " nats" if loss else " pts", False
    try:
        paired = before.change(after, metric, "before", "after")
        help_text += f"; change on the same prompts {paired.format()}"
        noise = not paired.significant
    except ValueError:  # no per-prompt outcomes kept (a result saved before they were)
        pass
    before_value = getattr(before, metric)
    change = None if before_value is None else (1 if loss else 100) * (value - before_value)
    metric_change(
        where, label, shown, change, unit, lower_is_better, help_text, within_noise=noise, digits=3 if loss else 1
    )


# --- an edited aligned model to compare with (Representations, Alignment depth) ------------------------------
def edited_model_widgets(keys: dict[str, str], kinds: list[str]) -> tuple[str, float, int, int]:
    """The edited-model controls: kind, strength (perturbation size or LoX α), LoX k and perturbation seed, under
    the page's widget ``keys`` ("edit", "alpha", "k", "seed": its presets set them)."""
    from analysis.core.options import slider_args
    from analysis.methods.lox import LoX

    kind = st.radio("Edited model", kinds, horizontal=True, key=keys["edit"])
    c = st.columns(3)
    strength = c[0].slider("α (perturbation size or LoX α)", 0.0, 2.0, 1.0, step=0.05, key=keys["alpha"])
    lox_k = c[1].slider("LoX k", **slider_args(LoX, "k"), key=keys["k"], disabled=kind != "LoX")
    seed = c[2].number_input(
        "Perturbation seed", 0, 10_000, 0, key=keys["seed"], disabled=kind != "random perturbation"
    )
    return kind, strength, lox_k, int(seed)


def edited_model_or_stop(kind: str, strength: float, lox_k: int, seed: int, system_prompt: str | None):
    """:func:`analysis.experiments.edited_model` (built once per server), or the page stops with the message."""
    from analysis.experiments import edited_model

    try:
        return edited_model(require_pair(), kind, strength, lox_k, seed, system_prompt)
    except ValueError as e:
        st.error(f"Cannot build the edited model: {e}")
        st.stop()


# --- results derived from big cached ones, kept per server process ------------------------------------------
_KEPT = Memo(64)  # least recently used dropped past 64 entries


def calibration_key(cal) -> str:
    """What names a calibration set in the per-server keys: the content hash of its pairs."""
    from analysis.experiments import calibration_digest

    return calibration_digest(cal)


def kept(key: tuple, compute):
    """``compute()``, kept for this server process under ``key`` (least recently used dropped past 64 entries)
    and shared read-only by every session. ``key`` names everything the result depends on — the model's
    fingerprint, the settings, :func:`calibration_key`. For small results derived from big cached ones (a
    heatmap's values, a figure), so a rerun neither reads the scores back from the disk cache (checksum
    included) nor recomputes the top-p masks: with a class rerunning a preset at once, those were about 30 % of
    a Critical regions rerun."""
    return _KEPT.get(key, compute)
