"""Scale-out on Ray: landscape grid points and scoring shards as tasks, results in the same cache.
(This module knows no analysis: callers pass the task function; it never imports them back.)

Give a cluster address (``--ray auto``, ``--ray ray://head:10001``, ``ray_address`` in the launch config,
or ``"local"`` for a Ray instance on this machine). The driver keeps the cache: it looks up every point,
sends only the missing ones as tasks, and writes each result under the same key the in-process path uses,
so a landscape computed on a cluster is read back by the app as if it had been computed locally.

Workers load the model themselves from its source (a hub id, a path every node can read, or ``demo`` —
the ``analysis`` package, shipped weights included, travels with each task as a Ray ``py_modules``) and
check its fingerprint against the driver's, so a worker never computes with other weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch

PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ModelRef:
    """A model by where to load it from (what a worker needs), with the fingerprint it must have."""

    source: str
    dtype: str
    fingerprint: str


def connect(address: str, num_cpus: int | None = None):
    """Connect to (or, for ``"local"``, start) Ray once per process; returns the ray module."""
    try:
        import ray
    except ImportError:
        raise ValueError("Ray is not installed: pip install 'ray==2.60.0' to run on a cluster") from None
    if not ray.is_initialized():
        _check_reachable(address)
        env = {
            "py_modules": [str(PACKAGE)],
            "excludes": ["__pycache__"],
            "env_vars": {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"), "RAY_DEDUP_LOGS": "0"},
        }
        try:
            if address == "local":
                ray.init(num_cpus=num_cpus, runtime_env=env, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, runtime_env=env, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ValueError(f"could not connect to the Ray cluster at {address!r}: {str(e).splitlines()[0]}") from None
    return ray


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds, not minutes (Ray retries an unreachable head for a long time)."""
    import socket

    if address in ("local", "auto") or ":" not in address:
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        raise ValueError(f"could not connect to the Ray cluster at {address!r}: {e}") from None


def ref_of(lm) -> ModelRef:
    return ModelRef(lm.source, lm.dtype, lm.fingerprint)


_WORKER_MODELS: dict[ModelRef, object] = {}


def load_on_worker(ref: ModelRef):
    """The model in this worker process, loaded once and checked against the driver's fingerprint."""
    from analysis.core.models import load_model

    lm = _WORKER_MODELS.get(ref)
    if lm is None:
        torch.set_num_threads(int(os.environ.get("BRITTLE_THREADS", "1")))
        lm = load_model(ref.source, ref.dtype, "auto")
        if lm.fingerprint != ref.fingerprint:
            raise ValueError(
                f"the worker loaded '{ref.source}' with fingerprint {lm.fingerprint}, but the driver's "
                f"model is {ref.fingerprint}: give a hub id or a path that every node reads identically"
            )
        _WORKER_MODELS[ref] = lm
    return lm


def portable(direction, models: dict[int, ModelRef]):
    """The direction with every model it holds replaced by a :class:`ModelRef` (so tasks do not ship weights)."""
    if not is_dataclass(direction):
        return direction
    changes = {}
    for f in fields(direction):
        v = getattr(direction, f.name)
        if isinstance(v, torch.nn.Module):
            if id(v) not in models:
                raise ValueError("a direction reads a model the cluster cannot load (no source known for it)")
            changes[f.name] = models[id(v)]
        elif is_dataclass(v):
            changes[f.name] = portable(v, models)
    return replace(cast(Any, direction), **changes) if changes else direction


def resolve(direction):
    """Inverse of :func:`portable`, on the worker."""
    if not is_dataclass(direction):
        return direction
    changes = {}
    for f in fields(direction):
        v = getattr(direction, f.name)
        if isinstance(v, ModelRef):
            changes[f.name] = load_on_worker(v).model
        elif is_dataclass(v):
            changes[f.name] = resolve(v)
    return replace(cast(Any, direction), **changes) if changes else direction


def run_tasks(
    address: str, task_fn, lm, directions: list, points: list[tuple], other_models, make_args, on_result
) -> None:
    """Run ``task_fn(*make_args(model_ref, portable_directions, coords))`` as one Ray task per point;
    ``on_result(coords, result)`` as each finishes. Models the directions read are sent as references that
    workers load themselves (``other_models``: the loaded models that may appear in the directions)."""
    ray = connect(address)
    known = {id(lm.model): ref_of(lm), **{id(m.model): ref_of(m) for m in other_models}}
    dirs = [portable(d, known) for d in directions]
    task = ray.remote(num_cpus=1)(task_fn)
    pending = {task.remote(*make_args(ref_of(lm), dirs, c)): c for c in points}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for obj in done:
            coords = pending.pop(obj)
            on_result(coords, ray.get(obj))
