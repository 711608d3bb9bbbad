import pytest
import torch

from analysis.core.arch import Adapter, UnsupportedArchitecture
from conftest import FAMILIES, tiny_model

EXPECTED = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["qkv_proj", "o_proj", "up_proj", "down_proj"],
}


@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_names_and_shapes(family):
    model = tiny_model(family)
    a = Adapter(model)
    assert a.family == family
    assert a.n_layers == 2
    assert a.modules == EXPECTED[family]
    assert len(a.linears) == 2 * len(EXPECTED[family])
    d = 32
    for name, ref in a.linears.items():
        assert (
            name
            == f"layers.{ref.layer}.{'mlp' if ref.module in ('gate_proj', 'up_proj', 'down_proj', 'gate_up_proj') else 'attn'}.{ref.module}"
        )
        out, inp = ref.shape
        # every weight maps the residual width to something or back to it
        if ref.module in ("o_proj", "down_proj"):
            assert out == d
        else:
            assert inp == d
    fused = {"phi3": {"qkv_proj": 32 + 2 * 16, "gate_up_proj": 2 * 64}, "gpt2": {"qkv_proj": 96, "up_proj": 128}}
    for module, out in fused.get(family, {}).items():
        assert a[f"layers.0.attn.{module}" if "qkv" in module else f"layers.0.mlp.{module}"].shape[0] == out


@pytest.mark.parametrize("family", FAMILIES)
def test_weight_view_is_live_and_oriented(family):
    """Writing through W changes the model's output, and W @ x reproduces the module (d_out × d_in)."""
    model = tiny_model(family)
    a = Adapter(model)
    ref = a[a.names(modules=["down_proj"])[0]]
    module = dict(model.named_modules())
    x = torch.randn(3, ref.shape[1])
    mod = [m for m in module.values() if getattr(m, "weight", None) is ref.param][0]
    expected = mod(x)
    bias = getattr(mod, "bias", None)
    got = x @ ref.W.T + (bias if bias is not None else 0)
    assert torch.allclose(got, expected, atol=1e-6)
    with torch.no_grad():
        ref.W[0, 0] = 123.0
    assert float(ref.param.data.reshape(-1)[0] if not ref.transposed else ref.param.data[0, 0]) == 123.0


@pytest.mark.parametrize("family", FAMILIES)
def test_small_models_run_forward(family):
    """Real logits: causal (a prefix's logits do not depend on later tokens), position-dependent, reproducible
    from the seed, and another seed gives other weights."""
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        full = tiny_model(family)(input_ids=ids).logits
        prefix = tiny_model(family)(input_ids=ids[:, :2]).logits
        other = tiny_model(family, seed=1)(input_ids=ids).logits
    assert full.shape == (1, 4, 64) and torch.isfinite(full).all()
    assert torch.allclose(full[:, :2], prefix, atol=1e-5)
    assert not torch.allclose(full[0, 0], full[0, 3], atol=1e-3)
    assert not torch.allclose(full, other, atol=1e-3)


def test_unknown_architecture_has_clear_message():
    from transformers import BertConfig, BertForMaskedLM

    model = BertForMaskedLM(
        BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    )
    with pytest.raises(UnsupportedArchitecture, match="supported families"):
        Adapter(model)
