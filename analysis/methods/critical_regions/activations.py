"""One forward pass per batch with hooks on every decoder Linear, accumulating in fp32 over response
positions: Σx² and Σx of each input channel, and the output Gram matrix Σ a aᵀ (a = W x, no bias) or the
outputs themselves (the rows of A, for the reference's randomised ``svd_lowrank``).
Wanda, FLAP units and ActSVD are all computed from these statistics."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from analysis.core.arch import adapter_of, linear_modules
from analysis.methods.critical_regions.calibration import response_positions
from analysis.core.chat import Batch


@dataclass
class ActivationStats:
    n_tokens: int = 0
    sq: dict[str, torch.Tensor] = field(default_factory=dict)    # Σ x_j²   (d_in)
    sum: dict[str, torch.Tensor] = field(default_factory=dict)   # Σ x_j    (d_in)
    gram: dict[str, torch.Tensor] = field(default_factory=dict)  # Σ a aᵀ   (d_out × d_out)
    outputs: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # rows of A, per batch (if asked)
    n_samples: int = 0                                           # calibration samples (rows of the batches)

    def output_matrix(self, name: str) -> torch.Tensor:
        """A = X Wᵀ over the counted positions (tokens × d_out), in sample order."""
        return torch.cat(self.outputs[name])

    def variance(self, name: str) -> torch.Tensor:
        n = max(self.n_tokens, 1)
        mean = self.sum[name] / n
        return (self.sq[name] / n - mean * mean).clamp(min=0)


@torch.no_grad()
def collect(model, batches: list[Batch], names: list[str] | None = None, gram: bool = False,
            progress=None, positions: str = "response", outputs: bool = False) -> ActivationStats:
    """Accumulate input statistics (and, if ``gram``, output Gram matrices; if ``outputs``, the outputs) over
    response positions
    (``positions``: see :func:`analysis.methods.critical_regions.calibration.response_positions`)."""
    adapter = adapter_of(model)
    names = names or list(adapter.linears)
    modules = {n: m for n, (_, m) in linear_modules(model).items()}
    stats = ActivationStats()
    dev = next(model.parameters()).device
    current: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(mod, inputs, output):
            # rows picked by a precomputed index: the same rows in the same order as inputs[0][mask], without
            # a device-to-host sync per Linear (issue #15: Wanda near the speed of a bare forward pass)
            # Linears fed the same tensor (q/k/v, gate/up) run one after another: their sums are computed once
            if current.get("last_input") is not inputs[0]:
                x = inputs[0].flatten(0, 1).index_select(0, current["rows"]).float()
                current["last_input"], current["last_sums"] = inputs[0], ((x * x).sum(0), x.sum(0))
            sq, total = current["last_sums"]
            stats.sq[name] = stats.sq.get(name, 0) + sq
            stats.sum[name] = stats.sum.get(name, 0) + total
            if gram or outputs:
                a = output.flatten(0, 1).index_select(0, current["rows"]).float()
                bias = getattr(mod, "bias", None)
                if bias is not None:
                    a = a - bias.float()
                if gram:
                    stats.gram[name] = stats.gram.get(name, 0) + a.T @ a
                if outputs:
                    stats.outputs.setdefault(name, []).append(a)
        return hook

    handles = [modules[n].register_forward_hook(hook_for(n)) for n in names]
    try:
        for i, b in enumerate(batches):
            b = b.to(dev)
            current["mask"] = response_positions(b, positions)
            current["rows"] = current["mask"].flatten().nonzero().squeeze(1)
            current.pop("last_input", None)
            stats.n_tokens += int(current["mask"].sum())
            stats.n_samples += int(b.input_ids.shape[0])
            model(input_ids=b.input_ids, attention_mask=b.attention_mask)
            if progress:
                progress((i + 1) / len(batches), f"activations {i + 1}/{len(batches)}")
    finally:
        for h in handles:
            h.remove()
        current.clear()
    return stats
