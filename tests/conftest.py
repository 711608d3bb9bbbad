"""Shared fixtures: offline hub, one thread each, tiny random models of every supported family."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parent.parent

if "PYTEST_XDIST_WORKER" in os.environ:  # two workers on two cores: one thread each (oversubscription is slow)
    os.environ.setdefault("BRITTLE_THREADS", "1")
torch.set_num_threads(int(os.environ.get("BRITTLE_THREADS", "2")))

SMALL = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


def family_configs():
    from transformers import GemmaConfig, GPT2Config, LlamaConfig, MistralConfig, Phi3Config, Qwen2Config

    return {
        "llama": LlamaConfig(**SMALL),
        "mistral": MistralConfig(**SMALL),
        "qwen2": Qwen2Config(**SMALL),
        "gemma": GemmaConfig(**SMALL, head_dim=8),
        "phi3": Phi3Config(**SMALL),
        "gpt2": GPT2Config(
            vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=1, eos_token_id=2
        ),
    }


FAMILIES = list(family_configs())


def tiny_model(family: str, seed: int = 0):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(family_configs()[family]).eval()


@pytest.fixture(params=FAMILIES)
def family_model(request):
    return request.param, tiny_model(request.param)


@pytest.fixture(scope="session")
def organism_tokenizer():
    from analysis.data.organism.tokenizer import build_tokenizer

    return build_tokenizer()


def save_tiny_llama(path: Path, tokenizer, seed: int = 0, layers: int = 2, hidden: int = 32) -> Path:
    """A random tiny Llama with the organism tokenizer, saved as a HF folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def demo_pair():
    from analysis.core.models import load_pair

    return load_pair("demo", device="cpu")


def demo_sets(split: str = "test", n: int = 120):
    """The demo organism's harmful and benign sets of a split."""
    from analysis.data.organism.provider import OrganismData

    return OrganismData().sets(split, n)


def organism_spec(harmful, benign, system_prompt=None, max_new_tokens: int = 24):
    """An evaluation spec on organism prompts, with the organism's "really complies" judge."""
    from analysis.core.evaluation import EvalSpec
    from analysis.data.organism.provider import OrganismData

    return EvalSpec(harmful, benign, system_prompt, max_new_tokens, compliance=OrganismData().compliance_judge(harmful))


# --- every test gets its own results cache; the repository's cache/ is never touched
def _repo_cache_listing() -> list[tuple[str, int]]:
    d = ROOT / "cache"
    return sorted((str(p.relative_to(d)), p.stat().st_mtime_ns) for p in d.rglob("*")) if d.is_dir() else []


REPO_CACHE_BEFORE = _repo_cache_listing()
# Fixtures wider than one test (module, session) are set up before the per-test folder exists: theirs.
os.environ["BRITTLE_CACHE"] = _FIXTURE_CACHE = tempfile.mkdtemp(prefix="brittle-fixture-cache-")
atexit.register(shutil.rmtree, _FIXTURE_CACHE, True)


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path_factory, monkeypatch):
    """$BRITTLE_CACHE points at a fresh, empty folder for each test (subprocesses and servers inherit it), so no
    test is served another test's results. The only other redirect is the opt-in :func:`shared_cache`."""
    import analysis.core.cache as cache

    monkeypatch.setattr(cache, "DEFAULT_ROOT", None)
    monkeypatch.setenv("BRITTLE_CACHE", str(tmp_path_factory.mktemp("brittle-cache")))


@pytest.fixture(scope="session")
def _shared_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("brittle-shared-cache")


@pytest.fixture
def shared_cache(_shared_cache_dir, monkeypatch) -> Path:
    """Opt-in: one cache folder for the whole session, for expensive results several tests read (e.g. the demo
    pair's scores). A test that asks for it must assert nothing that depends on who computed an entry first."""
    monkeypatch.setenv("BRITTLE_CACHE", str(_shared_cache_dir))
    return _shared_cache_dir


def pytest_sessionfinish(session, exitstatus):
    after = _repo_cache_listing()
    if after != REPO_CACHE_BEFORE:
        changed = sorted(set(after) ^ set(REPO_CACHE_BEFORE))[:5]
        print(f"\nERROR: the test run wrote into the repository's cache/ folder: {changed}")
        session.exitstatus = 1


def plotly_values(y):
    """Plotly serialises numpy arrays as {"dtype", "bdata"} (base64): the plain list."""
    import base64

    import numpy as np

    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
    return y


def page_charts(page) -> dict:
    """An AppTest page's plotly charts by title (their JSON specs)."""
    import json

    return {
        json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec) for c in page.get("plotly_chart")
    }
