"""Load a model pair: an aligned chat model and, optionally, its base model.

A source is ``"demo"`` (the shipped organism: aligned, with its base as the default base),
``"demo:aligned"`` / ``"demo:base"``, a local folder, or a Hugging Face hub id. Every failure is a
:class:`ModelLoadError` whose message says what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from analysis.core.arch import Adapter, UnsupportedArchitecture, adapter_of
from analysis.data.organism import WEIGHTS_DIR

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from analysis.data.providers import DataProvider

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEMO = "demo"


class ModelLoadError(ValueError):
    """A model that cannot be loaded or used; the message says why and what was expected."""


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    source: str
    dtype: str
    device: str
    fingerprint: str
    adapter: Adapter = field(repr=False)
    path: str = ""  # the folder it was loaded from ("" for a hub id or an in-memory model)

    @property
    def data(self) -> DataProvider:
        """The data provider for this model: the organism's sets for a demo build (the shipped pair, or a folder
        written by ``build-demo --out``), real-model defaults (no organism sentences) for anything else."""
        from analysis.data.organism import is_organism_build
        from analysis.data.organism.provider import OrganismData
        from analysis.data.providers import RealData

        return OrganismData() if self.path and is_organism_build(self.path) else RealData()

    @property
    def family(self) -> str:
        return self.adapter.family

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


@dataclass
class ModelPair:
    aligned: LoadedModel
    base: LoadedModel | None

    def models(self) -> dict[str, LoadedModel]:
        return {"aligned": self.aligned, **({"base": self.base} if self.base else {})}


def resolve_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but no CUDA GPU is available; use 'cpu' or 'auto'")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ModelLoadError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'")
    return device


def demo_path(role: str = "aligned") -> Path:
    return WEIGHTS_DIR / role


def resolve_source(source: str) -> str:
    """Map 'demo' names to shipped folders; check that folder-looking sources exist."""
    source = str(source).strip()
    if not source:
        raise ModelLoadError("no model given: use 'demo', a local folder or a Hugging Face hub id")
    if source in (DEMO, f"{DEMO}:aligned", f"{DEMO}:base"):
        role = "base" if source.endswith(":base") else "aligned"
        path = demo_path(role)
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"the demo model is missing at {path}; rebuild it with `python -m analysis build-demo`"
            )
        return str(path)
    p = Path(source).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelLoadError(f"{source} is a file; give the model's folder (with config.json) instead")
        if not (p / "config.json").exists():
            raise ModelLoadError(f"folder {source} has no config.json: it is not a Hugging Face model folder")
        return str(p)
    looks_like_path = source.startswith(("/", ".", "~")) or source.count("/") > 1 or os.sep == "\\" and "\\" in source
    if looks_like_path:
        raise ModelLoadError(f"model folder not found: {source}")
    return source  # a hub id


# config keys that name where a model came from, not what it computes
_PATH_KEYS = ("_name_or_path", "name_or_path", "_commit_hash", "transformers_version")
_INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_K1, _K2 = -7046029254386353131, -4658895280553007687  # 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9 as int64


_CHUNK = 1 << 16  # fixed: the checksum must not depend on the device
_MULTIPLIERS: dict[str, torch.Tensor] = {}


def _mix(i: torch.Tensor) -> torch.Tensor:
    """An odd, well-mixed int64 for each int64 in ``i`` (splitmix-style; wrap-around arithmetic)."""
    m = i * _K1
    m = (m ^ (m >> 29)) * _K2
    return (m ^ (m >> 32)) | 1


def _multipliers(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _MULTIPLIERS:
        _MULTIPLIERS[key] = _mix(torch.arange(_CHUNK, dtype=torch.int64, device=device))
    return _MULTIPLIERS[key]


@torch.no_grad()
def tensor_checksum(t: torch.Tensor) -> int:
    """A 64-bit checksum of every element's raw bits, computed on the tensor's own device.

    Σ_c o_c · Σ_j bits[c·C + j] · m_j (mod 2⁶⁴), with odd, mixed multipliers m_j (position in a chunk of C) and
    o_c (chunk): changing any single element changes it (its bit difference is non-zero and below 2⁶⁴; odd
    factors keep it non-zero), moving values between positions changes it too, integer sums do not depend on
    reduction order, and CPU and GPU agree."""
    flat = t.detach().contiguous().reshape(-1)
    bits = flat.view(_INT_VIEW.get(flat.element_size(), torch.uint8))
    M = _multipliers(flat.device)
    rows_per_block = 8 if flat.device.type == "cpu" else 1024  # int64 temporaries: 4 MiB on CPU, 512 MiB on GPU
    full = bits.numel() // _CHUNK
    total = torch.zeros((), dtype=torch.int64, device=flat.device)
    for r0 in range(0, full, rows_per_block):
        r1 = min(full, r0 + rows_per_block)
        X = bits[r0 * _CHUNK : r1 * _CHUNK].view(r1 - r0, _CHUNK).to(torch.int64)
        o = _mix(torch.arange(r0, r1, dtype=torch.int64, device=flat.device) + 0x5BD1E995)
        total += ((X * M).sum(1) * o).sum()
    rest = bits[full * _CHUNK :].to(torch.int64)
    if rest.numel():
        o = _mix(torch.tensor(full, dtype=torch.int64, device=flat.device) + 0x5BD1E995)
        total += (rest * M[: rest.numel()]).sum() * o
    return int(total)


def fingerprint(model: torch.nn.Module) -> str:
    """A content hash of the model: its config without path-like keys, and every parameter's name, shape,
    dtype and full bit content (:func:`tensor_checksum`, on the model's device). Two copies of the same
    weights in different folders agree; any changed weight changes it."""
    h = hashlib.sha256()
    cfg = getattr(model, "config", None)
    if cfg is not None:
        d = {k: v for k, v in cfg.to_dict().items() if k not in _PATH_KEYS}
        h.update(json.dumps(d, sort_keys=True, default=str).encode())
    for name, p in model.named_parameters():
        h.update(f"{name}{tuple(p.shape)}{p.dtype}:{tensor_checksum(p)};".encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def check_finite(model: torch.nn.Module, source: str = "the model") -> None:
    """A :class:`ModelLoadError` naming the first parameter that holds NaN or Inf values."""
    for name, p in model.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            bad = int((~torch.isfinite(p)).sum())
            kinds = " and ".join(k for k, f in (("NaN", torch.isnan), ("Inf", torch.isinf)) if bool(f(p).any()))
            raise ModelLoadError(
                f"{source}: weight '{name}' holds {bad} {kinds} value(s) of {p.numel()}; "
                "the checkpoint is damaged (or was saved after a diverged run)"
            )


def check_vocab(model: torch.nn.Module, tokenizer, source: str = "the model") -> None:
    """The tokenizer must not produce ids beyond the embedding table."""
    emb = model.get_input_embeddings()  # type: ignore[operator]  # torch types Module.__getattr__ as a Tensor
    n_emb = getattr(emb, "num_embeddings", None)
    if n_emb is not None and len(tokenizer) > n_emb:
        raise ModelLoadError(
            f"{source}: the tokenizer has {len(tokenizer)} tokens but the model's embedding only "
            f"{n_emb} (config vocab_size {getattr(model.config, 'vocab_size', '?')}); "
            "tokenizer and weights do not belong together"
        )


def load_error(source: str, err: Exception) -> ModelLoadError:
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    where = "folder" if Path(source).exists() else "Hugging Face hub id"
    hint = (
        " (offline: HF_HUB_OFFLINE is set, only cached or local models load)"
        if os.environ.get("HF_HUB_OFFLINE")
        else ""
    )
    return ModelLoadError(f"could not load {where} '{source}'{hint}: {msg}")


def load_model(source: str, dtype: str = "fp32", device: str = "auto", trust_remote_code: bool = False) -> LoadedModel:
    """Load a causal LM and its tokenizer, in eval mode, on ``device``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    dev = resolve_device(device)
    path = resolve_source(source)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001 — transformers raises many kinds here
        raise load_error(source, e) from None
    mtype = getattr(config, "model_type", "?")
    if mtype not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not trust_remote_code:
        raise ModelLoadError(
            f"'{source}' is a '{mtype}' model, not a causal (decoder) language model; "
            "the tool needs a model that generates text, e.g. Llama, Mistral, Qwen2, Gemma, Phi-3, GPT-2"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001
        raise load_error(source, e) from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        adapter = adapter_of(model)
    except UnsupportedArchitecture as e:
        raise ModelLoadError(str(e)) from None
    check_vocab(model, tokenizer, f"'{source}'")
    model.to(dev).eval()  # type: ignore[arg-type]  # transformers' wrapped .to() stub takes no device
    check_finite(model, f"'{source}'")
    return LoadedModel(
        model, tokenizer, source, dtype, dev, fingerprint(model), adapter, path if Path(path).exists() else ""
    )


def check_compatible(aligned: LoadedModel, base: LoadedModel) -> None:
    """Base and aligned must share the family and every decoder weight shape."""
    if aligned.family != base.family:
        raise ModelLoadError(
            f"base is a '{base.family}' model but aligned is '{aligned.family}': a pair must share the architecture"
        )
    a, b = aligned.adapter.linears, base.adapter.linears
    if a.keys() != b.keys():
        missing = sorted(set(a) ^ set(b))[:3]
        raise ModelLoadError(
            f"base and aligned have different decoder layers (e.g. {missing}); "
            f"aligned has {aligned.adapter.n_layers} layers, base {base.adapter.n_layers}"
        )
    for name in a:
        if a[name].shape != b[name].shape:
            raise ModelLoadError(
                f"shape mismatch at {name}: aligned {a[name].shape}, base {b[name].shape}; "
                "the base must be the model the aligned one was fine-tuned from"
            )


def load_pair(
    aligned: str = DEMO,
    base: str | None = None,
    dtype: str = "fp32",
    device: str = "auto",
    trust_remote_code: bool = False,
    base_device: str | None = None,
) -> ModelPair:
    """Load aligned (+ base). ``aligned='demo'`` brings the demo base unless ``base`` is given ('' = none).
    ``base_device`` (default: ``device``) offloads the base, e.g. to ``"cpu"`` while the aligned model stays on
    the GPU: the analyses that read the base (spectra, LoX, landscape toward the base, depth, R_ft) bring one
    weight or one batch's logits at a time to the aligned model's device."""
    if base is None and aligned == DEMO:
        base = f"{DEMO}:base"
    a = load_model(aligned, dtype, device, trust_remote_code)
    b = load_model(base, dtype, base_device or device, trust_remote_code) if base else None
    if b is not None:
        check_compatible(a, b)
    return ModelPair(a, b)
