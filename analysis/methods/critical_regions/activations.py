"""One forward pass per batch with hooks on every decoder Linear, accumulating in fp32 over response
positions: Σx² and Σx of each input channel, and the output Gram matrix Σ a aᵀ (a = W x, no bias) or the
outputs themselves (the rows of A, for the reference's randomised ``svd_lowrank``).
Wanda, FLAP units and ActSVD are all computed from these statistics.

Cost (a scoring pass should stay near its bare forward passes): the rows to keep are found for every batch
before the first forward (no device-to-host sync inside the loop); Linears fed the same tensor (q/k/v,
gate/up) share one reduction, and without Gram matrices their extra hooks are removed after the first batch;
accumulators are updated in place."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from analysis.core.arch import adapter_of, linear_modules
from analysis.core.chat import Batch
from analysis.methods.critical_regions.calibration import response_positions


@dataclass
class ActivationStats:
    n_tokens: int = 0
    sq: dict[str, torch.Tensor] = field(default_factory=dict)  # Σ x_j²   (d_in)
    sum: dict[str, torch.Tensor] = field(default_factory=dict)  # Σ x_j    (d_in)
    gram: dict[str, torch.Tensor] = field(default_factory=dict)  # Σ a aᵀ   (d_out × d_out)
    outputs: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # rows of A, per batch (if asked)
    n_samples: int = 0  # calibration samples (rows of the batches)

    def output_matrix(self, name: str) -> torch.Tensor:
        """A = X Wᵀ over the counted positions (tokens × d_out), in sample order."""
        return torch.cat(self.outputs[name])

    def variance(self, name: str) -> torch.Tensor:
        n = max(self.n_tokens, 1)
        mean = self.sum[name] / n
        return (self.sq[name] / n - mean * mean).clamp(min=0)


def _add(acc: dict[str, torch.Tensor], name: str, value: torch.Tensor) -> None:
    """acc[name] += value in place (the first value is kept as the accumulator: same bits as 0 + value)."""
    if name in acc:
        acc[name].add_(value)
    else:
        acc[name] = value


def selected_rows(batches: list[Batch], positions: str, dev) -> tuple[list[torch.Tensor], int]:
    """Per batch, the flat (batch × position) indices of the counted positions on ``dev``, and their total.
    Computed where the batch lives (CPU batches: no GPU sync at all; GPU batches: all syncs before the loop)."""
    rows, n = [], 0
    for b in batches:
        mask = response_positions(b, positions)
        n += int(mask.sum())
        rows.append(mask.flatten().nonzero().squeeze(1).to(dev, non_blocking=True))
    return rows, n


@torch.no_grad()
def collect(
    model,
    batches: list[Batch],
    names: list[str] | None = None,
    gram: bool = False,
    progress=None,
    positions: str = "response",
    sums: bool = True,
    outputs: bool = False,
) -> ActivationStats:
    """Accumulate input statistics (and, if ``gram``, output Gram matrices; if ``outputs``, the outputs) over
    response positions (``positions``: see :func:`analysis.methods.critical_regions.calibration.response_positions`).
    ``sums=False`` skips Σx (Wanda needs only Σx²)."""
    adapter = adapter_of(model)
    names = names or list(adapter.linears)
    modules = {n: m for n, (_, m) in linear_modules(model).items()}
    stats = ActivationStats()
    dev = next(model.parameters()).device
    rows_per_batch, stats.n_tokens = selected_rows(batches, positions, dev)
    current: dict = {}
    lead_of: dict[str, str] = {}  # Linear -> the first Linear fed the same tensor (itself if none)

    def hook_for(name: str):
        def hook(mod, inputs, output):
            x_in = inputs[0]
            if current.get("last_input") is x_in:
                lead_of.setdefault(name, current["lead"])
            else:
                current["last_input"], current["lead"] = x_in, name
                lead_of.setdefault(name, name)
                x = x_in.flatten(0, 1).index_select(0, current["rows"]).float()
                _add(stats.sq, name, (x * x).sum(0))
                if sums:
                    _add(stats.sum, name, x.sum(0))
            if gram or outputs:
                a = output.flatten(0, 1).index_select(0, current["rows"]).float()
                bias = getattr(mod, "bias", None)
                if bias is not None:
                    a = a - bias.float()
                if gram:
                    _add(stats.gram, name, a.T @ a)
                if outputs:
                    stats.outputs.setdefault(name, []).append(a)

        return hook

    handles = {n: modules[n].register_forward_hook(hook_for(n)) for n in names}
    try:
        for i, b in enumerate(batches):
            b = b.to(dev)
            current["rows"] = rows_per_batch[i]
            current.pop("last_input", None)
            stats.n_samples += int(b.input_ids.shape[0])
            model(input_ids=b.input_ids, attention_mask=b.attention_mask)
            if i == 0 and not (gram or outputs):  # a follower's hook only names its lead: drop it for the other batches
                for n, lead in lead_of.items():
                    if lead != n:
                        handles.pop(n).remove()
            if progress:
                progress((i + 1) / len(batches), f"activations {i + 1}/{len(batches)}")
    finally:
        for h in handles.values():
            h.remove()
        current.clear()
    for n, lead in lead_of.items():  # followers get their own copy (safetensors refuses shared storage)
        if lead != n:
            stats.sq[n] = stats.sq[lead].clone()
            if sums:
                stats.sum[n] = stats.sum[lead].clone()
    stats.sq = {n: stats.sq[n] for n in names if n in stats.sq}
    stats.sum = {n: stats.sum[n] for n in names if n in stats.sum}
    return stats
