import pytest
import torch

from analysis.core.models import ModelLoadError, check_compatible, fingerprint, load_model, load_pair
from conftest import save_tiny_llama


def test_load_local_folder(tmp_path, organism_tokenizer):
    d = save_tiny_llama(tmp_path / "m", organism_tokenizer)
    lm = load_model(str(d), device="auto")
    assert lm.family == "llama" and lm.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert lm.tokenizer.padding_side == "left" and lm.tokenizer.pad_token_id is not None
    assert not lm.model.training
    assert len(lm.adapter.linears) == 14
    bf = load_model(str(d), dtype="bf16", device="cpu")
    assert next(bf.model.parameters()).dtype == torch.bfloat16


def test_fingerprint_is_stable_and_sees_weight_changes(tmp_path, organism_tokenizer):
    d = save_tiny_llama(tmp_path / "m", organism_tokenizer)
    a, b = load_model(str(d), device="cpu"), load_model(str(d), device="cpu")
    assert a.fingerprint == b.fingerprint
    with torch.no_grad():
        p = next(b.model.parameters())
        p.view(-1)[0] += 1.0  # first element is always sampled
    assert fingerprint(b.model) != a.fingerprint
    other = load_model(str(save_tiny_llama(tmp_path / "o", organism_tokenizer, seed=1)), device="cpu")
    assert other.fingerprint != a.fingerprint


def test_pair_and_mismatched_shapes(tmp_path, organism_tokenizer):
    a = save_tiny_llama(tmp_path / "a", organism_tokenizer, seed=0)
    b = save_tiny_llama(tmp_path / "b", organism_tokenizer, seed=1)
    pair = load_pair(str(a), str(b), device="cpu")
    assert pair.base is not None and set(pair.models()) == {"aligned", "base"}
    assert load_pair(str(a), "", device="cpu").base is None
    wide = save_tiny_llama(tmp_path / "w", organism_tokenizer, hidden=64)
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        load_pair(str(a), str(wide), device="cpu")
    deep = save_tiny_llama(tmp_path / "d", organism_tokenizer, layers=3)
    with pytest.raises(ModelLoadError, match="different decoder layers"):
        load_pair(str(a), str(deep), device="cpu")


def test_family_mismatch(tmp_path, organism_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    a = load_model(str(save_tiny_llama(tmp_path / "a", organism_tokenizer)), device="cpu")
    g = tmp_path / "g"
    GPT2LMHeadModel(GPT2Config(vocab_size=len(organism_tokenizer), n_embd=32, n_layer=2, n_head=4)).save_pretrained(g)
    organism_tokenizer.save_pretrained(g)
    with pytest.raises(ModelLoadError, match="share the architecture"):
        check_compatible(a, load_model(str(g), device="cpu"))


@pytest.mark.parametrize(
    "source,match",
    [
        ("/definitely/not/here", "model folder not found"),
        ("./relative/missing", "model folder not found"),
        ("", "no model given"),
        ("some-org/some-model-that-is-not-cached", "Hugging Face hub id"),
    ],
)
def test_bad_sources_have_clear_messages(source, match):
    with pytest.raises(ModelLoadError, match=match):
        load_model(source, device="cpu")


def test_file_and_folder_without_config(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(str(f))
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))


def test_non_causal_model_is_refused(tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    d = tmp_path / "t5"
    T5ForConditionalGeneration(
        T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    ).save_pretrained(d)
    with pytest.raises(ModelLoadError, match="not a causal"):
        load_model(str(d), device="cpu")


def test_encoder_with_lm_head_is_an_unknown_architecture(tmp_path):
    from transformers import BertConfig, BertModel

    d = tmp_path / "bert"
    BertModel(
        BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(d)
    with pytest.raises(ModelLoadError, match="supported families"):
        load_model(str(d), device="cpu")


def test_bad_dtype_and_device(tmp_path, organism_tokenizer):
    d = save_tiny_llama(tmp_path / "m", organism_tokenizer)
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_model(str(d), dtype="int3")
    with pytest.raises(ModelLoadError, match="unknown device"):
        load_model(str(d), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            load_model(str(d), device="cuda")


# --- honest fingerprints and checked weights ------------------------------
def test_fingerprint_sees_every_single_weight_and_ignores_the_folder(tmp_path, organism_tokenizer):
    d1 = save_tiny_llama(tmp_path / "one", organism_tokenizer)
    d2 = save_tiny_llama(tmp_path / "elsewhere" / "two", organism_tokenizer)
    a, b = load_model(str(d1), device="cpu"), load_model(str(d2), device="cpu")
    assert a.fingerprint == b.fingerprint  # same weights, different paths
    down = b.model.model.layers[0].mlp.down_proj.weight
    seen = set()
    with torch.no_grad():
        for i in (1, 17, 33, down.numel() - 3):  # offsets a strided sample does not look at
            old = down.view(-1)[i].clone()
            down.view(-1)[i] = torch.nextafter(old, old + 1)  # the smallest possible change
            fp = fingerprint(b.model)
            assert fp != a.fingerprint and fp not in seen
            seen.add(fp)
            down.view(-1)[i] = old
    assert fingerprint(b.model) == a.fingerprint
    with torch.no_grad():  # zero 15 % of the input columns, none at a multiple of 32
        cols = [c for c in range(down.shape[1]) if c % 32][: max(1, int(0.15 * down.shape[1]))]
        down[:, cols] = 0
    assert fingerprint(b.model) != a.fingerprint


def test_swapping_two_weights_changes_the_fingerprint(tmp_path, organism_tokenizer):
    lm = load_model(str(save_tiny_llama(tmp_path / "m", organism_tokenizer)), device="cpu")
    w = lm.model.model.layers[1].self_attn.q_proj.weight
    with torch.no_grad():
        w.view(-1)[[5, 9]] = w.view(-1)[[9, 5]].clone()
    assert fingerprint(lm.model) != lm.fingerprint


def _save_with(tmp_path, tokenizer, name, change):
    from transformers import LlamaForCausalLM

    d = save_tiny_llama(tmp_path / name, tokenizer)
    m = LlamaForCausalLM.from_pretrained(d)
    change(m)
    m.save_pretrained(d)
    return d


@pytest.mark.parametrize("value,kind", [(float("nan"), "NaN"), (float("inf"), "Inf")])
def test_non_finite_weights_are_a_load_error_naming_the_tensor(tmp_path, organism_tokenizer, value, kind):
    def poison(m):
        with torch.no_grad():
            m.model.layers[1].mlp.up_proj.weight[3, 4] = value

    d = _save_with(tmp_path, organism_tokenizer, "bad", poison)
    with pytest.raises(ModelLoadError, match=f"model.layers.1.mlp.up_proj.weight' holds 1 {kind}"):
        load_model(str(d), device="cpu")


def test_a_tokenizer_larger_than_the_embedding_is_a_load_error(tmp_path, organism_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path / "small-vocab"
    cfg = LlamaConfig(
        vocab_size=len(organism_tokenizer) - 5,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        max_position_embeddings=64,
    )
    LlamaForCausalLM(cfg).save_pretrained(d)
    organism_tokenizer.save_pretrained(d)
    with pytest.raises(ModelLoadError, match="embedding only"):
        load_model(str(d), device="cpu")
