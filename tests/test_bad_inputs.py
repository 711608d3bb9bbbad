"""One table of the kinds of bad input a user can give, and the one-line message each gets.

Every case must raise a ValueError-family error (what the app shows with st.error and the CLI prints as
"error: …") whose message contains the expected words — never a traceback from deep inside a library —
and none may change the loaded demo weights or leave a cache entry behind.
"""

import pytest
import torch

from analysis.core.cache import Cache
from analysis.core.edits import checksum
from conftest import save_tiny_llama

CASES: dict[str, tuple] = {}


def case(kind: str, expected: str):
    def register(fn):
        CASES[kind] = (fn, expected)
        return fn

    return register


# --- models -------------------------------------------------------------------------------------
@case("model folder that does not exist", "model folder not found")
def _(ctx):
    from analysis.core.models import load_model

    load_model("/no/such/model")


@case("empty model source", "no model given")
def _(ctx):
    from analysis.core.models import load_model

    load_model("  ")


@case("a file instead of a model folder", "is a file")
def _(ctx):
    from analysis.core.models import load_model

    f = ctx["tmp"] / "weights.bin"
    f.write_bytes(b"x")
    load_model(str(f))


@case("folder without config.json", "no config.json")
def _(ctx):
    from analysis.core.models import load_model

    d = ctx["tmp"] / "empty"
    d.mkdir()
    load_model(str(d))


@case("encoder-decoder model (not a causal LM)", "not a causal")
def _(ctx):
    from transformers import T5Config, T5ForConditionalGeneration

    from analysis.core.models import load_model

    d = ctx["tmp"] / "t5"
    T5ForConditionalGeneration(
        T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    ).save_pretrained(d)
    load_model(str(d), device="cpu")


@case("architecture the adapter does not know", "supported families")
def _(ctx):
    from transformers import BertConfig, BertModel

    from analysis.core.models import load_model

    d = ctx["tmp"] / "bert"
    BertModel(
        BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(d)
    load_model(str(d), device="cpu")


@case("base with other shapes than the aligned model", "shape mismatch")
def _(ctx):
    from analysis.core.models import load_pair

    a = save_tiny_llama(ctx["tmp"] / "a", ctx["tok"], hidden=32)
    b = save_tiny_llama(ctx["tmp"] / "b", ctx["tok"], hidden=64)
    load_pair(str(a), str(b), device="cpu")


@case("unknown dtype", "unknown dtype")
def _(ctx):
    from analysis.core.models import load_model

    load_model("demo", dtype="int3")


@case("CUDA asked for on a machine without a GPU", "no CUDA GPU")
def _(ctx):
    from analysis.core.models import load_model

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    load_model("demo", device="cuda")


# --- prompt files ---------------------------------------------------------------------------------
def _load(ctx, name, content: bytes | str):
    from analysis.data.prompts import load_prompt_file

    p = ctx["tmp"] / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    load_prompt_file(p)


@case("CSV without prompt columns", "expected 'goal,target'")
def _(ctx):
    _load(ctx, "bad.csv", "question,answer\nx,y\n")


@case("empty text file", "empty")
def _(ctx):
    _load(ctx, "empty.txt", "\n\n")


@case("binary file with a .txt name", "not UTF-8")
def _(ctx):
    _load(ctx, "blob.txt", b"\xff\xfe\x00\x81")


@case("JSONL with a broken line", "line 1 is not JSON")
def _(ctx):
    _load(ctx, "bad.jsonl", '{"prompt": "x"\n')


@case("unknown prompt-file extension", "unknown extension")
def _(ctx):
    _load(ctx, "prompts.xlsx", "x")


@case("prompt file that does not exist", "prompt file not found")
def _(ctx):
    from analysis.data.prompts import load_prompt_file

    load_prompt_file(ctx["tmp"] / "missing.csv")


# --- settings at their extremes -------------------------------------------------------------------
@case("zero new tokens", "max_new_tokens must be >= 1")
def _(ctx):
    from analysis.core.generation import generate

    lm = ctx["pair"].aligned
    generate(lm.model, lm.tokenizer, ["hi"], max_new_tokens=0)


@case("set-difference fraction above 1", "q must be a fraction")
def _(ctx):
    from analysis.methods.critical_regions.masks import set_difference

    s = {"w": torch.rand(4, 4)}
    set_difference(s, s, p=0.1, q=1.5)


@case("unit percentiles adding up to more than 100", "must not exceed 100")
def _(ctx):
    from analysis.methods.critical_regions.unit_types import classify_units

    v = {"w": torch.rand(8)}
    classify_units(v, v, 50, 40, 20)


@case("landscape axis with lo > hi", "lo <= hi")
def _(ctx):
    from analysis.methods.landscape.grid import axis

    axis(1.0, -1.0, 5)


@case("LoX with negative k", "k must be >= 0")
def _(ctx):
    from analysis.methods.lox import LoX

    LoX(k=-1).edit(ctx["pair"].aligned, ctx["pair"].base)


@case("LoX without a base model", "base model")
def _(ctx):
    from analysis.methods.lox import LoX

    LoX(k=4).edit(ctx["pair"].aligned, None)


@case("LoX layer filter that matches nothing", "no decoder weights match")
def _(ctx):
    from analysis.methods.lox import LoX

    LoX(k=4, layers=[99]).edit(ctx["pair"].aligned, ctx["pair"].base, ctx["cache"])


@case("saving a model into a non-empty folder", "not empty")
def _(ctx):
    from analysis.core.edits import Add
    from analysis.methods.lox import save_edited

    d = ctx["tmp"] / "taken"
    d.mkdir()
    (d / "x").write_text("x")
    save_edited(ctx["pair"].aligned, Add({}), d)


@case("recovery rank with no rank to try", "at least one rank")
def _(ctx):
    from analysis.methods.lox import recovery_rank
    from conftest import demo_sets, organism_spec

    s = demo_sets("val")
    recovery_rank(
        ctx["pair"].base,
        ctx["pair"].aligned,
        organism_spec(s["harmful"].head(4), s["benign"].head(4)),
        [0],
        cache=ctx["cache"],
    )


@case("attack learning rate of zero", "lr must be in (0, 1], got 0")
def _(ctx):
    from analysis.methods.attacks.finetune import AttackSettings

    AttackSettings(lr=0.0).validate()


@case("attack data without responses", "needs a response")
def _(ctx):
    from analysis.data.prompts import PromptItem, PromptSet
    from analysis.methods.attacks.finetune import AttackSettings, Variant, fine_tune_copy

    fine_tune_copy(
        ctx["pair"].aligned,
        Variant("a"),
        AttackSettings(steps=1),
        PromptSet("x", [PromptItem("how do i x ?", "harmful")]),
    )


@case("LoRA asked to freeze scattered weights", "whole rows or columns")
def _(ctx):
    from analysis.methods.attacks.finetune import AttackSettings, Variant, fine_tune_copy

    lm = ctx["pair"].aligned
    attack_set = lm.data.attack_data
    m = torch.zeros(lm.adapter["layers.0.mlp.down_proj"].shape, dtype=torch.bool)
    m[0, 0] = True
    fine_tune_copy(
        lm,
        Variant("x", freeze={"layers.0.mlp.down_proj": m}),
        AttackSettings(steps=1, method="lora", n_examples=2),
        attack_set("harmful", 2),
    )


@case("probe with too few prompts per class", "at least 5 prompts")
def _(ctx):
    import numpy as np

    from analysis.methods.representations import probe_accuracy

    probe_accuracy(torch.randn(2, 6, 4), np.array([1, 1, 1, 0, 0, 0]))


@case("unknown 2D projection", "projection must be one of")
def _(ctx):
    import numpy as np

    from analysis.methods.representations import project

    project(np.zeros((5, 3)), "tsne")


@case("launch config with an unknown key", "unknown key(s)")
def _(ctx):
    from analysis.app_support.config import load_config

    p = ctx["tmp"] / "bad.toml"
    p.write_text("colour = 'red'\n")
    load_config(p)


@case("launch config that is not TOML", "not valid TOML")
def _(ctx):
    from analysis.app_support.config import load_config

    p = ctx["tmp"] / "broken.toml"
    p.write_text("demo_mode = = true\n")
    load_config(p)


# --- data loss, stale or wrong numbers, tracebacks --------------------------------------
def _args(**kw):
    import argparse

    base = dict(command="evaluate", system_prompt=None, max_new_tokens=8)
    return argparse.Namespace(**{**base, **kw})


@case("cache clear on a folder holding other files", "refusing to clear")
def _(ctx):
    (ctx["tmp"] / "projects" / "thesis").mkdir(parents=True)
    (ctx["tmp"] / "projects" / "thesis" / "d.tex").write_text("a")
    try:
        Cache(ctx["tmp"]).clear()
    finally:
        assert (ctx["tmp"] / "projects" / "thesis" / "d.tex").exists()


@case("a cache root that is a file", "is a file")
def _(ctx):
    f = ctx["tmp"] / "cache.txt"
    f.write_text("x")
    Cache(f)


@case("cache clear on a read-only cache", "cannot clear")
def _(ctx):
    import subprocess

    c = Cache(ctx["tmp"] / "ro")
    c.put("ab" * 32, {"x": 1}, "json", {"kind": "k"})
    dirs = [c.root, c.root / "ab"]
    if any(subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode for d in dirs):
        pytest.skip("chattr +i not available")
    try:
        c.clear()
    finally:
        for d in dirs:
            subprocess.run(["chattr", "-i", str(d)], capture_output=True)


@case("saving a LoX model inside the results cache", "inside the results cache")
def _(ctx):
    from analysis.core.edits import Add
    from analysis.methods.lox import save_edited

    save_edited(ctx["pair"].aligned, Add({}), Cache().root / "mylox")


@case("saving a model onto an existing file", "existing file")
def _(ctx):
    from analysis.core.edits import Add
    from analysis.methods.lox import save_edited

    f = ctx["tmp"] / "model.bin"
    f.write_text("x")
    save_edited(ctx["pair"].aligned, Add({}), f)


@case("saving a model under a file", "is a file, not a folder")
def _(ctx):
    from analysis.core.paths import writable_new_folder

    f = ctx["tmp"] / "notes.txt"
    f.write_text("x")
    writable_new_folder(f / "lox")


@case("saving a model into a read-only place", "not writable")
def _(ctx):
    import subprocess

    from analysis.core.paths import writable_new_folder

    d = ctx["tmp"] / "locked"
    d.mkdir()
    if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode:
        pytest.skip("chattr +i not available")
    try:
        writable_new_folder(d / "lox")
    finally:
        subprocess.run(["chattr", "-i", str(d)], capture_output=True)


def _poisoned(ctx, value):
    from transformers import LlamaForCausalLM

    d = save_tiny_llama(ctx["tmp"] / "poisoned", ctx["tok"])
    m = LlamaForCausalLM.from_pretrained(d)
    with torch.no_grad():
        m.model.layers[0].self_attn.v_proj.weight[0, 0] = value
    m.save_pretrained(d)
    return d


@case("a model with a NaN weight", "v_proj.weight' holds 1 NaN")
def _(ctx):
    from analysis.core.models import load_model

    load_model(str(_poisoned(ctx, float("nan"))), device="cpu")


@case("a model with an Inf weight", "v_proj.weight' holds 1 Inf")
def _(ctx):
    from analysis.core.models import load_model

    load_model(str(_poisoned(ctx, float("-inf"))), device="cpu")


@case("config vocab_size smaller than the tokenizer", "embedding only")
def _(ctx):
    from transformers import LlamaConfig, LlamaForCausalLM

    from analysis.core.models import load_model

    d = ctx["tmp"] / "small-vocab"
    LlamaForCausalLM(
        LlamaConfig(vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    ).save_pretrained(d)
    ctx["tok"].save_pretrained(d)
    load_model(str(d), device="cpu")


@case("a prompt longer than the model's positions", "exceeds the model's")
def _(ctx):
    from analysis.core.generation import generate

    lm = ctx["pair"].aligned
    generate(lm.model, lm.tokenizer, ["what is 2 plus 2 ? " * 200], max_new_tokens=4)


@case("--max-new-tokens far beyond the model's positions", "more than the model can generate")
def _(ctx):
    from analysis.cli.checks import against_model

    against_model(_args(max_new_tokens=1_000_000_000), ctx["pair"])


@case("aligned and base with identical weights", "identical weights")
def _(ctx):
    from analysis.cli.checks import against_model
    from analysis.core.models import ModelPair

    lm = ctx["pair"].aligned
    against_model(_args(command="spectra", k=8), ModelPair(lm, lm))


@case("a .json file holding an array of strings", "JSON array")
def _(ctx):
    _load(ctx, "list.json", '["how do i x", "how do i y"]')


@case("a .txt benign file (no responses)", "have no response")
def _(ctx):
    from analysis.cli.checks import benign_with_references
    from analysis.data.prompts import load_prompt_file

    f = ctx["tmp"] / "benign.txt"
    f.write_text("say hi\nsay yo\n")
    benign_with_references(load_prompt_file(f, "benign"), f.name)


@case("a benign CSV without a response column", "have no response")
def _(ctx):
    from analysis.cli.checks import benign_with_references
    from analysis.data.prompts import load_prompt_file

    f = ctx["tmp"] / "benign.csv"
    f.write_text("prompt\nsay hi\n")
    benign_with_references(load_prompt_file(f, "benign"), f.name)


def _option_type(command: str, flag: str):
    """The ``type=`` the CLI's parser gives ``flag`` of ``command`` (generated from the settings' metadata)."""
    from analysis.cli.parser import parser

    sub = parser()._subparsers._group_actions[0].choices[command]
    return next(a.type for a in sub._actions if flag in a.option_strings)


@case("--n 0", "must be >= 1")
def _(ctx):
    _option_type("evaluate", "--n")("0")


@case("--n -1", "must be >= 1")
def _(ctx):
    _option_type("evaluate", "--n")("-1")


@case("landscape --hi inf", "finite")
def _(ctx):
    _option_type("landscape", "--hi")("inf")


@case("landscape --lo nan", "finite")
def _(ctx):
    _option_type("landscape", "--lo")("nan")


@case("landscape --steps 1000000000", "between 1 and 1001")
def _(ctx):
    _option_type("landscape", "--steps")("1000000000")


@case("spectra --k -1", "must be >= 1")
def _(ctx):
    _option_type("spectra", "--k")("-1")


@case("recovery --ranks ''", "got nothing")
def _(ctx):
    _option_type("recovery", "--ranks")("")


@case("recovery --tolerance nan", "finite")
def _(ctx):
    _option_type("recovery", "--tolerance")("nan")


@case("attack --variants ''", "got nothing")
def _(ctx):
    _option_type("attack", "--variants")(" , ")


@case("attack --variants with an unknown one", "must be one of aligned")
def _(ctx):
    _option_type("attack", "--variants")("aligned,nope")


@case("a huge random seed", "between 0 and 4294967295")
def _(ctx):
    _option_type("landscape", "--seed")(str(10**30))


@case("LoX alpha outside [-10, 10] in the library", "alpha must be between -10 and 10, got 12")
def _(ctx):
    from analysis.methods.lox import LoX

    LoX(alpha=12).validate()


def test_the_table_is_long_enough():
    assert len(CASES) >= 20, len(CASES)


@pytest.fixture(scope="module")
def ctx(demo_pair, organism_tokenizer, tmp_path_factory):
    return {
        "pair": demo_pair,
        "tok": organism_tokenizer,
        "cache": Cache(tmp_path_factory.mktemp("cache")),
        "tmp": tmp_path_factory.mktemp("bad"),
    }


@pytest.fixture(scope="module")
def weights_before(demo_pair):
    return checksum(demo_pair.aligned.model), checksum(demo_pair.base.model)


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_input_gets_a_clear_message(kind, ctx, weights_before, tmp_path):
    fn, expected = CASES[kind]
    ctx = {**ctx, "tmp": tmp_path}
    with pytest.raises(ValueError) as info:
        fn(ctx)
    msg = str(info.value)
    assert expected in msg, f"{kind}: {msg!r}"
    assert "\n" not in msg.strip() and "Traceback" not in msg
    assert (checksum(ctx["pair"].aligned.model), checksum(ctx["pair"].base.model)) == weights_before
    assert ctx["cache"].info().entries == 0


def test_cancelling_a_grid_keeps_finished_points_and_restores_weights(demo_pair, tmp_path):
    """What the app's Cancel does: the run is interrupted inside a progress update."""
    from analysis.methods.landscape.directions import RandomDirection
    from analysis.methods.landscape.grid import evaluate_grid
    from conftest import demo_sets, organism_spec

    lm = demo_pair.aligned
    before = checksum(lm.model)
    s = demo_sets("val")
    cache = Cache(tmp_path)

    class Cancelled(Exception):
        pass

    def progress(frac, msg):
        if frac >= 0.5:
            raise Cancelled()

    with pytest.raises(Cancelled):
        evaluate_grid(
            lm,
            [RandomDirection(0)],
            [[-0.5, 0.0, 0.5, 1.0]],
            organism_spec(s["harmful"].head(8), s["benign"].head(8)),
            cache=cache,
            progress=progress,
        )
    assert checksum(lm.model) == before
    assert cache.info().by_kind == {"evaluate": 2}  # the two finished points, nothing half-done


def test_cancelling_an_attack_leaves_no_trace(demo_pair, tmp_path):
    from analysis.methods.attacks.finetune import AttackSettings, Variant, run_attack_cached
    from conftest import demo_sets, organism_spec

    lm = demo_pair.aligned
    attack_set = lm.data.attack_data
    before = checksum(lm.model)
    s = demo_sets("val")
    cache = Cache(tmp_path)

    def progress(frac, msg):
        if frac >= 0.5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_attack_cached(
            lm,
            Variant("a"),
            AttackSettings(steps=4, eval_every=2, n_examples=5),
            attack_set("harmful", 5),
            organism_spec(s["harmful"].head(4), s["benign"].head(4)),
            cache=cache,
            progress=progress,
        )
    assert checksum(lm.model) == before and cache.info().entries == 0
