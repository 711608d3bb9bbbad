"""Wanda / SNIP scores with the calibration batches split across Ray tasks (scale-out of scoring)."""

from __future__ import annotations

import torch

from analysis.core.distributed import connect, load_on_worker, ref_of


def _score_shard_task(ref, method: str, batches, positions: str = "response") -> dict:
    from analysis.methods.critical_regions.activations import collect
    from analysis.methods.critical_regions.snip import snip_scores

    lm = load_on_worker(ref)
    if method == "snip":
        return snip_scores(lm.model, batches)
    return {"stats": collect(lm.model, batches, positions=positions)}


def scores_sharded(
    address: str, lm, method: str, batches: list, shards: int = 0, positions: str = "response"
) -> dict[str, torch.Tensor]:
    """Wanda or SNIP scores with the calibration batches split across Ray tasks and the partial sums added.

    Both scores are sums over calibration samples (Σx² for Wanda, Σ|∂L/∂W| for SNIP), so the shards add up
    exactly to the single-process result (up to float summation order)."""
    from analysis.methods.critical_regions.activations import ActivationStats
    from analysis.methods.critical_regions.wanda import wanda_from_stats

    ray = connect(address)
    shards = shards or max(1, min(len(batches), int(ray.cluster_resources().get("CPU", 1))))
    parts = [batches[i::shards] for i in range(shards) if batches[i::shards]]
    task = ray.remote(num_cpus=1)(_score_shard_task)
    results = ray.get([task.remote(ref_of(lm), method, p, positions) for p in parts])
    if method == "snip":
        return {n: sum(r[n] for r in results) for n in results[0]}
    total = ActivationStats()
    for r in results:
        s = r["stats"]
        total.n_tokens += s.n_tokens
        total.n_samples += s.n_samples
        for n in s.sq:
            total.sq[n] = total.sq.get(n, 0) + s.sq[n]
            total.sum[n] = total.sum.get(n, 0) + s.sum[n]
    return wanda_from_stats(lm.model, total)
