"""SNIP importance (Wei et al. 2024): S_ij = |W_ij| · Σ_n |∂L_n/∂W_ij|, a sum of absolute per-sample
gradients (not the absolute value of the summed gradient), L_n the mean cross-entropy over sample n's
response tokens. One forward+backward per sample serves every layer; accumulation is fp32."""

from __future__ import annotations

import torch

from analysis.core.arch import adapter_of
from analysis.core.chat import IGNORE, Batch


def _per_sample(batches: list[Batch]):
    for b in batches:
        for i in range(b.input_ids.shape[0]):
            keep = b.attention_mask[i].bool()
            yield (b.input_ids[i][keep][None], b.labels[i][keep][None])


def snip_scores(model, batches: list[Batch], progress=None) -> dict[str, torch.Tensor]:
    adapter = adapter_of(model)
    names = list(adapter.linears)
    params = [adapter[n].param for n in names]
    acc = [torch.zeros(p.shape, dtype=torch.float32, device=p.device) for p in params]
    dev = params[0].device
    samples = list(_per_sample(batches))
    was_training = model.training
    model.eval()
    for k, (ids, labels) in enumerate(samples):
        ids, labels = ids.to(dev), labels.to(dev)
        logits = model(input_ids=ids).logits[:, :-1].float()
        target = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE
        )
        grads = torch.autograd.grad(loss, params)
        for a, g in zip(acc, grads):
            a.add_(g.float().abs())
        del grads  # else the last sample's gradients live on through the next backward
        if progress and (k % 16 == 15 or k == len(samples) - 1):
            progress((k + 1) / len(samples), f"SNIP {k + 1}/{len(samples)}")
    model.train(was_training)
    out = {}
    for n, a, p in zip(names, acc, params):  # in place: the accumulators become the scores
        a.mul_(p.detach().float().abs())
        out[n] = a.T if adapter[n].transposed else a
    return out
