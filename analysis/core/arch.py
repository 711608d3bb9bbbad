"""The one model adapter: decoder layers and their Linear weights under uniform names.

Every decoder Linear is named ``layers.{i}.attn.{q_proj,k_proj,v_proj,o_proj,qkv_proj}`` or
``layers.{i}.mlp.{gate_proj,up_proj,down_proj,gate_up_proj}`` whatever the family (as
TransformerLens names hooks uniformly). ``WeightRef.W`` is always the (d_out × d_in) view of the
weight, also for GPT-2's transposed Conv1D, so scorers and edits never special-case a family.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# where the decoder layers live, tried in order
_LAYER_PATHS = ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers")

# local module name inside a layer -> uniform name
_LOCAL_NAMES = {
    "self_attn.q_proj": "attn.q_proj",
    "self_attn.k_proj": "attn.k_proj",
    "self_attn.v_proj": "attn.v_proj",
    "self_attn.o_proj": "attn.o_proj",
    "self_attn.qkv_proj": "attn.qkv_proj",
    "mlp.gate_proj": "mlp.gate_proj",
    "mlp.up_proj": "mlp.up_proj",
    "mlp.down_proj": "mlp.down_proj",
    "mlp.gate_up_proj": "mlp.gate_up_proj",
    # GPT-2 (Conv1D, weight stored d_in × d_out)
    "attn.c_attn": "attn.qkv_proj",
    "attn.c_proj": "attn.o_proj",
    "mlp.c_fc": "mlp.up_proj",
    "mlp.c_proj": "mlp.down_proj",
    # GPT-NeoX
    "attention.query_key_value": "attn.qkv_proj",
    "attention.dense": "attn.o_proj",
    "mlp.dense_h_to_4h": "mlp.up_proj",
    "mlp.dense_4h_to_h": "mlp.down_proj",
}
MODULE_ORDER = ("q_proj", "k_proj", "v_proj", "qkv_proj", "o_proj", "gate_proj", "up_proj", "gate_up_proj", "down_proj")
SUPPORTED = "Llama, Mistral, Qwen2, Gemma, Phi-3, GPT-2 (and GPT-NeoX)"


class UnsupportedArchitecture(ValueError):
    """The model's layout is not one the adapter knows."""


@dataclass(frozen=True)
class WeightRef:
    name: str  # uniform name, e.g. "layers.3.mlp.down_proj"
    layer: int
    module: str  # e.g. "down_proj"
    param: nn.Parameter
    transposed: bool  # True for Conv1D (stored d_in × d_out)

    @property
    def W(self) -> torch.Tensor:
        """The weight as a (d_out × d_in) view sharing storage with the parameter."""
        return self.param.data.T if self.transposed else self.param.data

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.W.shape)  # type: ignore[return-value]


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    for path in _LAYER_PATHS:
        layers = _get(model, path)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    raise UnsupportedArchitecture(
        f"cannot find the decoder layers of a '{kind}' model (looked for {', '.join(_LAYER_PATHS)}); "
        f"supported families: {SUPPORTED}"
    )


def _is_linear(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"


class Adapter:
    """Uniform access to a causal LM's decoder Linear weights."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = decoder_layers(model)
        self.family = getattr(getattr(model, "config", None), "model_type", "unknown")
        self.linears: dict[str, WeightRef] = {}
        for i, layer in enumerate(self.layers):
            found = {}
            for local, mod in layer.named_modules():
                if local in _LOCAL_NAMES and _is_linear(mod):
                    uni = _LOCAL_NAMES[local]
                    found[uni] = WeightRef(
                        f"layers.{i}.{uni}", i, uni.split(".")[1], mod.weight, type(mod).__name__ == "Conv1D"
                    )
            if not found:
                raise UnsupportedArchitecture(
                    f"layer {i} of this '{self.family}' model has no Linear modules the adapter knows; "
                    f"supported families: {SUPPORTED}"
                )
            for uni in sorted(found, key=lambda u: MODULE_ORDER.index(u.split(".")[1])):
                self.linears[found[uni].name] = found[uni]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def modules(self) -> list[str]:
        """Module kinds present, in a fixed order (the heatmap's columns)."""
        kinds = {ref.module for ref in self.linears.values()}
        return [m for m in MODULE_ORDER if m in kinds]

    def names(self, layers: list[int] | None = None, modules: list[str] | None = None) -> list[str]:
        return [
            n
            for n, r in self.linears.items()
            if (layers is None or r.layer in layers) and (modules is None or r.module in modules)
        ]

    def __getitem__(self, name: str) -> WeightRef:
        try:
            return self.linears[name]
        except KeyError:
            raise KeyError(f"no decoder weight named {name!r}; e.g. {next(iter(self.linears))!r}") from None

    def n_weights(self) -> int:
        return sum(r.param.numel() for r in self.linears.values())


def adapter_of(model: nn.Module) -> Adapter:
    """The model's adapter, built once and kept on the model (its layout does not change)."""
    cached = getattr(model, "_brittle_adapter", None)
    if cached is None or cached.model is not model:
        cached = Adapter(model)
        object.__setattr__(model, "_brittle_adapter", cached)
    return cached


def linear_modules(model: nn.Module) -> dict[str, tuple[str, nn.Module]]:
    """Uniform weight name -> (module path, module) of every decoder Linear (for hooks and LoRA targets)."""
    by_param = {id(ref.param): n for n, ref in adapter_of(model).linears.items()}
    return {
        by_param[id(m.weight)]: (path, m)
        for path, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), nn.Parameter) and id(m.weight) in by_param
    }


def output_weight_name(model: nn.Module) -> str | None:
    """The parameter path of the output embedding (lm_head) weight as ``named_parameters`` lists it (a weight
    tied to the input embedding appears under the embedding's path), or None if the model has none."""
    # torch types Module.__getattr__ as Tensor | Module, so mypy sees a Tensor call (the method is a HF one)
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None  # type: ignore[operator]
    if out is None or getattr(out, "weight", None) is None:
        return None
    return next((n for n, p in model.named_parameters() if p is out.weight), None)


def non_decoder_matrices(model: nn.Module) -> list[str]:
    """Parameter paths of every tensor with more than one dimension that is not a decoder Linear weight
    (embeddings, lm_head, position tables), in ``named_parameters`` order, tied tensors once."""
    linear_ids = {id(r.param) for r in adapter_of(model).linears.values()}
    return [n for n, p in model.named_parameters() if p.dim() > 1 and id(p) not in linear_ids]
