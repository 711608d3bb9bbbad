"""Spectra of ΔW, the checked randomised top-k SVD, LoX edits, retention and the recovery rank."""

import pytest
import torch

from analysis.core.cache import Cache
from analysis.core.edits import applied, checksum
from analysis.core.models import load_model
from analysis.methods.lox import LoX, alignment_factors, randomized_svd, recovery_rank, retention, save_edited, top_k
from analysis.methods.spectra import effective_rank, energy, spectra
from conftest import save_tiny_llama


def decaying(m: int, n: int, decay: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    r = min(m, n)
    U = torch.linalg.qr(torch.randn(m, r, generator=g))[0]
    V = torch.linalg.qr(torch.randn(n, r, generator=g))[0]
    return (U * torch.arange(1, r + 1).float() ** -decay) @ V.T


def test_effective_rank_and_energy_definitions():
    assert effective_rank(torch.tensor([3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(torch.ones(5)) == pytest.approx(5.0)
    e = energy(torch.tensor([2.0, 1.0, 1.0]))
    assert e.tolist() == pytest.approx([4 / 6, 5 / 6, 1.0])


@pytest.mark.parametrize("shape", [(300, 600), (600, 300)])
def test_randomized_top_k_matches_full_svd(shape):
    M = decaying(*shape)
    for k in (1, 6, 20):
        r, f = top_k(M, k, "randomized"), top_k(M, k, "full")
        assert r.method == "randomized" and f.method == "full"
        Mr, Mf = r.A @ r.B, f.A @ f.B
        assert float((Mr - Mf).norm() / Mf.norm()) < 1e-3
        assert r.A.shape == (shape[0], k) and r.B.shape == (k, shape[1])


def test_randomized_error_estimate_tracks_the_true_error():
    M = decaying(400, 800, decay=0.3)  # slow decay: few power iterations are not enough
    U, S, Vh, est = randomized_svd(M, 10, n_iter=0)
    f = top_k(M, 10, "full")
    true = float(((U * S) @ Vh - f.A @ f.B).norm() / (f.A @ f.B).norm())
    assert est > 1e-3 and true > 1e-3  # not converged, and the estimate says so
    U, S, Vh, est = randomized_svd(M, 10, n_iter=30)
    assert est < 1e-3


def test_top_k_falls_back_to_full_svd_when_k_is_near_full_rank():
    M = decaying(40, 60)
    assert top_k(M, 30, "randomized").method == "full"
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k(M, 0)
    with pytest.raises(ValueError, match="svd method"):
        top_k(M, 2, "lanczos")


@pytest.fixture(scope="module")
def toy_pair(tmp_path_factory, organism_tokenizer):
    """A tiny base and an 'aligned' model = base + a known rank-2 update of every decoder weight."""
    d = tmp_path_factory.mktemp("pair")
    base_dir = save_tiny_llama(d / "base", organism_tokenizer, seed=1)
    base = load_model(str(base_dir), device="cpu")
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for ref in base.adapter.linears.values():
            m, n = ref.shape
            ref.W.add_(0.3 * torch.randn(m, 2, generator=g) @ torch.randn(2, n, generator=g) / n**0.5)
    base.model.save_pretrained(d / "aligned")
    organism_tokenizer.save_pretrained(d / "aligned")
    return load_model(str(d / "aligned"), device="cpu"), load_model(str(base_dir), device="cpu")


def test_spectra_of_a_rank_two_update(toy_pair, tmp_path):
    aligned, base = toy_pair
    specs = spectra(aligned, base, Cache(tmp_path))
    assert set(specs) == set(aligned.adapter.linears)
    for s in specs.values():
        assert s.values[2] < 1e-5 * s.values[0]  # rank 2 exactly (up to fp32)
        assert s.energy_at(2) == pytest.approx(1.0, abs=1e-6)
        assert 1.0 <= s.effective_rank <= 2.0
        assert s.norm_ratio > 0
    again = spectra(aligned, base, Cache(tmp_path))  # from the cache: the same numbers
    assert all(torch.equal(again[n].values, specs[n].values) for n in specs)
    with pytest.raises(ValueError, match="need a base model"):
        spectra(aligned, None)


def test_lox_edit_is_aligned_plus_alpha_top_k_and_restores(toy_pair, tmp_path):
    aligned, base = toy_pair
    before = checksum(aligned.model)
    name = "layers.1.mlp.down_proj"
    W0 = aligned.adapter[name].W.clone()
    dW = W0 - base.adapter[name].W
    U, S, Vh = torch.linalg.svd(dW)
    edit = LoX(k=1, alpha=0.5).edit(aligned, base, Cache(tmp_path))
    with applied(aligned.model, edit):
        expect = W0 + 0.5 * S[0] * torch.outer(U[:, 0], Vh[0])
        assert torch.allclose(aligned.adapter[name].W, expect, atol=1e-6)
    assert checksum(aligned.model) == before
    full = LoX(k=0, alpha=1.0).edit(aligned, base)  # k = 0: the whole ΔW → W_aligned + ΔW
    with applied(aligned.model, full):
        assert torch.allclose(aligned.adapter[name].W, W0 + dW, atol=1e-6)
    assert checksum(aligned.model) == before


def test_lox_filters_and_bad_settings(toy_pair, tmp_path):
    aligned, base = toy_pair
    edit = LoX(k=2, alpha=1.0, layers=[0], modules=["q_proj"]).edit(aligned, base, Cache(tmp_path))
    assert edit.targets() == ["layers.0.attn.q_proj"]
    with pytest.raises(ValueError, match="no decoder weights match"):
        LoX(k=2, layers=[7]).edit(aligned, base)
    with pytest.raises(ValueError, match="k must be >= 0"):
        LoX(k=-1).edit(aligned, base)
    with pytest.raises(ValueError, match="base model"):
        LoX(k=2).edit(aligned, None)


def test_save_edited_writes_a_loadable_folder(toy_pair, tmp_path):
    aligned, base = toy_pair
    edit = LoX(k=2, alpha=1.0).edit(aligned, base, Cache(tmp_path / "c"))
    before = checksum(aligned.model)
    out = save_edited(aligned, edit, tmp_path / "lox")
    assert checksum(aligned.model) == before
    saved = load_model(str(out), device="cpu")
    with applied(aligned.model, edit):
        for n, ref in aligned.adapter.linears.items():
            assert torch.equal(saved.adapter[n].W, ref.W)
    with pytest.raises(ValueError, match="not empty"):
        save_edited(aligned, edit, out)


def test_retention_in_and_out_of_the_subspace():
    dW = decaying(50, 40)
    U = torch.linalg.svd(dW)[0][:, :3]
    in_span = {"w": U @ torch.randn(3, 40)}
    orth = {"w": (torch.eye(50) - U @ U.T) @ torch.randn(50, 40)}
    assert retention({"w": U}, in_span) == pytest.approx(1.0, abs=1e-5)
    assert retention({"w": U}, orth) == pytest.approx(0.0, abs=1e-4)
    assert 0 < retention({"w": U}, {"w": dW}) < 1


def test_alignment_factors_are_cached(toy_pair, tmp_path):
    aligned, base = toy_pair
    cache = Cache(tmp_path)
    f1 = alignment_factors(aligned, base, 2, cache=cache)
    n = cache.info().entries
    f2 = alignment_factors(aligned, base, 2, cache=cache)
    assert cache.info().entries == n == 1
    assert all(torch.equal(f1[k].A, f2[k].A) for k in f1)


def test_recovery_rank_on_the_demo_pair(demo_pair, tmp_path):
    from conftest import demo_sets, organism_spec

    sets = demo_sets("val")
    h, b = sets["harmful"].head(40), sets["benign"].head(16)
    before = checksum(demo_pair.base.model)
    rec = recovery_rank(demo_pair.base, demo_pair.aligned, organism_spec(h, b), [1, 8, 64], 0.05, cache=Cache(tmp_path))
    assert checksum(demo_pair.base.model) == before
    assert rec.ranks == [1, 8, 64]
    assert rec.target_asr == pytest.approx(0.05)  # the aligned model refuses all 40 (ASR 0) + the tolerance
    assert rec.asr[0] >= 0.3  # one direction of ΔW does not bring the refusal back (measured 57.5 %)
    assert rec.asr[1] <= 0.05 and rec.rank == 8  # eight do (measured 5.0 %): the recovery rank of this pair
