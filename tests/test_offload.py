"""Offload: the base model on another device than the aligned one, judges on the CPU or quantised with
bitsandbytes. Without a GPU the two "devices" are simulated by a base in another dtype (bf16 beside an fp32
aligned model: every cross-model read must convert per tensor / per batch, as it must move across devices)."""

from __future__ import annotations

import copy

import pytest
import torch

from analysis.core.arch import adapter_of
from analysis.core.models import LoadedModel, ModelLoadError, load_pair


def _wrap(model, like: LoadedModel, tag: str) -> LoadedModel:
    return LoadedModel(model, like.tokenizer, like.source, tag, "cpu", f"{like.fingerprint}-{tag}", adapter_of(model))


def test_base_device_option_and_its_message():
    pair = load_pair("demo", device="cpu", base_device="cpu")
    assert pair.aligned.device == pair.base.device == "cpu"
    assert next(pair.base.model.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError) as e:
            load_pair("demo", device="cpu", base_device="cuda")
        assert "\n" not in str(e.value) and "no CUDA GPU" in str(e.value)


def test_analyses_reading_the_base_convert_per_tensor(demo_pair, tmp_path):
    """Spectra, LoX and token divergence with the base held in another format give the numbers of the base
    brought over first (within bf16 rounding of the base weights)."""
    from analysis.core.cache import Cache
    from analysis.data.organism.provider import OrganismData
    from analysis.methods.depth import pair_rows, token_divergence
    from analysis.methods.lox import alignment_factors
    from analysis.methods.spectra import spectra

    a = demo_pair.aligned
    b16 = _wrap(copy.deepcopy(demo_pair.base.model).to(torch.bfloat16), demo_pair.base, "bf16")
    ref = _wrap(copy.deepcopy(b16.model).float(), demo_pair.base, "ref")
    s_off, s_ref = spectra(a, b16, Cache(tmp_path / "1")), spectra(a, ref, Cache(tmp_path / "2"))
    assert s_off.keys() == s_ref.keys() and len(s_off) > 0
    for n in s_off:
        v, w = s_off[n].values, s_ref[n].values
        assert float((v - w).abs().max()) <= 1e-5 * float(w[0]) + 1e-7
    f_off = alignment_factors(a, b16, 4, cache=Cache(tmp_path / "3"), scope="decoder")
    f_ref = alignment_factors(a, ref, 4, cache=Cache(tmp_path / "4"), scope="decoder")
    n0 = next(iter(f_ref))
    assert torch.allclose(f_off[n0].A @ f_off[n0].B, f_ref[n0].A @ f_ref[n0].B, atol=1e-5)
    rows, starts = pair_rows(a.tokenizer, OrganismData().attack_data("harmful", 6))
    kl_off, _ = token_divergence(a.model, b16.model, rows, starts, a.tokenizer.pad_token_id)
    kl_ref, _ = token_divergence(a.model, ref.model, rows, starts, a.tokenizer.pad_token_id)
    flat_off, flat_ref = sum(kl_off, []), sum(kl_ref, [])
    assert len(flat_off) == len(flat_ref) > 0 and max(flat_ref) > 0
    assert max(abs(x - y) for x, y in zip(flat_off, flat_ref)) < 0.05 * max(flat_ref)


def test_quantised_judge_loads_and_agrees(tmp_path, organism_tokenizer):
    """8-bit and 4-bit judges (bitsandbytes) load on the CPU, are smaller, and their next-token logits stay
    close to the full-precision judge's; a bad quantisation name is a one-line error."""
    pytest.importorskip("bitsandbytes")
    from analysis.judging.base import last_logits, load_judge_model
    from conftest import save_tiny_llama

    path = save_tiny_llama(tmp_path / "j", organism_tokenizer, hidden=64)
    full, tok, fp = load_judge_model(str(path), "fp32", "cpu")
    texts = ["how do i wash my car ?", "copy : car", "what is 1 plus 1 ?"]
    ref = last_logits(full, tok, texts, True)
    size_full = full.get_memory_footprint()
    for quant, tol in (("8bit", 0.1), ("4bit", 0.6)):
        m, _, fq = load_judge_model(str(path), "fp32", "cpu", quant=quant)
        got = last_logits(m, tok, texts, True)
        assert got.shape == ref.shape and fq != fp
        assert float((got - ref).abs().max()) < tol * float(ref.abs().max())
        assert m.get_memory_footprint() < size_full
    with pytest.raises(ModelLoadError) as e:
        load_judge_model(str(path), "fp32", "cpu", quant="3bit")
    assert "\n" not in str(e.value) and "8bit" in str(e.value)
